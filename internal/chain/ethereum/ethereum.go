// Package ethereum is the chain driver for go-ethereum Clique
// (proof-of-authority) networks. Nodes run the official geth binary, pinned
// at v1.13.15, the last release that seals Clique blocks; the network's
// validators are its sealers and its full nodes follow without sealing.
package ethereum

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/runtime"
)

// Name is the driver's registered name.
const Name = "ethereum"

// Program is the node binary the process runtime runs; Image is the same
// release for runtimes that run containers.
const (
	Program = "geth"
	Image   = "ethereum/client-go:v1.13.15"
)

// Port names.
const (
	PortP2P = "p2p"
	PortRPC = "rpc"
	// PortAuthRPC is geth's engine API, which it always serves; a Clique
	// network does not use it, but every node on a host needs its own.
	PortAuthRPC = "authrpc"
)

// Files in a node's home directory, which is geth's data directory.
const (
	fileGenesis  = "genesis.json"
	fileConfig   = "config.toml"
	fileNodeKey  = "geth/nodekey"
	filePassword = "password.txt"
	dirKeystore  = "keystore"
)

// APIs is what a node serves over HTTP JSON-RPC. Never admin, debug,
// miner or personal: the port is reachable by anything on the host.
const APIs = "eth,net,web3,clique,txpool"

func init() {
	chain.Register(Name, New())
}

// Driver plans and probes Ethereum Clique networks.
type Driver struct {
	client  *http.Client
	clients sync.Map // RPC address → *rpc.Client
}

var _ chain.Driver = (*Driver)(nil)

// New returns the driver.
func New() *Driver {
	return &Driver{client: &http.Client{Timeout: 3 * time.Second, Transport: chain.Transport(http.DefaultTransport)}}
}

// PortNames implements chain.Driver: every node, sealer or not, has the
// same ports.
func (d *Driver) PortNames(*apis.NetworkSpec, string) []string {
	return []string{PortP2P, PortRPC, PortAuthRPC}
}

// node is one planned node with its keys and ports.
type node struct {
	spec    apis.NodeSpec
	nodeKey *ecdsa.PrivateKey
	id      enode.ID
	// host is the address, or the DNS name in pods, its peers and the
	// platform reach it at.
	host                 string
	enode                string // URL its peers dial
	sealer               *sealer
	p2p, rpcPort, engine int
}

// sealer is a sealing node's account.
type sealer struct {
	key      *ecdsa.PrivateKey
	address  common.Address
	password string
}

// Plan implements chain.Driver.
func (d *Driver) Plan(_ context.Context, req chain.PlanRequest) (*chain.Plan, error) {
	n := req.Network
	s, err := settingsOf(n)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", n.Metadata.Name, err)
	}
	place := chain.PlacementOf(req.Placement, req.Host)
	specs := n.Spec.Nodes()
	nodes := make([]*node, len(specs))
	var sealers []common.Address
	for i, ns := range specs {
		nd, err := newNode(req.Rand, place.NodeHost(ns.Name), ns, req.Ports[ns.Name])
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", n.Metadata.Name, err)
		}
		if nd.sealer != nil {
			sealers = append(sealers, nd.sealer.address)
		}
		nodes[i] = nd
	}

	genesisData, err := genesisJSON(s, sealers, req.Now)
	if err != nil {
		return nil, fmt.Errorf("plan %s: genesis: %w", n.Metadata.Name, err)
	}
	plan := &chain.Plan{ChainID: strconv.FormatUint(s.chainID, 10)}
	for i, nd := range nodes {
		var peers []string
		for j, o := range nodes {
			if j != i {
				peers = append(peers, o.enode)
			}
		}
		pn, err := plannedNode(req, place, s, nd, genesisData, peers)
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", n.Metadata.Name, err)
		}
		plan.Nodes = append(plan.Nodes, pn)
	}
	return plan, nil
}

