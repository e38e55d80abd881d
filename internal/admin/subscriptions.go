package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

// ErrBadRequest marks errors the caller can fix: they are answered 400
// with the error as detail.
var ErrBadRequest = errors.New("bad request")

// Subscriptions is the running gateway's webhook subscriptions
// (internal/server implements it).
type Subscriptions interface {
	// CreateSubscription validates, stores and starts a subscription of the
	// API apiID; errors wrap ErrUnknownAPI or ErrBadRequest when the caller
	// is at fault.
	CreateSubscription(ctx context.Context, apiID string, s store.Subscription) (store.Subscription, error)
	// Subscription returns one subscription with its delivery status.
	Subscription(ctx context.Context, id string) (store.Subscription, error)
	// Subscriptions lists the subscriptions of one API.
	Subscriptions(ctx context.Context, apiID string) ([]store.Subscription, error)
	// DeleteSubscription stops and removes a subscription.
	DeleteSubscription(ctx context.Context, id string) error
	// ResumeSubscription makes a stopped subscription active again.
	ResumeSubscription(ctx context.Context, id string) (store.Subscription, error)
}

// maxSubscriptionBody bounds a POST body.
const maxSubscriptionBody = 64 << 10

// subscriptionsHandler serves the subscription routes of the management API.
type subscriptionsHandler struct{ subs Subscriptions }

func (h *subscriptionsHandler) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/apis/{id}/subscriptions", h.create)
	mux.HandleFunc("GET /v1/apis/{id}/subscriptions", h.list)
	mux.HandleFunc("GET /v1/subscriptions/{id}", h.get)
	mux.HandleFunc("DELETE /v1/subscriptions/{id}", h.delete)
	mux.HandleFunc("POST /v1/subscriptions/{id}/resume", h.resume)
}

// subscriptionRequest is the body of POST /v1/apis/{id}/subscriptions.
type subscriptionRequest struct {
	Plan          string `json:"plan"`
	Configuration struct {
		CallbackURL string            `json:"callbackUrl"`
		Headers     map[string]string `json:"headers"`
		Secret      string            `json:"secret"`
		Retry       struct {
			MaxAttempts  int              `json:"maxAttempts"`
			InitialDelay plugins.Duration `json:"initialDelay"`
			MaxDelay     plugins.Duration `json:"maxDelay"`
		} `json:"retry"`
		MaxConcurrentDeliveries int `json:"maxConcurrentDeliveries"`
	} `json:"configuration"`
}

// subscriptionView is a subscription as the management API shows it: no
// secret, durations as Go durations, zero times left out.
type subscriptionView struct {
	ID                      string            `json:"id"`
	APIID                   string            `json:"apiId"`
	Plan                    string            `json:"plan"`
	Status                  string            `json:"status"`
	CallbackURL             string            `json:"callbackUrl"`
	Headers                 map[string]string `json:"headers,omitempty"`
	Retry                   retryView         `json:"retry"`
	MaxConcurrentDeliveries int               `json:"maxConcurrentDeliveries,omitempty"`
	Delivered               int64             `json:"delivered"`
	Failed                  int64             `json:"failed"`
	DeadLettered            int64             `json:"deadLettered"`
	Retrying                int               `json:"retrying"`
	LastError               string            `json:"lastError,omitempty"`
	LastErrorAt             *time.Time        `json:"lastErrorAt,omitempty"`
	LastDeliveryAt          *time.Time        `json:"lastDeliveryAt,omitempty"`
	CreatedAt               time.Time         `json:"createdAt"`
	// Secret is set only in the answer to the creation.
	Secret string `json:"secret,omitempty"`
}

type retryView struct {
	MaxAttempts  int    `json:"maxAttempts"`
	InitialDelay string `json:"initialDelay"`
	MaxDelay     string `json:"maxDelay"`
}

