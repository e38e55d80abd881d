package mediation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// API is one deployed message API: its entrypoints, the endpoint that serves
// them, its flows, and the shared subscriptions (hubs) of its live clients.
// It is an http.Handler for the requests its listeners route to it.
type API struct {
	id, name    string
	entrypoints []*binding
	endpoint    Endpoint
	group       []Endpoint
	named       map[string][]Endpoint
	caps        Capabilities
	plans       []Plan
	planAttrs   []any // each plan's Name as an AttrPlan value, boxed once
	flows       []Flow
	log         *slog.Logger

	hubMu sync.Mutex
	hub   *hub

	drainOnce sync.Once
	drainMu   sync.RWMutex // orders active.Add before Drain's Wait
	draining  chan struct{}
	active    sync.WaitGroup
}

// EntrypointBinding is an entrypoint as configured on an API.
type EntrypointBinding struct {
	Type       string
	Entrypoint Entrypoint
	QoS        QoS
	// Window bounds the messages a stream holds that the client has not
	// acknowledged (read ahead plus in flight). 0 means DefaultWindow.
	Window int
	// SlowConsumer says what a shared subscription does when this client's
	// window is full.
	SlowConsumer SlowConsumerPolicy
}

// DefaultWindow is the in-flight window of a stream when none is configured.
const DefaultWindow = 1024

// MinWindower is implemented by entrypoints that hold several messages
// unacknowledged by design (an http-get page is acked when it is written), so
// that their window is never smaller than that.
type MinWindower interface{ MinWindow() int }

type binding struct {
	EntrypointBinding
	rank    int
	metrics EntrypointMetrics
}

// APIOptions configure NewAPI.
type APIOptions struct {
	ID, Name    string
	Entrypoints []EntrypointBinding
	// Endpoint serves the message entrypoints: the first endpoint of the
	// first group.
	Endpoint Endpoint
	// Group is every endpoint of the first group, for entrypoints that
	// balance over them (http-proxy). Default: Endpoint alone.
	Group []Endpoint
	// Named are the API's other endpoint groups by name (a webhook's
	// dead-letter queue), closed with the API.
	Named map[string][]Endpoint
	// Plans admit requests, in order; none means open. Keyless plans
	// belong last: they admit anything.
	Plans  []Plan
	Flows  []Flow
	Logger *slog.Logger // default slog.Default()
	Meter  Meter        // default NopMeter
}

// NewAPI assembles an API. It does not connect anything: the endpoint is
// already provisioned, and subscriptions open on demand.
func NewAPI(o APIOptions) *API {
	a := &API{
		id: o.ID, name: o.Name, endpoint: o.Endpoint, group: o.Group, named: o.Named, plans: o.Plans, flows: o.Flows,
		log: cmp.Or(o.Logger, slog.Default()).With("api", o.ID), draining: make(chan struct{}),
	}
	for _, p := range o.Plans {
		a.planAttrs = append(a.planAttrs, p.Name)
	}
	if o.Endpoint != nil {
		a.caps = o.Endpoint.Capabilities()
		if len(a.group) == 0 {
			a.group = []Endpoint{o.Endpoint}
		}
	}
	meter := o.Meter
	if meter == nil {
		meter = NopMeter{}
	}
	for _, e := range o.Entrypoints {
		b := &binding{EntrypointBinding: e, rank: RankDefault, metrics: meter.Entrypoint(o.ID, e.Type)}
		if r, ok := e.Entrypoint.(Ranked); ok {
			b.rank = r.Rank()
		}
		if b.Window <= 0 {
			b.Window = DefaultWindow
		}
		if mw, ok := e.Entrypoint.(MinWindower); ok {
			b.Window = max(b.Window, mw.MinWindow())
		}
		a.entrypoints = append(a.entrypoints, b)
	}
	slices.SortStableFunc(a.entrypoints, func(x, y *binding) int { return x.rank - y.rank })
	return a
}

