package fabric

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	ob "github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

// TestBFTPlan plans a BFT network: its genesis block names each orderer
// as a consenter with the enrolment certificate it signs with, and its
// orderers keep SmartBFT's write-ahead log in their data directory.
func TestBFTPlan(t *testing.T) {
	n, plan := planFor(t, "bft.good.yaml")
	b := &cb.Block{}
	if err := proto.Unmarshal(plan.Artifact(BlockPath(plan.ChainID)), b); err != nil {
		t.Fatal(err)
	}
	config, err := channel.ConfigFromBlock(b)
	if err != nil {
		t.Fatal(err)
	}
	og := config.ChannelGroup.Groups["Orderer"]
	ct := &ob.ConsensusType{}
	if err := proto.Unmarshal(og.Values["ConsensusType"].GetValue(), ct); err != nil || ct.Type != channel.ConsensusBFT {
		t.Fatalf("consensus type %q (%v), want %s", ct.Type, err, channel.ConsensusBFT)
	}
	orderers := &cb.Orderers{}
	if err := proto.Unmarshal(og.Values["Orderers"].GetValue(), orderers); err != nil {
		t.Fatal(err)
	}
	var ids []*x509.Certificate
	for _, pn := range plan.Nodes {
		if pn.Role != apis.RoleValidator {
			continue
		}
		ids = append(ids, pemCert(t, chain.FileData(pn.Spec, dirMSP+"/signcerts/cert.pem")))
		var cfg struct {
			Consensus map[string]string `json:"Consensus"`
		}
		if err := yaml.Unmarshal(chain.FileData(pn.Spec, fileOrdererYAML), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Consensus["WALDir"] != dirData+"/smartbft/wal" {
			t.Errorf("%s: Consensus %v, want the WAL in %s/smartbft/wal", pn.Name, cfg.Consensus, dirData)
		}
	}
	if len(ids) != 4 || len(orderers.ConsenterMapping) != 4 {
		t.Fatalf("%d orderers, %d consenters; want 4 of each", len(ids), len(orderers.ConsenterMapping))
	}
	for i, c := range orderers.ConsenterMapping {
		if c.Id != uint32(i+1) || c.MspId != MSPID(n.Spec.Fabric.OrdererOrg()) || !pemCert(t, c.Identity).Equal(ids[i]) {
			t.Errorf("consenter %d: id %d, MSP %s, identity not orderer-%d's enrolment certificate", i, c.Id, c.MspId, i)
		}
	}

	// Left out, a BFT network has 4 orderers.
	if got := (&apis.FabricSpec{Consensus: apis.FabricConsensusBFT}).OrdererCount(); got != 4 {
		t.Errorf("BFT orderers by default: %d, want 4", got)
	}
}

func pemCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("no PEM: %q", b)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestValidateScaleConsensus(t *testing.T) {
	base := decode(t, "two-orgs.good.yaml")
	for _, tc := range []struct {
		from, to string
		refused  bool
	}{
		{"", apis.FabricConsensusEtcdRaft, false},
		{"", apis.FabricConsensusBFT, true},
		{apis.FabricConsensusBFT, apis.FabricConsensusEtcdRaft, true},
	} {
		old, spec := base.Spec, base.Spec
		of, nf := *base.Spec.Fabric, *base.Spec.Fabric
		of.Consensus, nf.Consensus = tc.from, tc.to
		// The orderer count stays that of the old network.
		of.Orderers, nf.Orderers = 4, 4
		old.Fabric, spec.Fabric = &of, &nf
		var refused bool
		for _, e := range New().ValidateScale(&old, &spec, &base.Status) {
			refused = refused || e.Field == "spec.fabric.consensus"
		}
		if refused != tc.refused {
			t.Errorf("consensus %q to %q: refused %v, want %v", tc.from, tc.to, refused, tc.refused)
		}
	}
}

// Metrics of orderers of a fresh BFT channel of four, as Fabric 3.1
// serves them: the leader has sent heartbeats to the three others, a
// follower has the leader's stream.
const (
	bftLeaderMetrics = `# TYPE cluster_comm_egress_stream_count gauge
cluster_comm_egress_stream_count{channel="bft"} 1
cluster_comm_msg_send_time_count{channel="bft",host="127.0.0.1:37403"} 7
cluster_comm_msg_send_time_count{channel="bft",host="127.0.0.1:37406"} 7
cluster_comm_msg_send_time_count{channel="bft",host="127.0.0.1:37409"} 7
cluster_comm_msg_send_time_count{channel="other",host="127.0.0.1:37412"} 7
consensus_BFT_cluster_size{channel="bft"} 4
consensus_BFT_is_leader{channel="bft"} 1
consensus_BFT_leader_id{channel="bft"} 1
`
	bftFollowerMetrics = `cluster_comm_ingress_stream_count 1
consensus_BFT_cluster_size{channel="bft"} 4
consensus_BFT_is_leader{channel="bft"} 0
consensus_BFT_leader_id{channel="bft"} 1
`
	bftLoneFollowerMetrics = `consensus_BFT_cluster_size{channel="bft"} 4
consensus_BFT_is_leader{channel="bft"} 0
consensus_BFT_leader_id{channel="bft"} 1
`
	bftLeaderReachingOneMetrics = `cluster_comm_msg_send_time_count{channel="bft",host="127.0.0.1:37403"} 7
cluster_comm_msg_send_time_count{channel="bft",host="127.0.0.1:37406"} 0
consensus_BFT_cluster_size{channel="bft"} 4
consensus_BFT_is_leader{channel="bft"} 1
consensus_BFT_leader_id{channel="bft"} 1
`
)

func TestBFTMetrics(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		ready bool
		peers int
	}{
		{"leader", bftLeaderMetrics, true, 3},
		{"follower", bftFollowerMetrics, true, 1},
		{"follower hearing no one", bftLoneFollowerMetrics, false, 0},
		{"leader reaching one of three", bftLeaderReachingOneMetrics, false, 1},
	} {
		m := ParseMetrics(tc.body, "bft")
		if !isBFT(m) {
			t.Fatalf("%s: not read as a BFT orderer", tc.name)
		}
		if got := bftReady(tc.body, "bft", m); got != tc.ready {
			t.Errorf("%s: ready %v, want %v", tc.name, got, tc.ready)
		}
		if got := bftPeers(tc.body, "bft", m); got != tc.peers {
			t.Errorf("%s: %d peers, want %d", tc.name, got, tc.peers)
		}
	}
	if isBFT(ParseMetrics("consensus_etcdraft_cluster_size{channel=\"bft\"} 3\n", "bft")) {
		t.Error("a Raft orderer read as a BFT one")
	}
}

