package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/store"
)

// RenewCertificatesRequest asks for a Fabric network's certificates
// issued before At to be renewed once At has come; no At means now.
type RenewCertificatesRequest struct {
	At *time.Time `json:"at,omitempty"`
}

// renewCertificates answers POST /networks/{name}/certificates/renew: it
// sets spec.fabric.renewCertificates, and the controller renews every
// certificate of the network's nodes, admins and built-in application
// identities issued before that time, restarting one node at a time.
// Identities enrolled through the API are their holders' to renew
// (POST .../identities/{org}/{identity}/renew).
func (a *API) renewCertificates(w http.ResponseWriter, r *http.Request) {
	var req RenewCertificatesRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeProblem(w, r, Problem{Type: ProblemMalformed, Status: http.StatusBadRequest, Detail: "the body must be empty or a JSON object with the documented fields: " + err.Error()})
		return
	}
	at := time.Now().UTC().Truncate(time.Second)
	if req.At != nil {
		at = req.At.UTC()
	}
	for range 10 {
		n, scope, ok := a.getStored(w, r)
		if !ok || !a.allow(w, r, auth.NetworkWrite, auth.Scope{Org: scope.Org, Network: scope.Network}) {
			return
		}
		if ai := auditFrom(r.Context()); ai != nil {
			ai.detail = "certificates issued before " + at.Format(time.RFC3339)
		}
		conflict := func(format string, args ...any) {
			writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: fmt.Sprintf(format, args...)})
		}
		if n.Spec.Chain != apis.ChainFabric || n.Spec.Fabric == nil {
			conflict("network %s is a %s network, whose nodes ChainDock issues no certificates to", n.Metadata.Name, n.Spec.Chain)
			return
		}
		if n.Metadata.DeletionTimestamp != nil {
			conflict("network %s is being deleted", n.Metadata.Name)
			return
		}
		if have := n.Spec.Fabric.RenewCertificates; have != nil && have.Equal(at) {
			writeJSON(w, http.StatusOK, n)
			return
		}
		f := *n.Spec.Fabric
		f.RenewCertificates = &at
		n.Spec.Fabric = &f
		if a.storeChange(w, r, n, "CertificateRenewalRequested", "the certificates issued before "+at.Format(time.RFC3339)+" are to be renewed") {
			return
		}
	}
	writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: "the network kept changing; try again"})
}

// CertificateList is the certificates of a Fabric network the platform
// renews.
type CertificateList struct {
	Items []chain.Certificate `json:"items"`
}

// listCertificates answers GET /networks/{name}/certificates: every
// node's enrolment and TLS certificate and each organisation's admin and
// built-in application identity's, with when each expires and is
// renewed.
func (a *API) listCertificates(w http.ResponseWriter, r *http.Request) {
	n, scope, ok := a.getStored(w, r)
	if !ok || !a.allow(w, r, auth.NetworkRead, auth.Scope{Org: scope.Org, Network: scope.Network}) {
		return
	}
	if n.Spec.Chain != apis.ChainFabric || n.Spec.Fabric == nil {
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("network %s is a %s network, whose nodes ChainDock issues no certificates to", n.Metadata.Name, n.Spec.Chain)})
		return
	}
	plan, err := a.storedPlan(r.Context(), n)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusOK, CertificateList{Items: []chain.Certificate{}})
		return
	}
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	certs, err := fabric.Certificates(&n.Spec, plan, time.Now())
	if err != nil {
		writeProblem(w, r, Problem{Type: ProblemInternal, Status: http.StatusInternalServerError, Detail: fmt.Sprintf("network %s: %v", n.Metadata.Name, err)})
		return
	}
	if certs == nil {
		certs = []chain.Certificate{}
	}
	writeJSON(w, http.StatusOK, CertificateList{Items: certs})
}
