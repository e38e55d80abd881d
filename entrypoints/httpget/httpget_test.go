package httpget

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/entrypoints/internal/memtest"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// shortWait keeps empty pages quick; it is a configuration, not an assertion.
const shortWait = 200 * time.Millisecond

func serve(t *testing.T, cfg Config, o memtest.Options) *memtest.Server {
	t.Helper()
	ep, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return memtest.Serve(t, memtest.New(o), mediation.EntrypointBinding{
		Type: "http-get", Entrypoint: ep, QoS: mediation.QoSAtLeastOnce, Window: maxLimitCount,
	})
}

func get(t *testing.T, srv *memtest.Server, query string, accept string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), memtest.WaitTimeout)
	defer cancel()
	u := srv.URL + "/orders"
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

type jsonResponse struct {
	Items []struct {
		ID       string              `json:"id"`
		Content  string              `json:"content"`
		Encoding string              `json:"encoding"`
		Headers  map[string][]string `json:"headers"`
		Metadata map[string]string   `json:"metadata"`
	} `json:"items"`
	Pagination struct {
		NextCursor *string `json:"nextCursor"`
		Limit      int     `json:"limit"`
	} `json:"pagination"`
}

func getJSON(t *testing.T, srv *memtest.Server, query string) jsonResponse {
	t.Helper()
	resp, body := get(t, srv, query, "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var page jsonResponse
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	if page.Items == nil || page.Pagination.NextCursor == nil {
		t.Fatalf("items or nextCursor missing from %s", body)
	}
	return page
}

func TestPagesNeverOverlap(t *testing.T) {
	t.Parallel()
	srv := serve(t, Config{MessagesLimitCount: 500, MessagesLimitDuration: shortWait},
		memtest.Options{DefaultStart: mediation.StartEarliest})
	var want []string
	for i := range 10 {
		want = append(want, "m"+string(rune('0'+i)))
	}
	srv.Endpoint.Append(want...)

	var got []string
	query := "limit=3"
	for range 5 {
		page := getJSON(t, srv, query)
		if len(page.Items) > 3 {
			t.Fatalf("page of %d items with limit=3", len(page.Items))
		}
		if page.Pagination.Limit != 3 {
			t.Fatalf("pagination.limit %d, want 3", page.Pagination.Limit)
		}
		for _, it := range page.Items {
			got = append(got, it.Content)
		}
		query = "limit=3&cursor=" + url.QueryEscape(*page.Pagination.NextCursor)
		if len(page.Items) == 0 {
			break
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("pages held %v, want each message once, in order: %v", got, want)
	}
	// Every message included in a returned page counts as delivered, and
	// no GET leaves its subscription open.
	srv.Endpoint.Await(t, "10 acks and no open subscription", func(s memtest.State) bool {
		return s.AckedAll(0, 10) && s.Open == 0
	})

	// The empty page's nextCursor still resumes right there.
	srv.Endpoint.Append("m10")
	page := getJSON(t, srv, query)
	if len(page.Items) != 1 || page.Items[0].Content != "m10" {
		t.Fatalf("after the empty page got %+v, want m10", page.Items)
	}
}

func TestItemIDIsItsCursor(t *testing.T) {
	t.Parallel()
	srv := serve(t, Config{MessagesLimitCount: 2, MessagesLimitDuration: time.Minute}, memtest.Options{DefaultStart: mediation.StartEarliest})
	srv.Endpoint.Append("a", "b", "c")
	page := getJSON(t, srv, "")
	if len(page.Items) != 2 {
		t.Fatalf("%d items, want the configured 2", len(page.Items))
	}
	// Resuming from the first item's id yields the second.
	next := getJSON(t, srv, "limit=1&cursor="+url.QueryEscape(page.Items[0].ID))
	if len(next.Items) != 1 || next.Items[0].Content != "b" {
		t.Fatalf("resume from the first id gave %+v, want b", next.Items)
	}
	if *page.Pagination.NextCursor != page.Items[1].ID {
		t.Fatalf("nextCursor %q differs from the last item's id %q", *page.Pagination.NextCursor, page.Items[1].ID)
	}
}

func TestLimitParameter(t *testing.T) {
	t.Parallel()
	srv := serve(t, Config{MessagesLimitCount: 4, MessagesLimitDuration: shortWait}, memtest.Options{DefaultStart: mediation.StartEarliest})
	srv.Endpoint.Append("1", "2", "3", "4", "5", "6")
	tests := []struct {
		desc   string
		query  string
		status int
		items  int
	}{
		{desc: "default is the configured count", status: 200, items: 4},
		{desc: "lowers the count", query: "limit=2", status: 200, items: 2},
		{desc: "never raises it", query: "limit=100", status: 200, items: 4},
		{desc: "zero", query: "limit=0", status: 400},
		{desc: "negative", query: "limit=-1", status: 400},
		{desc: "not a number", query: "limit=ten", status: 400},
		{desc: "fraction", query: "limit=1.5", status: 400},
		{desc: "empty", query: "limit=", status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv, tt.query, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status != 200 {
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" || !strings.Contains(string(body), "limit") {
					t.Fatalf("%s %s does not explain the limit", ct, body)
				}
				return
			}
			var page jsonResponse
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != tt.items {
				t.Fatalf("%d items, want %d", len(page.Items), tt.items)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	srv := serve(t, Config{MessagesLimitCount: 4, MessagesLimitDuration: shortWait}, memtest.Options{DefaultStart: mediation.StartEarliest})
	srv.Endpoint.Append("1")
	down := serve(t, DefaultConfig(), memtest.Options{})
	down.Endpoint.SetUnavailable(true)
	tests := []struct {
		desc       string
		srv        *memtest.Server
		query      string
		status     int
		retryAfter bool
	}{
		{desc: "malformed cursor", srv: srv, query: "cursor=%21%21", status: 400},
		{desc: "cursor of another source", srv: srv, query: "cursor=" + mediation.NewCursor(mediation.Position{Stream: "x"}).String(), status: 400},
		{desc: "broker unavailable", srv: down, status: 503, retryAfter: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, tt.srv, tt.query, "")
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d %s, want %d problem+json: %s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, body)
			}
			if tt.retryAfter && resp.Header.Get("Retry-After") == "" {
				t.Fatal("no Retry-After")
			}
		})
	}
}

