// Package server runs the gateway: it provisions the APIs of a validated
// configuration, routes data-plane requests to them by listener path (and
// host), applies CORS, serves the admin listener, and drains gracefully.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/internal/admin"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/h1"
	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/internal/telemetry"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
	"github.com/sluicegw/sluice/policies/ratelimit"
)

// Server is a running gateway. Create it with New, then Start, then Shutdown.
type Server struct {
	cfg     *config.Config
	reg     *plugins.Registry
	log     *slog.Logger
	metrics *telemetry.Metrics

	mu       sync.Mutex // guards apis and route table rebuilds
	apis     map[string]*builtAPI
	routes   atomic.Pointer[routeTable]
	ready    atomic.Bool
	retiring sync.WaitGroup // APIs replaced by Deploy, draining

	store store.Store // APIs deployed through the management API, and more
	// rates are the shared rate-limit counters: in Redis when server.redis
	// is set (redis is then its client), else in memory.
	rates plugins.RateCounter
	redis *redis.Client
	hooks *hooks // webhook subscription runners

	httpSrv, adminSrv *http.Server
	// fast serves the data plane's plain HTTP/1.1 requests first and hands
	// httpSrv the connections it does not take (internal/h1).
	fast            *h1.Server
	httpLn, adminLn net.Listener
	serveErr        chan error
	// Extra handlers mounted on the data-plane listener before API routes
	// (the dev demo page); set before Start.
	extra map[string]http.Handler
}

// Options configure New.
type Options struct {
	Registry *plugins.Registry // default plugins.Default
	Logger   *slog.Logger      // default slog.Default()
	// Handlers are served on the data-plane listener at exact paths before
	// any API (e.g. the demo page of `sluice dev`).
	Handlers map[string]http.Handler
}

// New provisions every API of cfg (already loaded and validated by
// config.Load). Nothing listens until Start. On error, what was provisioned
// is closed.
func New(ctx context.Context, cfg *config.Config, o Options) (*Server, error) {
	s := &Server{
		cfg: cfg, reg: cmp.Or(o.Registry, plugins.Default), log: cmp.Or(o.Logger, slog.Default()),
		metrics: telemetry.NewMetrics(), apis: map[string]*builtAPI{}, extra: o.Handlers,
		serveErr: make(chan error, 2),
	}
	s.rates = ratelimit.NewMemoryCounter()
	if cfg.Server.Redis != "" {
		opts, err := redis.ParseURL(cfg.Server.Redis)
		if err != nil {
			return nil, fmt.Errorf("server.redis: %w", err)
		}
		s.redis = redis.NewClient(opts)
		s.rates = ratelimit.NewRedisCounter(s.redis)
	}
	st, err := store.Open(ctx, cfg.Server.Store, cfg.Server.DataDir)
	if err != nil {
		s.closeRedis()
		return nil, fmt.Errorf("store: %w", err)
	}
	s.store = st
	for i := range cfg.APIs {
		c := &cfg.APIs[i]
		b, err := buildAPI(ctx, s.reg, c, s.env())
		if err != nil {
			s.closeAPIs(ctx)
			_ = st.Close()
			s.closeRedis()
			return nil, err
		}
		s.apis[c.ID] = b
	}
	s.hooks = newHooks(s)
	s.deployStored(ctx)
	s.rebuildRoutes()
	return s, nil
}

// deployStored deploys the APIs saved by the management API. One that no
// longer loads (a plugin gone, a path now taken by the file) is logged and
// skipped, so that it cannot keep the gateway from starting.
func (s *Server) deployStored(ctx context.Context) {
	saved, err := s.store.ListAPIs(ctx)
	if err != nil {
		s.log.Error("listing stored APIs", "err", err)
		return
	}
	for _, a := range saved {
		if s.FromFile(a.ID) {
			s.log.Warn("stored API ignored: the configuration file defines the same id", "api", a.ID)
			continue
		}
		c, err := config.ParseAPI("stored api "+a.ID, a.Doc, s.reg)
		if err == nil {
			var others []config.API
			for _, b := range s.apis {
				others = append(others, *b.cfg)
			}
			err = config.PathConflicts(c, others)
		}
		var b *builtAPI
		if err == nil {
			b, err = buildAPI(ctx, s.reg, c, s.env())
		}
		if err != nil {
			s.log.Error("stored API not deployed", "api", a.ID, "err", err)
			continue
		}
		s.apis[c.ID] = b
	}
}

