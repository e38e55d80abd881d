package config

import (
	"fmt"
	"strconv"
)

// EventLoops is server.http.eventLoops: a count, or "off" (-1).
type EventLoops int

// EventLoopsOff serves every connection on a goroutine of its own.
const EventLoopsOff EventLoops = -1

// MarshalText renders "off" or the count.
func (e EventLoops) MarshalText() ([]byte, error) {
	if e == EventLoopsOff {
		return []byte("off"), nil
	}
	return []byte(strconv.Itoa(int(e))), nil
}

// UnmarshalText parses "off" or a count.
func (e *EventLoops) UnmarshalText(b []byte) error {
	if string(b) == "off" {
		*e = EventLoopsOff
		return nil
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return fmt.Errorf("eventLoops %q: want \"off\" or a count (0: one per core)", b)
	}
	*e = EventLoops(n)
	return nil
}
