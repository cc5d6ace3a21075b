package fabric

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
	"github.com/chaindock/chaindock/internal/runtime"
)

const peerMetrics = `# HELP ledger_blockchain_height Height of the chain in blocks.
# TYPE ledger_blockchain_height gauge
ledger_blockchain_height{channel="other"} 9
ledger_blockchain_height{channel="trade"} 4
# TYPE gossip_membership_total_peers_known gauge
gossip_membership_total_peers_known{channel="trade"} 3
go_goroutines 120
`

// raftMetrics is what an orderer of a three-consenter channel trade says.
func raftMetrics(height, active int) string {
	return fmt.Sprintf("ledger_blockchain_height{channel=\"trade\"} %d\nconsensus_etcdraft_cluster_size{channel=\"trade\"} 3\nconsensus_etcdraft_active_nodes{channel=\"trade\"} %d\n", height, active)
}

func TestParseMetrics(t *testing.T) {
	m := ParseMetrics(peerMetrics, "trade")
	if m[metricHeight] != 4 || m[metricPeerMembers] != 3 || m["go_goroutines"] != 120 {
		t.Fatalf("metrics of trade: %v", m)
	}
	if m := ParseMetrics(peerMetrics, "none"); m[metricHeight] != 0 {
		t.Fatalf("a channel the node lacks has height %v", m[metricHeight])
	}
}

func TestProbe(t *testing.T) {
	var mu sync.Mutex
	healthy, metrics := true, peerMetrics
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/healthz":
			if !healthy {
				http.Error(w, `{"status":"Service Unavailable"}`, http.StatusServiceUnavailable)
			}
		case "/metrics":
			_, _ = io.WriteString(w, metrics)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	node := chain.PlannedNode{
		Name: "org1-peer-0", Role: "full",
		Spec:      runtime.NodeSpec{Files: []runtime.File{{Path: BlockPath("trade")}}},
		Endpoints: map[string]string{PortOperations: srv.URL},
	}
	d := New()
	info, err := d.Probe(t.Context(), node)
	if err != nil || info.Height != 4 || info.Peers != 3 || info.CatchingUp {
		t.Fatalf("probe: %+v %v", info, err)
	}

	// Joined, but no block of the channel yet: catching up. Not joined
	// yet: running at height 0, waiting to be joined.
	mu.Lock()
	metrics = "go_goroutines 1\n"
	mu.Unlock()
	if info, err := d.Probe(t.Context(), node); err != nil || !info.CatchingUp || info.Height != 0 {
		t.Errorf("joined node without the channel: %+v %v", info, err)
	}
	node.Joining = true
	if info, err := d.Probe(t.Context(), node); err != nil || info.CatchingUp {
		t.Errorf("node to join: %+v %v", info, err)
	}

	// An orderer's peers are the other consenters its Raft hears from.
	node.Joining, node.Role = false, "validator"
	for _, active := range []int{0, 1, 3} {
		mu.Lock()
		metrics = raftMetrics(2, active)
		mu.Unlock()
		info, err := d.Probe(t.Context(), node)
		if err != nil || info.CatchingUp || info.Peers != max(active-1, 0) || info.Height != 2 {
			t.Errorf("orderer with %d of 3 active: %+v %v", active, info, err)
		}
	}

	mu.Lock()
	healthy = false
	mu.Unlock()
	if _, err := d.Probe(t.Context(), node); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("unhealthy node: %v", err)
	}
}

// TestJoinOrderer joins an orderer through a stand-in for its channel
// participation API that serves with the orderer's TLS certificate and
// takes only clients of its organisation's TLS CA, as the orderer does.
func TestJoinOrderer(t *testing.T) {
	n, plan := planFor(t, "two-orgs.good.yaml")
	ord := plan.Nodes[0]
	cert, err := tls.X509KeyPair(chain.FileData(ord.Spec, "tls/"+pki.TLSCert), chain.FileData(ord.Spec, "tls/"+pki.TLSKey))
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AppendCertsFromPEM(chain.FileData(ord.Spec, "tls/"+pki.TLSCACert))

	var mu sync.Mutex
	var joined []byte
	var clients []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		clients = append(clients, r.TLS.PeerCertificates[0].Subject.CommonName)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == participationPath+"/trade":
			if joined == nil {
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, `{"error":"channel does not exist"}`)
				return
			}
			_ = json.NewEncoder(w).Encode(channelInfo{Name: "trade", Status: "active", ConsensusRelation: "consenter", Height: 1})
		case r.Method == http.MethodPost && r.URL.Path == participationPath:
			f, _, err := r.FormFile("config-block")
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			joined, _ = io.ReadAll(f)
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(channelInfo{Name: "trade", Status: "onboarding", ConsensusRelation: "consenter"})
		default:
			http.Error(w, `{"error":"unexpected"}`, http.StatusMethodNotAllowed)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	ord.Endpoints[PortAdmin] = srv.URL
	active := 0
	ops := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = io.WriteString(w, raftMetrics(1, active))
	}))
	defer ops.Close()
	ord.Endpoints[PortOperations] = ops.URL

	// Joined at the first call; a member once its Raft leader hears from
	// two of the three consenters.
	d := New()
	for i, want := range []struct {
		active int
		member bool
	}{{0, false}, {1, false}, {2, true}} {
		mu.Lock()
		active = want.active
		mu.Unlock()
		ok, err := d.Bootstrap(t.Context(), n, plan, ord)
		if err != nil || ok != want.member {
			t.Fatalf("bootstrap %d with %d active: %v %v, want %v", i, want.active, ok, err, want.member)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(joined, plan.Artifact(BlockPath("trade"))) {
		t.Error("the orderer was not joined with the channel's genesis block")
	}
	// GET, POST, then GET twice: joined once.
	if len(clients) != 4 || clients[0] != "Admin@orderer.fab" {
		t.Errorf("clients %v, want the orderer organisation's admin four times", clients)
	}
}
