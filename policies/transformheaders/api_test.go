package transformheaders

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// TestThroughAPI runs the policy in every phase of a real mediation.API
// served over loopback HTTP, with an in-test endpoint for the broker.
func TestThroughAPI(t *testing.T) {
	t.Parallel()
	broker := &feed{}
	api := mediation.NewAPI(mediation.APIOptions{
		ID:       "orders",
		Endpoint: broker,
		Entrypoints: []mediation.EntrypointBinding{
			// QoS auto and a live start: clients share one broker subscription.
			{Type: "lines", Entrypoint: lines{}, QoS: mediation.QoSAuto},
		},
		Flows: []mediation.Flow{
			{
				Name:      "client a only",
				Selectors: []mediation.Selector{mediation.HTTPSelector{Path: "/a"}},
				Subscribe: []mediation.Policy{newPolicy(t, Config{
					SetHeaders:    []Header{{Name: "x-type", Value: "rewritten"}},
					AddHeaders:    []Header{{Name: "x-trace", Value: "gw"}},
					RemoveHeaders: []string{"x-secret"},
				})},
			},
			{
				Name:      "echo",
				Selectors: []mediation.Selector{mediation.HTTPSelector{Path: "/echo"}},
				Request: []mediation.Policy{newPolicy(t, Config{
					SetHeaders: []Header{{Name: "X-Tenant", Value: "acme"}}, RemoveHeaders: []string{"X-Debug"},
				})},
				Response: []mediation.Policy{newPolicy(t, Config{
					RemoveHeaders: []string{"X-Internal"}, AddHeaders: []Header{{Name: "X-Gateway", Value: "sluice"}},
				})},
			},
			{
				Name:      "publish",
				Selectors: []mediation.Selector{mediation.ChannelSelector{Operations: mediation.OpPublish}},
				Publish: []mediation.Policy{newPolicy(t, Config{
					WhitelistHeaders: []string{"x-client"}, SetHeaders: []Header{{Name: "x-source", Value: "gateway"}},
				})},
			},
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

	t.Run("shared subscription is not mutated", func(t *testing.T) {
		respA := get(t, srv.URL+"/a?n=2")
		defer respA.Body.Close()
		respB := get(t, srv.URL+"/b?n=2")
		defer respB.Body.Close()
		if n := broker.subscriptions(); n != 1 {
			t.Fatalf("%d broker subscriptions, want 1 shared by both clients", n)
		}
		original := mediation.Headers{"x-type": {"order"}, "x-trace": {"broker"}, "x-secret": {"s"}}
		var msgs []*mediation.Message
		for i := range 2 {
			m := mediation.NewMessage([]byte(strconv.Itoa(i)))
			m.Headers = original.Clone()
			msgs = append(msgs, m)
		}
		broker.emit(msgs...)

		wantA := "x-trace=broker,gw x-type=rewritten"
		wantB := "x-secret=s x-trace=broker x-type=order"
		if got := readLines(t, respA.Body); !slices.Equal(got, []string{wantA, wantA}) {
			t.Errorf("client a received %q, want its transformed headers %q twice", got, wantA)
		}
		if got := readLines(t, respB.Body); !slices.Equal(got, []string{wantB, wantB}) {
			t.Errorf("client b received %q, want the broker's headers %q twice", got, wantB)
		}
		for _, m := range msgs {
			if !reflect.DeepEqual(m.Headers, original) {
				t.Errorf("the shared message was mutated: %v, was %v", m.Headers, original)
			}
		}
	})

	t.Run("request and response", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/echo", nil)
		req.Header.Set("X-Debug", "1")
		req.Header.Set("X-Tenant", "spoofed")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if got := string(body); !strings.Contains(got, "X-Tenant=acme") || strings.Contains(got, "X-Debug") {
			t.Errorf("the entrypoint saw request headers %q; want X-Tenant=acme and no X-Debug", got)
		}
		if resp.Header.Get("X-Internal") != "" || resp.Header.Get("X-Gateway") != "sluice" || resp.Header.Get("X-Kept") != "yes" {
			t.Errorf("response headers %v; want X-Internal removed, X-Gateway added, X-Kept kept", resp.Header)
		}
	})

	t.Run("publish", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/orders", strings.NewReader("hello"))
		req.Header.Set("X-Client", "c1")
		req.Header.Set("X-Other", "dropped")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST: %s", resp.Status)
		}
		got := broker.published()
		if len(got) != 1 || string(got[0].Content) != "hello" {
			t.Fatalf("broker received %d messages", len(got))
		}
		if h := render(got[0].Headers); h != "x-client=c1 x-source=gateway" {
			t.Fatalf("published headers %q, want x-client kept, x-other dropped, x-source set", h)
		}
	})
}

func get(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return resp
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

// render writes headers as sorted "name=v1,v2" pairs.
func render(h map[string][]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(h)) {
		parts = append(parts, k+"="+strings.Join(h[k], ","))
	}
	return strings.Join(parts, " ")
}

// lines is an in-test entrypoint. POST publishes the body with the
// request's X-* headers; GET /echo writes the request headers it sees and
// sets two response headers; other GETs with ?n=N write the headers of N
// messages, one line each.
type lines struct{}

func (lines) Accepts(*http.Request) bool { return true }

func (lines) Serve(w http.ResponseWriter, r *http.Request, x *mediation.Exchange) {
	switch {
	case r.Method == http.MethodPost:
		body, _ := io.ReadAll(r.Body)
		m := mediation.NewMessage(body)
		m.Headers = mediation.Headers{}
		for k, v := range r.Header {
			if strings.HasPrefix(k, "X-") {
				m.Headers.Set(k, v[0])
			}
		}
		if err := x.Publish(r.Context(), m); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	case r.URL.Path == "/echo":
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("X-Kept", "yes")
		fmt.Fprint(w, render(r.Header))
	default:
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
			fmt.Fprintln(w, render(m.Headers))
			_ = rc.Flush()
			m.Ack()
		}
	}
}

// feed is an in-test endpoint: every subscription yields what emit sends;
// publishes are recorded.
type feed struct {
	mu   sync.Mutex
	subs []*feedSub
	pubs []*mediation.Message
}

func (f *feed) Publish(_ context.Context, m *mediation.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pubs = append(f.pubs, m)
	return nil
}

func (f *feed) published() []*mediation.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.pubs)
}

func (f *feed) subscriptions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
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
