// Package cometbft is the chain driver for CometBFT v0.38 networks. Nodes run
// the official cometbft binary (pinned and installed by the build) with the
// kvstore application built into it.
package cometbft

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/version"
)

// Name is the driver's registered name.
const Name = "cometbft"

// Program is the node binary the process runtime runs.
const Program = "cometbft"

// Port names.
const (
	PortP2P  = "p2p"
	PortRPC  = "rpc"
	PortABCI = "abci"
)

// Applications a network can run.
const (
	// AppKVStore is CometBFT's built-in key-value application.
	AppKVStore = "kvstore"
	// AppChainDock is ChainDock's own application (notarisation and asset
	// transfer), run as a sidecar of each node.
	AppChainDock = "chaindock"
)

// AppProgram is the binary of ChainDock's application.
const AppProgram = "chaindock-app"

// DefaultSnapshotInterval is how many blocks apart the chaindock
// application takes state-sync snapshots by default.
const DefaultSnapshotInterval = 100

func app(spec *apis.NetworkSpec) string {
	if spec.CometBFT == nil || spec.CometBFT.App == "" {
		return AppKVStore
	}
	return spec.CometBFT.App
}

const validatorPower = 10

func init() {
	chain.Register(Name, New())
}

// Driver plans and probes CometBFT networks.
type Driver struct {
	client  *http.Client
	clients sync.Map // RPC address → *rpchttp.HTTP
}

var _ chain.Driver = (*Driver)(nil)

// New returns the driver.
func New() *Driver {
	// The explorer and the gateway ask the same few nodes many times a
	// second: keep enough connections open to them that each request does
	// not dial anew (the default keeps two per host).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Driver{client: &http.Client{Timeout: 3 * time.Second, Transport: chain.Transport(tr)}}
}

// Validate implements chain.Driver.
func (d *Driver) Validate(spec *apis.NetworkSpec) apis.ErrorList {
	var errs apis.ErrorList
	if spec.Ethereum != nil {
		errs.Add("spec.ethereum", "applies only to chain ethereum, not %s", Name)
	}
	if spec.CometBFT != nil {
		switch spec.CometBFT.App {
		case "", AppKVStore, AppChainDock:
		default:
			errs.Add("spec.cometbft.app", "unknown application %q (supported: %q, %q)", spec.CometBFT.App, AppKVStore, AppChainDock)
		}
		if i := spec.CometBFT.SnapshotInterval; i < 0 || i > 1_000_000 {
			errs.Add("spec.cometbft.snapshotInterval", "must be from 0 (the default, %d) to 1000000, not %d", DefaultSnapshotInterval, i)
		} else if i != 0 && spec.CometBFT.App != AppChainDock {
			errs.Add("spec.cometbft.snapshotInterval", "applies only to app %q", AppChainDock)
		}
	}
	return errs
}

// PortNames implements chain.Driver.
func (d *Driver) PortNames(spec *apis.NetworkSpec, _ string) []string {
	if app(spec) == AppChainDock {
		return []string{PortP2P, PortRPC, PortABCI}
	}
	return []string{PortP2P, PortRPC}
}

type nodeKeys struct {
	node      apis.NodeSpec
	pv        privval.FilePVKey
	nodeKey   p2p.NodeKey
	id        p2p.ID
	p2p, rpc  int
	abci      int
	host      string // where the node is reached
	peersAddr string
}

// Plan implements chain.Driver.
func (d *Driver) Plan(_ context.Context, req chain.PlanRequest) (*chain.Plan, error) {
	n := req.Network
	chainID := "chaindock-" + n.Metadata.Name
	nodes := n.Spec.Nodes()
	keys := make([]nodeKeys, len(nodes))
	place := chain.PlacementOf(req.Placement, req.Host)
	for i, node := range nodes {
		k, err := newKeys(req.Rand, &n.Spec, node, req.Ports[node.Name], place.NodeHost(node.Name))
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", n.Metadata.Name, err)
		}
		keys[i] = k
	}

	genesis := types.GenesisDoc{
		ChainID:         chainID,
		GenesisTime:     req.Now.UTC().Truncate(time.Millisecond),
		InitialHeight:   1,
		ConsensusParams: types.DefaultConsensusParams(),
	}
	for _, k := range keys {
		if k.node.Role == apis.RoleValidator {
			genesis.Validators = append(genesis.Validators, types.GenesisValidator{
				Address: k.pv.Address, PubKey: k.pv.PubKey, Power: validatorPower, Name: k.node.Name,
			})
		}
	}
	if err := genesis.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("plan %s: genesis: %w", n.Metadata.Name, err)
	}
	genesisJSON, err := cmtjson.MarshalIndent(genesis, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("plan %s: genesis: %w", n.Metadata.Name, err)
	}

	plan := &chain.Plan{ChainID: chainID}
	for i, k := range keys {
		var peers []string
		for j, o := range keys {
			if j != i {
				peers = append(peers, o.peersAddr)
			}
		}
		pn, err := plannedNode(n, place, k, genesisJSON, peers)
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", n.Metadata.Name, err)
		}
		plan.Nodes = append(plan.Nodes, pn)
	}
	return plan, nil
}