// ID returns the API id.
func (a *API) ID() string { return a.id }

// Endpoint returns the endpoint serving the API's entrypoints.
func (a *API) Endpoint() Endpoint { return a.endpoint }

// Group returns every endpoint of the API's first group; the slice is shared.
func (a *API) Group() []Endpoint { return a.group }

// NamedGroup returns the endpoints of the named endpoint group, nil when the
// API has none of that name; the slice is shared.
func (a *API) NamedGroup(name string) []Endpoint { return a.named[name] }

// Attach starts an exchange that no HTTP request carries, for an entrypoint
// that works in the background: a webhook subscription pushing messages to
// its callback. The exchange counts as open until done is called, so Drain
// waits for it; it should end soon after Exchange.Draining is closed.
// Attach fails with ErrDraining once the API drains, and with ErrUnsupported
// when the API has no entrypoint of that type.
func (a *API) Attach(entrypointType string) (x *Exchange, done func(), err error) {
	var b *binding
	for _, e := range a.entrypoints {
		if e.Type == entrypointType {
			b = e
			break
		}
	}
	if b == nil {
		return nil, nil, fmt.Errorf("api %q has no %s entrypoint: %w", a.id, entrypointType, ErrUnsupported)
	}
	if !a.enter() {
		return nil, nil, ErrDraining
	}
	x = &Exchange{api: a, binding: b, EntrypointType: b.Type, QoS: b.QoS, Logger: a.log, Attributes: map[string]any{}}
	var once sync.Once
	return x, func() { once.Do(a.active.Done) }, nil
}

// ServeHTTP picks the entrypoint for r, runs the request and response phases
// of the matching flows, and hands the exchange to the entrypoint. The
// listener strips its path prefix into RelativePath via ServeExchange; a bare
// ServeHTTP uses r.URL.Path.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.ServeExchange(w, r, r.URL.Path)
}

// ServeExchange is ServeHTTP with the path relative to the listener path.
func (a *API) ServeExchange(w http.ResponseWriter, r *http.Request, relPath string) {
	if !a.enter() {
		WriteProblem(w, http.StatusServiceUnavailable, "API is shutting down", "retry on another gateway instance", http.Header{"Retry-After": {"1"}})
		return
	}
	defer a.active.Done()

	b := a.selectEntrypoint(r)
	if b == nil {
		a.noEntrypoint(w, r)
		return
	}
	x := &Exchange{
		api: a, binding: b, EntrypointType: b.Type, QoS: b.QoS, RelativePath: relPath,
		Request: r, Logger: a.log, Attributes: map[string]any{},
	}
	if !a.admit(w, r, x) {
		return
	}
	for i := range a.flows {
		f := &a.flows[i]
		if len(f.Request) == 0 || !f.matches(x, r, 0) {
			continue
		}
		for _, p := range f.Request {
			rp, ok := p.(RequestPolicy)
			if !ok {
				continue
			}
			if err := rp.OnRequest(r.Context(), x, r); err != nil {
				writePolicyError(w, err)
				return
			}
		}
	}
	if a.hasResponsePolicies() {
		w = &responsePhaseWriter{ResponseWriter: w, x: x, r: r}
	}
	b.Entrypoint.Serve(w, r, x)
}

func (a *API) hasResponsePolicies() bool {
	for i := range a.flows {
		if len(a.flows[i].Response) > 0 {
			return true
		}
	}
	return false
}

func (a *API) selectEntrypoint(r *http.Request) *binding {
	for _, b := range a.entrypoints {
		if b.Entrypoint.Accepts(r) {
			return b
		}
	}
	return nil
}

