// Package kubernetes runs nodes on a Kubernetes cluster. Each network gets a
// namespace; each node a StatefulSet of one replica with a headless Service
// (a stable DNS name, <node>.<namespace>.svc), its configuration in a
// ConfigMap, its keys in a Secret and its home directory on a
// PersistentVolumeClaim. Every object is written by server-side apply with
// the field manager "chaindock" and carries ChainDock's labels, by which
// the runtime finds, and deletes, exactly its own objects.
package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	appsac "k8s.io/client-go/applyconfigurations/apps/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
	metaac "k8s.io/client-go/applyconfigurations/meta/v1"
	netac "k8s.io/client-go/applyconfigurations/networking/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/chaindock/chaindock/internal/runtime"
)

// Name is the runtime's registered name.
const Name = "kubernetes"

// Labels and annotations ChainDock puts on its objects.
const (
	FieldManager    = "chaindock"
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	ManagedBy       = "chaindock"
	LabelNodeID     = "chaindock.io/node-id"
	LabelNetwork    = "chaindock.io/network"
	LabelNode       = "chaindock.io/node"
	AnnotationSpec  = "chaindock.io/spec-hash"
	AnnotationOwner = "chaindock.io/owner"
)

// HomeDir is where a node's home directory is mounted; it is the working
// directory of the node, its sidecars and its init steps.
const HomeDir = "/chaindock/home"

// Options shape what the runtime creates.
type Options struct {
	// NamespacePrefix goes before a network's name to make its namespace.
	NamespacePrefix string
	// StorageClass of the nodes' volumes; empty for the cluster's default.
	StorageClass string
	// StorageSize of each node's volume (default 1Gi).
	StorageSize string
	// Quota bounds what a network's namespace may request in all
	// (ResourceQuota); DefaultCPU and DefaultMemory are the requests and
	// limits of containers that name none (LimitRange).
	QuotaCPU, QuotaMemory     string
	DefaultCPU, DefaultMemory string
	// PlatformNamespace is where ChainDock runs: its pods may reach every
	// network's nodes, which accept no other traffic from outside their
	// own namespace. Empty: only the network's own pods reach them.
	PlatformNamespace string
	// Owner identifies this ChainDock installation on shared clusters.
	Owner string
	// FSGroup owns the nodes' volumes, so that images whose programs run
	// as a user other than root can write their home (default 1000, the
	// user of the official CometBFT image).
	FSGroup int64
}

func (o Options) withDefaults() Options {
	if o.StorageSize == "" {
		o.StorageSize = "1Gi"
	}
	if o.QuotaCPU == "" {
		o.QuotaCPU = "16"
	}
	if o.QuotaMemory == "" {
		o.QuotaMemory = "32Gi"
	}
	if o.DefaultCPU == "" {
		o.DefaultCPU = "500m"
	}
	if o.DefaultMemory == "" {
		o.DefaultMemory = "512Mi"
	}
	if o.Owner == "" {
		o.Owner = "chaindock"
	}
	if o.FSGroup == 0 {
		o.FSGroup = 1000
	}
	return o
}

// Validate names what is wrong with the options.
func (o Options) Validate() error {
	var errs []error
	for name, q := range map[string]string{"storage size": o.StorageSize, "quota cpu": o.QuotaCPU, "quota memory": o.QuotaMemory,
		"default cpu": o.DefaultCPU, "default memory": o.DefaultMemory} {
		if q == "" {
			continue
		}
		if _, err := resource.ParseQuantity(q); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, q, err))
		}
	}
	if o.NamespacePrefix != "" {
		if msgs := validation.IsDNS1123Label(strings.TrimSuffix(o.NamespacePrefix, "-") + "x"); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("namespace prefix %q: %s", o.NamespacePrefix, strings.Join(msgs, "; ")))
		}
	}
	return errors.Join(errs...)
}

// Runtime runs nodes on one cluster. It writes through the API and reads
// from watches: reading a node's state sends the cluster no request.
type Runtime struct {
	cs    kubernetes.Interface // requests, each bounded in time
	watch kubernetes.Interface // watches, which last
	opts  Options
	// proxy reaches the cluster's nodes through its API server, for a
	// server outside the cluster; nil when the runtime does not.
	proxy *serviceProxy

	mu sync.Mutex
	w  *watcher // started at first use
	// namespaces holds the namespaces applied since this runtime started:
	// a network's nodes start together, and the first applies their
	// namespace, quota, limits and policy for all.
	namespaces map[string]*nsOnce
}

