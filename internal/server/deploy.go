package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicegw/sluice/internal/admin"
	"github.com/sluicegw/sluice/internal/config"
)

// ErrUnknownAPI is returned by Undeploy for an id that is not deployed.
var ErrUnknownAPI = admin.ErrUnknownAPI

// Deploy provisions c (validated by config.ParseAPI or Load) and serves it at
// once, replacing a deployed API of the same id. Requests in flight keep the
// route table they started with, so open connections of other APIs are
// untouched; those of the replaced API are drained in the background
// (SSE goaway, WebSocket 1001) within the shutdown timeout. Deploy fails,
// changing nothing, when c's paths are served by another API or
// provisioning fails.
func (s *Server) Deploy(ctx context.Context, c *config.API) error {
	s.mu.Lock()
	others := make([]config.API, 0, len(s.apis))
	for id, b := range s.apis {
		if id != c.ID {
			others = append(others, *b.cfg)
		}
	}
	if err := config.PathConflicts(c, others); err != nil {
		s.mu.Unlock()
		return err
	}
	b, err := buildAPI(ctx, s.reg, c, s.env())
	if err != nil {
		s.mu.Unlock()
		return err
	}
	old := s.apis[c.ID]
	s.apis[c.ID] = b
	s.rebuildRoutes()
	s.mu.Unlock()
	s.log.Info("api deployed", "api", c.ID, "replaced", old != nil)
	if old != nil {
		s.retiring.Go(func() { s.retire(old) })
	}
	// Running subscriptions move to the new version by themselves; this
	// starts those that did not run (the API was not deployed before).
	s.hooks.startAPI(ctx, c.ID)
	return nil
}

// Undeploy stops serving the API id: its routes go at once, and its open
// exchanges are drained before its endpoint closes. It returns when the
// drain finished or ctx ended.
func (s *Server) Undeploy(ctx context.Context, id string) error {
	s.mu.Lock()
	b, ok := s.apis[id]
	if ok {
		delete(s.apis, id)
		s.rebuildRoutes()
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownAPI, id)
	}
	s.log.Info("api undeployed", "api", id)
	return b.api.Close(ctx)
}

// retire drains and closes an API that a redeployment replaced.
func (s *Server) retire(b *builtAPI) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.Server.ShutdownTimeout))
	defer cancel()
	if err := b.api.Close(ctx); err != nil {
		s.log.Warn("retiring replaced API", "api", b.cfg.ID, "err", err)
	}
}

// APIs returns the configurations of the deployed APIs, sorted by id.
func (s *Server) APIs() []config.API {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]config.API, 0, len(s.apis))
	for _, b := range s.apis {
		out = append(out, *b.cfg)
	}
	slices.SortFunc(out, func(a, b config.API) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// FromFile reports whether the API id is defined in the configuration file.
func (s *Server) FromFile(id string) bool {
	for i := range s.cfg.APIs {
		if s.cfg.APIs[i].ID == id {
			return true
		}
	}
	return false
}