func viewOf(s store.Subscription) subscriptionView {
	v := subscriptionView{
		ID: s.ID, APIID: s.APIID, Plan: s.Plan, Status: s.Status, CallbackURL: s.CallbackURL, Headers: s.Headers,
		Retry:                   retryView{s.Retry.MaxAttempts, s.Retry.InitialDelay.String(), s.Retry.MaxDelay.String()},
		MaxConcurrentDeliveries: s.MaxConcurrentDeliveries,
		Delivered:               s.Delivered, Failed: s.Failed, DeadLettered: s.DeadLettered, Retrying: s.Retrying,
		LastError: s.LastError, CreatedAt: s.CreatedAt,
	}
	if !s.LastErrorAt.IsZero() {
		v.LastErrorAt = &s.LastErrorAt
	}
	if !s.LastDeliveryAt.IsZero() {
		v.LastDeliveryAt = &s.LastDeliveryAt
	}
	return v
}

func (h *subscriptionsHandler) create(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSubscriptionBody))
	if err != nil {
		mediation.WriteProblem(w, http.StatusRequestEntityTooLarge, "Subscription too large",
			fmt.Sprintf("at most %d bytes", maxSubscriptionBody), nil)
		return
	}
	var req subscriptionRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		mediation.WriteProblem(w, http.StatusBadRequest, "Invalid subscription", "body: "+err.Error(), nil)
		return
	}
	c := req.Configuration
	sub, err := h.subs.CreateSubscription(r.Context(), r.PathValue("id"), store.Subscription{
		Plan: req.Plan, CallbackURL: c.CallbackURL, Headers: c.Headers, Secret: c.Secret,
		Retry: store.Retry{
			MaxAttempts: c.Retry.MaxAttempts, InitialDelay: time.Duration(c.Retry.InitialDelay),
			MaxDelay: time.Duration(c.Retry.MaxDelay),
		},
		MaxConcurrentDeliveries: c.MaxConcurrentDeliveries,
	})
	if err != nil {
		writeSubscriptionError(w, err, r.PathValue("id"))
		return
	}
	v := viewOf(sub)
	v.Secret = sub.Secret // the only time it is shown
	w.Header().Set("Location", "/v1/subscriptions/"+sub.ID)
	writeJSON(w, http.StatusCreated, v)
}

func (h *subscriptionsHandler) list(w http.ResponseWriter, r *http.Request) {
	subs, err := h.subs.Subscriptions(r.Context(), r.PathValue("id"))
	if err != nil {
		writeSubscriptionError(w, err, r.PathValue("id"))
		return
	}
	items := make([]subscriptionView, 0, len(subs))
	for _, s := range subs {
		items = append(items, viewOf(s))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (h *subscriptionsHandler) get(w http.ResponseWriter, r *http.Request) {
	sub, err := h.subs.Subscription(r.Context(), r.PathValue("id"))
	if err != nil {
		writeSubscriptionError(w, err, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, viewOf(sub))
}

func (h *subscriptionsHandler) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.subs.DeleteSubscription(r.Context(), r.PathValue("id")); err != nil {
		writeSubscriptionError(w, err, r.PathValue("id"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *subscriptionsHandler) resume(w http.ResponseWriter, r *http.Request) {
	sub, err := h.subs.ResumeSubscription(r.Context(), r.PathValue("id"))
	if err != nil {
		writeSubscriptionError(w, err, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, viewOf(sub))
}

func writeSubscriptionError(w http.ResponseWriter, err error, what string) {
	switch {
	case errors.Is(err, ErrBadRequest):
		mediation.WriteProblem(w, http.StatusBadRequest, "Invalid subscription", err.Error(), nil)
	case errors.Is(err, ErrUnknownAPI):
		mediation.WriteProblem(w, http.StatusNotFound, "No such API", what, nil)
	case errors.Is(err, store.ErrNotFound):
		mediation.WriteProblem(w, http.StatusNotFound, "No such subscription", what, nil)
	default:
		mediation.WriteProblem(w, http.StatusServiceUnavailable, "Subscription store unavailable", err.Error(),
			http.Header{"Retry-After": {"1"}})
	}
}