type nsOnce struct {
	done chan struct{}
	err  error
}

var (
	_ runtime.Runtime   = (*Runtime)(nil)
	_ runtime.LogReader = (*Runtime)(nil)
)

// New returns a runtime on the cluster cs reaches. Its watches use cs
// too, so cs must not bound the time of a request (rest.Config.Timeout);
// NewWithWatchClient takes a client of its own for them.
func New(cs kubernetes.Interface, opts Options) (*Runtime, error) {
	return NewWithWatchClient(cs, cs, opts)
}

// NewWithWatchClient returns a runtime that sends requests through cs and
// watches through watch.
func NewWithWatchClient(cs, watch kubernetes.Interface, opts Options) (*Runtime, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("kubernetes runtime: %w", err)
	}
	return &Runtime{cs: cs, watch: watch, opts: opts, namespaces: map[string]*nsOnce{}}, nil
}

// watcher returns the runtime's watches, started and synced.
func (r *Runtime) watcher(ctx context.Context) (*watcher, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w != nil {
		return r.w, nil
	}
	w := newWatcher(r.watch)
	if err := w.waitSynced(ctx, SyncTimeout); err != nil {
		w.close()
		return nil, err
	}
	r.w = w
	return w, nil
}

// Close stops the runtime's watches.
func (r *Runtime) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w != nil {
		r.w.close()
		r.w = nil
	}
}

// place is where a node's objects live.
type place struct {
	namespace, name string
}

