package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
	"github.com/chaindock/chaindock/internal/store"
)

// KindIdentity is the store kind of application identities enrolled in
// Fabric networks (see apis.KindFabricIdentity); the key of an identity
// the platform made is its sealed blob identityKey.
const KindIdentity = apis.KindFabricIdentity

const identityKey = "key"

// IdentityRequest enrols an application identity.
type IdentityRequest struct {
	Organization string `json:"organization"`
	Name         string `json:"name"`
	// CSR is a PEM certificate signing request (ECDSA P-256, subject CN
	// the name): the key stays with the application. Without one the
	// platform makes the key, returns it once and keeps it sealed, so
	// that its gateway may sign as the identity.
	CSR string `json:"csr,omitempty"`
}

// Identity is an enrolled application identity, and what an application
// needs to reach its organisation's peers with Fabric's own SDK.
type Identity struct {
	Organization string `json:"organization"`
	MSPID        string `json:"mspId"`
	Name         string `json:"name"`
	Certificate  string `json:"certificate"`
	// PrivateKey is the key the platform made, in the answer to the
	// enrolment only.
	PrivateKey string `json:"privateKey,omitempty"`
	// KeyHeld: the platform holds the key, and its gateway signs as the
	// identity for calls that name it; false for a CSR's identity.
	KeyHeld bool `json:"keyHeld"`
	// NotAfter is when the certificate expires: renew it before.
	NotAfter          time.Time             `json:"notAfter"`
	Peers             []fabric.PeerEndpoint `json:"peers"`
	TLSCACertificates []string              `json:"tlsCACertificates"`
	CreatedAt         time.Time             `json:"createdAt"`
	CreatedBy         string                `json:"createdBy,omitempty"`
}

// IdentityList is the body of GET .../identities.
type IdentityList struct {
	Items []Identity `json:"items"`
}

func identityObjectName(n *apis.Network, org, name string) string {
	return n.Metadata.UID + "/" + org + "/" + name
}

func toIdentity(o *store.Object) (Identity, error) {
	var id Identity
	if err := json.Unmarshal(o.Spec, &id); err != nil {
		return Identity{}, fmt.Errorf("identity %s: %w", o.Name, err)
	}
	cert, err := pki.ParseCertPEM([]byte(id.Certificate))
	if err != nil {
		return Identity{}, fmt.Errorf("identity %s: %w", o.Name, err)
	}
	id.NotAfter = cert.NotAfter.UTC()
	id.PrivateKey = ""
	id.CreatedAt = o.CreatedAt.UTC()
	return id, nil
}

// RenewRequest renews an application identity's certificate.
type RenewRequest struct {
	// CSR is a new PEM certificate signing request, required for an
	// identity enrolled from one (its key may be a new one) and refused
	// for one whose key the platform holds, which is renewed for that key.
	CSR string `json:"csr,omitempty"`
	// RevokePrevious revokes the certificate being replaced on the
	// organisation's channels first; without it, it stays valid until it
	// expires.
	RevokePrevious bool `json:"revokePrevious,omitempty"`
}

// identityNetwork loads the network in the path for an identity route:
// it must be a Fabric network the caller may act on with action.
func (a *API) identityNetwork(w http.ResponseWriter, r *http.Request, action auth.Action) (*apis.Network, bool) {
	n, ok := a.ledgerNetwork(w, r, action)
	if !ok {
		return nil, false
	}
	if n.Spec.Chain != apis.ChainFabric {
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("network %s is a %s network: application identities are enrolled in %s networks only", n.Metadata.Name, n.Spec.Chain, apis.ChainFabric)})
		return nil, false
	}
	return n, true
}

// signsForOrg answers 403 unless the caller may sign as org through the
// gateway (see signsFor): who may do that may enrol, see and remove its
// application identities.
func (a *API) signsForOrg(w http.ResponseWriter, r *http.Request, n *apis.Network, org string) bool {
	if signsFor(principalFrom(r.Context()), n)(org) {
		return true
	}
	detail := fmt.Sprintf("%v: the caller belongs to no organisation %s, and may not manage its identities in network %s", auth.ErrDenied, org, n.Metadata.Name)
	if ai := auditFrom(r.Context()); ai != nil {
		ai.detail = detail
	}
	writeProblem(w, r, Problem{Type: ProblemForbidden, Status: http.StatusForbidden, Detail: detail})
	return false
}

