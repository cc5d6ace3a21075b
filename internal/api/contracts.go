package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"sigs.k8s.io/yaml"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/lifecycle"
	"github.com/chaindock/chaindock/internal/store"
)

// ProblemContractRefused: the network cannot take the contract operation.
const ProblemContractRefused = "urn:chaindock:problem:contract-refused"

// PackageList is the contract store as a caller sees it: the templates and
// the packages of its organizations, without their files.
type PackageList struct {
	Items []apis.Package `json:"items"`
}

// ContractRequest deploys or upgrades a contract. Package is
// "owner/name@version".
type ContractRequest struct {
	Name    string `json:"name,omitempty"`
	Package string `json:"package"`
	// Args are the constructor's arguments, as text, for chains whose
	// contracts take them (an EVM contract's constructor).
	Args []string `json:"args,omitempty"`
	// EndorsementPolicy is who must endorse the contract's transactions,
	// on chains whose contracts have such a policy (Fabric: ANY, MAJORITY,
	// ALL, or a signature policy expression); empty is the chain's
	// default. Other chains refuse it.
	EndorsementPolicy string `json:"endorsementPolicy,omitempty"`
	// Channel is the channel the contract is on, on chains with more
	// than one (Fabric: one of spec.fabric.channels); empty is the one
	// every organisation shares. An upgrade keeps its contract's channel.
	Channel string `json:"channel,omitempty"`
	// Collections are the contract's private data collections, on chains
	// that have them (Fabric); other chains refuse them. An upgrade that
	// gives none keeps the contract's.
	Collections []apis.Collection `json:"collections,omitempty"`
}

// Contract is a contract on a network: its newest revision, and on
// request its whole history.
type Contract struct {
	apis.ContractRevision
	History []apis.ContractRevision `json:"history,omitempty"`
}

// ContractList lists a network's contracts.
type ContractList struct {
	Items []Contract `json:"items"`
}

// Bounds on a contract's constructor arguments: they are stored with each
// revision.
const (
	maxContractArgs     = 32
	maxContractArgBytes = 4096
	maxPolicyBytes      = 4096
	maxCollections      = 32
)

// contractDriver is the network's chain driver, when it deploys contracts.
func contractDriver(chainName string) (chain.Contracts, bool) {
	d, err := chain.Get(chainName)
	if err != nil {
		return nil, false
	}
	c, ok := d.(chain.Contracts)
	return c, ok
}

// templates are every driver's built-in packages.
func (a *API) templates() []apis.Package {
	var out []apis.Package
	for _, name := range a.opts.Registries.Chains {
		if c, ok := contractDriver(name); ok {
			out = append(out, c.Templates()...)
		}
	}
	return out
}

func withoutFiles(p apis.Package) apis.Package {
	p.Files = nil
	return p
}

// findPackage returns a package version, with its files, that the caller
// may read; one it may not read is not found.
func (a *API) findPackage(w http.ResponseWriter, r *http.Request, ref apis.PackageRef) (*apis.Package, bool) {
	notFound := func() (*apis.Package, bool) {
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: fmt.Sprintf("package %s: %v", ref, store.ErrNotFound)})
		return nil, false
	}
	if ref.Owner == apis.BuiltinOwner {
		for _, p := range a.templates() {
			if p.Name == ref.Name && p.Version == ref.Version {
				return &p, true
			}
		}
		return notFound()
	}
	if !auth.Sees(principalFrom(r.Context()), auth.PackageRead, auth.Scope{Org: ref.Owner}) {
		auditHidden(r, ref.Owner, "package "+ref.String())
		return notFound()
	}
	p, err := a.opts.Store.GetPackage(r.Context(), ref.Owner, ref.Name, ref.Version)
	if errors.Is(err, store.ErrNotFound) {
		return notFound()
	}
	if err != nil {
		a.storeError(w, r, err)
		return nil, false
	}
	return p, true
}