func (r *Runtime) placeOf(spec runtime.NodeSpec) (place, error) {
	network, node := spec.Labels[LabelNetwork], spec.Labels[LabelNode]
	if network == "" || node == "" {
		return place{}, fmt.Errorf("node %s: its labels name no %s and %s", spec.ID, LabelNetwork, LabelNode)
	}
	p := place{namespace: r.opts.NamespacePrefix + network, name: node}
	if msgs := validation.IsDNS1123Label(p.namespace); len(msgs) > 0 {
		return place{}, fmt.Errorf("node %s: namespace %q: %s", spec.ID, p.namespace, strings.Join(msgs, "; "))
	}
	// A StatefulSet's pods are named <name>-<ordinal>, and carry the name
	// in a label of at most 63 characters.
	if msgs := validation.IsDNS1123Label(p.name + "-0"); len(msgs) > 0 {
		return place{}, fmt.Errorf("node %s: name %q: %s", spec.ID, p.name, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsValidLabelValue(spec.ID); len(msgs) > 0 {
		return place{}, fmt.Errorf("node %s: id: %s", spec.ID, strings.Join(msgs, "; "))
	}
	return p, nil
}

// labels are the labels of every object of a node.
func (r *Runtime) labels(spec runtime.NodeSpec) map[string]string {
	l := map[string]string{}
	for k, v := range spec.Labels {
		if len(validation.IsQualifiedName(k)) == 0 && len(validation.IsValidLabelValue(v)) == 0 {
			l[k] = v
		}
	}
	l[LabelManagedBy] = ManagedBy
	l[LabelNodeID] = spec.ID
	return l
}

// selector selects a node's pods.
func selector(id string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelNodeID: id}
}

// specHash identifies a spec: a node is restarted when it changes.
func specHash(spec runtime.NodeSpec) string {
	b, _ := json.Marshal(spec)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

var applyOpts = metav1.ApplyOptions{FieldManager: FieldManager, Force: true}

// Start implements runtime.Runtime: it applies the node's namespace and
// objects. Applying the same spec again changes nothing; another spec
// changes the pod template, which Kubernetes rolls out.
func (r *Runtime) Start(ctx context.Context, spec runtime.NodeSpec) (runtime.Status, error) {
	p, err := r.placeOf(spec)
	if err != nil {
		return runtime.Status{}, err
	}
	w, err := r.watcher(ctx)
	if err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	if err := r.namespaceOnce(ctx, p.namespace, spec.Labels[LabelNetwork]); err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	labels := r.labels(spec)
	hash := specHash(spec)
	files, keys, script := filesOf(spec)

	cm := r.configMap(spec, p, files)
	if _, err := r.cs.CoreV1().ConfigMaps(p.namespace).Apply(ctx, cm, applyOpts); err != nil {
		if apierrors.IsNotFound(err) {
			// The namespace went behind the runtime's back.
			r.forgetNamespace(p.namespace)
		}
		return runtime.Status{}, fmt.Errorf("start %s: config map: %w", spec.ID, err)
	}
	sec := coreac.Secret(p.name+"-keys", p.namespace).WithLabels(labels).WithType(corev1.SecretTypeOpaque).WithData(keys)
	if _, err := r.cs.CoreV1().Secrets(p.namespace).Apply(ctx, sec, applyOpts); err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: secret: %w", spec.ID, err)
	}
	svc := coreac.Service(p.name, p.namespace).WithLabels(labels).WithSpec(coreac.ServiceSpec().
		WithClusterIP(corev1.ClusterIPNone).
		// Peers find a node by name before it is ready: consensus needs
		// them to, as a chain becomes ready only once its nodes meet.
		WithPublishNotReadyAddresses(true).
		WithSelector(selector(spec.ID)).
		WithPorts(servicePorts(spec)...))
	if _, err := r.cs.CoreV1().Services(p.namespace).Apply(ctx, svc, applyOpts); err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: service: %w", spec.ID, err)
	}
	sts := r.statefulSet(spec, p, labels, hash, script)
	applied, err := r.cs.AppsV1().StatefulSets(p.namespace).Apply(ctx, sts, applyOpts)
	if err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: stateful set: %w", spec.ID, err)
	}
	if err := w.settle(ctx, p.namespace+"/"+p.name, applied.ResourceVersion); err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	// Its pod is only being made: no warning to look for yet.
	got, err := w.statefulSet(spec.ID)
	if err != nil {
		return runtime.Status{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	return r.status(ctx, got, false), nil
}

// namespaceOnce applies a network's namespace once for all its nodes
// while this runtime runs.
func (r *Runtime) namespaceOnce(ctx context.Context, name, network string) error {
	r.mu.Lock()
	once, ok := r.namespaces[name]
	if !ok {
		once = &nsOnce{done: make(chan struct{})}
		r.namespaces[name] = once
	}
	r.mu.Unlock()
	if !ok {
		once.err = r.ensureNamespace(ctx, name, network)
		if once.err != nil {
			r.forgetNamespace(name)
		}
		close(once.done)
		return once.err
	}
	select {
	case <-once.done:
		return once.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// forgetNamespace makes the next node of the namespace apply it again.
func (r *Runtime) forgetNamespace(name string) {
	r.mu.Lock()
	delete(r.namespaces, name)
	r.mu.Unlock()
}

// configMap holds a node's files that are not keys.
func (r *Runtime) configMap(spec runtime.NodeSpec, p place, files map[string][]byte) *coreac.ConfigMapApplyConfiguration {
	return coreac.ConfigMap(p.name+"-files", p.namespace).WithLabels(r.labels(spec)).WithBinaryData(files)
}

// ensureNamespace applies the network's namespace and its quota, limits and
// network policy. A namespace of that name that ChainDock did not make is
// left alone, and the node refused.
func (r *Runtime) ensureNamespace(ctx context.Context, name, network string) error {
	ns, err := r.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("namespace %s: %w", name, err)
	case ns.Labels[LabelManagedBy] != ManagedBy || ns.Annotations[AnnotationOwner] != r.opts.Owner:
		return fmt.Errorf("namespace %s exists and is not this ChainDock's (labels %v): choose another network name or namespace prefix", name, ns.Labels)
	case ns.DeletionTimestamp != nil:
		return fmt.Errorf("namespace %s is being deleted: try again once it is gone", name)
	}
	labels := map[string]string{LabelManagedBy: ManagedBy, LabelNetwork: network}
	nsAC := coreac.Namespace(name).WithLabels(labels).WithAnnotations(map[string]string{AnnotationOwner: r.opts.Owner})
	if _, err := r.cs.CoreV1().Namespaces().Apply(ctx, nsAC, applyOpts); err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	quota := coreac.ResourceQuota("chaindock", name).WithLabels(labels).WithSpec(coreac.ResourceQuotaSpec().WithHard(corev1.ResourceList{
		corev1.ResourceRequestsCPU:    resource.MustParse(r.opts.QuotaCPU),
		corev1.ResourceRequestsMemory: resource.MustParse(r.opts.QuotaMemory),
		corev1.ResourceLimitsCPU:      resource.MustParse(r.opts.QuotaCPU),
		corev1.ResourceLimitsMemory:   resource.MustParse(r.opts.QuotaMemory),
	}))
	if _, err := r.cs.CoreV1().ResourceQuotas(name).Apply(ctx, quota, applyOpts); err != nil {
		return fmt.Errorf("namespace %s: resource quota: %w", name, err)
	}
	defaults := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(r.opts.DefaultCPU),
		corev1.ResourceMemory: resource.MustParse(r.opts.DefaultMemory),
	}
	limits := coreac.LimitRange("chaindock", name).WithLabels(labels).WithSpec(coreac.LimitRangeSpec().WithLimits(
		coreac.LimitRangeItem().WithType(corev1.LimitTypeContainer).WithDefault(defaults).WithDefaultRequest(defaults)))
	if _, err := r.cs.CoreV1().LimitRanges(name).Apply(ctx, limits, applyOpts); err != nil {
		return fmt.Errorf("namespace %s: limit range: %w", name, err)
	}
	from := []*netac.NetworkPolicyPeerApplyConfiguration{
		// The network's own pods.
		netac.NetworkPolicyPeer().WithPodSelector(metaac.LabelSelector()),
	}
	if r.opts.PlatformNamespace != "" {
		from = append(from, netac.NetworkPolicyPeer().WithNamespaceSelector(
			metaac.LabelSelector().WithMatchLabels(map[string]string{"kubernetes.io/metadata.name": r.opts.PlatformNamespace})))
	}
	policy := netac.NetworkPolicy("chaindock", name).WithLabels(labels).WithSpec(netac.NetworkPolicySpec().
		WithPodSelector(metaac.LabelSelector()).
		WithPolicyTypes("Ingress").
		WithIngress(netac.NetworkPolicyIngressRule().WithFrom(from...)))
	if _, err := r.cs.NetworkingV1().NetworkPolicies(name).Apply(ctx, policy, applyOpts); err != nil {
		return fmt.Errorf("namespace %s: network policy: %w", name, err)
	}
	return nil
}

// filesOf splits a node's files into the config map's and the secret's
// data, and writes the script that copies them into the home directory.
func filesOf(spec runtime.NodeSpec) (files, keys map[string][]byte, script string) {
	files, keys = map[string][]byte{}, map[string][]byte{}
	var b strings.Builder
	b.WriteString("set -e\n")
	for i, f := range spec.Files {
		key := fmt.Sprintf("file-%d", i)
		src := "/chaindock/files/" + key
		if f.Secret {
			keys[key] = f.Data
			src = "/chaindock/keys/" + key
		} else {
			files[key] = f.Data
		}
		dst := HomeDir + "/" + f.Path
		dir := dst[:strings.LastIndex(dst, "/")]
		fmt.Fprintf(&b, "mkdir -p '%s'\n", dir)
		if f.KeepExisting {
			fmt.Fprintf(&b, "[ -e '%s' ] || cp '%s' '%s'\n", dst, src, dst)
		} else {
			fmt.Fprintf(&b, "cp '%s' '%s'\n", src, dst)
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o600
		}
		fmt.Fprintf(&b, "chmod %o '%s'\n", mode, dst)
	}
	return files, keys, b.String()
}

// primaryPort is the port probes check: the node's RPC when it has one.
func primaryPort(spec runtime.NodeSpec) (string, int) {
	if p, ok := spec.Ports["rpc"]; ok {
		return "rpc", p
	}
	names := slices.Sorted(maps.Keys(spec.Ports))
	if len(names) == 0 {
		return "", 0
	}
	return names[0], spec.Ports[names[0]]
}

func servicePorts(spec runtime.NodeSpec) []*coreac.ServicePortApplyConfiguration {
	var out []*coreac.ServicePortApplyConfiguration
	for _, name := range slices.Sorted(maps.Keys(spec.Ports)) {
		p := int32(spec.Ports[name]) //nolint:gosec // ports are below 65536
		out = append(out, coreac.ServicePort().WithName(name).WithPort(p).WithTargetPort(intstr.FromInt32(p)))
	}
	return out
}

func envOf(env map[string]string) []*coreac.EnvVarApplyConfiguration {
	var out []*coreac.EnvVarApplyConfiguration
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, coreac.EnvVar().WithName(k).WithValue(env[k]))
	}
	return out
}