// enrollIdentity issues an application identity from the organisation's
// CA: for a CSR's key, or for a key the platform makes, returns once and
// keeps sealed.
func (a *API) enrollIdentity(w http.ResponseWriter, r *http.Request) {
	n, ok := a.identityNetwork(w, r, auth.LedgerSubmit)
	if !ok {
		return
	}
	var req IdentityRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var errs apis.ErrorList
	switch {
	case req.Organization == "":
		errs.Add("organization", "is required: the peer organisation the identity belongs to")
	case !slices.ContainsFunc(n.Spec.Organizations, func(o apis.OrganizationNodes) bool { return o.Name == req.Organization }):
		errs.Add("organization", "%q is no peer organisation of network %s", req.Organization, n.Metadata.Name)
	}
	if req.Name == "" {
		errs.Add("name", "is required")
	} else if err := fabric.CheckIdentityName(req.Name); err != nil {
		errs.Add("name", "%v", err)
	}
	if len(errs) > 0 {
		writeProblem(w, r, Problem{Type: ProblemInvalid, Status: http.StatusBadRequest, Detail: "the request is not valid", Errors: errs})
		return
	}
	if !a.signsForOrg(w, r, n, req.Organization) {
		return
	}
	if n.Metadata.DeletionTimestamp != nil {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict,
			Detail: fmt.Sprintf("network %s is being deleted, with its identities", n.Metadata.Name)})
		return
	}
	plan, ok := a.identityPlan(w, r, n)
	if !ok {
		return
	}
	e, err := fabric.Enroll(plan, req.Organization, req.Name, []byte(req.CSR), time.Now())
	if err != nil {
		a.issueError(w, r, n, req.Organization, fmt.Errorf("enrol %s of %s: %w", req.Name, req.Organization, err))
		return
	}
	id := Identity{
		Organization: e.Organization, MSPID: e.MSPID, Name: e.Name, Certificate: string(e.CertPEM),
		KeyHeld: e.KeyPEM != nil, Peers: e.Peers, TLSCACertificates: []string{string(e.TLSCACertPEM)},
		CreatedBy: principalFrom(r.Context()).Actor(),
	}
	if cert, err := pki.ParseCertPEM(e.CertPEM); err == nil {
		id.NotAfter = cert.NotAfter.UTC()
	}
	spec, err := json.Marshal(id)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	o, err := a.opts.Store.Create(r.Context(), &store.Object{
		Kind: KindIdentity, Name: identityObjectName(n, e.Organization, e.Name), Owner: n.Metadata.Owner,
		Labels: map[string]string{"network": n.Metadata.Name, "organization": e.Organization}, Spec: spec,
	})
	if err != nil {
		a.conflictOr(w, r, err, "name", fmt.Sprintf("identity %s of organisation %s is already enrolled in network %s", e.Name, e.Organization, n.Metadata.Name))
		return
	}
	if e.KeyPEM != nil {
		if err := a.opts.Store.PutBlob(r.Context(), o.UID, identityKey, e.KeyPEM); err != nil {
			// Nothing half-way: no identity whose key is lost.
			_ = a.opts.Store.Delete(context.WithoutCancel(r.Context()), KindIdentity, o.Name, o.UID)
			a.storeError(w, r, err)
			return
		}
	}
	if ai := auditFrom(r.Context()); ai != nil {
		ai.detail = fmt.Sprintf("identity %s/%s (%s), key held: %v", e.Organization, e.Name, e.MSPID, id.KeyHeld)
	}
	id.CreatedAt = o.CreatedAt.UTC()
	id.PrivateKey = string(e.KeyPEM)
	w.Header().Set("Location", "/api/v1/networks/"+n.Metadata.Name+"/identities/"+e.Organization+"/"+e.Name)
	writeJSON(w, http.StatusCreated, id)
}

// identityPlan is the stored plan of n, whose organisations' CAs issue
// identities; 409 while n is not planned yet.
func (a *API) identityPlan(w http.ResponseWriter, r *http.Request, n *apis.Network) (*chain.Plan, bool) {
	plan, err := a.storedPlan(r.Context(), n)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict,
			Detail: fmt.Sprintf("network %s is not planned yet: enrol once it runs", n.Metadata.Name)})
		return nil, false
	} else if err != nil {
		a.storeError(w, r, err)
		return nil, false
	}
	return plan, true
}