// env is what provisioning an API takes from the gateway.
func (s *Server) env() buildEnv {
	return buildEnv{log: s.log, meter: s.metrics, keys: storeKeys{s.store}, rates: s.rates}
}

func (s *Server) closeRedis() {
	if s.redis != nil {
		_ = s.redis.Close()
	}
}

// storeKeys finds API keys in the gateway's store for api-key plans.
type storeKeys struct{ st store.Store }

func (k storeKeys) FindKey(ctx context.Context, apiID string, hash []byte) (string, error) {
	key, err := k.st.FindKey(ctx, apiID, hash)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: %w", plugins.ErrKeyNotFound, err)
	}
	return key.ID, err
}

func (s *Server) rebuildRoutes() {
	var all []*route
	for _, b := range s.apis {
		for _, rt := range b.routes {
			if rt.countFinal == nil {
				id := rt.api.ID()
				rt.countFinal = func(status int) { s.metrics.CountRequest(id, status) }
			}
		}
		all = append(all, b.routes...)
	}
	s.routes.Store(newRouteTable(all))
}

// Start listens on the data-plane and admin addresses and serves in the
// background. Listen errors are returned here; later serve errors end Wait.
func (s *Server) Start() error {
	sc := s.cfg.Server
	var err error
	if s.httpLn, err = net.Listen("tcp", sc.HTTP.Listen); err != nil {
		return fmt.Errorf("data-plane listener %s: %w", sc.HTTP.Listen, err)
	}
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: time.Duration(sc.HTTP.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(sc.HTTP.IdleTimeout),
		MaxHeaderBytes:    sc.HTTP.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// HTTP/1.1, and HTTP/2 without TLS (h2c) for gRPC clients and
		// backends behind proxy APIs.
		Protocols: new(http.Protocols),
	}
	s.httpSrv.Protocols.SetHTTP1(true)
	s.httpSrv.Protocols.SetUnencryptedHTTP2(true)
	handoff := h1.NewHandoff(s.httpLn.Addr())
	s.fast = &h1.Server{
		Handler: s.serveFast, Handoff: handoff,
		ReadHeaderTimeout: s.httpSrv.ReadHeaderTimeout, IdleTimeout: s.httpSrv.IdleTimeout,
	}
	go s.serve(s.httpSrv, handoff)
	go func() {
		serve := s.fast.Serve
		if sc.HTTP.EventLoops != config.EventLoopsOff && h1.LoopsSupported {
			loops := eventLoops(int(sc.HTTP.EventLoops))
			serve = func(ln net.Listener) error { return s.fast.ServeLoops(ln, loops) }
		}
		if err := serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- err
		}
	}()
	if sc.Admin.Listen != "off" {
		if s.adminLn, err = net.Listen("tcp", sc.Admin.Listen); err != nil {
			_ = s.httpLn.Close()
			return fmt.Errorf("admin listener %s: %w", sc.Admin.Listen, err)
		}
		s.adminSrv = &http.Server{
			Handler: admin.Handler(admin.Options{
				Ready: s.ready.Load, Metrics: s.metrics.Registry, Token: sc.Admin.Token,
				Deployer: s, Registry: s.reg, Store: s.store, Subscriptions: s,
			}),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		go s.serve(s.adminSrv, s.adminLn)
	}
	s.hooks.startAll(context.Background())
	s.ready.Store(true)
	s.log.Info("gateway started", "http", s.httpLn.Addr().String(), "admin", s.AdminAddr(), "apis", len(s.apis))
	return nil
}

