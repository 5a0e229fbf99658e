package setting

import "testing"

func TestError(t *testing.T) {
	named := &Error{Name: "IMAGE_PROXY_X", Value: "7", Allowed: "from 0 to 5"}
	if got := named.Error(); got != `invalid setting IMAGE_PROXY_X="7": must be from 0 to 5` {
		t.Errorf("%q", got)
	}
	anonymous := &Error{Value: "7", Allowed: "from 0 to 5"}
	if got := anonymous.Error(); got != `invalid value "7": must be from 0 to 5` {
		t.Errorf("%q", got)
	}
}

func TestRedact(t *testing.T) {
	if Redact("") != "" || Redact("hunter2-hunter2-hunter2") != "REDACTED" {
		t.Errorf("Redact: %q %q", Redact(""), Redact("hunter2-hunter2-hunter2"))
	}
}
