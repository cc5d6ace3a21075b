package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"k8s.io/client-go/rest"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/clusters"
	"github.com/chaindock/chaindock/internal/store"
)

// KindCluster is the store kind of registered clusters.
const KindCluster = clusters.Kind

// clusterKubeconfig is the sealed blob holding a cluster's kubeconfig.
const clusterKubeconfig = clusters.KubeconfigBlob

// ClusterRequest registers a Kubernetes cluster.
type ClusterRequest struct {
	Name string `json:"name"`
	// Kubeconfig is the kubeconfig's text; it is kept sealed and never
	// returned.
	Kubeconfig  string `json:"kubeconfig"`
	Context     string `json:"context,omitempty"`
	Description string `json:"description,omitempty"`
}

// Cluster is a registered cluster as the API shows it: never its
// kubeconfig.
type Cluster struct {
	Name        string          `json:"name"`
	Context     string          `json:"context"`
	Server      string          `json:"server"`
	Description string          `json:"description,omitempty"`
	CreatedAt   time.Time       `json:"createdAt"`
	Status      clusters.Status `json:"status"`
}

type clusterSpec = clusters.Spec

func toCluster(o *store.Object) (Cluster, error) {
	var spec clusterSpec
	var st clusters.Status
	if err := json.Unmarshal(o.Spec, &spec); err != nil {
		return Cluster{}, fmt.Errorf("cluster %s: %w", o.Name, err)
	}
	if len(o.Status) > 0 {
		if err := json.Unmarshal(o.Status, &st); err != nil {
			return Cluster{}, fmt.Errorf("cluster %s: %w", o.Name, err)
		}
	}
	return Cluster{Name: o.Name, Context: spec.Context, Server: spec.Server, Description: spec.Description, CreatedAt: o.CreatedAt.UTC(), Status: st}, nil
}

// createCluster registers a cluster: its kubeconfig is checked (no
// programs run, no server files read), sealed and stored, then the cluster
// is asked for its version and the permissions the Kubernetes runtime
// needs. A cluster that does not answer, or lacks permissions, is stored
// all the same, with a status that says so: check it again once fixed.
func (a *API) createCluster(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, auth.PlatformManage, auth.Scope{}) {
		return
	}
	var req ClusterRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var errs apis.ErrorList
	checkName(&errs, "name", req.Name)
	if len(req.Description) > 256 {
		errs.Add("description", "has %d characters; at most 256 are taken", len(req.Description))
	}
	rc, ctxName, kerrs := clusters.Config([]byte(req.Kubeconfig), req.Context)
	errs = append(errs, kerrs...)
	if invalid(w, r, errs) {
		return
	}
	spec, _ := json.Marshal(clusterSpec{Context: ctxName, Server: rc.Host, Description: req.Description})
	o, err := a.opts.Store.Create(r.Context(), &store.Object{Kind: KindCluster, Name: req.Name, Spec: spec})
	if err != nil {
		a.conflictOr(w, r, err, "name", "cluster "+req.Name+" is already registered")
		return
	}
	if err := a.opts.Store.PutBlob(r.Context(), o.UID, clusterKubeconfig, []byte(req.Kubeconfig)); err != nil {
		// Nothing half-way: no cluster without its kubeconfig.
		_ = a.opts.Store.Delete(context.WithoutCancel(r.Context()), KindCluster, o.Name, o.UID)
		a.storeError(w, r, err)
		return
	}
	o, err = a.checkCluster(r.Context(), o, rc)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/clusters/"+o.Name)
	a.writeCluster(w, r, http.StatusCreated, o)
}

// checkCluster asks the cluster and stores what it found, retrying once
// if the object changed meanwhile (another check stored first).
func (a *API) checkCluster(ctx context.Context, o *store.Object, rc *rest.Config) (*store.Object, error) {
	st := clusters.Check(ctx, rc, time.Now())
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	for range 2 {
		o.Status = b
		updated, err := a.opts.Store.UpdateStatus(ctx, o)
		if !errors.Is(err, store.ErrConflict) {
			return updated, err
		}
		if o, err = a.opts.Store.Get(ctx, KindCluster, o.Name); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("cluster %s: %w", o.Name, store.ErrConflict)
}

func (a *API) listClusters(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, auth.PlatformManage, auth.Scope{}) {
		return
	}
	objs, err := a.opts.Store.List(r.Context(), KindCluster)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	out := []Cluster{}
	for _, o := range objs {
		c, err := toCluster(o)
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		out = append(out, c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

// clusterOf loads the cluster in the path, for platform administrators.
func (a *API) clusterOf(w http.ResponseWriter, r *http.Request) (*store.Object, bool) {
	if !a.allow(w, r, auth.PlatformManage, auth.Scope{}) {
		return nil, false
	}
	o, err := a.opts.Store.Get(r.Context(), KindCluster, chi.URLParam(r, "cluster"))
	if err != nil {
		a.storeError(w, r, err)
		return nil, false
	}
	return o, true
}

func (a *API) writeCluster(w http.ResponseWriter, r *http.Request, status int, o *store.Object) {
	c, err := toCluster(o)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	writeJSON(w, status, c)
}

func (a *API) getCluster(w http.ResponseWriter, r *http.Request) {
	if o, ok := a.clusterOf(w, r); ok {
		a.writeCluster(w, r, http.StatusOK, o)
	}
}

// recheckCluster checks a registered cluster again.
func (a *API) recheckCluster(w http.ResponseWriter, r *http.Request) {
	o, ok := a.clusterOf(w, r)
	if !ok {
		return
	}
	kc, kctx, err := clusters.Source{Store: a.opts.Store}.Kubeconfig(r.Context(), o.Name)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	rc, _, errs := clusters.Config(kc, kctx)
	if len(errs) > 0 {
		a.storeError(w, r, errs.Err())
		return
	}
	if o, err = a.checkCluster(r.Context(), o, rc); err != nil {
		a.storeError(w, r, err)
		return
	}
	a.writeCluster(w, r, http.StatusOK, o)
}

// deleteCluster forgets a cluster no network runs on.
func (a *API) deleteCluster(w http.ResponseWriter, r *http.Request) {
	o, ok := a.clusterOf(w, r)
	if !ok {
		return
	}
	nets, err := a.opts.Store.List(r.Context(), apis.KindNetwork)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	var users []string
	for _, no := range nets {
		n, err := store.ObjectToNetwork(no)
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		if n.Spec.Cluster == o.Name {
			users = append(users, n.Metadata.Name)
		}
	}
	if len(users) > 0 {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict,
			Detail: fmt.Sprintf("networks %s run on cluster %s: delete them first", strings.Join(users, ", "), o.Name)})
		return
	}
	if err := a.opts.Store.Delete(r.Context(), KindCluster, o.Name, o.UID); err != nil {
		a.storeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