// issueError answers an organisation's CA's refusal to issue an
// identity's certificate.
func (a *API) issueError(w http.ResponseWriter, r *http.Request, n *apis.Network, org string, err error) {
	var bad *pki.CSRError
	switch {
	case errors.As(err, &bad):
		writeProblem(w, r, Problem{Type: ProblemInvalid, Status: http.StatusBadRequest, Detail: err.Error(),
			Errors: []apis.FieldError{{Field: "csr", Detail: err.Error()}}})
	case errors.Is(err, fabric.ErrOrgNotPlanned):
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict,
			Detail: fmt.Sprintf("organisation %s of network %s is not planned yet: enrol once its peers run (%v)", org, n.Metadata.Name, err)})
	default:
		a.gatewayError(w, r, err)
	}
}

// renewIdentity issues an identity a new certificate from its
// organisation's CA, for the key it holds or a new CSR's, and, when
// asked, revokes the one it replaces on the organisation's channels
// first: if that fails nothing changes.
func (a *API) renewIdentity(w http.ResponseWriter, r *http.Request) {
	var req RenewRequest
	if !decodeBody(w, r, &req) {
		return
	}
	n, o, id, ok := a.storedIdentity(w, r, auth.LedgerSubmit)
	if !ok {
		return
	}
	what := "identity " + id.Organization + "/" + id.Name
	switch {
	case id.KeyHeld && req.CSR != "":
		writeProblem(w, r, Problem{Type: ProblemInvalid, Status: http.StatusBadRequest, Detail: "the request is not valid",
			Errors: []apis.FieldError{{Field: "csr", Detail: fmt.Sprintf("%s's key is held by the platform, and its certificate is renewed for that key: leave csr out, or enrol another identity for a key of your own", what)}}})
		return
	case !id.KeyHeld && req.CSR == "":
		writeProblem(w, r, Problem{Type: ProblemInvalid, Status: http.StatusBadRequest, Detail: "the request is not valid",
			Errors: []apis.FieldError{{Field: "csr", Detail: fmt.Sprintf("is required: %s was enrolled from a certificate signing request, and the platform does not hold its key", what)}}})
		return
	}
	if n.Metadata.DeletionTimestamp != nil {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict,
			Detail: fmt.Sprintf("network %s is being deleted, with its identities", n.Metadata.Name)})
		return
	}
	plan, ok := a.identityPlan(w, r, n)
	if !ok {
		return
	}
	var key []byte
	if id.KeyHeld {
		var err error
		if key, err = a.opts.Store.GetBlob(r.Context(), o.UID, identityKey); err != nil {
			a.storeError(w, r, err)
			return
		}
	}
	e, err := fabric.Renew(plan, id.Organization, id.Name, []byte(req.CSR), key, time.Now())
	if err != nil {
		a.issueError(w, r, n, id.Organization, err)
		return
	}
	if req.RevokePrevious {
		if err := fabric.RevokeIdentity(r.Context(), n, plan, id.Organization, []byte(id.Certificate)); err != nil {
			writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable,
				Detail: fmt.Sprintf("%s is not renewed: revoking its certificate failed: %v; try again once the network runs, or renew without revokePrevious", what, err)})
			return
		}
	}
	id.Certificate, id.Peers, id.TLSCACertificates = string(e.CertPEM), e.Peers, []string{string(e.TLSCACertPEM)}
	spec, err := json.Marshal(id)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	o.Spec = spec
	updated, err := a.opts.Store.Update(r.Context(), o)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict,
			Detail: fmt.Sprintf("%s changed or went while it was renewed: read it again, and renew again if it is still there", what)})
		return
	} else if err != nil {
		a.storeError(w, r, err)
		return
	}
	if ai := auditFrom(r.Context()); ai != nil {
		ai.detail = fmt.Sprintf("renewed %s, previous certificate revoked: %v", what, req.RevokePrevious)
	}
	out, err := toIdentity(updated)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// listIdentities lists the identities of the organisations the caller
// may sign as (?organization= one of them), without keys.
func (a *API) listIdentities(w http.ResponseWriter, r *http.Request) {
	n, ok := a.identityNetwork(w, r, auth.LedgerRead)
	if !ok {
		return
	}
	org := r.URL.Query().Get("organization")
	if org != "" && !a.signsForOrg(w, r, n, org) {
		return
	}
	objs, err := a.opts.Store.List(r.Context(), KindIdentity)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	may := signsFor(principalFrom(r.Context()), n)
	out := IdentityList{Items: []Identity{}}
	for _, o := range objs {
		if !strings.HasPrefix(o.Name, n.Metadata.UID+"/") {
			continue
		}
		id, err := toIdentity(o)
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		if org != "" && id.Organization != org || !may(id.Organization) {
			continue
		}
		out.Items = append(out.Items, id)
	}
	writeJSON(w, http.StatusOK, out)
}

