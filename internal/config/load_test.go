package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// mustParse parses a valid document or fails the test with its problems.
func mustParse(t *testing.T, yaml string, env map[string]string) *Config {
	t.Helper()
	cfg, err := parseConfig("gateway.yaml", []byte(yaml), testRegistry(), mapEnv(env))
	if err != nil {
		t.Fatalf("unexpected problems:\n%v", err)
	}
	return cfg
}

// problems parses an invalid document and returns its problems.
func problems(t *testing.T, yaml string, env map[string]string) []Error {
	t.Helper()
	_, err := parseConfig("gateway.yaml", []byte(yaml), testRegistry(), mapEnv(env))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want *Errors, got %T: %v", err, err)
	}
	return errs.List
}

func mapEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestDesignExample(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/design-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc    string
		env     map[string]string
		brokers []string
		token   string
	}{
		{desc: "defaults", brokers: []string{"127.0.0.1:9092"}},
		{desc: "from environment", env: map[string]string{"KAFKA_BROKERS": "kafka-0:9092", "SLUICE_ADMIN_TOKEN": "s3cret"},
			brokers: []string{"kafka-0:9092"}, token: "s3cret"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseConfig("testdata/design-example.yaml", data, testRegistry(), mapEnv(tc.env))
			if err != nil {
				t.Fatalf("the DESIGN.md example must load:\n%v", err)
			}
			if cfg.File != "testdata/design-example.yaml" || cfg.Server.Admin.Token != tc.token || cfg.Server.DataDir != "./data" {
				t.Errorf("server: %+v", cfg.Server)
			}
			if len(cfg.APIs) != 2 {
				t.Fatalf("want 2 apis, got %d", len(cfg.APIs))
			}
			orders, petstore := &cfg.APIs[0], &cfg.APIs[1]
			if orders.Name != "Orders" || petstore.Name != "petstore" || petstore.Type != "proxy" || orders.Type != "message" {
				t.Errorf("names/types: %q %q %q %q", orders.Name, petstore.Name, orders.Type, petstore.Type)
			}

			k1 := orders.EndpointGroups[0].Endpoints[0].Decoded.(*kafkaConfig)
			want := &kafkaConfig{
				BootstrapServers: tc.brokers,
				Consumer:         kafkaConsumer{Topics: []string{"orders"}, AutoOffsetReset: "earliest"},
				Producer:         kafkaProducer{Topic: "orders"},
			}
			if !reflect.DeepEqual(k1, want) {
				t.Errorf("kafka k1 decoded as %+v, want %+v", k1, want)
			}
			dlq := orders.EndpointGroups[1].Endpoints[0].Decoded.(*kafkaConfig)
			if dlq.Producer.Topic != "orders-dlq" || dlq.Consumer.AutoOffsetReset != "latest" {
				t.Errorf("dlq group decoded as %+v (want its own topic and the plugin default offset reset)", dlq)
			}

			http := orders.Listeners[0]
			if http.CORS == nil || time.Duration(http.CORS.MaxAge) != DefaultCORSMaxAge || http.CORS.AllowOrigins[0] != "https://app.example.com" {
				t.Errorf("cors: %+v", http.CORS)
			}
			sse := http.Entrypoints[0]
			if sse.QoS != "at-least-once" || sse.Window != DefaultWindow || sse.SlowConsumer != "disconnect" {
				t.Errorf("sse entrypoint: %+v", sse)
			}
			if c := sse.Decoded.(*sseConfig); c.HeartbeatInterval != 15*time.Second {
				t.Errorf("sse heartbeatInterval = %v", c.HeartbeatInterval)
			}
			if get := http.Entrypoints[1]; get.QoS != "auto" || get.Decoded.(*httpGetConfig).MessagesLimitDuration != Duration(5*time.Second) || get.Decoded.(*httpGetConfig).MessagesLimitCount != 500 {
				t.Errorf("http-get entrypoint: %+v %+v", get, get.Decoded)
			}
			if !http.Entrypoints[2].Decoded.(*httpPostConfig).RequestHeadersToMessage {
				t.Error("http-post requestHeadersToMessage not decoded")
			}
			if ws := http.Entrypoints[3]; ws.Decoded != nil {
				t.Errorf("websocket takes no configuration, got %v", ws.Decoded)
			}
			if hook := orders.Listeners[1].Entrypoints[0]; hook.DLQ == nil || hook.DLQ.Endpoint != "orders-dlq" {
				t.Errorf("webhook dlq: %+v", hook.DLQ)
			}

			flow := orders.Flows[0]
			if flow.Enabled == nil || !*flow.Enabled || flow.Subscribe[0].Decoded.(*filterConfig).Condition != `message.json.status == "paid"` {
				t.Errorf("flow: %+v", flow)
			}
			if orders.Plans[0].Mode != "standard" || orders.Plans[1].Mode != "push" {
				t.Errorf("plans: %+v", orders.Plans)
			}

			g := petstore.EndpointGroups[0]
			if g.LoadBalancer.Type != "round-robin" || g.Endpoints[1].Weight != 1 {
				t.Errorf("petstore group: %+v", g)
			}
			if target := g.Endpoints[1].Decoded.(*httpProxyConfig).Target; target != "http://127.0.0.1:9002" {
				t.Errorf("petstore b target = %q", target)
			}
		})
	}
}

func TestServerDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, yaml string
	}{
		{"empty file", ""},
		{"comments only", "# nothing yet\n"},
		{"empty server", "server: {}\napis: []\n"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			s := mustParse(t, tc.yaml, nil).Server
			want := Server{
				HTTP: HTTPServer{Listen: ":8080", ReadHeaderTimeout: Duration(10 * time.Second),
					IdleTimeout: Duration(120 * time.Second), MaxHeaderBytes: 1 << 20},
				Admin:           Admin{Listen: "127.0.0.1:8081"},
				DataDir:         "./data",
				Log:             Log{Level: "info", Format: "json"},
				ShutdownTimeout: Duration(15 * time.Second),
			}
			if !reflect.DeepEqual(s, want) {
				t.Errorf("got  %+v\nwant %+v", s, want)
			}
		})
	}
}

const minimalAPI = `
apis:
  - id: ticks
    listeners:
      - {type: http, paths: [/ticks], entrypoints: [{type: sse}]}
    endpointGroups:
      - {name: default, type: mock, endpoints: [{name: m1}]}
`

// TestOverlay checks that an endpoint's configuration goes on top of its
// group's sharedConfiguration: mappings merge key by key, lists replace.
func TestOverlay(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `
apis:
  - id: orders
    listeners:
      - {type: http, paths: [/orders], entrypoints: [{type: sse}, {type: http-post}]}
    endpointGroups:
      - name: default
        type: kafka
        sharedConfiguration:
          bootstrapServers: ["a:9092", "b:9092"]
          consumer: {topics: [orders], groupId: shared}
          producer: {topic: orders}
        endpoints:
          - name: k1
          - name: k2
            configuration:
              bootstrapServers: ["c:9092"]
              consumer: {groupId: own}
`, nil)
	eps := cfg.APIs[0].EndpointGroups[0].Endpoints
	k1, k2 := eps[0].Decoded.(*kafkaConfig), eps[1].Decoded.(*kafkaConfig)
	if k1 == k2 {
		t.Fatal("endpoints share one configuration value")
	}
	if !reflect.DeepEqual(k1.BootstrapServers, []string{"a:9092", "b:9092"}) || k1.Consumer.GroupID != "shared" {
		t.Errorf("k1 = %+v", k1)
	}
	if !reflect.DeepEqual(k2.BootstrapServers, []string{"c:9092"}) || k2.Consumer.GroupID != "own" ||
		!reflect.DeepEqual(k2.Consumer.Topics, []string{"orders"}) || k2.Producer.Topic != "orders" {
		t.Errorf("k2 = %+v", k2)
	}
}

