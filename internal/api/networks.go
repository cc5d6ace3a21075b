package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chaindock/chaindock/internal/apis"
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

func (a *API) getStored(w http.ResponseWriter, r *http.Request) (*apis.Network, bool) {
	o, err := a.opts.Store.Get(r.Context(), apis.KindNetwork, chi.URLParam(r, "name"))
	if err != nil {
		a.storeError(w, r, err)
		return nil, false
	}
	n, err := store.ObjectToNetwork(o)
	if err != nil {
		a.storeError(w, r, err)
		return nil, false
	}
	return n, true
}

func (a *API) listNetworks(w http.ResponseWriter, r *http.Request) {
	objs, err := a.opts.Store.List(r.Context(), apis.KindNetwork)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	list := NetworkList{Items: []*apis.Network{}}
	for _, o := range objs {
		n, err := store.ObjectToNetwork(o)
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		list.Items = append(list.Items, n)
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *API) getNetwork(w http.ResponseWriter, r *http.Request) {
	if n, ok := a.getStored(w, r); ok {
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

func (a *API) enqueue(name string) {
	if a.opts.Enqueue != nil {
		a.opts.Enqueue(name)
	}
}

func (a *API) deleteNetwork(w http.ResponseWriter, r *http.Request) {
	// Retry on conflict: the controller writes status concurrently.
	for range 10 {
		n, ok := a.getStored(w, r)
		if !ok {
			return
		}
		if n.Metadata.DeletionTimestamp != nil {
			writeJSON(w, http.StatusAccepted, n)
			return
		}
		now := time.Now().UTC()
		n.Metadata.DeletionTimestamp = &now
		o, err := store.NetworkToObject(n)
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		updated, err := a.opts.Store.Update(r.Context(), o)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		_ = a.opts.Store.AddEvent(r.Context(), apis.Event{Time: now, Kind: apis.KindNetwork, Name: n.Metadata.Name, UID: n.Metadata.UID,
			Type: apis.EventNormal, Reason: "DeleteRequested", Message: "network " + n.Metadata.Name + " is to be deleted"})
		a.enqueue(n.Metadata.Name)
		out, err := store.ObjectToNetwork(updated)
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, out)
		return
	}
	writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: "the network kept changing; try again"})
}

func (a *API) listNodes(w http.ResponseWriter, r *http.Request) {
	n, ok := a.getStored(w, r)
	if !ok {
		return
	}
	list := NodeList{Items: n.Status.Nodes}
	if list.Items == nil {
		list.Items = []apis.NodeStatus{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *API) findNode(w http.ResponseWriter, r *http.Request) (*apis.Network, *apis.NodeStatus, bool) {
	n, ok := a.getStored(w, r)
	if !ok {
		return nil, nil, false
	}
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

func (a *API) events(w http.ResponseWriter, r *http.Request, f store.EventFilter) {
	after, ok := intParam(w, r, "after", 0, 0, 1<<62)
	if !ok {
		return
	}
	limit, ok := intParam(w, r, "limit", 500, 1, 5000)
	if !ok {
		return
	}
	f.AfterID, f.Limit = after, int(limit)
	events, err := a.opts.Store.Events(r.Context(), f)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	list := EventList{Items: events, Next: after}
	if list.Items == nil {
		list.Items = []apis.Event{}
	}
	if len(events) > 0 {
		list.Next = events[len(events)-1].ID
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *API) networkEvents(w http.ResponseWriter, r *http.Request) {
	n, ok := a.getStored(w, r)
	if !ok {
		return
	}
	a.events(w, r, store.EventFilter{Kind: apis.KindNetwork, UID: n.Metadata.UID})
}

func (a *API) listEvents(w http.ResponseWriter, r *http.Request) {
	a.events(w, r, store.EventFilter{})
}
