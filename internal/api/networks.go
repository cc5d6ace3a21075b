package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/clusters"
	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/store"
)

// NetworkList is the body of GET /api/v1/networks.
type NetworkList struct {
	Items []*apis.Network `json:"items"`
}

// NodeList is the body of GET /api/v1/networks/{name}/nodes.
type NodeList struct {
	Items []apis.NodeStatus `json:"items"`
}

// EventList is the body of the events endpoints.
type EventList struct {
	Items []apis.Event `json:"items"`
	// Next is the "after" value that continues the listing.
	Next int64 `json:"next"`
}

func (a *API) storeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: err.Error()})
	case errors.Is(err, store.ErrAlreadyExists):
		writeProblem(w, r, Problem{Type: ProblemExists, Status: http.StatusConflict, Detail: err.Error(),
			Errors: []apis.FieldError{{Field: "metadata.name", Detail: "is already taken"}}})
	case errors.Is(err, store.ErrConflict):
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: err.Error()})
	default:
		a.opts.Log.Error("store", "method", r.Method, "path", r.URL.Path, "err", err)
		writeProblem(w, r, Problem{Type: ProblemInternal, Status: http.StatusInternalServerError, Detail: "internal error; see the server log"})
	}
}

// getStored loads the network in the path. A network the caller may not
// read answers 404, as a missing one does, so names do not leak.
func (a *API) getStored(w http.ResponseWriter, r *http.Request) (*apis.Network, auth.Scope, bool) {
	name := chi.URLParam(r, "name")
	o, err := a.opts.Store.Get(r.Context(), apis.KindNetwork, name)
	if err != nil {
		a.storeError(w, r, err)
		return nil, auth.Scope{}, false
	}
	n, err := store.ObjectToNetwork(o)
	if err != nil {
		a.storeError(w, r, err)
		return nil, auth.Scope{}, false
	}
	scope, err := a.networkScope(r.Context(), n)
	if err != nil {
		a.storeError(w, r, err)
		return nil, auth.Scope{}, false
	}
	setAuditOrg(r, n.Metadata.Owner)
	if !auth.Sees(principalFrom(r.Context()), auth.NetworkRead, scope) {
		auditHidden(r, n.Metadata.Owner, "network "+name)
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: fmt.Sprintf("%s %q: %v", apis.KindNetwork, name, store.ErrNotFound)})
		return nil, auth.Scope{}, false
	}
	return n, scope, true
}

// networkScope says who owns a network and who shares it.
func (a *API) networkScope(ctx context.Context, n *apis.Network) (auth.Scope, error) {
	scope := auth.Scope{Org: n.Metadata.Owner, Network: n.Metadata.Name}
	if n.Spec.Consortium != "" {
		c, err := a.opts.Store.GetConsortium(ctx, n.Spec.Consortium)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return scope, err
		}
		scope.Members = c.Members
	}
	return scope, nil
}

// nodeOrg is the organization that runs a node.
func nodeOrg(n *apis.Network, node *apis.NodeStatus) string {
	if node.Organization != "" {
		return node.Organization
	}
	return n.Metadata.Owner
}

// redact hides, from members of a shared network, where the nodes of other
// organizations run; each sees the network's public status and its own nodes.
func redact(p *auth.Principal, n *apis.Network) {
	for i := range n.Status.Nodes {
		node := &n.Status.Nodes[i]
		if auth.Sees(p, auth.NodeRead, auth.Scope{Org: nodeOrg(n, node), Network: n.Metadata.Name}) {
			continue
		}
		node.PID, node.Endpoints = 0, nil
	}
}

