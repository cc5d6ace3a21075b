// Package clusters checks the Kubernetes clusters users register: that a
// kubeconfig is one the server may use, that the cluster answers, and that
// its credentials allow what the Kubernetes runtime does.
package clusters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/store"
)

// Permission is one thing the Kubernetes runtime does on a cluster.
type Permission struct {
	Group, Resource, Verb string
}

func (p Permission) String() string {
	if p.Group == "" {
		return p.Verb + " " + p.Resource
	}
	return p.Verb + " " + p.Resource + "." + p.Group
}

// Permissions are what the Kubernetes runtime needs, cluster-wide (it makes
// a namespace per network): deploy/helm/chaindock grants exactly these.
var Permissions = func() []Permission {
	var out []Permission
	add := func(group string, resources, verbs []string) {
		for _, r := range resources {
			for _, v := range verbs {
				out = append(out, Permission{Group: group, Resource: r, Verb: v})
			}
		}
	}
	crud := []string{"get", "list", "watch", "create", "patch", "delete"}
	add("", []string{"namespaces"}, crud)
	add("", []string{"services", "configmaps", "secrets", "persistentvolumeclaims", "resourcequotas", "limitranges"}, append(crud, "deletecollection"))
	add("", []string{"pods", "events"}, []string{"get", "list", "watch"})
	add("", []string{"pods/log"}, []string{"get"})
	// A node's RPC through the API server, for a server outside the
	// cluster (GET and POST).
	add("", []string{"services/proxy"}, []string{"get", "create"})
	add("apps", []string{"statefulsets"}, append(crud, "deletecollection"))
	add("networking.k8s.io", []string{"networkpolicies"}, crud)
	return out
}()

// MaxKubeconfigBytes bounds a registered kubeconfig.
const MaxKubeconfigBytes = 48 << 10

// Config reads a kubeconfig as the server would use it: its current
// context, or ctxName. A kubeconfig that would make the server run a
// program (an exec plugin, an auth provider) or read its own files
// (certificates, keys or tokens by path) is refused: a registered cluster
// holds everything it needs.
func Config(kubeconfig []byte, ctxName string) (*rest.Config, string, apis.ErrorList) {
	var errs apis.ErrorList
	if len(kubeconfig) == 0 {
		errs.Add("kubeconfig", "is empty")
		return nil, "", errs
	}
	if len(kubeconfig) > MaxKubeconfigBytes {
		errs.Add("kubeconfig", "has %d bytes; at most %d are taken", len(kubeconfig), MaxKubeconfigBytes)
		return nil, "", errs
	}
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		errs.Add("kubeconfig", "is not a kubeconfig: %v", err)
		return nil, "", errs
	}
	if ctxName == "" {
		ctxName = cfg.CurrentContext
	}
	kctx, ok := cfg.Contexts[ctxName]
	if !ok {
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range cfg.Contexts {
				if !yield(n) {
					return
				}
			}
		})
		errs.Add("context", "%q is not a context of the kubeconfig (it has %s)", ctxName, strings.Join(names, ", "))
		return nil, "", errs
	}
	user, ok := cfg.AuthInfos[kctx.AuthInfo]
	if !ok {
		errs.Add("kubeconfig", "context %q names user %q, which it does not define", ctxName, kctx.AuthInfo)
	} else {
		checkUser(&errs, kctx.AuthInfo, user)
	}
	cluster, ok := cfg.Clusters[kctx.Cluster]
	if !ok {
		errs.Add("kubeconfig", "context %q names cluster %q, which it does not define", ctxName, kctx.Cluster)
	} else {
		if cluster.CertificateAuthority != "" {
			errs.Add("kubeconfig", "cluster %q reads its CA from the file %s: give it inline (certificate-authority-data)", kctx.Cluster, cluster.CertificateAuthority)
		}
		if !strings.HasPrefix(cluster.Server, "https://") && !strings.HasPrefix(cluster.Server, "http://") {
			errs.Add("kubeconfig", "cluster %q has server %q: want an https:// URL", kctx.Cluster, cluster.Server)
		}
	}
	if len(errs) > 0 {
		return nil, "", errs
	}
	rc, err := clientcmd.NewNonInteractiveClientConfig(*cfg, ctxName, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		errs.Add("kubeconfig", "%v", err)
		return nil, "", errs
	}
	rc.Timeout = 10 * time.Second
	// client-go's default of 5 requests a second (bursts of 10) would
	// spread a node's dozen applies, or a check's access reviews, over
	// seconds.
	rc.QPS, rc.Burst = 50, 100
	// Certificates that do not parse are the kubeconfig's fault, not the
	// cluster's.
	if _, err := rest.TransportFor(rc); err != nil {
		errs.Add("kubeconfig", "its certificates or keys do not load: %v", err)
		return nil, "", errs
	}
	return rc, ctxName, nil
}

