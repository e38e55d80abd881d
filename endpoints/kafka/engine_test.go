package kafka

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/mediation"
)

// pageEntrypoint is a minimal GET entrypoint: it streams ?n messages from
// ?cursor as "id content" lines, acks each once written, and ends with the
// stream's cursor. It lets the endpoint be tested through the engine's
// Stream, as the real entrypoints use it.
type pageEntrypoint struct{}

func (pageEntrypoint) Accepts(*http.Request) bool { return true }

func (pageEntrypoint) Serve(w http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	st, err := x.Subscribe(r.Context(), mediation.StreamRequest{Cursor: r.URL.Query().Get("cursor")})
	switch {
	case errors.Is(err, mediation.ErrBadCursor):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer st.Close()
	for range n {
		m, err := st.Next(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %s\n", m.Identity(), m.Content)
		m.Ack()
	}
	fmt.Fprintf(w, "cursor %s\n", st.Cursor())
}

// page GETs one page and returns its message IDs and final cursor.
func page(t *testing.T, base, cursor string, n int) (ids []string, next string) {
	t.Helper()
	q := url.Values{"n": {strconv.Itoa(n)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	resp, err := http.Get(base + "/?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET: %s: %s", resp.Status, body)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		id, rest, _ := strings.Cut(sc.Text(), " ")
		if id == "cursor" {
			return ids, rest
		}
		ids = append(ids, id)
	}
	t.Fatalf("page ended without a cursor: %v", sc.Err())
	return nil, ""
}

// Through the engine: a client that pages with the cursor of each page gets
// every message of every partition exactly once.
func TestEnginePagesResumeExactly(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	produce(t, c, 10, 0, 1, 2)
	cfg := testConfig(c)
	cfg.Consumer.AutoOffsetReset = OffsetEarliest
	e, err := New(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	api := mediation.NewAPI(mediation.APIOptions{
		ID:          "orders",
		Endpoint:    e,
		Entrypoints: []mediation.EntrypointBinding{{Type: "page", Entrypoint: pageEntrypoint{}, QoS: mediation.QoSAtLeastOnce}},
	})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		_ = api.Close(context.Background()) // closes the endpoint
	})

	seen := map[string]bool{}
	cursor := ""
	for _, n := range []int{13, 1, 9, 7} {
		var ids []string
		ids, cursor = page(t, srv.URL, cursor, n)
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("%s delivered twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != 30 {
		t.Fatalf("read %d distinct messages, want all 30", len(seen))
	}

	resp, err := http.Get(srv.URL + "/?n=1&cursor=" + url.QueryEscape(mediation.NewCursor(mediation.Position{Stream: "elsewhere"}).String()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a cursor of another topic got %s, want 400", resp.Status)
	}
}
