package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricCertificateRenewal renews every certificate of a running
// network of two organisations and three Raft orderers: the admins' and
// application identities' at once, then each node's, restarted one at a
// time, an orderer's new TLS certificate rotated into the channel's
// consenters first. The nodes then serve their new certificates, the
// channel's last configuration names the orderers' new ones, and a
// notarisation commits, signed by the renewed application identity.
func TestFabricCertificateRenewal(t *testing.T) {
	checkCertificateRenewal(t, "39800-39899", "{orderers: 3, templates: true}", 3)
}

// TestFabricBFTCertificateRenewal is TestFabricCertificateRenewal with
// four BFT orderers, which the platform does not renew: the peers and
// the organisations' identities are renewed, the orderers keep their
// certificates and the channel its consenters.
func TestFabricBFTCertificateRenewal(t *testing.T) {
	checkCertificateRenewal(t, "39900-39999", "{consensus: BFT, orderers: 4, templates: true}", 4)
}

func checkCertificateRenewal(t *testing.T, portRange, fabricSpec string, orderers int) {
	t.Helper()
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", portRange, "--probe-interval", "500ms")
	c := srv.Client

	const name = "renew"
	n, _ := applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric: `+fabricSpec+"\n", 2*time.Minute)
	nodes := orderers + 2
	// restarts: the nodes renewed, all but a BFT service's orderers.
	bft, restarts := strings.Contains(fabricSpec, "BFT"), nodes
	if bft {
		restarts = 2
	}
	renewed := func(owner string) bool { return !bft || !strings.HasPrefix(owner, "orderer-") }
	base := "/api/v1/networks/" + name
	if err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(`{"name":"notary","package":"builtin/fabric-notary@1.0.0"}`), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	first := notarise(t, c, name, "", "before renewal")

	before, err := c.Certificates(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	// The orderers and two peers, two each; three organisations'
	// admins, two each; the two peer organisations' application
	// identities.
	if want := nodes*2 + 3*2 + 2; len(before.Items) != want {
		t.Fatalf("%d certificates, want %d: %+v", len(before.Items), want, before.Items)
	}
	for _, ct := range before.Items {
		if ct.Due != "" || renewed(ct.Owner) != ct.RenewAt.After(time.Now()) {
			t.Errorf("%s %s of a new network: due %q, renewed at %s", ct.Owner, ct.Kind, ct.Due, ct.RenewAt)
		}
	}
	_, configsBefore := lastConfig(ctx, t, c, name)
	served := servedSerials(t, n)
	for _, ct := range before.Items {
		if ct.Kind == "tls" && served[ct.Owner] != "" && served[ct.Owner] != ct.Serial {
			t.Fatalf("%s serves TLS certificate %s, the plan has %s", ct.Owner, served[ct.Owner], ct.Serial)
		}
	}

	// Asked for now: every certificate is renewed (of BFT, but the
	// orderers').
	cl := cli{t: t, bin: binDir + "/chaindock", dataDir: dataDir}
	start := time.Now()
	out := cl.ok("certificates", "renew", name)
	if !strings.Contains(out, "network/"+name+" renews the certificates issued before") {
		t.Fatalf("certificates renew: %s", out)
	}
	// Nodes are not changed meanwhile.
	peers := 2
	body, _ := json.Marshal(api.ScaleRequest{Organization: "org1", Peers: &peers})
	if err := c.Do(ctx, http.MethodPut, base+"/scale", body, "application/json", nil); err == nil || !strings.Contains(err.Error(), "renewing the certificates") {
		t.Errorf("scaling while the certificates are renewed: %v; want 409 naming the renewal", err)
	}
	var after *api.CertificateList
	err = framework.Poll(ctx, 3*time.Minute, 250*time.Millisecond, func() (bool, string) {
		if after, err = c.Certificates(ctx, name); err != nil {
			return false, err.Error()
		}
		var due []string
		for _, ct := range after.Items {
			if ct.Due != "" {
				due = append(due, ct.Owner+" "+ct.Kind)
			}
		}
		if n, err = c.GetNetwork(ctx, name); err != nil {
			return false, err.Error()
		}
		// The plan is stored before the node restarts: the restart is
		// seen by its event.
		restarted := 0
		for _, e := range networkEvents(t, c, name) {
			if e.Reason == "NodeReconfigured" {
				restarted++
			}
		}
		return len(due) == 0 && restarted >= restarts && n.Status.Phase == apis.PhaseRunning && allRunning(n),
			fmt.Sprintf("due %v; %d restarted; %s", due, restarted, framework.Describe(n))
	})
	if err != nil {
		t.Fatalf("certificates not renewed: %v", err)
	}
	t.Logf("every certificate renewed and every node running again %.1fs after the request", time.Since(start).Seconds())
	old := map[string]string{}
	for _, ct := range before.Items {
		old[ct.Owner+" "+ct.Kind] = ct.Serial
	}
	for _, ct := range after.Items {
		if (ct.Serial != old[ct.Owner+" "+ct.Kind]) != renewed(ct.Owner) {
			t.Errorf("%s %s: renewed %v, want %v", ct.Owner, ct.Kind, ct.Serial != old[ct.Owner+" "+ct.Kind], renewed(ct.Owner))
		}
	}
	restarted := 0
	for _, e := range networkEvents(t, c, name) {
		if e.Reason == "NodeReconfigured" {
			restarted++
		}
	}
	if restarted != restarts {
		t.Errorf("%d nodes restarted with new certificates, want %d, one each", restarted, restarts)
	}

	// The metrics say when each certificate expires: the renewed one's end.
	resp, err := c.Raw(ctx, http.MethodGet, "/metrics", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, ct := range after.Items {
		series := fmt.Sprintf(`chaindock_certificate_expiry_timestamp_seconds{kind=%q,network=%q,owner=%q} `, ct.Kind, name, ct.Owner)
		i := strings.Index(string(metricsText), series)
		if i < 0 {
			t.Errorf("/metrics has no %s", series)
			continue
		}
		line, _, _ := strings.Cut(string(metricsText[i+len(series):]), "\n")
		if v, err := strconv.ParseFloat(line, 64); err != nil || int64(v) != ct.NotAfter.Unix() {
			t.Errorf("%s%s, want %d", series, line, ct.NotAfter.Unix())
		}
	}

	// Every node serves its new TLS certificate.
	served = servedSerials(t, n)
	tlsSerial, idSerial := map[string]string{}, map[string]string{}
	for _, ct := range after.Items {
		if ct.Kind == "enrolment" {
			idSerial[ct.Owner] = ct.Serial
		}
		if ct.Kind != "tls" || served[ct.Owner] == "" {
			continue
		}
		tlsSerial[ct.Owner] = ct.Serial
		if served[ct.Owner] != ct.Serial {
			t.Errorf("%s serves TLS certificate %s, want the renewed %s", ct.Owner, served[ct.Owner], ct.Serial)
		}
	}
	// The channel's configuration names the orderers' certificates:
	// of Raft the new ones, one rotation (a config block) an orderer.
	cfg, configs := lastConfig(ctx, t, c, name)
	if rotations := orderers; configs != configsBefore+rotations && !bft || bft && configs != configsBefore {
		t.Errorf("%d config blocks after the genesis, %d before the renewal; want one more for each Raft orderer", configs, configsBefore)
	}
	for _, s := range n.Status.Nodes {
		if s.Role != apis.RoleValidator {
			continue
		}
		u, err := url.Parse(s.Endpoints[fabric.PortListen])
		if err != nil {
			t.Fatal(err)
		}
		host, port, _ := net.SplitHostPort(u.Host)
		var p int
		fmt.Sscan(port, &p)
		tlsCert, id, err := channel.ConsenterCerts(cfg, channel.Address{Host: host, Port: p})
		if err != nil {
			t.Fatal(err)
		}
		if got := tlsCert.SerialNumber.Text(16); got != tlsSerial[s.Name] {
			t.Errorf("the channel has consenter %s with TLS certificate %s, want its current %s", s.Name, got, tlsSerial[s.Name])
		}
		if bft != (id != nil) {
			t.Errorf("consenter %s: enrolment certificate in the configuration %v, BFT %v", s.Name, id != nil, bft)
		} else if bft && id.SerialNumber.Text(16) != idSerial[s.Name] {
			t.Errorf("the channel maps consenter %s to enrolment certificate %s, want its current %s", s.Name, id.SerialNumber.Text(16), idSerial[s.Name])
		}
	}
	t.Logf("the channel's consenters have the orderers' current certificates; %d config blocks after the genesis", configs)

	// A notarisation commits, signed by the renewed application identity
	// for its old key. With one peer an organisation, endorsement under
	// MAJORITY waits until each peer knows the other's new gossip
	// identity.
	start = time.Now()
	err = framework.Poll(ctx, 2*time.Minute, 500*time.Millisecond, func() (bool, string) {
		doc := sha256.Sum256([]byte("after renewal " + time.Now().String()))
		b, _ := json.Marshal(map[string]any{"chaincode": "notary", "function": "Notarize", "args": []string{hex.EncodeToString(doc[:]), "after renewal"}})
		s, err := submitTx(ctx, c, name, b)
		if err != nil {
			return false, err.Error()
		}
		return s.status == http.StatusOK, fmt.Sprintf("HTTP %d %+v", s.status, s.problem)
	})
	if err != nil {
		t.Fatalf("no notarisation after the renewal: %v", err)
	}
	t.Logf("the first notarisation after the renewal committed %.1fs after it was done", time.Since(start).Seconds())
	second := notarise(t, c, name, "", "after renewal")
	if second.cert.Equal(first.cert) || !second.cert.PublicKey.(*ecdsa.PublicKey).Equal(first.cert.PublicKey) {
		t.Errorf("after renewal the transaction was signed by %s (serial %s), before by serial %s: want a new certificate for the same key",
			second.cert.Subject.CommonName, second.cert.SerialNumber.Text(16), first.cert.SerialNumber.Text(16))
	}
	deleteFabricNetwork(t, srv, dataDir, n)
}

func allRunning(n *apis.Network) bool {
	for _, s := range n.Status.Nodes {
		if s.Phase != apis.NodeRunning {
			return false
		}
	}
	return len(n.Status.Nodes) > 0
}

// servedSerials are the serial numbers (hex) of the TLS certificates the
// network's peers and orderers serve on their listen ports.
func servedSerials(t *testing.T, n *apis.Network) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range n.Status.Nodes {
		ep := s.Endpoints[fabric.PortListen]
		if ep == "" {
			continue
		}
		u, err := url.Parse(ep)
		if err != nil {
			t.Fatal(err)
		}
		d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // only the served certificate is read
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		conn, err := d.DialContext(ctx, "tcp", u.Host)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		out[s.Name] = conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
		_ = conn.Close()
	}
	return out
}

// lastConfig is the shared channel's configuration as its last config
// transaction in the explorer has it, and how many config transactions
// follow the genesis block.
func lastConfig(ctx context.Context, t *testing.T, c *client.Client, network string) (*cb.Config, int) {
	t.Helper()
	n, err := c.GetNetwork(ctx, network)
	if err != nil {
		t.Fatal(err)
	}
	var last []byte
	configs := 0
	for _, tx := range indexedTxs(ctx, t, c, network, 1, n.Status.Height) {
		if tx.Type == "CONFIG" && tx.Code == 0 {
			last = tx.Data
			configs++
		}
	}
	if last == nil {
		t.Fatal("the explorer has no config transaction after the genesis block")
	}
	env := &cb.Envelope{}
	payload := &cb.Payload{}
	ce := &cb.ConfigEnvelope{}
	if err := proto.Unmarshal(last, env); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(payload.Data, ce); err != nil {
		t.Fatal(err)
	}
	return ce.Config, configs
}
