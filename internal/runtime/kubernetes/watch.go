package kubernetes

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/chaindock/chaindock/internal/runtime"
)

// SyncTimeout bounds the wait for a cluster's first list of ChainDock's
// stateful sets and pods; a cluster that has not answered by then is an
// error, not a hang.
const SyncTimeout = 5 * time.Second

// settleTimeout bounds the wait for a write to come back through the
// watch.
const settleTimeout = 5 * time.Second

// byNodeID indexes objects by the node they belong to.
const byNodeID = "node-id"

// watcher keeps the runtime's view of its stateful sets and pods from
// watches (shared informers that select ChainDock's objects by label), so
// that reading a node costs the cluster nothing: a network that runs sends
// no request while nothing changes.
type watcher struct {
	sts, pods cache.SharedIndexInformer
	stop      chan struct{}

	mu      sync.Mutex
	lastErr error
	failed  chan struct{} // closed at the first watch error before the first sync
}

func newWatcher(cs kubernetes.Interface) *watcher {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = LabelManagedBy + "=" + ManagedBy
	}))
	w := &watcher{
		sts:    f.Apps().V1().StatefulSets().Informer(),
		pods:   f.Core().V1().Pods().Informer(),
		stop:   make(chan struct{}),
		failed: make(chan struct{}),
	}
	for _, inf := range []cache.SharedIndexInformer{w.sts, w.pods} {
		// Neither can fail before the informer starts.
		_ = inf.AddIndexers(cache.Indexers{byNodeID: func(obj any) ([]string, error) {
			m, ok := obj.(metav1.Object)
			if !ok {
				return nil, nil
			}
			if id := m.GetLabels()[LabelNodeID]; id != "" {
				return []string{id}, nil
			}
			return nil, nil
		}})
		_ = inf.SetTransform(stripManagedFields)
		_ = inf.SetWatchErrorHandler(w.watchError)
	}
	f.Start(w.stop)
	return w
}

// stripManagedFields drops what the runtime never reads from cached
// objects: with hundreds of nodes, managed fields are most of a pod.
func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

func (w *watcher) watchError(_ *cache.Reflector, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastErr = err
	if !w.synced() {
		select {
		case <-w.failed:
		default:
			close(w.failed)
		}
	}
}

func (w *watcher) synced() bool { return w.sts.HasSynced() && w.pods.HasSynced() }

// waitSynced waits for the first lists; the first watch error before them
// ends the wait, so an unreachable or forbidding cluster answers at once.
func (w *watcher) waitSynced(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !w.synced() {
		select {
		case <-w.failed:
			w.mu.Lock()
			err := w.lastErr
			w.mu.Unlock()
			return fmt.Errorf("cannot watch ChainDock's stateful sets and pods on the cluster: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("cannot watch ChainDock's stateful sets and pods on the cluster: no answer in %s", timeout)
		case <-tick.C:
		}
	}
	return nil
}

func (w *watcher) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
}

// statefulSet is node id's stateful set, or runtime.ErrNotFound. One that
// is being deleted counts as gone.
func (w *watcher) statefulSet(id string) (*appsv1.StatefulSet, error) {
	objs, err := w.sts.GetIndexer().ByIndex(byNodeID, id)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if sts, ok := o.(*appsv1.StatefulSet); ok && sts.DeletionTimestamp == nil {
			return sts, nil
		}
	}
	return nil, fmt.Errorf("node %s: %w", id, runtime.ErrNotFound)
}

// statefulSets are every stateful set of ChainDock's, in namespace ns
// ("" for all).
func (w *watcher) statefulSets(ns string) []*appsv1.StatefulSet {
	var out []*appsv1.StatefulSet
	for _, o := range w.sts.GetStore().List() {
		if sts, ok := o.(*appsv1.StatefulSet); ok && (ns == "" || sts.Namespace == ns) {
			out = append(out, sts)
		}
	}
	return out
}

// pod is the pod ns/name, or nil when the cluster has none.
func (w *watcher) pod(ns, name string) *corev1.Pod {
	o, ok, err := w.pods.GetStore().GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	pod, _ := o.(*corev1.Pod)
	return pod
}

// settle waits until the watch has seen a write: the stateful set key
// at resource version rv or later, or, with rv "", gone.
func (w *watcher) settle(ctx context.Context, key, rv string) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	for {
		o, ok, err := w.sts.GetStore().GetByKey(key)
		if err != nil {
			return err
		}
		if rv == "" && (!ok || o.(metav1.Object).GetDeletionTimestamp() != nil) {
			return nil
		}
		if rv != "" && ok && !olderThan(o.(metav1.Object).GetResourceVersion(), rv) {
			return nil
		}
		select {
		case <-ctx.Done():
			if rv == "" {
				return fmt.Errorf("the watch has not seen %s go in %s", key, settleTimeout)
			}
			return fmt.Errorf("the watch has not seen %s at version %s in %s", key, rv, settleTimeout)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// olderThan tells whether resource version a comes before b. Versions are
// opaque to clients, but every API server backed by etcd gives its
// revisions, which grow; where they do not parse, only equality counts.
func olderThan(a, b string) bool {
	if a == b {
		return false
	}
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return true
	}
	return x < y
}
