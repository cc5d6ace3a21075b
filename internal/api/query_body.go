package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/chain"
)

// QueryRequest is the body of POST /networks/{name}/query: a query of
// Fabric chaincode that carries transient data, which has no place in a
// URL (proxies and access logs keep URLs; a URL also has no room for
// 256 KiB).
type QueryRequest struct {
	// Path is /CHAINCODE/FUNCTION or /CHANNEL/CHAINCODE/FUNCTION, as in
	// GET .../query.
	Path string   `json:"path"`
	Args []string `json:"args,omitempty"`
	// Transient is the chaincode's transient map, as a submission's
	// (see fabric.TransientValue). It is passed on, never logged or
	// audited.
	Transient json.RawMessage `json:"transient,omitempty"`
	MinHeight int64           `json:"minHeight,omitempty"`
}

// queryAppBody is queryApp with the query in the body.
func (a *API) queryAppBody(w http.ResponseWriter, r *http.Request) {
	n, ok := a.ledgerNetwork(w, r, auth.LedgerRead)
	if !ok {
		return
	}
	if n.Spec.Chain != apis.ChainFabric {
		writeProblem(w, r, Problem{Type: ProblemNotAcceptable, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("network %s is a %s network: POST .../query is for Fabric chaincode with transient data; use GET .../query?path=...&data=...", n.Metadata.Name, n.Spec.Chain)})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxTxBytes))
	if err != nil {
		writeProblem(w, r, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("a query may have at most %d bytes", MaxTxBytes)})
		return
	}
	var q QueryRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		writeProblem(w, r, Problem{Type: ProblemMalformed, Status: http.StatusBadRequest,
			Detail: `the body must be a JSON object {"path": "/CHAINCODE/FUNCTION", "args": [STRING, ...], "transient": {KEY: BASE64 or {"text": STRING}, ...}, "minHeight": NUMBER}: ` + jsonProblem(err)})
		return
	}
	var problems []string
	if !strings.HasPrefix(q.Path, "/") || len(q.Path) > 128 {
		problems = append(problems, fmt.Sprintf("path: must start with / and have at most 128 characters, not %q", q.Path))
	}
	if q.MinHeight < 0 {
		problems = append(problems, fmt.Sprintf("minHeight: %d is negative", q.MinHeight))
	}
	if len(problems) > 0 {
		writeProblem(w, r, Problem{Type: ProblemMalformed, Status: http.StatusBadRequest, Detail: strings.Join(problems, "; ")})
		return
	}
	data, err := json.Marshal(fabricQueryData{Args: q.Args, Transient: q.Transient})
	if err != nil {
		writeProblem(w, r, Problem{Type: ProblemMalformed, Status: http.StatusBadRequest, Detail: "transient: " + jsonProblem(err)})
		return
	}
	a.answerQuery(w, r, n, q.Path, data, q.MinHeight)
}

// fabricQueryData is fabric.QueryData with the transient map as given:
// the driver checks it (fabric.ParseQuery).
type fabricQueryData struct {
	Args      []string        `json:"args,omitempty"`
	Transient json.RawMessage `json:"transient,omitempty"`
}

// jsonProblem is what is wrong with a JSON body, without quoting its
// values: the body may carry private data.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s: a JSON %s, not %s", typ.Field, typ.Value, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	default:
		return "not one JSON object"
	}
}

// answerQuery asks n's application path and data, and answers its
// QueryAnswer.
func (a *API) answerQuery(w http.ResponseWriter, r *http.Request, n *apis.Network, path string, data []byte, minHeight int64) {
	ctx := chain.WithSignsFor(r.Context(), signsFor(principalFrom(r.Context()), n))
	res, node, err := a.gateway.Query(ctx, n, path, data, minHeight)
	if err != nil {
		a.gatewayError(w, r, err)
		return
	}
	out := QueryAnswer{Code: res.Code, Log: res.Log, Height: res.Height, Node: node}
	if json.Valid(res.Value) {
		out.Value = res.Value
	} else {
		out.Data = res.Value
	}
	writeJSON(w, http.StatusOK, out)
}