// TestAnchorsAndMergeKeys checks YAML anchors, aliases and merge keys, with
// x- extension keys as the place to define shared blocks.
func TestAnchorsAndMergeKeys(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `
x-kafka: &kafka
  bootstrapServers: ["k:9092"]
  consumer: {topics: [a], autoOffsetReset: earliest}
  producer: {topic: a}
x-entrypoints: &entrypoints [{type: sse, qos: none}, {type: http-post}]
apis:
  - id: a
    listeners: [{type: http, paths: [/a], entrypoints: *entrypoints}]
    endpointGroups:
      - name: default
        type: kafka
        sharedConfiguration:
          <<: *kafka
          consumer: {topics: [b]}
        endpoints: [{name: k, x-note: ignored}]
  - id: b
    listeners: [{type: http, paths: [/b], entrypoints: *entrypoints}]
    endpointGroups:
      - {name: default, type: kafka, sharedConfiguration: *kafka, endpoints: [{name: k}]}
`, nil)
	a := cfg.APIs[0].EndpointGroups[0].Endpoints[0].Decoded.(*kafkaConfig)
	want := &kafkaConfig{
		BootstrapServers: []string{"k:9092"},
		// consumer is written in the mapping, so it wins over the merged one whole.
		Consumer: kafkaConsumer{Topics: []string{"b"}, AutoOffsetReset: "latest"},
		Producer: kafkaProducer{Topic: "a"},
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("merged configuration = %+v, want %+v", a, want)
	}
	b := cfg.APIs[1].EndpointGroups[0].Endpoints[0].Decoded.(*kafkaConfig)
	if b.Consumer.AutoOffsetReset != "earliest" || b.Consumer.Topics[0] != "a" {
		t.Errorf("aliased configuration = %+v", b)
	}
	for _, api := range cfg.APIs {
		if eps := api.Listeners[0].Entrypoints; len(eps) != 2 || eps[0].QoS != "none" || eps[1].Type != "http-post" {
			t.Errorf("api %s entrypoints from alias: %+v", api.ID, eps)
		}
	}
}