func TestFormats(t *testing.T) {
	t.Parallel()
	srv := serve(t, Config{MessagesLimitCount: 3, MessagesLimitDuration: time.Minute, HeadersInPayload: true, MetadataInPayload: true},
		memtest.Options{DefaultStart: mediation.StartEarliest})
	m := mediation.NewMessage([]byte(`<a href="x">&</a>`))
	m.Headers = mediation.Headers{"x-k": {"v1", "v2"}}
	if err := srv.Endpoint.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	srv.Endpoint.Append("line1\nline2", "\xff\x00binary")
	binary := base64.StdEncoding.EncodeToString([]byte("\xff\x00binary"))

	t.Run("json", func(t *testing.T) {
		t.Parallel()
		page := getJSON(t, srv, "")
		if len(page.Items) != 3 {
			t.Fatalf("%d items", len(page.Items))
		}
		it := page.Items[0]
		if it.Content != `<a href="x">&</a>` || strings.Join(it.Headers["x-k"], ",") != "v1,v2" || it.Metadata["offset"] != "0" {
			t.Fatalf("first item %+v", it)
		}
		if b := page.Items[2]; b.Encoding != "base64" || b.Content != binary {
			t.Fatalf("binary item %+v, want base64 %s", b, binary)
		}
	})
	t.Run("xml", func(t *testing.T) {
		t.Parallel()
		resp, body := get(t, srv, "", "application/xml")
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") {
			t.Fatalf("Content-Type %q", ct)
		}
		var page xmlPage
		if err := xml.Unmarshal(body, &page); err != nil {
			t.Fatalf("%v in %s", err, body)
		}
		items := page.Items.Item
		if len(items) != 3 || items[0].Content.Text != `<a href="x">&</a>` || items[1].Content.Text != "line1\nline2" {
			t.Fatalf("items %+v", items)
		}
		if items[2].Content.Encoding != "base64" || items[2].Content.Text != binary {
			t.Fatalf("binary item %+v", items[2].Content)
		}
		if h := items[0].Headers; h == nil || len(h.Header) != 2 || h.Header[1] != (xmlHeader{Name: "x-k", Value: "v2"}) {
			t.Fatalf("headers %+v", h)
		}
		if page.Pagination.NextCursor == "" || page.Pagination.Limit != 3 || page.Pagination.NextCursor != items[2].ID {
			t.Fatalf("pagination %+v", page.Pagination)
		}
	})
	t.Run("text", func(t *testing.T) {
		t.Parallel()
		resp, body := get(t, srv, "", "text/plain")
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		for _, want := range []string{"items:\nitem:\nid: ", "\ncontent: <a href=\"x\">&</a>\nheaders: x-k=v1, x-k=v2\nmetadata: offset=0, partition=0, topic=mem\n",
			"content (base64): " + binary + "\n", "pagination:\nnextCursor: ", "\nlimit: 3\n"} {
			if !strings.Contains(string(body), want) {
				t.Fatalf("text page lacks %q:\n%s", want, body)
			}
		}
	})
}