func resourcesOf(res runtime.Resources) *coreac.ResourceRequirementsApplyConfiguration {
	list := corev1.ResourceList{}
	if res.CPU != "" {
		list[corev1.ResourceCPU] = resource.MustParse(res.CPU)
	}
	if res.Memory != "" {
		list[corev1.ResourceMemory] = resource.MustParse(res.Memory)
	}
	if len(list) == 0 {
		return nil
	}
	return coreac.ResourceRequirements().WithRequests(list).WithLimits(list)
}

func (r *Runtime) statefulSet(spec runtime.NodeSpec, p place, labels map[string]string, hash, script string) *appsac.StatefulSetApplyConfiguration {
	home := coreac.VolumeMount().WithName("home").WithMountPath(HomeDir)
	init := []*coreac.ContainerApplyConfiguration{
		coreac.Container().WithName("files").WithImage(spec.Image).
			WithCommand("sh", "-c", script).
			WithVolumeMounts(home,
				coreac.VolumeMount().WithName("files").WithMountPath("/chaindock/files").WithReadOnly(true),
				coreac.VolumeMount().WithName("keys").WithMountPath("/chaindock/keys").WithReadOnly(true)),
	}
	for _, st := range spec.Init {
		image := st.Image
		if image == "" {
			image = spec.Image
		}
		c := coreac.Container().WithName("init-" + st.Name).WithImage(image).WithWorkingDir(HomeDir).
			WithArgs(st.Args...).WithEnv(envOf(st.Env)...).WithVolumeMounts(home)
		if st.Program != "" {
			c.WithCommand(st.Program)
		}
		init = append(init, c)
	}
	always := corev1.ContainerRestartPolicyAlways
	for _, sc := range spec.Sidecars {
		// A native sidecar: it starts, and must be ready, before the node.
		c := coreac.Container().WithName(sc.Name).WithImage(sc.Image).WithRestartPolicy(always).
			WithWorkingDir(HomeDir).WithArgs(sc.Args...).WithEnv(envOf(sc.Env)...).WithVolumeMounts(home)
		if sc.Program != "" {
			c.WithCommand(sc.Program)
		}
		if _, port, ok := strings.Cut(strings.TrimPrefix(sc.ReadyAddress, "tcp://"), ":"); ok {
			c.WithStartupProbe(coreac.Probe().WithTCPSocket(coreac.TCPSocketAction().WithPort(intstr.Parse(port))).
				WithPeriodSeconds(1).WithFailureThreshold(60))
		}
		init = append(init, c)
	}
	node := coreac.Container().WithName("node").WithImage(spec.Image).WithWorkingDir(HomeDir).
		WithArgs(spec.Args...).WithEnv(envOf(spec.Env)...).WithVolumeMounts(home)
	if spec.Program != "" {
		node.WithCommand(spec.Program)
	}
	for _, name := range slices.Sorted(maps.Keys(spec.Ports)) {
		node.WithPorts(coreac.ContainerPort().WithName(portName(name)).WithContainerPort(int32(spec.Ports[name]))) //nolint:gosec // ports are below 65536
	}
	if res := resourcesOf(spec.Resources); res != nil {
		node.WithResources(res)
	}
	if _, port := primaryPort(spec); port > 0 {
		tcp := func() *coreac.ProbeApplyConfiguration {
			return coreac.Probe().WithTCPSocket(coreac.TCPSocketAction().WithPort(intstr.FromInt(port)))
		}
		node.WithReadinessProbe(tcp().WithPeriodSeconds(2)).
			WithLivenessProbe(tcp().WithInitialDelaySeconds(30).WithPeriodSeconds(10).WithFailureThreshold(6))
	}

	claim := coreac.PersistentVolumeClaim("home", "").WithLabels(labels).WithSpec(coreac.PersistentVolumeClaimSpec().
		WithAccessModes(corev1.ReadWriteOnce).
		WithResources(coreac.VolumeResourceRequirements().WithRequests(corev1.ResourceList{
			corev1.ResourceStorage: resource.MustParse(r.opts.StorageSize),
		})))
	if r.opts.StorageClass != "" {
		claim.Spec.WithStorageClassName(r.opts.StorageClass)
	}
	return appsac.StatefulSet(p.name, p.namespace).WithLabels(labels).WithSpec(appsac.StatefulSetSpec().
		WithReplicas(1).
		WithServiceName(p.name).
		WithPodManagementPolicy(appsv1.ParallelPodManagement).
		WithSelector(metaac.LabelSelector().WithMatchLabels(selector(spec.ID))).
		WithPersistentVolumeClaimRetentionPolicy(appsac.StatefulSetPersistentVolumeClaimRetentionPolicy().
			WithWhenDeleted(appsv1.DeletePersistentVolumeClaimRetentionPolicyType).
			WithWhenScaled(appsv1.RetainPersistentVolumeClaimRetentionPolicyType)).
		WithVolumeClaimTemplates(claim).
		WithTemplate(coreac.PodTemplateSpec().
			WithLabels(labels).
			WithAnnotations(map[string]string{AnnotationSpec: hash}).
			WithSpec(coreac.PodSpec().
				WithSecurityContext(coreac.PodSecurityContext().WithFSGroup(r.opts.FSGroup)).
				WithEnableServiceLinks(false).
				WithAutomountServiceAccountToken(false).
				WithInitContainers(init...).
				WithContainers(node).
				WithVolumes(
					coreac.Volume().WithName("files").WithConfigMap(coreac.ConfigMapVolumeSource().WithName(p.name+"-files")),
					coreac.Volume().WithName("keys").WithSecret(coreac.SecretVolumeSource().WithSecretName(p.name+"-keys").WithDefaultMode(0o440)),
				))))
}