// newNode makes a node's keys: its node key, and a sealer's account. host
// is where the node is reached: an IPv4 address, or a DNS name.
func newNode(r io.Reader, host string, ns apis.NodeSpec, ports map[string]int) (*node, error) {
	if ports[PortP2P] == 0 || ports[PortRPC] == 0 || ports[PortAuthRPC] == 0 {
		return nil, fmt.Errorf("no ports for node %s", ns.Name)
	}
	if err := checkHost(host); err != nil {
		return nil, fmt.Errorf("node %s: %w", ns.Name, err)
	}
	nk, err := genKey(r)
	if err != nil {
		return nil, fmt.Errorf("node key of %s: %w", ns.Name, err)
	}
	nd := &node{spec: ns, nodeKey: nk, host: host, p2p: ports[PortP2P], rpcPort: ports[PortRPC], engine: ports[PortAuthRPC]}
	nd.id, nd.enode = enode.PubkeyToIDV4(&nk.PublicKey), enodeURL(&nk.PublicKey, host, nd.p2p)
	if ns.Role == apis.RoleValidator {
		key, err := genKey(r)
		if err != nil {
			return nil, fmt.Errorf("sealer key of %s: %w", ns.Name, err)
		}
		pw := make([]byte, 16)
		if _, err := io.ReadFull(r, pw); err != nil {
			return nil, fmt.Errorf("password of %s: %w", ns.Name, err)
		}
		nd.sealer = &sealer{key: key, address: crypto.PubkeyToAddress(key.PublicKey), password: fmt.Sprintf("%x", pw)}
	}
	return nd, nil
}

// checkHost tells whether geth can be given host in a peer's URL: an IPv4
// address (as the process runtime plans), or a DNS name, which geth
// resolves as it starts (a Service's name, in pods).
func checkHost(host string) error {
	if ip := net.ParseIP(host); ip != nil {
		if ip.To4() == nil {
			return fmt.Errorf("host %q is not an IPv4 address", host)
		}
		return nil
	}
	if errs := validation.IsDNS1123Subdomain(host); len(errs) > 0 {
		return fmt.Errorf("host %q is neither an IPv4 address nor a DNS name: %s", host, strings.Join(errs, "; "))
	}
	return nil
}

// enodeURL is the URL peers dial a node at. geth takes a DNS name where
// the URL's IP address goes, and resolves it once, as it starts.
func enodeURL(pub *ecdsa.PublicKey, host string, port int) string {
	if ip := net.ParseIP(host); ip != nil {
		return enode.NewV4(pub, ip, port, port).URLv4()
	}
	return fmt.Sprintf("enode://%x@%s", crypto.FromECDSAPub(pub)[1:], net.JoinHostPort(host, strconv.Itoa(port)))
}

// plannedNode is a node's part of the plan: its files, flags and
// endpoints, with peers as its static peers.
func plannedNode(req chain.PlanRequest, place chain.Placement, s settings, nd *node, genesisData []byte, peers []string) (chain.PlannedNode, error) {
	files := []runtime.File{
		{Path: fileGenesis, Data: genesisData, Mode: 0o600},
		{Path: fileConfig, Data: nodeConfig(place.ListenHost(), nd.p2p, peers), Mode: 0o600},
		{Path: fileNodeKey, Data: []byte(fmt.Sprintf("%x", crypto.FromECDSA(nd.nodeKey))), Mode: 0o600, Secret: true},
	}
	if nd.sealer != nil {
		ks, err := encryptKey(req.Rand, nd.sealer)
		if err != nil {
			return chain.PlannedNode{}, fmt.Errorf("keystore of %s: %w", nd.spec.Name, err)
		}
		files = append(files,
			runtime.File{Path: keystoreFile(req.Now, nd.sealer.address), Data: ks, Mode: 0o600, Secret: true},
			runtime.File{Path: filePassword, Data: []byte(nd.sealer.password + "\n"), Mode: 0o600, Secret: true},
		)
	}
	spec := runtime.NodeSpec{
		Program:   Program,
		Image:     Image,
		Args:      nodeArgs(s, nd, place.ListenHost()),
		Env:       chain.GoRuntimeEnv(nd.spec.Resources),
		Files:     files,
		Init:      initSteps(peers),
		Ports:     map[string]int{PortP2P: nd.p2p, PortRPC: nd.rpcPort, PortAuthRPC: nd.engine},
		Resources: runtime.Resources(nd.spec.Resources),
	}
	return chain.PlannedNode{
		Name:         nd.spec.Name,
		Role:         nd.spec.Role,
		Organization: nd.spec.Organization,
		NodeID:       nd.id.String(),
		Spec:         spec,
		Endpoints: map[string]string{
			PortRPC: fmt.Sprintf("http://%s", net.JoinHostPort(nd.host, strconv.Itoa(nd.rpcPort))),
			PortP2P: nd.enode,
		},
	}, nil
}

