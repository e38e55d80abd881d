// Package ssetest is a Server-Sent Events client for tests: it opens a
// stream, parses its events as a browser's EventSource would, and waits for
// them with timeouts that fail the test.
package ssetest

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Event is one parsed event. Comments (heartbeats) are not events.
type Event struct{ ID, Event, Data string }

// Client reads the events of one stream.
type Client struct {
	// Events delivers every event in order, "message" or not; it is
	// closed when the stream ends.
	Events <-chan Event
	cancel func()
}

// Do sends a GET with Accept: text/event-stream and the extra headers and
// returns the response, whatever its status; cancel ends it.
func Do(t testing.TB, url string, header http.Header) (resp *http.Response, cancel func()) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		stop()
		t.Fatalf("SSE %s: %v", url, err)
	}
	return resp, func() { stop(); resp.Body.Close() }
}

// Open is Do that fails the test unless the answer is a 200
// text/event-stream, and reads its events until the test ends or Close.
func Open(t testing.TB, url string, header http.Header) *Client {
	t.Helper()
	resp, cancel := Do(t, url, header)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("SSE %s: %d %s", url, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		cancel()
		t.Fatalf("SSE %s: content type %q", url, ct)
	}
	events := make(chan Event, 1024)
	go read(resp.Body, events)
	c := &Client{Events: events, cancel: cancel}
	t.Cleanup(c.Close)
	return c
}

func read(body io.Reader, events chan<- Event) {
	defer close(events)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var ev Event
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Event != "" || len(data) > 0 {
				ev.Data = strings.Join(data, "\n")
				events <- ev
			}
			ev, data = Event{}, nil
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				ev.ID = value
			case "event":
				ev.Event = value
			case "data":
				data = append(data, value)
			}
		}
	}
}

// Next returns the next "message" event, skipping others; it fails the
// test when the stream ends or after timeout.
func (c *Client) Next(t testing.TB, timeout time.Duration) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-c.Events:
			if !ok {
				t.Fatal("SSE stream ended")
			}
			if ev.Event == "message" {
				return ev
			}
		case <-deadline:
			t.Fatalf("no SSE message within %v", timeout)
		}
	}
}

// NextData returns the next "message" event carrying data, skipping
// others; timeout bounds each wait.
func (c *Client) NextData(t testing.TB, data string, timeout time.Duration) Event {
	t.Helper()
	for {
		if ev := c.Next(t, timeout); ev.Data == data {
			return ev
		}
	}
}

// ExpectQuiet fails the test if a "message" event arrives within d.
func (c *Client) ExpectQuiet(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-c.Events:
			if !ok {
				return
			}
			if ev.Event == "message" {
				t.Fatalf("unexpected extra message %q (id %s)", ev.Data, ev.ID)
			}
		case <-deadline:
			return
		}
	}
}

// Close ends the stream.
func (c *Client) Close() { c.cancel() }

// Data is the events' data, in order.
func Data(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Data
	}
	return out
}