// portName is a port's name as a container port may carry it (at most 15
// characters).
func portName(name string) string {
	if len(name) > 15 {
		return name[:15]
	}
	return name
}

// find returns the node's stateful set, or runtime.ErrNotFound, from the
// watch.
func (r *Runtime) find(ctx context.Context, id string) (*appsv1.StatefulSet, error) {
	w, err := r.watcher(ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", id, err)
	}
	return w.statefulSet(id)
}

// Inspect implements runtime.Runtime. A node runs while its stateful set
// wants its pod and the pod is not finished: Kubernetes restarts its
// containers itself, and the chain's probe tells whether the node serves.
func (r *Runtime) Inspect(ctx context.Context, id string) (runtime.Status, error) {
	sts, err := r.find(ctx, id)
	if err != nil {
		return runtime.Status{}, err
	}
	return r.status(ctx, sts, true), nil
}

// status is a node's state from its stateful set and pod as the watch
// has them. Only a node whose pod is missing or not ready costs a request,
// with warnings: the newest warning event says why.
func (r *Runtime) status(ctx context.Context, sts *appsv1.StatefulSet, warnings bool) runtime.Status {
	st := runtime.Status{
		ID:       sts.Labels[LabelNodeID],
		Labels:   maps.Clone(sts.Labels),
		SpecHash: sts.Spec.Template.Annotations[AnnotationSpec],
		State:    runtime.StateExited,
	}
	delete(st.Labels, LabelManagedBy)
	delete(st.Labels, LabelNodeID)
	if sts.Spec.Replicas != nil && *sts.Spec.Replicas == 0 {
		st.Message = "stopped (0 replicas)"
		return st
	}
	r.mu.Lock()
	w := r.w
	r.mu.Unlock()
	var pod *corev1.Pod
	if w != nil {
		pod = w.pod(sts.Namespace, sts.Name+"-0")
	}
	if pod == nil {
		st.State, st.Message = runtime.StateRunning, "waiting for its pod to be created"
		// Why not, if the cluster said (a quota, a missing class).
		if w := r.warning(ctx, warnings, sts.Namespace, "StatefulSet", sts.Name); w != "" {
			st.Message += ": " + w
			st.Waiting = st.Message
		}
		return st
	}
	st.Pod = podStatus(pod)
	switch pod.Status.Phase {
	case corev1.PodFailed, corev1.PodSucceeded:
		st.Message = fmt.Sprintf("pod %s: %s %s", pod.Name, pod.Status.Phase, pod.Status.Message)
		return st
	}
	st.State = runtime.StateRunning
	if pod.Status.StartTime != nil {
		st.StartedAt = pod.Status.StartTime.Time
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != "node" {
			continue
		}
		if cs.State.Running != nil {
			st.StartedAt = cs.State.Running.StartedAt.Time
		}
		if w := cs.State.Waiting; w != nil {
			st.Message = fmt.Sprintf("%s: %s", w.Reason, w.Message)
		}
	}
	if pod.Status.Phase == corev1.PodPending && st.Message == "" {
		st.Message = "pod pending"
		for _, c := range pod.Status.Conditions {
			if c.Status == corev1.ConditionFalse && c.Message != "" {
				st.Message = fmt.Sprintf("pod pending: %s: %s", c.Reason, c.Message)
				st.Waiting = st.Message
			}
		}
	}
	if !st.Pod.Ready && pod.Status.Phase != corev1.PodPending {
		// A pending pod's conditions say why; a running one that is not
		// ready says it in events (probes failing, a crash loop).
		if w := r.warning(ctx, warnings, pod.Namespace, "Pod", pod.Name); w != "" {
			st.Message = strings.TrimPrefix(st.Message+"; "+w, "; ")
		}
	}
	return st
}

