// Package setting is the one shape of a bad setting, shared by every
// package's Config (a bad value names its environment variable and what is
// allowed), and the one way a secret setting is shown.
package setting

import (
	"fmt"
	"time"
)

// Error is a setting outside what is allowed. Name is the environment
// variable; it is empty when the code that found the error cannot know it
// (a value parsed by its type), and the caller fills it in.
type Error struct {
	Name    string
	Value   string
	Allowed string // e.g. "from 0 to 100"
}

func (e *Error) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("invalid value %q: must be %s", e.Value, e.Allowed)
	}
	return fmt.Sprintf("invalid setting %s=%q: must be %s", e.Name, e.Value, e.Allowed)
}

// Redact is how a secret is shown: whether it is set, never its value.
func Redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "REDACTED"
}

// CheckDuration is the rule of every duration setting: positive, up to a
// day.
func CheckDuration(name string, d time.Duration) error {
	if d <= 0 || d > 24*time.Hour {
		return &Error{Name: name, Value: d.String(), Allowed: "a positive duration up to 24h, such as 500ms, 10s or 1m"}
	}
	return nil
}

// Invalid is the error of a setting whose value is not allowed; value is
// written as fmt's %v writes it.
func Invalid(name string, value any, allowed string) error {
	return &Error{Name: name, Value: fmt.Sprint(value), Allowed: allowed}
}

// CheckRange is the rule of an integer setting: from lo to hi.
func CheckRange(name string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return Invalid(name, v, fmt.Sprintf("from %d to %d", lo, hi))
	}
	return nil
}