func checkUser(errs *apis.ErrorList, name string, u *clientcmdapi.AuthInfo) {
	switch {
	case u.Exec != nil:
		errs.Add("kubeconfig", "user %q runs the program %q to log in, which the ChainDock server will not run: use a token or a client certificate", name, u.Exec.Command)
	case u.AuthProvider != nil:
		errs.Add("kubeconfig", "user %q logs in through the auth provider %q, which the ChainDock server does not run: use a token or a client certificate", name, u.AuthProvider.Name)
	}
	for _, f := range []struct{ what, path string }{
		{"client certificate", u.ClientCertificate}, {"client key", u.ClientKey}, {"token", u.TokenFile},
	} {
		if f.path != "" {
			errs.Add("kubeconfig", "user %q reads its %s from the file %s: give it inline", name, f.what, f.path)
		}
	}
	if u.Token == "" && len(u.ClientCertificateData) == 0 && u.Username == "" {
		errs.Add("kubeconfig", "user %q has no credentials: give a token or a client certificate and key", name)
	}
}

// Status is what a check of a cluster found.
type Status struct {
	Phase     string    `json:"phase"` // Ready, Unreachable or Forbidden
	Message   string    `json:"message,omitempty"`
	Version   string    `json:"version,omitempty"`
	Missing   []string  `json:"missing,omitempty"` // permissions the credentials lack
	CheckedAt time.Time `json:"checkedAt"`
}

// Phases of a cluster.
const (
	PhaseReady       = "Ready"
	PhaseUnreachable = "Unreachable"
	PhaseForbidden   = "Forbidden"
)

// Check asks the cluster for its version and, with SelfSubjectAccessReview,
// whether its credentials allow every one of Permissions.
func Check(ctx context.Context, rc *rest.Config, now time.Time) Status {
	st := Status{CheckedAt: now.UTC()}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		st.Phase, st.Message = PhaseUnreachable, err.Error()
		return st
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		st.Phase, st.Message = PhaseUnreachable, fmt.Sprintf("%s does not answer: %v", rc.Host, err)
		return st
	}
	st.Version = v.GitVersion
	var errs []error
	for _, p := range Permissions {
		r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
			Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: accessOf(p)},
		}, metav1.CreateOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		if !r.Status.Allowed {
			st.Missing = append(st.Missing, p.String())
		}
	}
	switch {
	case len(errs) > 0:
		st.Phase, st.Message = PhaseUnreachable, "access reviews failed: "+errors.Join(errs...).Error()
	case len(st.Missing) > 0:
		st.Phase = PhaseForbidden
		st.Message = fmt.Sprintf("the credentials lack %d of the %d permissions the Kubernetes runtime needs, cluster-wide (deploy/helm/chaindock's ClusterRole grants them)", len(st.Missing), len(Permissions))
	default:
		st.Phase = PhaseReady
	}
	return st
}

func accessOf(p Permission) *authv1.ResourceAttributes {
	res, sub, _ := strings.Cut(p.Resource, "/")
	return &authv1.ResourceAttributes{Group: p.Group, Resource: res, Subresource: sub, Verb: p.Verb}
}

// Kind is the store kind of registered clusters; KubeconfigBlob the sealed
// blob of each that holds its kubeconfig.
const (
	Kind           = "Cluster"
	KubeconfigBlob = "kubeconfig"
)

// Spec is what the store keeps of a cluster besides its kubeconfig.
type Spec struct {
	Context     string `json:"context"`
	Server      string `json:"server"`
	Description string `json:"description,omitempty"`
}

// Store is what Source reads.
type Store interface {
	List(ctx context.Context, kind string) ([]*store.Object, error)
	Get(ctx context.Context, kind, name string) (*store.Object, error)
	GetBlob(ctx context.Context, ownerUID, key string) ([]byte, error)
}

// Source gives runtimes the registered clusters from the store.
type Source struct{ Store Store }

// ClusterNames implements runtime.ClusterSource.
func (s Source) ClusterNames(ctx context.Context) ([]string, error) {
	objs, err := s.Store.List(ctx, Kind)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		names = append(names, o.Name)
	}
	return names, nil
}

// Kubeconfig implements runtime.ClusterSource.
func (s Source) Kubeconfig(ctx context.Context, name string) ([]byte, string, error) {
	o, err := s.Store.Get(ctx, Kind, name)
	if err != nil {
		return nil, "", fmt.Errorf("cluster %s: %w", name, err)
	}
	var spec Spec
	if err := json.Unmarshal(o.Spec, &spec); err != nil {
		return nil, "", fmt.Errorf("cluster %s: %w", name, err)
	}
	kc, err := s.Store.GetBlob(ctx, o.UID, KubeconfigBlob)
	if err != nil {
		return nil, "", fmt.Errorf("cluster %s: kubeconfig: %w", name, err)
	}
	return kc, spec.Context, nil
}
