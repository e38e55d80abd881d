package expr

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/mediation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// order is a message as a Kafka endpoint would yield it.
func order(content string) *mediation.Message {
	m := mediation.NewMessage([]byte(content))
	m.ID = "orders-0-42"
	m.Key = []byte("customer-7")
	m.Headers = mediation.Headers{"x-type": {"order", "ignored"}, "content-type": {"application/json"}}
	m.Position = mediation.Position{Stream: "orders", Partition: 0, Offset: 42} // topic, partition, offset
	m.Metadata = map[string]string{"region": "eu"}
	return m
}

func request(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("X-Api-Key", "k-123")
	r.Header.Add("Accept", "text/event-stream")
	r.Header.Add("Accept", "application/json")
	return r
}

const paid = `{"status":"paid","amount":120,"items":[{"sku":"a"},{"sku":"b"}],"customer":{"tier":"gold"}}`

func TestEvalBool(t *testing.T) {
	t.Parallel()
	full := Vars{
		Message:              order(paid),
		Request:              request(http.MethodGet, "/orders/eu?region=eu&region=us&Limit=5"),
		Attributes:           map[string]any{"plan": "gold", "retries": 3},
		SubscriptionMetadata: map[string]string{"team": "billing"},
		Claims:               map[string]any{"sub": "alice", "roles": []any{"admin", "dev"}},
	}
	tests := []struct {
		desc    string
		src     string
		vars    Vars
		want    bool
		wantErr string // substring; "" means no error
	}{
		{desc: "json string field", src: `message.json.status == "paid"`, vars: full, want: true},
		{desc: "json string field mismatch", src: `message.json.status == "pending"`, vars: full, want: false},
		{desc: "json number against int", src: `message.json.amount > 100 && message.json.amount == 120`, vars: full, want: true},
		{desc: "json nested object", src: `message.json.customer.tier == "gold"`, vars: full, want: true},
		{desc: "json list comprehension", src: `message.json.items.exists(i, i.sku == "b")`, vars: full, want: true},
		{desc: "json missing key is an error", src: `message.json.missing == "x"`, vars: full, wantErr: "no such key: missing"},
		{desc: "json presence test", src: `has(message.json.missing)`, vars: full, want: false},
		{desc: "json optional", src: `message.json.?missing.orValue("none") == "none"`, vars: full, want: true},
		{desc: "json not JSON is an error", src: `message.json.status == "paid"`, vars: Vars{Message: order("not json {")}, wantErr: "content is not JSON"},
		{desc: "has json on non-JSON", src: `has(message.json)`, vars: Vars{Message: order("plain text")}, want: false},
		{desc: "has json on JSON", src: `has(message.json)`, vars: full, want: true},
		{desc: "json scalar document", src: `message.json == 42`, vars: Vars{Message: order("42")}, want: true},
		{desc: "json null document", src: `message.json == null`, vars: Vars{Message: order("null")}, want: true},
		{desc: "error absorbed by or", src: `message.json.status == "x" || message.headers['x-type'] == "order"`, vars: Vars{Message: order("<xml/>")}, want: true},
		{desc: "content", src: `message.content.startsWith("{") && message.content.contains("paid")`, vars: full, want: true},
		{desc: "content regex", src: `message.content.matches('"status":\\s*"paid"')`, vars: full, want: true},
		{desc: "content of non-JSON needs no parse", src: `message.content == "plain text"`, vars: Vars{Message: order("plain text")}, want: true},
		{desc: "header first value", src: `message.headers['x-type'] == "order"`, vars: full, want: true},
		{desc: "header case-insensitive", src: `message.headers['X-Type'] == "order" && message.headers['CONTENT-TYPE'] == "application/json"`, vars: full, want: true},
		{desc: "header field syntax", src: `message.headers.exists(h, h == "x-type")`, vars: full, want: true},
		{desc: "header in", src: `"x-type" in message.headers && !("x-other" in message.headers)`, vars: full, want: true},
		{desc: "header missing is an error", src: `message.headers['x-other'] == "a"`, vars: full, wantErr: "no such key"},
		{desc: "header count", src: `message.headers.size() == 2`, vars: full, want: true},
		{desc: "metadata", src: `message.metadata.topic == "orders" && int(message.metadata.offset) >= 42`, vars: full, want: true},
		{desc: "id and key", src: `message.id == "orders-0-42" && message.key == "customer-7"`, vars: full, want: true},
		{desc: "request method", src: `request.method == "GET"`, vars: full, want: true},
		{desc: "request method mismatch", src: `request.method == "POST"`, vars: full, want: false},
		{desc: "request path", src: `request.path.startsWith("/orders/")`, vars: full, want: true},
		{desc: "request header any case", src: `request.headers['x-api-key'] == "k-123" && request.headers['X-API-KEY'] == "k-123"`, vars: full, want: true},
		{desc: "request header first value", src: `request.headers.accept == "text/event-stream"`, vars: full, want: true},
		{desc: "request header names listed lower-case", src: `request.headers.exists(h, h == "x-api-key")`, vars: full, want: true},
		{desc: "request query first value", src: `request.query.region == "eu"`, vars: full, want: true},
		{desc: "request query case-sensitive", src: `"Limit" in request.query && !("limit" in request.query)`, vars: full, want: true},
		{desc: "context attributes", src: `context.attributes.plan == "gold" && context.attributes.retries == 3`, vars: full, want: true},
		{desc: "subscription metadata", src: `subscription.metadata.team == "billing"`, vars: full, want: true},
		{desc: "jwt claims", src: `jwt.claims.sub == "alice" && "admin" in jwt.claims.roles`, vars: full, want: true},
		{desc: "no request reads empty", src: `request.method == "" && request.path == "" && request.headers.size() == 0 && request.query.size() == 0`, vars: Vars{Message: order(paid)}, want: true},
		{desc: "no message reads empty", src: `message.content == "" && message.headers.size() == 0 && message.metadata.size() == 0`, vars: Vars{}, want: true},
		{desc: "no message json is an error", src: `message.json.a == 1`, vars: Vars{}, wantErr: "no message"},
		{desc: "no attributes is a missing key", src: `context.attributes.plan == "gold"`, vars: Vars{}, wantErr: "no such key"},
		{desc: "non-bool result", src: `message.json.status`, vars: full, wantErr: "not a bool"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			p, err := Compile(tt.src)
			if err != nil {
				t.Fatalf("Compile(%s): %v", tt.src, err)
			}
			got, err := p.EvalBool(tt.vars)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("EvalBool(%s) = %v, %v; want error containing %q", tt.src, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("EvalBool(%s) = %v, %v; want %v", tt.src, got, err, tt.want)
			}
		})
	}
}