// noEntrypoint answers the most precise status the contract allows: 405
// (with Allow) when no entrypoint takes the method, 406 for a GET whose
// Accept no entrypoint produces, 415 for a POST none accepts, 404 otherwise.
func (a *API) noEntrypoint(w http.ResponseWriter, r *http.Request) {
	var allow []string
	negotiates := false // an entrypoint picks GETs by their Accept header
	for _, b := range a.entrypoints {
		m := ""
		switch b.Type {
		case "sse", "http-get":
			m, negotiates = http.MethodGet, true
		case "websocket":
			m = http.MethodGet
		case "http-post":
			m = http.MethodPost
		}
		if m != "" && !slices.Contains(allow, m) {
			allow = append(allow, m)
		}
	}
	switch {
	case len(allow) > 0 && !slices.Contains(allow, r.Method):
		WriteProblem(w, http.StatusMethodNotAllowed, "Method not allowed on this API", r.Method+" has no entrypoint here",
			http.Header{"Allow": {strings.Join(allow, ", ")}})
	case r.Method == http.MethodGet && negotiates:
		WriteProblem(w, http.StatusNotAcceptable, "No entrypoint produces the requested media type", "Accept: "+r.Header.Get("Accept"), nil)
	case r.Method == http.MethodPost:
		WriteProblem(w, http.StatusUnsupportedMediaType, "No entrypoint accepts this request", "", nil)
	default:
		WriteProblem(w, http.StatusNotFound, "No entrypoint serves this request", r.Method+" "+r.URL.Path, nil)
	}
}

// enter counts an exchange in, unless the API drains.
func (a *API) enter() bool {
	a.drainMu.RLock()
	defer a.drainMu.RUnlock()
	select {
	case <-a.draining:
		return false
	default:
		a.active.Add(1)
		return true
	}
}

// Draining is closed when the API starts shutting down.
func (a *API) Draining() <-chan struct{} { return a.draining }

// Drain tells every open exchange to finish (SSE goaway, WebSocket 1001),
// refuses new ones with 503, and waits until they returned or ctx ended.
// Acknowledged positions are committed when the endpoint closes (Close).
func (a *API) Drain(ctx context.Context) error {
	a.drainOnce.Do(func() {
		a.drainMu.Lock()
		close(a.draining)
		a.drainMu.Unlock()
	})
	done := make(chan struct{})
	go func() { a.active.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close drains the API (bounded by ctx) and closes its endpoint.
func (a *API) Close(ctx context.Context) error {
	derr := a.Drain(ctx)
	a.hubMu.Lock()
	h := a.hub
	a.hub = nil
	a.hubMu.Unlock()
	if h != nil {
		h.close(ErrClosed)
	}
	var cerr error
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, e := range a.group {
		cerr = errors.Join(cerr, e.Close(cctx))
	}
	for _, g := range a.named {
		for _, e := range g {
			cerr = errors.Join(cerr, e.Close(cctx))
		}
	}
	for _, p := range a.plans {
		if c, ok := p.Security.(interface{ Close() error }); ok {
			cerr = errors.Join(cerr, c.Close())
		}
	}
	return errors.Join(derr, cerr)
}

func writePolicyError(w http.ResponseWriter, err error) {
	var rej *Rejection
	if errors.As(err, &rej) {
		WriteProblem(w, rej.Status, rej.Title, rej.Detail, rej.Header)
		return
	}
	WriteProblem(w, http.StatusInternalServerError, "Policy failed", err.Error(), nil)
}

// responsePhaseWriter runs the response-phase policies on the headers just
// before they are written.
type responsePhaseWriter struct {
	http.ResponseWriter
	x    *Exchange
	r    *http.Request
	done bool
}

func (w *responsePhaseWriter) WriteHeader(code int) {
	if !w.done {
		w.done = true
		h := w.ResponseWriter.Header()
		for i := range w.x.api.flows {
			f := &w.x.api.flows[i]
			if len(f.Response) == 0 || !f.matches(w.x, w.r, 0) {
				continue
			}
			for _, p := range f.Response {
				if rp, ok := p.(ResponsePolicy); ok {
					if err := rp.OnResponse(w.r.Context(), w.x, h); err != nil {
						w.x.Logger.Warn("response policy failed", "err", err)
					}
				}
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responsePhaseWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *responsePhaseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