func TestEmptyPageWhenIdle(t *testing.T) {
	t.Parallel()
	// Live start: the client shares the API's subscription and sees nothing.
	srv := serve(t, Config{MessagesLimitCount: 10, MessagesLimitDuration: shortWait}, memtest.Options{})
	page := getJSON(t, srv, "")
	if len(page.Items) != 0 || *page.Pagination.NextCursor == "" {
		t.Fatalf("idle page %+v, want no items and a nextCursor", page)
	}
	// The empty page's cursor catches what arrives before the next GET.
	srv.Endpoint.Append("later")
	next := getJSON(t, srv, "cursor="+url.QueryEscape(*page.Pagination.NextCursor))
	if len(next.Items) != 1 || next.Items[0].Content != "later" {
		t.Fatalf("next page %+v, want later", next.Items)
	}
}

func TestDrainAnswersAtOnce(t *testing.T) {
	t.Parallel()
	srv := serve(t, Config{MessagesLimitCount: 10, MessagesLimitDuration: time.Hour}, memtest.Options{DefaultStart: mediation.StartEarliest})
	srv.Endpoint.Append("only")
	type result struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() { // t.Fatal is for the test goroutine: report through the channel
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, body, err}
	}()
	// The GET waits for more messages than there are; a drain answers it
	// with what it took so far, and its nextCursor resumes right after.
	srv.Endpoint.Await(t, "the GET to hold a subscription", func(s memtest.State) bool { return s.Open == 1 })
	srv.Drain()
	select {
	case res := <-done:
		var page jsonResponse
		if res.err != nil || res.status != http.StatusOK {
			t.Fatalf("status %d, err %v: %s", res.status, res.err, res.body)
		}
		if err := json.Unmarshal(res.body, &page); err != nil || page.Pagination.NextCursor == nil {
			t.Fatalf("%v in %s", err, res.body)
		}
		c, err := mediation.ParseCursor(*page.Pagination.NextCursor)
		if err != nil {
			t.Fatal(err)
		}
		next, _ := c.Next(memtest.Stream, 0)
		if len(page.Items) > 1 || next != int64(len(page.Items)) {
			t.Fatalf("page on drain %+v with next offset %d", page.Items, next)
		}
	case <-time.After(memtest.WaitTimeout):
		t.Fatal("a draining gateway kept the GET waiting")
	}
}