// warning is lastWarning when look is true, and "" without a request
// when it is not.
func (r *Runtime) warning(ctx context.Context, look bool, ns, kind, name string) string {
	if !look {
		return ""
	}
	return r.lastWarning(ctx, ns, kind, name)
}

// lastWarning is the newest warning event about an object, as "reason:
// message", or "" when there is none (or the events cannot be read).
func (r *Runtime) lastWarning(ctx context.Context, ns, kind, name string) string {
	list, err := r.cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name + ",type=" + corev1.EventTypeWarning,
	})
	if err != nil || len(list.Items) == 0 {
		return ""
	}
	newest := list.Items[0]
	// Core events carry their last time; events.k8s.io ones, their
	// first, and a series' last.
	at := func(e corev1.Event) time.Time {
		t := e.LastTimestamp.Time
		if e.EventTime.After(t) {
			t = e.EventTime.Time
		}
		if e.Series != nil && e.Series.LastObservedTime.After(t) {
			t = e.Series.LastObservedTime.Time
		}
		return t
	}
	for _, e := range list.Items[1:] {
		if at(e).After(at(newest)) {
			newest = e
		}
	}
	return newest.Reason + ": " + newest.Message
}

// podStatus is what the cluster says of a node's pod.
func podStatus(pod *corev1.Pod) *runtime.PodStatus {
	ps := &runtime.PodStatus{Name: pod.Namespace + "/" + pod.Name, UID: string(pod.UID), Phase: string(pod.Status.Phase),
		PodIP: pod.Status.PodIP, HostIP: pod.Status.HostIP, Node: pod.Spec.NodeName}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			ps.Ready = c.Status == corev1.ConditionTrue
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == "node" {
			ps.Restarts = int(cs.RestartCount)
		}
	}
	return ps
}

