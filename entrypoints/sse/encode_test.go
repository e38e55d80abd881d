package sse

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestAppendEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc             string
		id, event        string
		data             string
		want             string
		wantID, wantData string
	}{
		{desc: "single line", id: "AQ", event: "message", data: "hello",
			want: "id: AQ\nevent: message\ndata: hello\n\n", wantID: "AQ", wantData: "hello"},
		{desc: "LF lines", id: "x", event: "message", data: "a\nb\nc",
			want: "id: x\nevent: message\ndata: a\ndata: b\ndata: c\n\n", wantID: "x", wantData: "a\nb\nc"},
		{desc: "CRLF and CR lines", event: "message", data: "a\r\nb\rc",
			want: "event: message\ndata: a\ndata: b\ndata: c\n\n", wantData: "a\nb\nc"},
		{desc: "trailing newline kept", event: "message", data: "a\n",
			want: "event: message\ndata: a\ndata: \n\n", wantData: "a\n"},
		{desc: "empty content is still an event", event: "message", data: "",
			want: "event: message\ndata: \n\n", wantData: ""},
		{desc: "leading space survives", event: "message", data: " x",
			want: "event: message\ndata:  x\n\n", wantData: " x"},
		{desc: "content that looks like fields stays data", event: "message", data: "id: evil\n\nevent: x",
			want: "event: message\ndata: id: evil\ndata: \ndata: event: x\n\n", wantData: "id: evil\n\nevent: x"},
		{desc: "newlines and NUL dropped from the id", id: "a\nb\r\x00c", event: "message", data: "d",
			want: "id: abc\nevent: message\ndata: d\n\n", wantID: "abc", wantData: "d"},
		{desc: "no event name", id: "1", data: "d",
			want: "id: 1\ndata: d\n\n", wantID: "1", wantData: "d"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got := string(AppendEvent([]byte("prefix"), tt.id, tt.event, []byte(tt.data)))
			if got != "prefix"+tt.want {
				t.Fatalf("AppendEvent = %q, want %q", got, "prefix"+tt.want)
			}
			ev, err := newEventReader(strings.NewReader(tt.want)).next()
			if err != nil {
				t.Fatalf("parsing back: %v", err)
			}
			if ev.LastID != tt.wantID || ev.Data != tt.wantData {
				t.Errorf("parsed id %q data %q, want id %q data %q", ev.LastID, ev.Data, tt.wantID, tt.wantData)
			}
		})
	}
}

func TestAppendComment(t *testing.T) {
	t.Parallel()
	got := string(AppendComment(nil, "header: a=b\r\nevent: x"))
	if got != ":header: a=bevent: x\n" {
		t.Fatalf("AppendComment = %q", got)
	}
}

// FuzzAppendEvent checks that whatever the id, event and content, the output
// parses back (as EventSource parses it) into exactly one event with the
// same id, type and data, and that no line of it is anything but the fields
// written: content can never inject a field or end the event early.
func FuzzAppendEvent(f *testing.F) {
	f.Add("AQIDBA", "message", []byte("hello"))
	f.Add("", "", []byte(""))
	f.Add("a\nb", "goaway", []byte("x\r\ny\rz\n"))
	f.Fuzz(func(t *testing.T, id, event string, data []byte) {
		out := AppendEvent(nil, id, event, data)
		if bytes.IndexByte(out, '\r') >= 0 {
			t.Fatalf("output holds a CR, which clients read as a line break: %q", out)
		}
		if !bytes.HasSuffix(out, []byte("\n\n")) {
			t.Fatalf("output does not end the event: %q", out)
		}
		lines := strings.Split(string(out[:len(out)-2]), "\n")
		for _, ln := range lines {
			if !strings.HasPrefix(ln, "id: ") && !strings.HasPrefix(ln, "event: ") && !strings.HasPrefix(ln, "data: ") {
				t.Fatalf("line %q is not a field AppendEvent writes; output %q", ln, out)
			}
		}

		r := newEventReader(bytes.NewReader(out))
		ev, err := r.next()
		if err != nil {
			t.Fatalf("no event parsed from %q: %v", out, err)
		}
		if ev.IsComment {
			t.Fatalf("parsed a comment from %q", out)
		}
		if want := dropUnsafe(id); ev.LastID != want {
			t.Errorf("id %q, want %q", ev.LastID, want)
		}
		wantEvent := dropUnsafe(event)
		if wantEvent == "" {
			wantEvent = "message"
		}
		if ev.Event != wantEvent {
			t.Errorf("event %q, want %q", ev.Event, wantEvent)
		}
		if want := normalizeNewlines(string(data)); ev.Data != want {
			t.Errorf("data %q, want %q", ev.Data, want)
		}
		if extra, err := r.next(); err != io.EOF {
			t.Errorf("more than one item in %q: %+v, %v", out, extra, err)
		}
	})
}

func dropUnsafe(s string) string {
	return strings.NewReplacer("\r", "", "\n", "", "\x00", "").Replace(s)
}

func normalizeNewlines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}
