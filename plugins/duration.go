package plugins

import (
	"fmt"
	"strconv"
	"time"
)

// Duration is a Go duration written as text in a configuration ("5s",
// "250ms", "1m30s"). Plugin configuration types use it for every duration
// field. A bare number is refused, even 300, since nobody can tell its unit;
// "0" is accepted.
type Duration time.Duration

// String renders the duration as Go does ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText renders the duration as text, so that JSON and YAML output
// read as they were written.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration is time.ParseDuration with errors that say what to write.
func ParseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		if _, numErr := strconv.ParseFloat(s, 64); numErr == nil {
			return 0, fmt.Errorf("invalid duration %q: add a unit, such as \"%ss\" or \"%sms\"", s, s, s)
		}
		if r := []rune(s); len(r) > 40 {
			s = string(r[:40]) + "…"
		}
		return 0, fmt.Errorf("invalid duration %q: want a Go duration such as \"5s\", \"250ms\" or \"1m30s\"", s)
	}
	return v, nil
}