// newKeys makes a node's validator and node keys, with its ports and the
// host it is reached at.
func newKeys(r io.Reader, spec *apis.NetworkSpec, node apis.NodeSpec, ports map[string]int, host string) (nodeKeys, error) {
	if ports[PortP2P] == 0 || ports[PortRPC] == 0 {
		return nodeKeys{}, fmt.Errorf("no ports for node %s", node.Name)
	}
	pv, err := genKey(r)
	if err != nil {
		return nodeKeys{}, fmt.Errorf("validator key of %s: %w", node.Name, err)
	}
	nk, err := genKey(r)
	if err != nil {
		return nodeKeys{}, fmt.Errorf("node key of %s: %w", node.Name, err)
	}
	k := nodeKeys{
		node:    node,
		pv:      privval.FilePVKey{Address: pv.PubKey().Address(), PubKey: pv.PubKey(), PrivKey: pv},
		nodeKey: p2p.NodeKey{PrivKey: nk},
		id:      p2p.PubKeyToID(nk.PubKey()),
		p2p:     ports[PortP2P],
		rpc:     ports[PortRPC],
		abci:    ports[PortABCI],
	}
	if app(spec) == AppChainDock && k.abci == 0 {
		return nodeKeys{}, fmt.Errorf("no application port for node %s", node.Name)
	}
	k.host = host
	k.peersAddr = fmt.Sprintf("%s@%s", k.id, net.JoinHostPort(host, strconv.Itoa(k.p2p)))
	return k, nil
}

// plannedNode is a node with keys k, its files and its endpoints.
func plannedNode(n *apis.Network, place chain.Placement, k nodeKeys, genesisJSON []byte, peers []string) (chain.PlannedNode, error) {
	cfgTOML, err := nodeConfig(n, k, place, peers)
	if err != nil {
		return chain.PlannedNode{}, fmt.Errorf("config of %s: %w", k.node.Name, err)
	}
	pvJSON, err := cmtjson.MarshalIndent(k.pv, "", "  ")
	if err != nil {
		return chain.PlannedNode{}, err
	}
	nkJSON, err := cmtjson.Marshal(k.nodeKey)
	if err != nil {
		return chain.PlannedNode{}, err
	}
	spec := runtime.NodeSpec{
		Program: Program,
		Image:   "cometbft/cometbft:v0.38.26",
		Args:    []string{"start", "--home", "."},
		Env:     chain.GoRuntimeEnv(k.node.Resources),
		Files: []runtime.File{
			{Path: fileConfig, Data: cfgTOML, Mode: 0o600},
			{Path: fileGenesis, Data: genesisJSON, Mode: 0o600},
			{Path: filePrivValidator, Data: pvJSON, Mode: 0o600, Secret: true},
			{Path: "config/node_key.json", Data: nkJSON, Mode: 0o600, Secret: true},
			// The node advances this file with every vote it signs;
			// resetting it would let a validator sign twice.
			{Path: "data/priv_validator_state.json", Data: []byte(`{"height": "0", "round": 0, "step": 0}` + "\n"), Mode: 0o600, KeepExisting: true},
		},
		Ports:     map[string]int{PortP2P: k.p2p, PortRPC: k.rpc},
		Resources: runtime.Resources(k.node.Resources),
	}
	endpoints := map[string]string{
		PortRPC: "http://" + net.JoinHostPort(k.host, strconv.Itoa(k.rpc)),
		PortP2P: "tcp://" + k.peersAddr,
	}
	if app(&n.Spec) == AppChainDock {
		addr := net.JoinHostPort(place.LocalHost(), fmt.Sprint(k.abci))
		spec.Ports[PortABCI] = k.abci
		spec.Sidecars = []runtime.Sidecar{{
			Name:         "app",
			Program:      AppProgram,
			Image:        "chaindock/chaindock-app:" + version.Version,
			Args:         []string{"--home", ".", "--addr", "tcp://" + addr, "--snapshot-interval", fmt.Sprint(snapshotInterval(&n.Spec))},
			ReadyAddress: addr,
		}}
		endpoints[PortABCI] = "tcp://" + addr
	}
	return chain.PlannedNode{
		Name:         k.node.Name,
		Role:         k.node.Role,
		Organization: k.node.Organization,
		NodeID:       string(k.id),
		Spec:         spec,
		Endpoints:    endpoints,
	}, nil
}