// storedIdentity loads the identity in the path, answering 403 or 404:
// its network, its object and the identity it holds.
func (a *API) storedIdentity(w http.ResponseWriter, r *http.Request, action auth.Action) (*apis.Network, *store.Object, Identity, bool) {
	n, ok := a.identityNetwork(w, r, action)
	if !ok {
		return nil, nil, Identity{}, false
	}
	org, name := chi.URLParam(r, "org"), chi.URLParam(r, "identity")
	if !a.signsForOrg(w, r, n, org) {
		return nil, nil, Identity{}, false
	}
	o, err := a.opts.Store.Get(r.Context(), KindIdentity, identityObjectName(n, org, name))
	if errors.Is(err, store.ErrNotFound) {
		notFoundProblem(w, r, fmt.Sprintf("identity %s of organisation %s in network %s", name, org, n.Metadata.Name))
		return nil, nil, Identity{}, false
	} else if err != nil {
		a.storeError(w, r, err)
		return nil, nil, Identity{}, false
	}
	id, err := toIdentity(o)
	if err != nil {
		a.storeError(w, r, err)
		return nil, nil, Identity{}, false
	}
	return n, o, id, true
}

func (a *API) getIdentity(w http.ResponseWriter, r *http.Request) {
	if _, _, id, ok := a.storedIdentity(w, r, auth.LedgerRead); ok {
		writeJSON(w, http.StatusOK, id)
	}
}

// deleteIdentity removes an identity and its key from the platform: its
// gateway no longer signs as it. First, unless ?revoke=false, it revokes
// its certificate on the channel (a revocation list in the
// organisation's MSP), so that the peers refuse what it signs, whoever
// holds its key; if that fails the identity stays, to be removed again.
func (a *API) deleteIdentity(w http.ResponseWriter, r *http.Request) {
	revoke := true
	switch v := r.URL.Query().Get("revoke"); v {
	case "", "true":
	case "false":
		revoke = false
	default:
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("query parameter revoke must be true (the default) or false, not %q", v)})
		return
	}
	n, o, id, ok := a.storedIdentity(w, r, auth.LedgerSubmit)
	if !ok {
		return
	}
	what := "identity " + id.Organization + "/" + id.Name
	if revoke {
		plan, err := a.storedPlan(r.Context(), n)
		if err == nil {
			err = fabric.RevokeIdentity(r.Context(), n, plan, id.Organization, []byte(id.Certificate))
		}
		if err != nil {
			writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable,
				Detail: fmt.Sprintf("%s is kept: %v; try again once the network runs, or remove it with ?revoke=false, which leaves its certificate valid on the channel", what, err)})
			return
		}
		what += ", revoked on the channels of " + id.Organization
	}
	if err := a.opts.Store.Delete(r.Context(), KindIdentity, o.Name, o.UID); err != nil {
		a.storeError(w, r, err)
		return
	}
	if ai := auditFrom(r.Context()); ai != nil {
		ai.detail = what
	}
	w.WriteHeader(http.StatusNoContent)
}

// withIdentityKeys lets the gateway sign a network's calls as the
// identities enrolled in it whose keys the platform holds.
func (a *API) withIdentityKeys(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		network := chi.URLParam(r, "name")
		keys := func(ctx context.Context, org, name string) ([]byte, []byte, error) {
			no, err := a.opts.Store.Get(ctx, apis.KindNetwork, network)
			if err != nil {
				return nil, nil, err
			}
			o, err := a.opts.Store.Get(ctx, KindIdentity, no.UID+"/"+org+"/"+name)
			if errors.Is(err, store.ErrNotFound) {
				return nil, nil, fmt.Errorf("%s/%s: %w", org, name, fabric.ErrNoIdentity)
			} else if err != nil {
				return nil, nil, err
			}
			id, err := toIdentity(o)
			if err != nil {
				return nil, nil, err
			}
			if !id.KeyHeld {
				return nil, nil, fmt.Errorf("%s/%s: %w", org, name, fabric.ErrKeyNotHeld)
			}
			key, err := a.opts.Store.GetBlob(ctx, o.UID, identityKey)
			if err != nil {
				return nil, nil, err
			}
			return []byte(id.Certificate), key, nil
		}
		next.ServeHTTP(w, r.WithContext(fabric.WithIdentityKeys(r.Context(), keys)))
	})
}
