package messagefilter

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// TestThroughAPI runs the filter where the gateway runs it: in the subscribe
// and publish phases of a real mediation.API served over loopback HTTP, with
// an in-test endpoint standing in for the broker.
func TestThroughAPI(t *testing.T) {
	t.Parallel()
	broker := newFeed()
	paidOnly := newFilter(t, `message.json.status == "paid"`)
	api := mediation.NewAPI(mediation.APIOptions{
		ID:       "orders",
		Endpoint: broker,
		Entrypoints: []mediation.EntrypointBinding{
			{Type: "lines", Entrypoint: lines{}, QoS: mediation.QoSAtLeastOnce},
		},
		Flows: []mediation.Flow{
			{Name: "paid only", Selectors: []mediation.Selector{mediation.ChannelSelector{}},
				Subscribe: []mediation.Policy{paidOnly}, Publish: []mediation.Policy{paidOnly}},
		},
	})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := api.Close(ctx); err != nil {
			t.Errorf("api.Close: %v", err)
		}
	})

	t.Run("subscribe", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/orders?n=2")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %s", resp.Status)
		}
		// The response headers came after Subscribe: the broker
		// subscription exists, so what is emitted now reaches it.
		acks := make(chan string, 8)
		var msgs []*mediation.Message
		for _, c := range []string{
			`{"status":"paid","n":1}`, `{"status":"pending","n":2}`, `not json`, `{"status":"paid","n":4}`,
		} {
			m := mediation.NewMessage([]byte(c))
			m.SetAck(func(err error) { acks <- fmt.Sprintf("%s acked err=%v", c, err) })
			msgs = append(msgs, m)
		}
		broker.emit(msgs...)

		got := readLines(t, resp.Body)
		if want := []string{`{"status":"paid","n":1}`, `{"status":"paid","n":4}`}; !slices.Equal(got, want) {
			t.Fatalf("client received %q, want %q", got, want)
		}
		// Dropped messages are acknowledged (dropping them was the
		// policy's decision); delivered ones were acked by the client.
		var settled []string
		for range msgs {
			select {
			case a := <-acks:
				settled = append(settled, a)
			case <-time.After(10 * time.Second):
				t.Fatalf("only %d of %d messages settled: %q", len(settled), len(msgs), settled)
			}
		}
		slices.Sort(settled)
		want := []string{
			`not json acked err=<nil>`,
			`{"status":"paid","n":1} acked err=<nil>`,
			`{"status":"paid","n":4} acked err=<nil>`,
			`{"status":"pending","n":2} acked err=<nil>`,
		}
		if !slices.Equal(settled, want) {
			t.Fatalf("settled:\n%s\nwant:\n%s", strings.Join(settled, "\n"), strings.Join(want, "\n"))
		}
	})

	t.Run("publish", func(t *testing.T) {
		for _, body := range []string{`{"status":"pending"}`, `<order/>`, `{"status":"paid","n":7}`} {
			resp, err := http.Post(srv.URL+"/orders", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST %s: %s, want 202 (a filtered message is handled, not failed)", body, resp.Status)
			}
		}
		if got, want := broker.publishedContents(), []string{`{"status":"paid","n":7}`}; !slices.Equal(got, want) {
			t.Fatalf("broker received %q, want %q", got, want)
		}
	})
}

func readLines(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return out
}

// lines is an in-test entrypoint: POST publishes the body; GET ?n=N
// subscribes and writes the content of N messages, one per line, acking
// each once flushed.
type lines struct{}

func (lines) Accepts(*http.Request) bool { return true }

func (lines) Serve(w http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := x.Publish(r.Context(), mediation.NewMessage(body)); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	s, err := x.Subscribe(r.Context(), mediation.StreamRequest{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer s.Close()
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for range n {
		m, err := s.Next(r.Context())
		if err != nil {
			return
		}
		fmt.Fprintf(w, "%s\n", m.Content)
		if err := rc.Flush(); err != nil {
			m.Nack(err)
			return
		}
		m.Ack()
	}
}

// feed is an in-test endpoint: every subscription yields what emit sends;
// publishes are recorded.
type feed struct {
	mu        sync.Mutex
	subs      []*feedSub
	published []*mediation.Message
}

func newFeed() *feed { return &feed{} }

func (f *feed) Publish(_ context.Context, m *mediation.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = append(f.published, m)
	return nil
}

func (f *feed) publishedContents() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.published {
		out = append(out, string(m.Content))
	}
	return out
}

func (f *feed) Subscribe(context.Context, mediation.SubscribeRequest) (mediation.Subscription, error) {
	s := &feedSub{ch: make(chan *mediation.Message, 64), closed: make(chan struct{})}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, s)
	return s, nil
}

func (f *feed) emit(msgs ...*mediation.Message) {
	f.mu.Lock()
	subs := slices.Clone(f.subs)
	f.mu.Unlock()
	for _, s := range subs {
		for _, m := range msgs {
			s.ch <- m
		}
	}
}

func (f *feed) Capabilities() mediation.Capabilities {
	return mediation.Capabilities{Publish: true, Subscribe: true, QoS: mediation.AllQoS, DefaultStart: mediation.StartLatest}
}

func (f *feed) Close(context.Context) error { return nil }

type feedSub struct {
	ch        chan *mediation.Message
	closeOnce sync.Once
	closed    chan struct{}
}

func (s *feedSub) Start() mediation.Cursor { return mediation.Cursor{} }

func (s *feedSub) Next(ctx context.Context) (*mediation.Message, error) {
	select {
	case m := <-s.ch:
		return m, nil
	case <-s.closed:
		return nil, mediation.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *feedSub) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}