func TestEvalString(t *testing.T) {
	t.Parallel()
	vars := Vars{Message: order(paid), Request: request(http.MethodPost, "/orders?id=9")}
	tests := []struct {
		desc    string
		src     string
		want    string
		wantErr string
	}{
		{desc: "concatenation", src: `"order-" + message.json.status + "-" + request.query.id`, want: "order-paid-9"},
		{desc: "header", src: `message.headers['x-type']`, want: "order"},
		{desc: "int", src: `message.metadata.size()`, want: "5"},
		{desc: "double", src: `message.json.amount`, want: "120"},
		{desc: "bool", src: `request.method == "POST"`, want: "true"},
		{desc: "bytes", src: `b"raw"`, want: "raw"},
		{desc: "null", src: `null`, want: ""},
		{desc: "content", src: `message.content`, want: paid},
		{desc: "map is an error", src: `message.headers`, wantErr: "yields map, not a string"},
		{desc: "list is an error", src: `message.json.items`, wantErr: "not a string"},
		{desc: "eval error", src: `message.json.nope`, wantErr: "no such key: nope"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			p, err := Compile(tt.src)
			if err != nil {
				t.Fatalf("Compile(%s): %v", tt.src, err)
			}
			got, err := p.EvalString(vars)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("EvalString(%s) = %q, %v; want error containing %q", tt.src, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("EvalString(%s) = %q, %v; want %q", tt.src, got, err, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		src  string
		// want is the whole rendered error, or a prefix of it.
		want string
	}{
		{desc: "misspelt field", src: `message.jsn.status == "paid"`, want: "column 8: undefined field 'jsn'"},
		{desc: "unknown variable", src: `msg.content == "x"`, want: "column 1: undeclared reference to 'msg'"},
		{desc: "syntax", src: `message.content ==`, want: "column 19: Syntax error: "},
		{desc: "type mismatch", src: `message.content + 1`, want: "column 17: found no matching overload for '_+_' applied to '(string, int)'"},
		{desc: "multi-line names the line", src: "message.content == \"a\" &&\n  request.mthod == \"GET\"", want: "line 2, column 10: undefined field 'mthod'"},
		{desc: "construction refused", src: `sluice.Message{content: "x"}.content == "x"`, want: "column 15: sluice.Message values cannot be created in an expression"},
		{desc: "bad regex literal", src: `message.content.matches("(")`, want: "column 1: "},
		{desc: "empty", src: ``, want: "column 1: Syntax error"},
		{desc: "too long", src: strings.Repeat("1 + ", MaxExpressionSize/4) + "1", want: "column 1: expression code point size exceeds limit"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			p, err := Compile(tt.src)
			if err == nil {
				t.Fatalf("Compile = %v, want an error", p)
			}
			var ce *CompileError
			if !errors.As(err, &ce) || len(ce.Issues) == 0 || ce.Issues[0].Line < 1 || ce.Issues[0].Column < 1 {
				t.Fatalf("Compile error %#v: want a *CompileError with positions", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Compile error:\n%v\nwant prefix:\n%v", err, tt.want)
			}
		})
	}
}

func TestCompileCondition(t *testing.T) {
	t.Parallel()
	for _, src := range []string{`request.method == "GET"`, `message.json.paid`, `has(message.json)`} {
		if _, err := CompileCondition(src); err != nil {
			t.Errorf("CompileCondition(%s): %v", src, err)
		}
	}
	for _, src := range []string{`message.content`, `message.headers.size()`, `message.headers`} {
		_, err := CompileCondition(src)
		if err == nil || !strings.Contains(err.Error(), "a condition must yield a bool") {
			t.Errorf("CompileCondition(%s) = %v, want a bool-type error", src, err)
		}
	}
}

// TestCostLimit: an expression whose work explodes with the message stops
// with an error instead of spinning.
func TestCostLimit(t *testing.T) {
	t.Parallel()
	items := make([]string, 2000)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	msg := order(`{"items":[` + strings.Join(items, ",") + `]}`)
	p, err := Compile(`message.json.items.all(a, message.json.items.all(b, message.json.items.exists(c, a + b + c >= 0)))`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.EvalBool(Vars{Message: msg})
	if err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("EvalBool = %v, want cost limit exceeded", err)
	}
	// The same expression on a small message is fine.
	ok, err := p.EvalBool(Vars{Message: order(`{"items":[1,2,3]}`)})
	if err != nil || !ok {
		t.Fatalf("EvalBool on a small message = %v, %v; want true", ok, err)
	}
	// A linear search of a large array stays well within the limit.
	big := order(`{"lines":[` + strings.Repeat(`{"sku":"a"},`, 5000) + `{"sku":"b"}]}`)
	search, err := Compile(`message.json.lines.exists(l, l.sku == "b")`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := search.EvalBool(Vars{Message: big}); err != nil || !ok {
		t.Fatalf("exists over 5001 elements = %v, %v; want true", ok, err)
	}
}

// TestJSONParsedOnlyWhenRead: a program that does not read message.json
// allocates almost nothing per message, however big the JSON content; one
// that reads it pays for the parse.
func TestJSONParsedOnlyWhenRead(t *testing.T) {
	big := order(`{"status":"paid","items":[` + strings.Repeat(`{"sku":"a","qty":1},`, 500) + `{"sku":"z"}]}`)
	header, err := Compile(`message.headers['x-type'] == "order" && message.metadata.topic == "orders"`)
	if err != nil {
		t.Fatal(err)
	}
	json, err := Compile(`message.json.status == "paid"`)
	if err != nil {
		t.Fatal(err)
	}
	vars := Vars{Message: big}
	headerAllocs := testing.AllocsPerRun(200, func() {
		if ok, err := header.EvalBool(vars); !ok || err != nil {
			t.Fatalf("header filter = %v, %v", ok, err)
		}
	})
	jsonAllocs := testing.AllocsPerRun(20, func() {
		if ok, err := json.EvalBool(vars); !ok || err != nil {
			t.Fatalf("json filter = %v, %v", ok, err)
		}
	})
	if headerAllocs > 12 { // the metadata view is built; the JSON must not be
		t.Errorf("header filter: %.1f allocations per message, want at most 12 (the JSON must not be parsed)", headerAllocs)
	}
	if jsonAllocs < 500 {
		t.Errorf("json filter: %.1f allocations per message; the JSON parse should show", jsonAllocs)
	}
}

// TestConcurrentEvaluations: evaluations sharing one Program and the pooled
// activations never see each other's variables.
func TestConcurrentEvaluations(t *testing.T) {
	t.Parallel()
	p, err := Compile(`message.json.n + ":" + message.headers['x-n'] + ":" + request.query.n`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				n := fmt.Sprint(g*1000 + i)
				m := mediation.NewMessage([]byte(`{"n":"` + n + `"}`))
				m.Headers = mediation.Headers{"x-n": {n}}
				r := httptest.NewRequest(http.MethodGet, "/x?n="+n, nil)
				got, err := p.EvalString(Vars{Message: m, Request: r})
				if want := n + ":" + n + ":" + n; err != nil || got != want {
					errs <- fmt.Errorf("EvalString = %q, %v; want %q", got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestFromExchange(t *testing.T) {
	t.Parallel()
	msg := order(paid)
	if v := FromExchange(nil, msg); v.Message != msg || v.Request != nil {
		t.Fatalf("FromExchange(nil) = %+v", v)
	}
	r := request(http.MethodGet, "/orders")
	x := &mediation.Exchange{Request: r, Attributes: map[string]any{
		AttrJWTClaims:            map[string]any{"sub": "alice"},
		AttrSubscriptionMetadata: map[string]string{"team": "billing"},
	}}
	p, err := Compile(`jwt.claims.sub == "alice" && subscription.metadata.team == "billing" && request.method == "GET" && message.json.status == "paid"`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.EvalBool(FromExchange(x, msg)); !ok || err != nil {
		t.Fatalf("EvalBool(FromExchange) = %v, %v; want true", ok, err)
	}
}