// TestValidateBFTOrdererChange: a running BFT network goes between 1, 4
// and 7 orderers, whatever the distance (the driver takes one step at a
// time), only with every orderer running.
func TestValidateBFTOrdererChange(t *testing.T) {
	base := decode(t, "two-orgs.good.yaml").Spec
	for _, tc := range []struct {
		from, to int
		down     bool
		refused  string // a word of the refusal, or "" when allowed
	}{
		{from: 4, to: 7},
		{from: 7, to: 4},
		{from: 4, to: 1},
		{from: 1, to: 4},
		{from: 1, to: 7},
		{from: 4, to: 5, refused: "3f+1"},
		{from: 7, to: 6, refused: "3f+1"},
		{from: 4, to: 3, refused: "3f+1"},
		{from: 4, to: 7, down: true, refused: "quorum"},
		{from: 7, to: 4, down: true, refused: "quorum"},
	} {
		old, spec := base, base
		of, nf := *base.Fabric, *base.Fabric
		of.Consensus, nf.Consensus = apis.FabricConsensusBFT, apis.FabricConsensusBFT
		of.Orderers, nf.Orderers = tc.from, tc.to
		old.Fabric, spec.Fabric = &of, &nf
		st := runningStatus(&old)
		if tc.down {
			for i := range st.Nodes {
				if st.Nodes[i].Name == "orderer-0" {
					st.Nodes[i].Phase = apis.NodeCrashed
				}
			}
		}
		errs := New().ValidateScale(&old, &spec, st)
		switch {
		case tc.refused == "" && len(errs) > 0:
			t.Errorf("%d to %d orderers: refused: %v", tc.from, tc.to, errs)
		case tc.refused == "":
		case len(errs) != 1 || errs[0].Field != "spec.fabric.orderers" || !strings.Contains(errs[0].Detail, tc.refused):
			t.Errorf("%d to %d orderers (down %v): %v, want one error of spec.fabric.orderers saying %q", tc.from, tc.to, tc.down, errs, tc.refused)
		}
	}
}

// TestBFTAddOrdererUpdate: an orderer added to a running BFT network is
// the consenter the update maps: its address, MSP, enrolment and TLS
// certificates from the plan, as the genesis block maps the first ones.
func TestBFTAddOrdererUpdate(t *testing.T) {
	n, plan := planFor(t, "bft.good.yaml")
	n.Spec.Fabric.Orderers = 7
	add := []apis.NodeSpec{{Name: "orderer-4", Role: apis.RoleValidator, Organization: n.Spec.Fabric.OrdererOrg()}}
	ports := map[string]map[string]int{"orderer-4": {PortListen: 41001, PortAdmin: 41002, PortOperations: 41003}}
	next, err := New().Reshape(t.Context(), chain.ReshapeRequest{Network: n, Plan: plan, Add: add, Ports: ports, Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var node chain.PlannedNode
	for _, pn := range next.Nodes {
		if pn.Name == "orderer-4" {
			node = pn
		}
	}
	c, err := consenterOf(next, node)
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity == nil || !c.Identity.Equal(pemCert(t, chain.FileData(node.Spec, dirMSP+"/signcerts/cert.pem"))) {
		t.Fatal("the consenter's identity is not orderer-4's enrolment certificate")
	}
	b := &cb.Block{}
	if err := proto.Unmarshal(next.Artifact(BlockPath(next.ChainID)), b); err != nil {
		t.Fatal(err)
	}
	config, err := channel.ConfigFromBlock(b)
	if err != nil {
		t.Fatal(err)
	}
	u, err := channel.AddConsenter(next.ChainID, config, MSPID(node.Organization), c)
	if err != nil {
		t.Fatal(err)
	}
	cu := &cb.ConfigUpdate{}
	if err := proto.Unmarshal(u.ConfigUpdate, cu); err != nil {
		t.Fatal(err)
	}
	o := &cb.Orderers{}
	if err := proto.Unmarshal(cu.WriteSet.Groups["Orderer"].Values["Orderers"].GetValue(), o); err != nil {
		t.Fatal(err)
	}
	if len(o.ConsenterMapping) != 5 {
		t.Fatalf("%d consenters in the update, want 5", len(o.ConsenterMapping))
	}
	got := o.ConsenterMapping[4]
	if got.Host != "127.0.0.1" || got.Port != 41001 || got.MspId != "OrdererMSP" || got.Id <= 4 ||
		!pemCert(t, got.Identity).Equal(c.Identity) || !pemCert(t, got.ServerTlsCert).Equal(c.ServerTLSCert) || !pemCert(t, got.ClientTlsCert).Equal(c.ClientTLSCert) {
		t.Errorf("orderer-4 mapped as id %d %s:%d of %s, want a fresh id, 127.0.0.1:41001 of OrdererMSP with its certificates", got.Id, got.Host, got.Port, got.MspId)
	}
}
