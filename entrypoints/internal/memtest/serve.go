package memtest

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/sluicegw/sluice/mediation"
)

// Server is one API served over loopback HTTP.
type Server struct {
	*httptest.Server
	API      *mediation.API
	Endpoint *Endpoint
}

// Serve mounts the bindings on an API backed by ep behind an httptest
// server. Cleanup drains and closes the API (so that open streams end), then
// closes the server.
func Serve(t testing.TB, ep *Endpoint, bindings ...mediation.EntrypointBinding) *Server {
	t.Helper()
	return ServeAPI(t, ep, mediation.APIOptions{Entrypoints: bindings})
}

// ServeAPI is Serve with the API's other options (flows, ...); o.Endpoint
// is set to ep.
func ServeAPI(t testing.TB, ep *Endpoint, o mediation.APIOptions) *Server {
	t.Helper()
	if o.ID == "" {
		o.ID, o.Name = "test", "test"
	}
	o.Endpoint = ep
	api := mediation.NewAPI(o)
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		defer cancel()
		if err := api.Close(ctx); err != nil {
			t.Errorf("closing the API: %v", err)
		}
		srv.Close()
	})
	return &Server{Server: srv, API: api, Endpoint: ep}
}

// Drain starts draining the API without waiting, as a gateway shutdown does.
func (s *Server) Drain() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Drain starts at once and returns ctx.Err() without waiting
	_ = s.API.Drain(ctx)
}
