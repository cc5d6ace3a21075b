package api

import (
	"context"
	"net/http"
)

// KeyRotator is the part of the sealed store the key endpoints use.
type KeyRotator interface {
	Rotate(ctx context.Context) (primary string, resealed int, err error)
	KeyIDs() (primary string, all []string)
}

// KeyStatus is the body of the key endpoints. It never holds key material.
type KeyStatus struct {
	Primary  string   `json:"primary"`
	Keys     []string `json:"keys"`
	Resealed int      `json:"resealed,omitempty"`
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	if a.opts.Keys == nil {
		writeProblem(w, r, Problem{Type: ProblemNotAcceptable, Status: http.StatusNotImplemented, Detail: "this server keeps no sealed secrets"})
		return
	}
	p, all := a.opts.Keys.KeyIDs()
	writeJSON(w, http.StatusOK, KeyStatus{Primary: p, Keys: all})
}

// rotateKey makes a new key-encryption key primary and reseals every stored
// secret with it while the server keeps serving.
func (a *API) rotateKey(w http.ResponseWriter, r *http.Request) {
	if a.opts.Keys == nil {
		writeProblem(w, r, Problem{Type: ProblemNotAcceptable, Status: http.StatusNotImplemented, Detail: "this server keeps no sealed secrets"})
		return
	}
	primary, n, err := a.opts.Keys.Rotate(r.Context())
	if err != nil {
		a.opts.Log.Error("rotate key", "err", err)
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: err.Error()})
		return
	}
	a.opts.Log.Info("key-encryption key rotated", "primary", primary, "resealed", n)
	_, all := a.opts.Keys.KeyIDs()
	writeJSON(w, http.StatusOK, KeyStatus{Primary: primary, Keys: all, Resealed: n})
}
