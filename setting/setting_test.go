package setting

import (
	"testing"
	"time"
)

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

func TestCheckDuration(t *testing.T) {
	for _, c := range []struct {
		d  time.Duration
		ok bool
	}{{time.Nanosecond, true}, {24 * time.Hour, true}, {0, false}, {-time.Second, false}, {24*time.Hour + 1, false}} {
		err := CheckDuration("IMAGE_PROXY_X", c.d)
		if (err == nil) != c.ok {
			t.Errorf("%v: %v", c.d, err)
		}
		if err != nil && err.Error() != `invalid setting IMAGE_PROXY_X="`+c.d.String()+`": must be a positive duration up to 24h, such as 500ms, 10s or 1m` {
			t.Errorf("%v: %q", c.d, err)
		}
	}
}

func TestCheckRange(t *testing.T) {
	for _, c := range []struct {
		v    int64
		want string
	}{{1, ""}, {10, ""}, {0, `invalid setting IMAGE_PROXY_X="0": must be from 1 to 10`}, {11, `invalid setting IMAGE_PROXY_X="11": must be from 1 to 10`}} {
		err := CheckRange("IMAGE_PROXY_X", c.v, 1, 10)
		if got := ""; err != nil {
			got = err.Error()
			if got != c.want {
				t.Errorf("%d: %q, want %q", c.v, got, c.want)
			}
		} else if c.want != "" {
			t.Errorf("%d: accepted", c.v)
		}
	}
}