// listPackages answers GET /packages, filtered by chain, owner and name.
func (a *API) listPackages(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	q := r.URL.Query()
	keep := func(pkg apis.Package) bool {
		return (q.Get("chain") == "" || pkg.Chain == q.Get("chain")) && (q.Get("owner") == "" || pkg.Owner == q.Get("owner")) &&
			(q.Get("name") == "" || pkg.Name == q.Get("name"))
	}
	out := PackageList{Items: []apis.Package{}}
	for _, t := range a.templates() {
		if keep(t) {
			out.Items = append(out.Items, withoutFiles(t))
		}
	}
	var owners []string
	if !p.PlatformAdmin {
		owners = []string{}
		for _, o := range p.Orgs() {
			if auth.Sees(p, auth.PackageRead, auth.Scope{Org: o}) {
				owners = append(owners, o)
			}
		}
	}
	stored, err := a.opts.Store.ListPackages(r.Context(), owners)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	for _, s := range stored {
		if keep(*s) {
			out.Items = append(out.Items, *s)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// getPackage answers GET /packages/{owner}/{pkg}/{version} with the files.
func (a *API) getPackage(w http.ResponseWriter, r *http.Request) {
	ref := apis.PackageRef{Owner: chi.URLParam(r, "owner"), Name: chi.URLParam(r, "pkg"), Version: chi.URLParam(r, "version")}
	if p, ok := a.findPackage(w, r, ref); ok {
		writeJSON(w, http.StatusOK, p)
	}
}

// decodePackage reads a package from JSON or YAML, strictly.
func decodePackage(w http.ResponseWriter, r *http.Request) (*apis.Package, bool) {
	// Base64 makes binary files a third bigger than MaxPackageBytes.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, apis.MaxPackageBytes*3/2+64<<10))
	if err != nil {
		writeProblem(w, r, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("a package may hold at most %d bytes of files", apis.MaxPackageBytes)})
		return nil, false
	}
	js, err := yaml.YAMLToJSON(body)
	if err != nil {
		writeProblem(w, r, Problem{Type: ProblemMalformed, Status: http.StatusBadRequest, Detail: "malformed YAML or JSON: " + err.Error()})
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var p apis.Package
	if err := dec.Decode(&p); err != nil {
		writeProblem(w, r, Problem{Type: ProblemMalformed, Status: http.StatusBadRequest, Detail: "the body must be a package with the documented fields: " + err.Error()})
		return nil, false
	}
	return &p, true
}

// createPackage answers POST /packages: an organization uploads a package
// version.
func (a *API) createPackage(w http.ResponseWriter, r *http.Request) {
	p, ok := decodePackage(w, r)
	if !ok {
		return
	}
	pr := principalFrom(r.Context())
	if p.Owner == "" {
		if orgs := pr.Orgs(); len(orgs) == 1 {
			p.Owner = orgs[0]
		} else {
			invalid(w, r, apis.ErrorList{{Field: "owner", Detail: fmt.Sprintf("is required: name the organization that owns the package (one of %v)", orgs)}})
			return
		}
	}
	setAuditOrg(r, p.Owner)
	if p.Owner == apis.BuiltinOwner {
		invalid(w, r, apis.ErrorList{{Field: "owner", Detail: fmt.Sprintf("%q holds the templates that ship with ChainDock; upload under your organization", apis.BuiltinOwner)}})
		return
	}
	if !a.allow(w, r, auth.PackageWrite, auth.Scope{Org: p.Owner}) {
		return
	}
	if p.Builtin || p.CreatedBy != "" || p.CreatedAt != nil {
		invalid(w, r, apis.ErrorList{{Field: "builtin, createdBy, createdAt", Detail: "are set by the server; leave them out"}})
		return
	}
	errs := apis.ValidatePackage(p, a.opts.Registries)
	if c, ok := contractDriver(p.Chain); ok {
		errs = append(errs, c.ValidatePackage(p)...)
	} else if slices.Contains(a.opts.Registries.Chains, p.Chain) {
		errs.Add("chain", "the %s driver deploys no contracts", p.Chain)
	}
	if _, err := a.opts.Store.GetOrganization(r.Context(), p.Owner); err != nil {
		errs.Add("owner", "no organization %q", p.Owner)
	}
	if invalid(w, r, errs) {
		return
	}
	now := time.Now().UTC()
	p.Checksum, p.CreatedBy, p.CreatedAt = p.Digest(), pr.Actor(), &now
	if ai := auditFrom(r.Context()); ai != nil {
		ai.detail = "package " + p.Ref().String() + " " + p.Checksum
	}
	if err := a.opts.Store.CreatePackage(r.Context(), p); err != nil {
		a.conflictOr(w, r, err, "version", fmt.Sprintf("package %s already exists; a package version never changes, upload a new version", p.Ref()))
		return
	}
	writeJSON(w, http.StatusCreated, withoutFiles(*p))
}

// deletePackage answers DELETE /packages/{owner}/{pkg}/{version}; a
// version deployed on a network stays.
func (a *API) deletePackage(w http.ResponseWriter, r *http.Request) {
	ref := apis.PackageRef{Owner: chi.URLParam(r, "owner"), Name: chi.URLParam(r, "pkg"), Version: chi.URLParam(r, "version")}
	setAuditOrg(r, ref.Owner)
	if ref.Owner == apis.BuiltinOwner {
		writeProblem(w, r, Problem{Type: ProblemForbidden, Status: http.StatusForbidden, Detail: "templates that ship with ChainDock cannot be deleted"})
		return
	}
	if _, ok := a.findPackage(w, r, ref); !ok {
		return
	}
	if !a.allow(w, r, auth.PackageWrite, auth.Scope{Org: ref.Owner}) {
		return
	}
	uids, err := a.opts.Store.PackageInUse(r.Context(), ref)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	if len(uids) > 0 {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict,
			Detail: fmt.Sprintf("package %s is deployed on %d network(s); remove those contracts first", ref, len(uids))})
		return
	}
	if err := a.opts.Store.DeletePackage(r.Context(), ref.Owner, ref.Name, ref.Version); err != nil {
		a.storeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listContracts answers GET /networks/{name}/contracts.
func (a *API) listContracts(w http.ResponseWriter, r *http.Request) {
	n, ok := a.ledgerNetwork(w, r, auth.NetworkRead)
	if !ok {
		return
	}
	revs, err := a.opts.Store.Contracts(r.Context(), n.Metadata.UID)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	out := ContractList{Items: []Contract{}}
	for _, c := range revs {
		c.Network = n.Metadata.Name
		out.Items = append(out.Items, Contract{ContractRevision: c})
	}
	writeJSON(w, http.StatusOK, out)
}

// contractHistory is a contract's revisions, or a 404 answer.
func (a *API) contractHistory(w http.ResponseWriter, r *http.Request, n *apis.Network, name string) ([]apis.ContractRevision, bool) {
	revs, err := a.opts.Store.ContractRevisions(r.Context(), n.Metadata.UID, name)
	if err != nil {
		a.storeError(w, r, err)
		return nil, false
	}
	for i := range revs {
		revs[i].Network = n.Metadata.Name
	}
	return revs, true
}

// getContract answers GET /networks/{name}/contracts/{contract} with the
// contract's history.
func (a *API) getContract(w http.ResponseWriter, r *http.Request) {
	n, ok := a.ledgerNetwork(w, r, auth.NetworkRead)
	if !ok {
		return
	}
	name := chi.URLParam(r, "contract")
	revs, ok := a.contractHistory(w, r, n, name)
	if !ok {
		return
	}
	if len(revs) == 0 {
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: fmt.Sprintf("network %s has no contract %q", n.Metadata.Name, name)})
		return
	}
	writeJSON(w, http.StatusOK, Contract{ContractRevision: revs[len(revs)-1], History: revs})
}

// deployContract answers POST /networks/{name}/contracts.
func (a *API) deployContract(w http.ResponseWriter, r *http.Request) {
	var req ContractRequest
	if !decodeBody(w, r, &req) {
		return
	}
	a.changeContract(w, r, req.Name, req, apis.ContractDeploy)
}

// upgradeContract answers PUT /networks/{name}/contracts/{contract}.
func (a *API) upgradeContract(w http.ResponseWriter, r *http.Request) {
	var req ContractRequest
	if !decodeBody(w, r, &req) {
		return
	}
	name := chi.URLParam(r, "contract")
	if req.Name != "" && req.Name != name {
		invalid(w, r, apis.ErrorList{{Field: "name", Detail: fmt.Sprintf("%q differs from the contract in the path, %q; leave it out", req.Name, name)}})
		return
	}
	a.changeContract(w, r, name, req, apis.ContractUpgrade)
}

// removeContract answers DELETE /networks/{name}/contracts/{contract}.
func (a *API) removeContract(w http.ResponseWriter, r *http.Request) {
	a.changeContract(w, r, chi.URLParam(r, "contract"), ContractRequest{}, apis.ContractRemove)
}

// rulesOver reports whether the contract's endorsement policy, or one
// of its collections' members or endorsement policies, is a rule over
// the organisations a channel has when it is applied (Fabric's ANY,
// MAJORITY and ALL, a collection's members "*"): the same contract again
// may then mean more organisations, and the driver tells whether it
// changes anything.
func rulesOver(policy string, cols []apis.Collection) bool {
	if lifecycle.IsRule(policy) {
		return true
	}
	return slices.ContainsFunc(cols, func(c apis.Collection) bool {
		return slices.Equal(c.Members, []string{"*"}) || lifecycle.IsRule(c.EndorsementPolicy)
	})
}

// contractLocks serialises the contract operations of each network on this
// server, so that the chain is not asked twice for what only one revision
// can record.
var contractLocks sync.Map // network UID → *sync.Mutex

// changeContract does one step of a contract's life: the chain's part
// through the driver, then the revision that records it.
func (a *API) changeContract(w http.ResponseWriter, r *http.Request, name string, req ContractRequest, action string) {
	pkgRef := req.Package
	n, scope, ok := a.getStored(w, r)
	if !ok || !a.allow(w, r, auth.ContractDeploy, scope) {
		return
	}
	ctx := r.Context()
	driver, ok := contractDriver(n.Spec.Chain)
	if !ok {
		writeProblem(w, r, Problem{Type: ProblemNotAcceptable, Status: http.StatusNotImplemented,
			Detail: fmt.Sprintf("the %s driver deploys no contracts", n.Spec.Chain)})
		return
	}
	var errs apis.ErrorList
	if action == apis.ContractDeploy {
		checkName(&errs, "name", name)
	}
	var ref apis.PackageRef
	if action != apis.ContractRemove {
		var err error
		if ref, err = apis.ParsePackageRef(pkgRef); err != nil {
			errs.Add("package", "%v", err)
		}
	}
	if len(req.Args) > maxContractArgs {
		errs.Add("args", "has %d arguments; at most %d are taken", len(req.Args), maxContractArgs)
	}
	for i, a := range req.Args {
		if len(a) > maxContractArgBytes {
			errs.Add(fmt.Sprintf("args[%d]", i), "has %d bytes; at most %d are taken", len(a), maxContractArgBytes)
		}
	}
	if len(req.Channel) > apis.MaxNameLength*4 {
		errs.Add("channel", "has %d bytes; at most %d are taken", len(req.Channel), apis.MaxNameLength*4)
	}
	if len(req.EndorsementPolicy) > maxPolicyBytes {
		errs.Add("endorsementPolicy", "has %d bytes; at most %d are taken", len(req.EndorsementPolicy), maxPolicyBytes)
	}
	if len(req.Collections) > maxCollections {
		errs.Add("collections", "has %d collections; at most %d are taken", len(req.Collections), maxCollections)
	}
	for i, c := range req.Collections {
		if len(c.Policy) > maxPolicyBytes {
			errs.Add(fmt.Sprintf("collections[%d].policy", i), "has %d bytes; at most %d are taken", len(c.Policy), maxPolicyBytes)
		}
		if len(c.EndorsementPolicy) > maxPolicyBytes {
			errs.Add(fmt.Sprintf("collections[%d].endorsementPolicy", i), "has %d bytes; at most %d are taken", len(c.EndorsementPolicy), maxPolicyBytes)
		}
	}
	if invalid(w, r, errs) {
		return
	}
	if ai := auditFrom(ctx); ai != nil {
		ai.detail = strings.TrimSpace(fmt.Sprintf("%s contract %s %s", action, name, pkgRef))
	}
	if n.Metadata.DeletionTimestamp != nil || n.Status.RunningSince == nil {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict,
			Detail: fmt.Sprintf("network %s is %s; contracts are deployed on a running network", n.Metadata.Name, n.Status.Phase)})
		return
	}
	mu, _ := contractLocks.LoadOrStore(n.Metadata.UID, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()

	revs, ok := a.contractHistory(w, r, n, name)
	if !ok {
		return
	}
	var current *apis.ContractRevision
	if len(revs) > 0 {
		current = &revs[len(revs)-1]
	}
	refuse := func(format string, args ...any) {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: fmt.Sprintf(format, args...)})
	}
	deployed := current != nil && current.State == apis.ContractDeployed
	switch {
	case action == apis.ContractDeploy && deployed:
		refuse("contract %s is deployed on network %s (package %s, revision %d); upgrade it, or remove it first", name, n.Metadata.Name, current.Package, current.Revision)
		return
	case action != apis.ContractDeploy && current == nil:
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: fmt.Sprintf("network %s has no contract %q", n.Metadata.Name, name)})
		return
	case action != apis.ContractDeploy && !deployed:
		refuse("contract %s was removed from network %s at revision %d; deploy it again", name, n.Metadata.Name, current.Revision)
		return
	case action == apis.ContractUpgrade && (ref.Owner != current.Package.Owner || ref.Name != current.Package.Name):
		invalid(w, r, apis.ErrorList{{Field: "package", Detail: fmt.Sprintf("%s is not a version of %s/%s, the package of contract %s", ref, current.Package.Owner, current.Package.Name, name)}})
		return
	case action == apis.ContractUpgrade && req.Channel != "" && req.Channel != current.Channel:
		invalid(w, r, apis.ErrorList{{Field: "channel", Detail: fmt.Sprintf("contract %s is on channel %q: an upgrade keeps its channel; leave channel out, or deploy another contract on %q", name, current.Channel, req.Channel)}})
		return
	case action == apis.ContractUpgrade && ref.Version == current.Package.Version &&
		strings.TrimSpace(req.EndorsementPolicy) == strings.TrimSpace(current.EndorsementPolicy) &&
		(req.Collections == nil || apis.SameCollections(req.Collections, current.Collections)) &&
		!rulesOver(req.EndorsementPolicy, current.Collections):
		refuse("contract %s already runs %s with that endorsement policy and those collections", name, ref)
		return
	}

	rev := apis.ContractRevision{Network: n.Metadata.Name, Name: name, Action: action, Actor: principalFrom(ctx).Actor(), Revision: 1}
	if current != nil {
		rev.Revision = current.Revision + 1
	}
	var (
		res chain.ContractResult
		err error
	)
	if action == apis.ContractRemove {
		rev.State, rev.Package = apis.ContractRemoved, current.Package
		res, err = driver.RemoveContract(ctx, n, current)
	} else {
		pkg, ok := a.findPackage(w, r, ref)
		if !ok {
			return
		}
		if pkg.Chain != n.Spec.Chain {
			invalid(w, r, apis.ErrorList{{Field: "package", Detail: fmt.Sprintf("%s is a %s package; network %s runs %s", ref, pkg.Chain, n.Metadata.Name, n.Spec.Chain)}})
			return
		}
		rev.State, rev.Package = apis.ContractDeployed, pkg.Ref()
		rev.Args, rev.EndorsementPolicy, rev.Channel, rev.Collections = req.Args, req.EndorsementPolicy, req.Channel, req.Collections
		if current != nil {
			rev.Channel = current.Channel
			if req.Collections == nil {
				rev.Collections = current.Collections
			}
		}
		var plan *chain.Plan
		if plan, err = a.deployPlan(r, n, driver); err != nil {
			a.storeError(w, r, err)
			return
		}
		res, err = driver.DeployContract(ctx, n, chain.DeployRequest{Name: name, Package: pkg, Current: current, Args: req.Args,
			EndorsementPolicy: req.EndorsementPolicy, Channel: rev.Channel, Collections: rev.Collections, Plan: plan})
	}
	var fieldErrs apis.ErrorList
	switch {
	case errors.As(err, &fieldErrs):
		invalid(w, r, fieldErrs)
		return
	case errors.Is(err, chain.ErrContractRefused):
		writeProblem(w, r, Problem{Type: ProblemContractRefused, Status: http.StatusConflict, Detail: err.Error()})
		return
	case err != nil:
		a.gatewayError(w, r, err)
		return
	}
	rev.Ref, rev.TxHash, rev.Height, rev.Time = res.Ref, res.TxHash, res.Height, time.Now().UTC()
	if rev.Collections == nil {
		rev.Collections = res.Collections
	}
	if err := a.opts.Store.AddContractRevision(ctx, n.Metadata.UID, rev); err != nil {
		if errors.Is(err, store.ErrConflict) {
			refuse("contract %s on network %s was changed by another request meanwhile; read it and try again", name, n.Metadata.Name)
			return
		}
		a.storeError(w, r, err)
		return
	}
	_ = a.opts.Store.AddEvent(ctx, apis.Event{Time: rev.Time, Kind: apis.KindNetwork, Name: n.Metadata.Name, UID: n.Metadata.UID,
		Type: apis.EventNormal, Reason: "Contract" + strings.ToUpper(action[:1]) + action[1:],
		Message: fmt.Sprintf("contract %s revision %d: %s %s (%s)", name, rev.Revision, action, rev.Package, rev.Ref)})
	status := http.StatusOK
	if action == apis.ContractDeploy {
		status = http.StatusCreated
	}
	writeJSON(w, status, Contract{ContractRevision: rev})
}

