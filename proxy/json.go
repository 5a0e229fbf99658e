package proxy

import "encoding/json"

// marshalLine is the encoder of every JSON body (errors, and /health through
// Fiber's JSONEncoder): a trailing newline so `curl` output and shell
// pipelines end their line.
func marshalLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func jsonError(msg string) ([]byte, error) {
	return marshalLine(struct {
		Error string `json:"error"`
	}{msg})
}