func TestDocumentLimits(t *testing.T) {
	t.Parallel()
	var bomb strings.Builder
	bomb.WriteString("x-0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n")
	for i := 1; i <= 9; i++ {
		bomb.WriteString("x-" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := range 10 {
			if j > 0 {
				bomb.WriteString(", ")
			}
			bomb.WriteString("*a" + string(rune('0'+i-1)))
		}
		bomb.WriteString("]\n")
	}
	bomb.WriteString(strings.Replace(minimalAPI, "type: mock,", "type: mock, sharedConfiguration: {metadata: {bomb: *a9}},", 1))
	for _, tc := range []struct {
		desc, yaml, want string
		line             int
	}{
		{"flow nesting", "apis: " + strings.Repeat("[", 100_000), "collections nested deeper than 64 levels", 1},
		{"mapping nesting", "apis: " + strings.Repeat("{a: ", 100_000), "collections nested deeper than 64 levels", 1},
		{"compact block nesting", "apis:\n" + strings.Repeat("- ", 100_000) + "x\n", "collections nested deeper than 64 levels", 2},
		{"alias bomb", bomb.String(), "document too complex", 17},
		{"too large", "# " + strings.Repeat("x", MaxFileSize) + "\n", "larger than the limit of 1048576 bytes", 0},
		{"unknown alias", "apis: [*nowhere]\n", "unknown alias *nowhere", 1},
		{"flow after a block scalar", "a: |\n    text\n  " + strings.Repeat("[", 100_000), "collections nested deeper than 64 levels", 3},
		{"second document", "apis: []\n---\napis: []\n", "a file holds one YAML document", 3},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			errs := problems(t, tc.yaml, nil)
			if !strings.Contains(errs[0].Msg, tc.want) {
				t.Errorf("got %v, want a problem containing %q", errs, tc.want)
			}
			if tc.line > 0 && errs[0].Line != tc.line {
				t.Errorf("problem at line %d, want %d", errs[0].Line, tc.line)
			}
			// Not a speed assertion: minutes would mean the guard is gone.
			if d := time.Since(start); d > time.Minute {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestBrackets checks that the nesting guard does not count brackets that
// are text: in quotes, comments, block scalars and plain scalars.
func TestBrackets(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", 200)
	cfg := mustParse(t, `
# `+deep+`
apis:
  - id: a
    name: "`+deep+`"
    listeners: [{type: http, paths: [/a], entrypoints: [{type: sse}]}]
    endpointGroups:
      - name: default
        type: mock
        sharedConfiguration:
          messageContent: |
            `+deep+`
            `+deep+`
        endpoints: [{name: 'it''s `+deep+`'}]
    flows:
      - name: plain `+deep+`
`, nil)
	if got := cfg.APIs[0].EndpointGroups[0].Endpoints[0].Decoded.(*mockConfig).MessageContent; got != deep+"\n"+deep+"\n" {
		t.Errorf("block scalar = %q", got)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(good, []byte(minimalAPI), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(good, testRegistry())
	if err != nil || cfg.File != good || cfg.APIs[0].ID != "ticks" {
		t.Fatalf("Load = %+v, %v", cfg, err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apis:\n  - id: x\n    listeners: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad, testRegistry())
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) != 2 || errs.List[1] != (Error{File: bad, Line: 3, Col: 16, Msg: "api needs at least one listener (listeners)"}) {
		t.Errorf("Load(bad) = %v", err)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"), testRegistry())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

// TestDisabledFlowsAreChecked: a disabled flow is a switch to flip back,
// so it must stay valid.
func TestDisabledFlowsAreChecked(t *testing.T) {
	t.Parallel()
	errs := problems(t, minimalAPI+`    flows:
      - name: off
        enabled: false
        subscribe: [{policy: message-filter, enabled: false}]
`, nil)
	if len(errs) != 1 || errs[0].Msg != "condition: is required" || errs[0].Line != 11 {
		t.Errorf("got %v", errs)
	}
}

func TestRequiredKeyMisspelled(t *testing.T) {
	t.Parallel()
	// "listners" is reported as unknown with a suggestion; "api needs at
	// least one listener" would only repeat it.
	errs := problems(t, "apis:\n  - id: a\n    listners: []\n    endpointGroups: [{type: mock, endpoints: [{name: m}]}]\n", nil)
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, `did you mean "listeners"`) {
		t.Errorf("got %v", errs)
	}
}

func TestEventLoops(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml string
		want EventLoops
	}{
		{"server: {http: {}}", 0},
		{"server: {http: {eventLoops: 3}}", 3},
		{"server: {http: {eventLoops: off}}", EventLoopsOff},
		{`server: {http: {eventLoops: "off"}}`, EventLoopsOff},
	} {
		if got := mustParse(t, tc.yaml, nil).Server.HTTP.EventLoops; got != tc.want {
			t.Errorf("%s: eventLoops %d, want %d", tc.yaml, got, tc.want)
		}
	}
	for _, tc := range []struct{ yaml, want string }{
		{"server: {http: {eventLoops: many}}", `x.yaml:1:29: eventLoops "many": want "off" or a count (0: one per core)`},
		{"server: {http: {eventLoops: -2}}", `x.yaml:1:29: eventLoops must be "off" or a count from 0 (one per core) to 1024`},
	} {
		_, err := parseConfig("x.yaml", []byte(tc.yaml), testRegistry(), noEnv)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %s", tc.yaml, err, tc.want)
		}
	}
}