func (a *API) listNetworks(w http.ResponseWriter, r *http.Request) {
	objs, err := a.opts.Store.List(r.Context(), apis.KindNetwork)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	p := principalFrom(r.Context())
	list := NetworkList{Items: []*apis.Network{}}
	for _, o := range objs {
		n, err := store.ObjectToNetwork(o)
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		scope, err := a.networkScope(r.Context(), n)
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		if auth.Sees(p, auth.NetworkRead, scope) {
			redact(p, n)
			list.Items = append(list.Items, n)
		}
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *API) getNetwork(w http.ResponseWriter, r *http.Request) {
	if n, _, ok := a.getStored(w, r); ok {
		redact(principalFrom(r.Context()), n)
		writeJSON(w, http.StatusOK, n)
	}
}

func (a *API) createNetwork(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			writeProblem(w, r, Problem{Type: ProblemUnsupported, Status: http.StatusUnsupportedMediaType, Detail: "bad Content-Type: " + err.Error()})
			return
		case mt != "application/json" && mt != "application/yaml" && mt != "application/x-yaml" && mt != "text/yaml":
			writeProblem(w, r, Problem{Type: ProblemUnsupported, Status: http.StatusUnsupportedMediaType, Detail: "send the network as application/json or application/yaml, not " + mt})
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, apis.MaxSpecBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(w, r, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the body is larger than the limit of %d bytes", apis.MaxSpecBytes)})
			return
		}
		writeProblem(w, r, Problem{Type: ProblemMalformed, Status: http.StatusBadRequest, Detail: "read body: " + err.Error()})
		return
	}
	n, err := apis.DecodeAndValidate(body, a.opts.Registries, a.opts.Validate)
	if err != nil {
		var list apis.ErrorList
		if errors.As(err, &list) && len(list) > 0 && list[0].Field == "" {
			writeProblem(w, r, Problem{Type: ProblemMalformed, Status: http.StatusBadRequest, Detail: err.Error()})
			return
		}
		writeProblem(w, r, Problem{Type: ProblemInvalid, Status: http.StatusUnprocessableEntity, Detail: "the network spec is not valid", Errors: list})
		return
	}
	if n.Spec.Cluster != "" {
		if _, err := a.opts.Store.Get(r.Context(), clusters.Kind, n.Spec.Cluster); errors.Is(err, store.ErrNotFound) {
			writeProblem(w, r, Problem{Type: ProblemInvalid, Status: http.StatusUnprocessableEntity, Detail: "the network spec is not valid",
				Errors: apis.ErrorList{{Field: "spec.cluster", Detail: fmt.Sprintf("no registered cluster %q (chaindock get clusters)", n.Spec.Cluster)}}})
			return
		} else if err != nil {
			a.storeError(w, r, err)
			return
		}
	}
	if !a.checkOwnership(w, r, n) {
		return
	}
	apis.SetDefaults(n)
	// What the server owns is never taken from the client.
	n.Metadata.UID, n.Metadata.ResourceVersion, n.Metadata.Generation = "", "", 0
	n.Metadata.CreationTimestamp, n.Metadata.DeletionTimestamp = nil, nil
	n.Status = apis.NetworkStatus{Phase: apis.PhasePending}
	o, err := store.NetworkToObject(n)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	created, err := a.opts.Store.Create(r.Context(), o)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	out, err := store.ObjectToNetwork(created)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	_ = a.opts.Store.AddEvent(r.Context(), apis.Event{Time: time.Now().UTC(), Kind: apis.KindNetwork, Name: out.Metadata.Name, UID: out.Metadata.UID,
		Type: apis.EventNormal, Reason: "Created", Message: fmt.Sprintf("network %s created: %d nodes of chain %s on runtime %s", out.Metadata.Name, len(out.Spec.Nodes()), out.Spec.Chain, out.Spec.Runtime)})
	a.enqueue(out.Metadata.Name)
	w.Header().Set("Location", "/api/v1/networks/"+out.Metadata.Name)
	writeJSON(w, http.StatusCreated, out)
}

// checkOwnership settles which organization owns a new network and that
// the caller may create networks for it, and that a consortium network's
// organizations are all members of its consortium.
func (a *API) checkOwnership(w http.ResponseWriter, r *http.Request, n *apis.Network) bool {
	ctx := r.Context()
	p := principalFrom(ctx)
	owner := n.Metadata.Owner
	if owner == "" {
		switch orgs := p.Orgs(); {
		case p.Key != nil:
			owner = p.Key.Org
		case len(orgs) == 1:
			owner = orgs[0]
		case !p.PlatformAdmin:
			invalid(w, r, apis.ErrorList{{Field: "metadata.owner", Detail: fmt.Sprintf("is required: name the organization that owns the network (one of %v)", orgs)}})
			return false
		}
		n.Metadata.Owner = owner
	}
	setAuditOrg(r, owner)
	var errs apis.ErrorList
	if owner != "" {
		if _, err := a.opts.Store.GetOrganization(ctx, owner); err != nil {
			if !auth.Sees(p, auth.OrgRead, auth.Scope{Org: owner}) {
				return a.allow(w, r, auth.NetworkWrite, auth.Scope{Org: owner, Network: n.Metadata.Name})
			}
			errs.Add("metadata.owner", "no organization %q", owner)
		}
	}
	if !a.allow(w, r, auth.NetworkWrite, auth.Scope{Org: owner, Network: n.Metadata.Name}) {
		return false
	}
	if c := n.Spec.Consortium; c != "" {
		cons, err := a.opts.Store.GetConsortium(ctx, c)
		switch {
		case errors.Is(err, store.ErrNotFound):
			errs.Add("spec.consortium", "no consortium %q", c)
		case err != nil:
			a.storeError(w, r, err)
			return false
		default:
			if !slices.Contains(cons.Members, owner) {
				errs.Add("metadata.owner", "%q is not a member of consortium %s", owner, c)
			}
			for i, o := range n.Spec.Organizations {
				if !slices.Contains(cons.Members, o.Name) {
					errs.Add(apis.Path(apis.Index("spec.organizations", i), "name"), "%q is not a member of consortium %s (members: %v)", o.Name, c, cons.Members)
				}
			}
		}
	}
	return !invalid(w, r, errs)
}

