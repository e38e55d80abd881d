package server

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/mediation"
)

// cors applies a listener's CORS settings: it answers preflights itself and
// adds Access-Control-* headers to actual responses of allowed origins.
type cors struct {
	anyOrigin   bool
	origins     []string
	methods     string
	headers     string // "" echoes what the preflight asks for
	expose      string
	credentials bool
	maxAge      string
}

func newCORS(c *config.CORS) *cors {
	if c == nil {
		return nil
	}
	methods := c.AllowMethods
	if len(methods) == 0 {
		methods = []string{http.MethodGet, http.MethodPost, http.MethodOptions}
	}
	maxAge := time.Duration(c.MaxAge)
	if maxAge == 0 {
		maxAge = 10 * time.Minute
	}
	return &cors{
		anyOrigin:   slices.Contains(c.AllowOrigins, "*"),
		origins:     c.AllowOrigins,
		methods:     strings.Join(methods, ", "),
		headers:     strings.Join(c.AllowHeaders, ", "),
		expose:      strings.Join(c.ExposeHeaders, ", "),
		credentials: c.AllowCredentials,
		maxAge:      strconv.Itoa(int(maxAge.Seconds())),
	}
}

func (c *cors) allowed(origin string) bool {
	return c.anyOrigin || slices.Contains(c.origins, origin)
}

// handle sets the CORS headers for r and reports whether the request was a
// preflight it already answered.
func (c *cors) handle(w http.ResponseWriter, r *http.Request) (answered bool) {
	origin := r.Header.Get("Origin")
	h := w.Header()
	h.Add("Vary", "Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if origin == "" {
		return false
	}
	if !c.allowed(origin) {
		if preflight {
			mediation.WriteProblem(w, http.StatusForbidden, "Origin not allowed", origin+" is not in this API's cors.allowOrigins", nil)
			return true
		}
		return false // the browser blocks the response without our headers
	}
	if c.anyOrigin && !c.credentials {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if c.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if !preflight {
		if c.expose != "" {
			h.Set("Access-Control-Expose-Headers", c.expose)
		}
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", c.methods)
	if c.headers != "" {
		h.Set("Access-Control-Allow-Headers", c.headers)
	} else if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", c.maxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}