// Init steps of a node.
const (
	stepPeers   = "peers"
	stepGenesis = "genesis"
)

// PeerWait bounds how long a node in a pod waits for its peers' names to
// resolve before it starts.
const PeerWait = 2 * time.Minute

// initSteps run before geth, at every start.
//
// geth starts on an empty database with the mainnet genesis: the
// network's own must be written first. "geth init" is idempotent (a
// database with this genesis is left as it is), so it runs before every
// start, and the node program stays geth itself, whose PID the platform
// watches and signals.
//
// Peers named by DNS name (Services, in pods) are waited for first: geth
// resolves a static peer's name once, as it reads its config, and stops
// when one does not resolve.
func initSteps(peers []string) []runtime.InitStep {
	var steps []runtime.InitStep
	if names := peerNames(peers); len(names) > 0 {
		steps = append(steps, peersStep(names))
	}
	return append(steps, runtime.InitStep{
		Name:    stepGenesis,
		Program: Program,
		Image:   Image,
		Args:    []string{"--datadir", ".", "init", fileGenesis},
	})
}

// peerNames are the DNS names in peers' URLs, in order; addresses are left
// out, as they need no resolving.
func peerNames(peers []string) []string {
	var names []string
	for _, p := range peers {
		u, err := url.Parse(p)
		if err != nil {
			continue
		}
		if h := u.Hostname(); h != "" && net.ParseIP(h) == nil && !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	return names
}

// waitForPeers is the script of the peers step, with the names to wait
// for as its arguments and the bound, in seconds, as its %d verb. getent
// resolves a name as geth will, through the C library and the search
// domains of /etc/resolv.conf (a Service's NAME.NAMESPACE.svc resolves only
// with the cluster's domain appended), and fails when it does not resolve.
// busybox's nslookup does neither: it asks for the name as written, and
// exits 0 when there is no answer.
const waitForPeers = `deadline=$(( $(date +%%s) + %d ))
for name in "$@"; do
  until getent hosts "$name" >/dev/null 2>&1; do
    if [ "$(date +%%s)" -ge "$deadline" ]; then
      echo "peer $name does not resolve yet; starting anyway" >&2
      continue 2
    fi
    sleep 1
  done
  echo "peer $name resolves"
done
`

// peersStep waits until every one of names resolves, for at most
// PeerWait, then lets geth start anyway. Peers' pods start together, and
// a Service's name resolves as soon as its pod has an address, ready or
// not, so the wait is short. geth stops when a name does not resolve and
// Kubernetes starts it again, backing off; the bound makes a name that
// never resolves show as that error in the node's log and status rather
// than as an init step that never ends.
func peersStep(names []string) runtime.InitStep {
	// It runs in the node's image, whose shell has getent; the step's
	// name is the script's $0.
	return runtime.InitStep{
		Name:    stepPeers,
		Program: "sh",
		Args:    append([]string{"-c", peersScript(PeerWait), stepPeers}, names...),
	}
}

// peersScript waits for the names in its arguments for at most wait.
func peersScript(wait time.Duration) string {
	return fmt.Sprintf(waitForPeers, int64(wait/time.Second))
}

// nodeArgs are geth's flags. Everything listens on listen only: p2p
// through ListenAddr in config.toml (--port would listen on every
// interface), and peers come only from the static list (--nodiscover).
// Nodes reached at an address share the server's host, and take peers
// from that host only (--netrestrict). Nodes reached by name run in pods,
// where the namespace's network policy decides who reaches a node; there
// geth's HTTP server must also take requests addressed to the node's name
// (it takes any addressed to an IP address, and to localhost).
func nodeArgs(s settings, nd *node, listen string) []string {
	args := []string{
		"--datadir", ".",
		"--config", fileConfig,
		"--networkid", strconv.FormatUint(s.chainID, 10),
		"--syncmode", "full",
		// Every block's state is written as the block is imported, so a
		// node killed with SIGKILL restarts on its last block instead of
		// rewinding to the last state flushed to disk.
		"--gcmode", "archive",
		"--nodiscover",
		"--nat", "none",
	}
	named := net.ParseIP(nd.host) == nil
	if !named {
		restrict := nd.host + "/32"
		if net.ParseIP(nd.host).IsLoopback() {
			restrict = "127.0.0.0/8"
		}
		args = append(args, "--netrestrict", restrict)
	}
	args = append(args,
		"--http",
		"--http.addr", listen,
		"--http.port", strconv.Itoa(nd.rpcPort),
		"--http.api", APIs,
	)
	if named {
		args = append(args, "--http.vhosts", "localhost,"+nd.host)
	}
	args = append(args,
		"--authrpc.addr", "127.0.0.1",
		"--authrpc.port", strconv.Itoa(nd.engine),
		// The IPC socket's path under a deep node directory can pass the
		// 108-byte limit of a Unix socket path; HTTP serves everything.
		"--ipcdisable",
		"--lightkdf",
	)
	if nd.sealer != nil {
		addr := nd.sealer.address.Hex()
		args = append(args,
			"--mine",
			"--miner.etherbase", addr,
			// The miner moves the gas limit toward its own target block by
			// block; keep it at the genesis limit.
			"--miner.gaslimit", strconv.FormatUint(s.gasLimit, 10),
			// Clique signs with the sealer's key, which must be unlocked;
			// whatever reaches the HTTP port can then send transactions
			// from the account, hence a host-only address (in a pod: a
			// port only the network's pods and the platform reach).
			"--unlock", addr,
			"--password", filePassword,
			"--allow-insecure-unlock",
		)
	}
	return args
}

// nodeConfig is config.toml, the only place geth (since 1.12) reads static
// peers from.
//
// A node syncs from a peer ahead of it only once it has min(5, MaxPeers)
// peers, or at a forced sync every 10 s. MaxPeers is therefore the number
// of other nodes, so that a restarted node syncs as soon as all of them
// are connected instead of sealing on a stale head for 10 s; DialRatio 1
// lets it dial every one of them (geth dials a third of MaxPeers by
// default), and listing them as trusted lets them in beyond the limits.
func nodeConfig(listen string, p2p int, peers []string) []byte {
	var b strings.Builder
	b.WriteString("# Written by ChainDock: geth reads static peers only from this file.\n")
	b.WriteString("[Node.P2P]\n")
	b.WriteString("# The other nodes of the network, every one dialed and trusted. A node\n")
	b.WriteString("# syncs once it has min(5, MaxPeers) peers, or at a forced sync every 10 s.\n")
	fmt.Fprintf(&b, "MaxPeers = %d\n", len(peers))
	b.WriteString("DialRatio = 1\n")
	fmt.Fprintf(&b, "ListenAddr = %q\n", net.JoinHostPort(listen, strconv.Itoa(p2p)))
	list := func(key string) {
		fmt.Fprintf(&b, "%s = [", key)
		for i, p := range peers {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "\n  %q", p)
		}
		if len(peers) > 0 {
			b.WriteString(",\n")
		}
		b.WriteString("]\n")
	}
	list("StaticNodes")
	list("TrustedNodes")
	return []byte(b.String())
}

// genKey makes a secp256k1 key from r.
func genKey(r io.Reader) (*ecdsa.PrivateKey, error) {
	seed := make([]byte, 32)
	for range 16 {
		if _, err := io.ReadFull(r, seed); err != nil {
			return nil, err
		}
		// Rejected only when the seed is zero or not below the curve
		// order: about once in 2^128 draws.
		if k, err := crypto.ToECDSA(seed); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("no valid key in 16 draws: the random source is broken")
}

// sortedAddresses returns addrs in ascending byte order, as Clique keeps
// its signer list.
func sortedAddresses(addrs []common.Address) []common.Address {
	out := append([]common.Address(nil), addrs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Cmp(out[j]) < 0 })
	return out
}