func TestNegotiation(t *testing.T) {
	t.Parallel()
	e, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		desc   string
		method string
		header http.Header
		want   *format
	}{
		{desc: "no Accept is JSON", method: "GET", want: formatJSON},
		{desc: "anything", method: "GET", header: http.Header{"Accept": {"*/*"}}, want: formatJSON},
		{desc: "json", method: "GET", header: http.Header{"Accept": {"application/json"}}, want: formatJSON},
		{desc: "xml", method: "GET", header: http.Header{"Accept": {"application/xml"}}, want: formatXML},
		{desc: "text", method: "GET", header: http.Header{"Accept": {"text/plain"}}, want: formatText},
		{desc: "by quality", method: "GET", header: http.Header{"Accept": {"application/json;q=0.4, application/xml;q=0.9"}}, want: formatXML},
		{desc: "browser default", method: "GET", header: http.Header{"Accept": {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}}, want: formatXML},
		{desc: "text wildcard", method: "GET", header: http.Header{"Accept": {"text/*"}}, want: formatText},
		{desc: "html only", method: "GET", header: http.Header{"Accept": {"text/html"}}},
		{desc: "events only", method: "GET", header: http.Header{"Accept": {"text/event-stream"}}},
		{desc: "json refused", method: "GET", header: http.Header{"Accept": {"application/json;q=0, text/html"}}},
		{desc: "websocket upgrade", method: "GET", header: http.Header{"Upgrade": {"websocket"}}},
		{desc: "POST", method: "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			r, _ := http.NewRequest(tt.method, "http://gw/orders", nil)
			if tt.header != nil {
				r.Header = tt.header
			}
			if got := e.Accepts(r); got != (tt.want != nil) {
				t.Fatalf("Accepts = %v, want %v", got, tt.want != nil)
			}
			if tt.want != nil && negotiate(r) != tt.want {
				t.Fatalf("negotiated %s, want %s", negotiate(r).mediaType, tt.want.mediaType)
			}
		})
	}
}

func TestNotAcceptableThroughTheAPI(t *testing.T) {
	t.Parallel()
	srv := serve(t, DefaultConfig(), memtest.Options{})
	resp, body := get(t, srv, "", "text/html")
	if resp.StatusCode != http.StatusNotAcceptable {
		t.Fatalf("status %d, want 406: %s", resp.StatusCode, body)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	p, ok := plugins.Default.Entrypoint("http-get")
	if !ok {
		t.Fatal("http-get is not registered")
	}
	if c := p.Config().(*Config); *c != DefaultConfig() || c.MessagesLimitCount != 500 || c.MessagesLimitDuration != 5*time.Second {
		t.Fatalf("defaults %+v", c)
	}
	tests := []struct {
		desc  string
		cfg   Config
		field string
	}{
		{desc: "defaults", cfg: DefaultConfig()},
		{desc: "zero count", cfg: Config{MessagesLimitDuration: time.Second}, field: "messagesLimitCount"},
		{desc: "huge count", cfg: Config{MessagesLimitCount: maxLimitCount + 1, MessagesLimitDuration: time.Second}, field: "messagesLimitCount"},
		{desc: "zero duration", cfg: Config{MessagesLimitCount: 1}, field: "messagesLimitDuration"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := p.New(plugins.Context{}, &tt.cfg)
			var fe *plugins.FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
				t.Fatalf("error %v, want one on %s", err, tt.field)
			}
		})
	}
}

// A configured window smaller than the page is raised to the page size
// (MinWindow), so a page is never cut short by its own unacked messages.
func TestWindowRaisedToPage(t *testing.T) {
	t.Parallel()
	ep, err := New(Config{MessagesLimitCount: 5, MessagesLimitDuration: shortWait})
	if err != nil {
		t.Fatal(err)
	}
	if ep.MinWindow() != 5 {
		t.Fatalf("MinWindow %d, want the count 5", ep.MinWindow())
	}
	srv := memtest.Serve(t, memtest.New(memtest.Options{DefaultStart: mediation.StartEarliest}),
		mediation.EntrypointBinding{Type: "http-get", Entrypoint: ep, QoS: mediation.QoSAtLeastOnce, Window: 3})
	srv.Endpoint.Append("1", "2", "3", "4", "5", "6")
	first := getJSON(t, srv, "")
	second := getJSON(t, srv, "cursor="+url.QueryEscape(*first.Pagination.NextCursor))
	var got []string
	for _, it := range append(first.Items, second.Items...) {
		got = append(got, it.Content)
	}
	if len(first.Items) != 5 || strings.Join(got, "") != "123456" {
		t.Fatalf("pages %v (first of %d), want 5 then the remaining 1", got, len(first.Items))
	}
}