func (a *API) enqueue(name string) {
	if a.opts.Enqueue != nil {
		a.opts.Enqueue(name)
	}
}

// storeChange stores network n as the caller changed it, records the
// change as an event (reason, message), has the controller carry it out
// and answers 202 with the network. It reports false, having answered
// nothing, when a concurrent write got there first: the caller reads the
// network again and retries.
func (a *API) storeChange(w http.ResponseWriter, r *http.Request, n *apis.Network, reason, message string) bool {
	o, err := store.NetworkToObject(n)
	if err != nil {
		a.storeError(w, r, err)
		return true
	}
	updated, err := a.opts.Store.Update(r.Context(), o)
	if errors.Is(err, store.ErrConflict) {
		return false
	}
	if err != nil {
		a.storeError(w, r, err)
		return true
	}
	_ = a.opts.Store.AddEvent(r.Context(), apis.Event{Time: time.Now().UTC(), Kind: apis.KindNetwork, Name: n.Metadata.Name, UID: n.Metadata.UID,
		Type: apis.EventNormal, Reason: reason, Message: message})
	a.enqueue(n.Metadata.Name)
	out, err := store.ObjectToNetwork(updated)
	if err != nil {
		a.storeError(w, r, err)
		return true
	}
	writeJSON(w, http.StatusAccepted, out)
	return true
}

func (a *API) deleteNetwork(w http.ResponseWriter, r *http.Request) {
	// Retry on conflict: the controller writes status concurrently.
	for range 10 {
		n, scope, ok := a.getStored(w, r)
		if !ok || !a.allow(w, r, auth.NetworkWrite, auth.Scope{Org: scope.Org, Network: scope.Network}) {
			return
		}
		if n.Metadata.DeletionTimestamp != nil {
			writeJSON(w, http.StatusAccepted, n)
			return
		}
		now := time.Now().UTC()
		n.Metadata.DeletionTimestamp = &now
		if a.storeChange(w, r, n, "DeleteRequested", "network "+n.Metadata.Name+" is to be deleted") {
			return
		}
	}
	writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: "the network kept changing; try again"})
}

func (a *API) listNodes(w http.ResponseWriter, r *http.Request) {
	n, _, ok := a.getStored(w, r)
	if !ok {
		return
	}
	redact(principalFrom(r.Context()), n)
	list := NodeList{Items: n.Status.Nodes}
	if list.Items == nil {
		list.Items = []apis.NodeStatus{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *API) findNode(w http.ResponseWriter, r *http.Request) (*apis.Network, *apis.NodeStatus, bool) {
	n, _, ok := a.getStored(w, r)
	if !ok {
		return nil, nil, false
	}
	redact(principalFrom(r.Context()), n)
	name := chi.URLParam(r, "node")
	for i := range n.Status.Nodes {
		if n.Status.Nodes[i].Name == name {
			return n, &n.Status.Nodes[i], true
		}
	}
	for _, s := range n.Spec.Nodes() {
		if s.Name == name {
			return n, &apis.NodeStatus{Name: name, Role: s.Role, Organization: s.Organization, Phase: apis.NodePending}, true
		}
	}
	writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: fmt.Sprintf("network %s has no node %q", n.Metadata.Name, name)})
	return nil, nil, false
}

func (a *API) getNode(w http.ResponseWriter, r *http.Request) {
	if _, node, ok := a.findNode(w, r); ok {
		writeJSON(w, http.StatusOK, node)
	}
}

