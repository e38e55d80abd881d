package mediation

import (
	"encoding/json"
	"net/http"
)

// Problem is an RFC 9457 problem document, the body of every error Sluice
// answers on HTTP.
type Problem struct {
	Type   string `json:"type,omitempty"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// WriteProblem answers status with an application/problem+json body whose
// title says what a person can do about it.
func WriteProblem(w http.ResponseWriter, status int, title, detail string, header http.Header) {
	h := w.Header()
	for k, v := range header {
		h[k] = v
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Problem{Type: "about:blank", Title: title, Status: status, Detail: detail})
}
