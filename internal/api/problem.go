package api

import (
	"encoding/json"
	"net/http"

	"github.com/chaindock/chaindock/internal/apis"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type     string            `json:"type"`
	Title    string            `json:"title"`
	Status   int               `json:"status"`
	Detail   string            `json:"detail,omitempty"`
	Instance string            `json:"instance,omitempty"`
	Errors   []apis.FieldError `json:"errors,omitempty"`
	// Refusal is an application's refusal of a transaction.
	Refusal *Refusal `json:"refusal,omitempty"`
}

// Refusal says which transaction an application refused and why.
type Refusal struct {
	Hash string `json:"hash"`
	Code uint32 `json:"code"`
	Log  string `json:"log"`
	// Height is the block the refusal is recorded in, if any.
	Height int64 `json:"height,omitempty"`
}

// Problem types.
const (
	ProblemInvalid       = "urn:chaindock:problem:invalid-spec"
	ProblemMalformed     = "urn:chaindock:problem:malformed-body"
	ProblemTooLarge      = "urn:chaindock:problem:body-too-large"
	ProblemNotFound      = "urn:chaindock:problem:not-found"
	ProblemExists        = "urn:chaindock:problem:already-exists"
	ProblemConflict      = "urn:chaindock:problem:conflict"
	ProblemUnauthorized  = "urn:chaindock:problem:unauthorized"
	ProblemForbidden     = "urn:chaindock:problem:forbidden"
	ProblemRateLimited   = "urn:chaindock:problem:rate-limited"
	ProblemLocked        = "urn:chaindock:problem:account-locked"
	ProblemGone          = "urn:chaindock:problem:expired"
	ProblemInternal      = "urn:chaindock:problem:internal"
	ProblemBadParameter  = "urn:chaindock:problem:bad-parameter"
	ProblemUnsupported   = "urn:chaindock:problem:unsupported-media-type"
	ProblemNotAcceptable = "urn:chaindock:problem:not-implemented"
)

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.Instance = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