func intParam(w http.ResponseWriter, r *http.Request, name string, def, lo, hi int64) (int64, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lo || v > hi {
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("query parameter %s must be a whole number from %d to %d, not %q", name, lo, hi, s)})
		return 0, false
	}
	return v, true
}

// pageParams reads the "after" and "limit" query parameters of a paged
// listing.
func pageParams(w http.ResponseWriter, r *http.Request, maxLimit int64) (after int64, limit int, ok bool) {
	after, ok = intParam(w, r, "after", 0, 0, 1<<62)
	if !ok {
		return 0, 0, false
	}
	l, ok := intParam(w, r, "limit", 500, 1, maxLimit)
	return after, int(l), ok
}

func boolParam(w http.ResponseWriter, r *http.Request, name string) (bool, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, true
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		writeProblem(w, r, Problem{Type: ProblemBadParameter, Status: http.StatusBadRequest, Detail: fmt.Sprintf("query parameter %s must be true or false, not %q", name, s)})
		return false, false
	}
	return v, true
}

func (a *API) nodeLogs(w http.ResponseWriter, r *http.Request) {
	n, node, ok := a.findNode(w, r)
	if !ok {
		return
	}
	tail, ok := intParam(w, r, "tail", 0, 0, 100000)
	if !ok {
		return
	}
	follow, ok := boolParam(w, r, "follow")
	if !ok {
		return
	}
	if !a.allow(w, r, auth.NodeRead, auth.Scope{Org: nodeOrg(n, node), Network: n.Metadata.Name}) {
		return
	}
	lr, isReader := a.opts.Runtimes[n.Spec.Runtime].(runtime.LogReader)
	if !isReader {
		writeProblem(w, r, Problem{Type: ProblemNotAcceptable, Status: http.StatusNotImplemented, Detail: "runtime " + n.Spec.Runtime + " keeps no logs"})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	fw := &flushWriter{w: w}
	if f, ok := w.(http.Flusher); ok {
		fw.f = f
	}
	err := lr.Logs(r.Context(), n.Metadata.Name+"."+node.Name, runtime.LogOptions{Tail: int(tail), Follow: follow}, fw)
	if errors.Is(err, runtime.ErrNotFound) && !fw.wrote {
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: fmt.Sprintf("node %s of network %s has not started yet", node.Name, n.Metadata.Name)})
		return
	}
	if err != nil && r.Context().Err() == nil {
		a.opts.Log.Warn("stream logs", "network", n.Metadata.Name, "node", node.Name, "err", err)
	}
}

type flushWriter struct {
	w     io.Writer
	f     http.Flusher
	wrote bool
}

func (fw *flushWriter) Write(p []byte) (int, error) {
	fw.wrote = true
	n, err := fw.w.Write(p)
	if fw.f != nil {
		fw.f.Flush()
	}
	return n, err
}

func (a *API) events(w http.ResponseWriter, r *http.Request, f store.EventFilter, keep func(apis.Event) bool) {
	after, limit, ok := pageParams(w, r, 5000)
	if !ok {
		return
	}
	f.AfterID, f.Limit = after, limit
	list := EventList{Items: []apis.Event{}, Next: after}
	// Filtered pages are refilled until they are full or the log ends.
	for len(list.Items) < limit {
		events, err := a.opts.Store.Events(r.Context(), f)
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		for _, e := range events {
			if len(list.Items) == limit {
				break
			}
			list.Next = e.ID
			if keep == nil || keep(e) {
				list.Items = append(list.Items, e)
			}
		}
		if len(events) < f.Limit {
			break
		}
		f.AfterID = list.Next
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *API) networkEvents(w http.ResponseWriter, r *http.Request) {
	n, _, ok := a.getStored(w, r)
	if !ok {
		return
	}
	a.events(w, r, store.EventFilter{Kind: apis.KindNetwork, UID: n.Metadata.UID}, nil)
}

// listEvents lists the events of every network the caller may read.
func (a *API) listEvents(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if p.PlatformAdmin {
		a.events(w, r, store.EventFilter{}, nil)
		return
	}
	objs, err := a.opts.Store.List(r.Context(), apis.KindNetwork)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	visible := map[string]bool{}
	for _, o := range objs {
		n, err := store.ObjectToNetwork(o)
		if err != nil {
			continue
		}
		if scope, err := a.networkScope(r.Context(), n); err == nil && auth.Sees(p, auth.NetworkRead, scope) {
			visible[n.Metadata.UID] = true
		}
	}
	a.events(w, r, store.EventFilter{}, func(e apis.Event) bool { return visible[e.UID] })
}