// deployPlan is the network's stored plan when its driver deploys with
// the network's keys (a chain.PlanLedger), else nil. The store unseals
// it.
func (a *API) deployPlan(r *http.Request, n *apis.Network, driver chain.Contracts) (*chain.Plan, error) {
	if _, ok := driver.(chain.PlanLedger); !ok {
		return nil, nil
	}
	return a.storedPlan(r.Context(), n)
}

// contractRemoved answers, and returns true, when tx calls a contract
// that was removed from the network.
func (a *API) contractRemoved(w http.ResponseWriter, r *http.Request, n *apis.Network, tx []byte) bool {
	driver, ok := contractDriver(n.Spec.Chain)
	if !ok {
		return false
	}
	ref, ok := driver.TxContract(n, tx)
	if !ok {
		return false
	}
	revs, err := a.opts.Store.Contracts(r.Context(), n.Metadata.UID)
	if err != nil {
		a.storeError(w, r, err)
		return true
	}
	var removed *apis.ContractRevision
	for i, c := range revs {
		switch {
		case c.Ref != ref:
		case c.State == apis.ContractDeployed:
			return false
		default:
			removed = &revs[i]
		}
	}
	if removed == nil {
		return false
	}
	writeProblem(w, r, Problem{Type: ProblemContractRefused, Status: http.StatusConflict,
		Detail: fmt.Sprintf("contract %s (%s) was removed from network %s at revision %d; deploy it again to use it", removed.Name, ref, n.Metadata.Name, removed.Revision)})
	return true
}