// Stop implements runtime.Runtime: the stateful set goes to 0 replicas,
// and the volume stays.
func (r *Runtime) Stop(ctx context.Context, id string) error {
	w, err := r.watcher(ctx)
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	sts, err := w.statefulSet(id)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	patch := []byte(`{"spec":{"replicas":0}}`)
	patched, err := r.cs.AppsV1().StatefulSets(sts.Namespace).Patch(ctx, sts.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if err := w.settle(ctx, sts.Namespace+"/"+sts.Name, patched.ResourceVersion); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	return nil
}

// Remove implements runtime.Runtime: the node's objects and its volume go;
// with the network's last node, its namespace goes too.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	w, err := r.watcher(ctx)
	if err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	// Asked of the cluster rather than the watch: a stateful set being
	// deleted, which the watch shows as gone, may still hold objects.
	list, err := r.cs.AppsV1().StatefulSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		LabelSelector: metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: selector(id)}),
	})
	if err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	namespaces := map[string]bool{}
	for _, sts := range list.Items {
		namespaces[sts.Namespace] = true
	}
	sel := metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: selector(id)})}
	background := metav1.DeletePropagationBackground
	del := metav1.DeleteOptions{PropagationPolicy: &background}
	for ns := range namespaces {
		var errs []error
		errs = append(errs,
			r.cs.AppsV1().StatefulSets(ns).DeleteCollection(ctx, del, sel),
			r.deleteServices(ctx, ns, del, sel),
			r.cs.CoreV1().ConfigMaps(ns).DeleteCollection(ctx, del, sel),
			r.cs.CoreV1().Secrets(ns).DeleteCollection(ctx, del, sel),
			r.cs.CoreV1().PersistentVolumeClaims(ns).DeleteCollection(ctx, del, sel),
		)
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("remove %s: %w", id, err)
		}
		for _, sts := range list.Items {
			if sts.Namespace == ns {
				if err := w.settle(ctx, ns+"/"+sts.Name, ""); err != nil {
					return fmt.Errorf("remove %s: %w", id, err)
				}
			}
		}
		if err := r.removeNamespaceIfEmpty(ctx, ns); err != nil {
			return fmt.Errorf("remove %s: %w", id, err)
		}
	}
	return nil
}