// eventLoops returns how many loops to run for the configured count (0:
// one per core). On a machine of its own (GOMAXPROCS neither set by the
// user nor lowered by a CPU quota) it gives the runtime one P more than
// the loops. The spare P runs the goroutines (streams, handed-off
// connections, the admin API, broker clients) without taking a loop's; and
// while a loop waits in the kernel the runtime, seeing a P idle, leaves the
// loop's P alone instead of taking it away and waking threads to look for
// work. Measured with the http-proxy bench on 2 cores: 2 loops with
// GOMAXPROCS 3 made 0.91 of nginx's requests/s; with GOMAXPROCS 2, 0.85
// and four times nginx's context switches per request; one loop with
// GOMAXPROCS 2, 0.79. Where GOMAXPROCS is set or bounded by a quota, more
// Ps than that would only be throttled: the loops leave one P free
// instead.
func eventLoops(configured int) int {
	procsMu.Lock()
	defer procsMu.Unlock()
	n := configured
	ownMachine := os.Getenv("GOMAXPROCS") == "" && cores == runtime.NumCPU()
	switch {
	case n <= 0 && ownMachine:
		n = cores
	case n <= 0:
		return max(1, cores-1)
	case !ownMachine:
		return n
	}
	if runtime.GOMAXPROCS(0) < n+1 {
		runtime.GOMAXPROCS(n + 1)
	}
	return n
}

// cores is GOMAXPROCS as the process started, before eventLoops raised it
// (tests start many gateways in one process); procsMu orders the raises.
var (
	cores   = runtime.GOMAXPROCS(0)
	procsMu sync.Mutex
)

func (s *Server) serve(srv *http.Server, ln net.Listener) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.serveErr <- err
	}
}

// Addr is the data-plane listener's address, once started.
func (s *Server) Addr() string { return s.httpLn.Addr().String() }

// AdminAddr is the admin listener's address, or "" when it is off.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Metrics returns the gateway's metrics.
func (s *Server) Metrics() *telemetry.Metrics { return s.metrics }

// Err returns a channel that yields a listener's fatal serve error.
func (s *Server) Err() <-chan error { return s.serveErr }

// ServeHTTP routes a data-plane request to its API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := s.extra[r.URL.Path]; ok {
		h.ServeHTTP(w, r)
		return
	}
	// The path is normalized once, here, and everything after — routing,
	// plans, flows, the path forwarded to a backend — sees that form.
	p := cleanRequestPath(r.URL.Path)
	r.URL.Path, r.URL.RawPath = p, ""
	rt, rel := s.routes.Load().match(r.Host, p)
	if rt == nil {
		mediation.WriteProblem(w, http.StatusNotFound, "No API at this path", p, nil)
		s.metrics.CountRequest("", http.StatusNotFound)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() { s.metrics.CountRequest(rt.api.ID(), sw.status) }()
	if rt.cors != nil && rt.cors.handle(sw, r) {
		return
	}
	rt.api.ServeExchange(sw, r, rel)
}

// Shutdown drains gracefully within ctx: readiness fails first, open streams
// are told to finish (SSE goaway, WebSocket 1001), the listeners stop, and
// every API closes its endpoint, committing what was delivered.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.log.Info("gateway draining")
	s.hooks.shutdown()
	s.mu.Lock()
	apis := make([]*builtAPI, 0, len(s.apis))
	for _, b := range s.apis {
		apis = append(apis, b)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, b := range apis {
		wg.Go(func() { _ = b.api.Drain(ctx) })
	}
	var errs []error
	if s.httpSrv != nil {
		// Both at once: each closes its idle connections and waits for
		// the busy ones.
		var fastErr error
		wg.Go(func() { fastErr = s.fast.Shutdown(ctx) })
		errs = append(errs, s.httpSrv.Shutdown(ctx))
		wg.Wait()
		errs = append(errs, fastErr)
	}
	wg.Wait()
	s.retiring.Wait()
	s.closeAPIs(ctx)
	s.hooks.wait()
	if s.adminSrv != nil {
		errs = append(errs, s.adminSrv.Shutdown(ctx))
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	s.closeRedis()
	s.log.Info("gateway stopped")
	return errors.Join(errs...)
}

func (s *Server) closeAPIs(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, b := range s.apis {
		if err := b.api.Close(ctx); err != nil {
			s.log.Warn("closing API", "api", id, "err", err)
		}
		delete(s.apis, id)
	}
}
