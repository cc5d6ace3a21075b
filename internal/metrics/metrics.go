// Package metrics holds ChainDock's Prometheus metrics, in a registry of its
// own so that tests and several servers in one process do not collide.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the server's metrics.
type Metrics struct {
	Registry          *prometheus.Registry
	ReconcileDuration *prometheus.HistogramVec
	ReconcileErrors   *prometheus.CounterVec
	NodeRestarts      *prometheus.CounterVec
	NodeHeight        *prometheus.GaugeVec
	NodeUp            *prometheus.GaugeVec
	NetworkPhase      *prometheus.GaugeVec
	HTTPRequests      *prometheus.CounterVec
	CertificateExpiry *prometheus.GaugeVec
}

// New registers the metrics in a new registry, with Go and process
// collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		ReconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chaindock_reconcile_duration_seconds",
			Help:    "Time one reconcile of a network took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"result"}),
		ReconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chaindock_reconcile_errors_total",
			Help: "Reconciles that ended in an error, by network.",
		}, []string{"network"}),
		NodeRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chaindock_node_restarts_total",
			Help: "Nodes restarted by the crash health rule.",
		}, []string{"network", "node"}),
		NodeHeight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chaindock_node_block_height",
			Help: "Latest block height a node reported.",
		}, []string{"network", "node"}),
		NodeUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chaindock_node_up",
			Help: "1 when the node's process runs and its RPC answers.",
		}, []string{"network", "node"}),
		NetworkPhase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chaindock_network_phase",
			Help: "1 for the phase a network is in.",
		}, []string{"network", "phase"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chaindock_http_requests_total",
			Help: "API requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		CertificateExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chaindock_certificate_expiry_timestamp_seconds",
			Help: "When a certificate the platform issued a network's node or organisation identity expires (Unix time); the platform renews it two thirds into its validity.",
		}, []string{"network", "owner", "kind"}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.ReconcileDuration, m.ReconcileErrors, m.NodeRestarts, m.NodeHeight, m.NodeUp, m.NetworkPhase, m.HTTPRequests, m.CertificateExpiry,
	)
	return m
}

// ForgetNode drops the series of a node removed from its network.
func (m *Metrics) ForgetNode(network, node string) {
	l := prometheus.Labels{"network": network, "node": node}
	m.NodeRestarts.DeletePartialMatch(l)
	m.NodeHeight.DeletePartialMatch(l)
	m.NodeUp.DeletePartialMatch(l)
	m.CertificateExpiry.DeletePartialMatch(prometheus.Labels{"network": network, "owner": node})
}

// ForgetNetwork drops every series of a deleted network.
func (m *Metrics) ForgetNetwork(network string) {
	l := prometheus.Labels{"network": network}
	m.ReconcileErrors.DeletePartialMatch(l)
	m.NodeRestarts.DeletePartialMatch(l)
	m.NodeHeight.DeletePartialMatch(l)
	m.NodeUp.DeletePartialMatch(l)
	m.NetworkPhase.DeletePartialMatch(l)
	m.CertificateExpiry.DeletePartialMatch(l)
}