// Files of a node's home directory.
const (
	fileConfig        = "config/config.toml"
	fileGenesis       = "config/genesis.json"
	filePrivValidator = "config/priv_validator_key.json"
)

func genKey(r io.Reader) (ed25519.PrivKey, error) {
	seed := make([]byte, 32)
	if _, err := io.ReadFull(r, seed); err != nil {
		return nil, err
	}
	return ed25519.GenPrivKeyFromSecret(seed), nil
}

func nodeConfig(n *apis.Network, k nodeKeys, place chain.Placement, peers []string) ([]byte, error) {
	cfg := cmtcfg.DefaultConfig()
	cfg.Moniker = k.node.Name
	cfg.ProxyApp = AppKVStore
	if app(&n.Spec) == AppChainDock {
		cfg.ProxyApp = "tcp://" + net.JoinHostPort(place.LocalHost(), fmt.Sprint(k.abci))
		// Every transaction is indexed, so that the platform can find one
		// by hash on any node.
		cfg.TxIndex.Indexer = "kv"
	}
	cfg.LogLevel = "info"
	cfg.P2P.ListenAddress = "tcp://" + net.JoinHostPort(place.ListenHost(), strconv.Itoa(k.p2p))
	cfg.P2P.ExternalAddress = net.JoinHostPort(k.host, strconv.Itoa(k.p2p))
	cfg.P2P.PersistentPeers = strings.Join(peers, ",")
	// All nodes share one host address: allow that, and keep the address
	// book to the peers the plan names.
	cfg.P2P.AllowDuplicateIP = true
	cfg.P2P.AddrBookStrict = false
	cfg.P2P.PexReactor = false
	cfg.RPC.ListenAddress = "tcp://" + net.JoinHostPort(place.ListenHost(), strconv.Itoa(k.rpc))
	cfg.RPC.PprofListenAddress = ""
	cfg.Consensus.TimeoutCommit = n.Spec.Consensus.TimeoutCommit.Duration
	cfg.Consensus.TimeoutPropose = n.Spec.Consensus.TimeoutPropose.Duration
	cfg.Consensus.CreateEmptyBlocks = n.Spec.Consensus.CreateEmptyBlocks == nil || *n.Spec.Consensus.CreateEmptyBlocks
	cfg.Instrumentation.Prometheus = false
	if err := cfg.ValidateBasic(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "chaindock-cometbft-config")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config.toml")
	cmtcfg.WriteConfigFile(path, cfg)
	return os.ReadFile(path)
}

// Probe implements chain.Driver.
func (d *Driver) Probe(ctx context.Context, node chain.PlannedNode) (chain.NodeInfo, error) {
	addr := node.Endpoints[PortRPC]
	c, err := d.rpc(node)
	if err != nil {
		return chain.NodeInfo{}, fmt.Errorf("probe %s: %w", node.Name, err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		return chain.NodeInfo{}, fmt.Errorf("probe %s at %s: %w", node.Name, addr, err)
	}
	info := chain.NodeInfo{
		Height:        st.SyncInfo.LatestBlockHeight,
		CatchingUp:    st.SyncInfo.CatchingUp,
		LastBlockTime: st.SyncInfo.LatestBlockTime,
		NodeID:        string(st.NodeInfo.ID()),
	}
	ni, err := c.NetInfo(ctx)
	if err != nil {
		return chain.NodeInfo{}, fmt.Errorf("probe %s peers at %s: %w", node.Name, addr, err)
	}
	info.Peers = ni.NPeers
	return info, nil
}

func snapshotInterval(spec *apis.NetworkSpec) int {
	if spec.CometBFT != nil && spec.CometBFT.SnapshotInterval > 0 {
		return spec.CometBFT.SnapshotInterval
	}
	return DefaultSnapshotInterval
}
