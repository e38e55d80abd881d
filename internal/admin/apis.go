package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// Deployer is the running gateway as the management API sees it.
type Deployer interface {
	// Deploy serves api at once, replacing a deployed API of its id.
	Deploy(ctx context.Context, api *config.API) error
	// Undeploy stops serving the API id after draining it.
	Undeploy(ctx context.Context, id string) error
	// APIs lists the deployed APIs.
	APIs() []config.API
	// FromFile reports whether the API id comes from the configuration file,
	// which the management API does not change.
	FromFile(id string) bool
}

// APIStore keeps deployed API documents (internal/store implements it).
type APIStore interface {
	PutAPI(ctx context.Context, id string, doc []byte, format string) error
	DeleteAPI(ctx context.Context, id string) error
}

// maxAPIDocument bounds a PUT body.
const maxAPIDocument = 1 << 20

// apisHandler serves /v1/apis and /v1/apis/{id}.
type apisHandler struct {
	d     Deployer
	reg   *plugins.Registry
	store APIStore // nil: nothing persists
}

func (h *apisHandler) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/apis", h.list)
	mux.HandleFunc("GET /v1/apis/{id}", h.get)
	mux.HandleFunc("PUT /v1/apis/{id}", h.put)
	mux.HandleFunc("DELETE /v1/apis/{id}", h.delete)
}

func (h *apisHandler) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"items": h.d.APIs()})
}

func (h *apisHandler) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, a := range h.d.APIs() {
		if a.ID == id {
			writeJSON(w, http.StatusOK, a)
			return
		}
	}
	mediation.WriteProblem(w, http.StatusNotFound, "No such API", id, nil)
}

// put validates a YAML or JSON API document exactly as the configuration
// file is validated and deploys it.
func (h *apisHandler) put(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if h.d.FromFile(id) {
		mediation.WriteProblem(w, http.StatusConflict, "API is defined in the configuration file",
			"change it there; the management API manages only the APIs it created", nil)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIDocument))
	if err != nil {
		mediation.WriteProblem(w, http.StatusRequestEntityTooLarge, "API document too large", "at most 1 MiB", nil)
		return
	}
	api, err := config.ParseAPI("request body", body, h.reg)
	if err != nil {
		mediation.WriteProblem(w, http.StatusBadRequest, "Invalid API document", err.Error(), nil)
		return
	}
	if api.ID != id {
		mediation.WriteProblem(w, http.StatusBadRequest, "API id does not match the URL",
			"the document says "+api.ID+", the URL "+id, nil)
		return
	}
	existed := false
	for _, a := range h.d.APIs() {
		existed = existed || a.ID == id
	}
	if err := h.d.Deploy(r.Context(), api); err != nil {
		status, title := http.StatusBadRequest, "API not deployed"
		if strings.Contains(err.Error(), "already used by api") {
			status, title = http.StatusConflict, "Path taken by another API"
		}
		mediation.WriteProblem(w, status, title, err.Error(), nil)
		return
	}
	if h.store != nil {
		format := "yaml"
		if strings.Contains(r.Header.Get("Content-Type"), "json") {
			format = "json"
		}
		if err := h.store.PutAPI(r.Context(), id, body, format); err != nil {
			// Serving what would be gone after a restart is worse than
			// refusing now.
			_ = h.d.Undeploy(context.WithoutCancel(r.Context()), id)
			mediation.WriteProblem(w, http.StatusServiceUnavailable, "API not saved", err.Error(), http.Header{"Retry-After": {"1"}})
			return
		}
	}
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	writeJSON(w, status, api)
}

func (h *apisHandler) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if h.d.FromFile(id) {
		mediation.WriteProblem(w, http.StatusConflict, "API is defined in the configuration file", "remove it there", nil)
		return
	}
	if h.store != nil {
		if err := h.store.DeleteAPI(r.Context(), id); err != nil && !errors.Is(err, store.ErrNotFound) {
			mediation.WriteProblem(w, http.StatusServiceUnavailable, "API not removed from the store", err.Error(), http.Header{"Retry-After": {"1"}})
			return
		}
	}
	if err := h.d.Undeploy(r.Context(), id); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrUnknownAPI) {
			status = http.StatusNotFound
		}
		mediation.WriteProblem(w, status, "API not undeployed", err.Error(), nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ErrUnknownAPI is what a Deployer's Undeploy wraps for an id it does not
// serve.
var ErrUnknownAPI = errors.New("no such API")

// writeJSON renders v with the configuration's own (camelCase) keys.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := yaml.MarshalWithOptions(v, yaml.JSON())
	if err != nil {
		mediation.WriteProblem(w, http.StatusInternalServerError, "Cannot render", err.Error(), nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