// deleteServices deletes the services sel selects: the API has no
// collection delete for services.
func (r *Runtime) deleteServices(ctx context.Context, ns string, del metav1.DeleteOptions, sel metav1.ListOptions) error {
	list, err := r.cs.CoreV1().Services(ns).List(ctx, sel)
	if err != nil {
		return err
	}
	var errs []error
	for _, svc := range list.Items {
		if err := r.cs.CoreV1().Services(ns).Delete(ctx, svc.Name, del); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeNamespaceIfEmpty deletes a network's namespace once no node of
// ChainDock's is left in it, and only a namespace ChainDock made.
func (r *Runtime) removeNamespaceIfEmpty(ctx context.Context, name string) error {
	left, err := r.cs.AppsV1().StatefulSets(name).List(ctx, metav1.ListOptions{
		LabelSelector: LabelManagedBy + "=" + ManagedBy,
	})
	if err != nil {
		return err
	}
	for _, sts := range left.Items {
		if sts.DeletionTimestamp == nil {
			return nil
		}
	}
	ns, err := r.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.Labels[LabelManagedBy] != ManagedBy || ns.Annotations[AnnotationOwner] != r.opts.Owner {
		return nil
	}
	r.forgetNamespace(name)
	err = r.cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// List implements runtime.Runtime.
func (r *Runtime) List(ctx context.Context) ([]runtime.Status, error) {
	w, err := r.watcher(ctx)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []runtime.Status
	for _, sts := range w.statefulSets("") {
		if sts.DeletionTimestamp != nil || sts.Labels[LabelNodeID] == "" {
			continue
		}
		out = append(out, r.status(ctx, sts, true))
	}
	return out, nil
}

// Logs implements runtime.LogReader from the pod's container log.
func (r *Runtime) Logs(ctx context.Context, id string, opts runtime.LogOptions, w io.Writer) error {
	sts, err := r.find(ctx, id)
	if err != nil {
		return err
	}
	container := "node"
	if opts.Sidecar != "" {
		container = opts.Sidecar
	}
	po := &corev1.PodLogOptions{Container: container, Follow: opts.Follow}
	if opts.Tail > 0 {
		tail := int64(opts.Tail)
		po.TailLines = &tail
	}
	rc, err := r.cs.CoreV1().Pods(sts.Namespace).GetLogs(sts.Name+"-0", po).Stream(ctx)
	if err != nil {
		return fmt.Errorf("logs of %s: %w", id, err)
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	if err != nil && ctx.Err() != nil {
		return nil
	}
	return err
}
