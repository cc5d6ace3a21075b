// Package chain defines what a chain driver does: it turns a network spec
// into artifacts (keys, genesis, configs) and node specs, and probes a
// running node. A driver never starts a process or a pod and never touches
// the store: the controller persists what it returns and a runtime runs it.
package chain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/registry"
	"github.com/chaindock/chaindock/internal/runtime"
)

// PlanRequest is everything a driver needs to plan a network.
type PlanRequest struct {
	Network *apis.Network
	// Ports are the host ports allocated to each node, by node name and
	// port name (the names the driver asked for in PortNames).
	Ports map[string]map[string]int
	// Host is the address nodes listen on and reach each other at.
	Host string
	// Placement, when set, overrides Host for runtimes whose nodes do not
	// share the server's host (pods).
	Placement Placement
	// Rand is the source of key material; Now is the genesis time. Both
	// are given so that tests can plan deterministically.
	Rand io.Reader
	Now  time.Time
}

// Placement says where nodes run, for runtimes that give each node an
// address of its own.
type Placement interface {
	// ListenHost is what a node listens on for its peers and clients.
	ListenHost() string
	// NodeHost is the name the platform and the other nodes reach node at.
	NodeHost(node string) string
	// LocalHost is where a node reaches its sidecars.
	LocalHost() string
}

// SharedHost is the placement of nodes that all run on host.
type SharedHost string

// ListenHost implements Placement.
func (h SharedHost) ListenHost() string { return string(h) }

// NodeHost implements Placement.
func (h SharedHost) NodeHost(string) string { return string(h) }

// LocalHost implements Placement.
func (h SharedHost) LocalHost() string { return string(h) }

// PlacementOf is p, or the shared host when p is nil.
func PlacementOf(p Placement, host string) Placement {
	if p == nil {
		return SharedHost(host)
	}
	return p
}

// Plan is a planned network: its identity and one spec per node.
type Plan struct {
	ChainID string        `json:"chainID"`
	Nodes   []PlannedNode `json:"nodes"`
	// Artifacts are files the driver keeps for itself and gives no node:
	// the CA and admin keys a Fabric network's organisations sign with,
	// its channel's genesis block. The controller stores them with the
	// plan, which is sealed at rest.
	Artifacts []runtime.File `json:"artifacts,omitempty"`
}

// Artifact is the data of plan's artifact at path, or nil.
func (p *Plan) Artifact(path string) []byte {
	for _, f := range p.Artifacts {
		if f.Path == path {
			return f.Data
		}
	}
	return nil
}

// PlannedNode is one node of a plan.
type PlannedNode struct {
	Name         string `json:"name"`
	Role         string `json:"role"`
	Organization string `json:"organization,omitempty"`
	// NodeID is the node's identity on the chain.
	NodeID string `json:"nodeID,omitempty"`
	// Spec is what the runtime runs; the controller sets its ID and labels.
	Spec runtime.NodeSpec `json:"spec"`
	// Endpoints are the addresses users and probes reach the node at.
	Endpoints map[string]string `json:"endpoints"`
	// Revision counts the changes to Spec since the network was planned
	// (a peer added by scaling): a running node of an older revision is
	// restarted with the new spec, one node at a time.
	Revision int `json:"revision,omitempty"`
	// Joining marks a validator added to a running network that the
	// chain has yet to admit to consensus (Scaler.Admit), or a full node
	// a FullNodeAdmitter has yet to admit.
	Joining bool `json:"joining,omitempty"`
}

// NodeInfo is what a probe learns from a node.
type NodeInfo struct {
	Height        int64
	Peers         int
	CatchingUp    bool
	LastBlockTime time.Time
	NodeID        string
	// Sealing tells whether a node that should produce blocks does: nil
	// for nodes and chains where the probe cannot tell.
	Sealing *bool
}

// Driver knows one blockchain.
type Driver interface {
	// Validate checks the parts of a spec only this chain understands.
	Validate(spec *apis.NetworkSpec) apis.ErrorList
	// PortNames are the ports a node with role listens on in a network
	// with spec.
	PortNames(spec *apis.NetworkSpec, role string) []string
	// Plan generates the artifacts and node specs of a network.
	Plan(ctx context.Context, req PlanRequest) (*Plan, error)
	// Probe asks a running node how it is.
	Probe(ctx context.Context, node PlannedNode) (NodeInfo, error)
}

var drivers = registry.New[Driver]("chain")

// Register makes a driver available under name; it panics on a duplicate.
func Register(name string, d Driver) { drivers.Register(name, d) }

// Get returns the driver registered as name.
func Get(name string) (Driver, error) { return drivers.Get(name) }

// Names lists the registered drivers.
func Names() []string { return drivers.Names() }

// IdleChain is implemented by drivers whose networks may make no block
// while no transaction comes (an Ethereum network sealing on demand). A
// node of such a network runs at height 0 until the first transaction,
// and a height that stands still is no stall.
type IdleChain interface {
	MakesEmptyBlocks(spec *apis.NetworkSpec) bool
}

// MakesEmptyBlocks reports whether a network of spec makes blocks while no
// transaction comes.
func MakesEmptyBlocks(d Driver, spec *apis.NetworkSpec) bool {
	if ic, ok := d.(IdleChain); ok {
		return ic.MakesEmptyBlocks(spec)
	}
	return spec.Consensus.CreateEmptyBlocks == nil || *spec.Consensus.CreateEmptyBlocks
}

// Bootstrapper is implemented by drivers whose new networks need the
// platform's help once their nodes run: a Fabric orderer or peer joins the
// network's channel through its admin API, which no configuration file
// can do. Such a driver plans its nodes Joining; until the network first
// runs, the controller calls Bootstrap for each Joining node, of any role,
// once it runs, until it reports the node a member, and keeps the network
// Deploying until every node is. (Nodes added to a running network are
// admitted by Scaler.Admit instead.)
type Bootstrapper interface {
	Bootstrap(ctx context.Context, n *apis.Network, plan *Plan, node PlannedNode) (bool, error)
}

// ReshapeRequest asks for a running network's plan with nodes added or
// removed.
type ReshapeRequest struct {
	Network *apis.Network
	Plan    *Plan
	// Add are the new nodes, with their ports in Ports (as for Plan).
	Add   []apis.NodeSpec
	Ports map[string]map[string]int
	// Remove names the nodes to drop; validators among them have been
	// retired (Scaler.Retire).
	Remove    []string
	Host      string
	Placement Placement
	Rand      io.Reader
	Now       time.Time
}

// Scaler is implemented by drivers that add nodes to running networks and
// remove them. The controller reshapes the plan, starts the new nodes,
// restarts the nodes whose spec changed one at a time, admits new
// validators once they run, and retires validators before it removes them.
type Scaler interface {
	// Reshape returns the plan with req.Add planned (keys, configs, the
	// network's genesis as it is) and req.Remove gone; the specs of the
	// nodes that stay change only as the chain needs (their peers), with
	// Revision raised. New validators are marked Joining.
	Reshape(ctx context.Context, req ReshapeRequest) (*Plan, error)
	// Admit makes a running new validator a member of consensus, and
	// reports whether it is one. It is called until it is.
	Admit(ctx context.Context, n *apis.Network, plan *Plan, node PlannedNode) (bool, error)
	// Retire takes a validator out of consensus (a FullNodeAdmitter's
	// full node out of the chain), and reports whether it is out. It is
	// called until it is; the node is removed after.
	Retire(ctx context.Context, n *apis.Network, plan *Plan, node PlannedNode) (bool, error)
	// ValidateScale checks a change of a running network's nodes from
	// old to spec, with status the network as it runs: enough validators
	// left, and running, to keep the chain going and to vote.
	ValidateScale(old, spec *apis.NetworkSpec, status *apis.NetworkStatus) apis.ErrorList
}

// FullNodeAdmitter is implemented by Scalers whose new full nodes, too,
// become members only once admitted (Scaler.Admit), and are retired
// (Scaler.Retire) before they are removed: a Fabric peer joins its
// channel, whose configuration may first have to take in the peer's
// organisation, and the last peer of an organisation that leaves takes
// it out. Without it, a new full node is a member once it runs, and is
// removed without more ado.
type FullNodeAdmitter interface {
	AdmitsFullNodes() bool
}

// Reconfigurer is implemented by drivers whose running networks have
// settings that change without a node added or removed (the member
// organisations of a Fabric network's channels). While a network has run
// and its nodes are those of its spec, the controller calls Reconfigure,
// which brings the chain a step closer to the spec. It must be cheap when
// the chain is as the spec says, as it is called on every reconcile.
type Reconfigurer interface {
	Reconfigure(ctx context.Context, n *apis.Network, plan *Plan) (Reconfigured, error)
}

// ReconfigureReporter is implemented by Reconfigurers that tell from a
// network's stored plan whether a change of its settings is under way,
// so that the API refuses to change its nodes meanwhile.
type ReconfigureReporter interface {
	// Reconfiguring says which change of spec's settings plan has yet
	// to carry out; "" when none.
	Reconfiguring(spec *apis.NetworkSpec, plan *Plan) string
}

// CertificateReporter is implemented by drivers that issue the nodes of
// their networks certificates, and renew them: the controller exports
// when each expires, for alerts.
type CertificateReporter interface {
	// Certificates are the certificates of spec's network that plan
	// keeps, as of now.
	Certificates(spec *apis.NetworkSpec, plan *Plan, now time.Time) ([]Certificate, error)
}

// Certificate is a certificate of a network the platform renews.
type Certificate struct {
	// Owner is the node, or the organisation identity (its subject's
	// CN), the certificate is of.
	Owner        string `json:"owner"`
	Organization string `json:"organization"`
	// Kind is "enrolment" (the identity it signs with) or "tls".
	Kind      string    `json:"kind"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// RenewAt is when it is renewed, at the latest; zero for one the
	// platform does not renew.
	RenewAt time.Time `json:"renewAt,omitzero"`
	// Due says why it is to be renewed now; empty when it is not.
	Due string `json:"due,omitempty"`
}

// Reconfigured is what a Reconfigure call did.
type Reconfigured struct {
	// Plan is the plan with the change recorded, to be stored; nil when
	// it is unchanged.
	Plan *Plan
	// Done says what was changed, Pending what is still under way: both
	// "" when the chain is as its spec says.
	Done, Pending string
}

// Block is a committed block as the explorer keeps it.
type Block struct {
	Height   int64
	Hash     string // upper-case hex
	Time     time.Time
	Proposer string
	AppHash  string
	Txs      []Tx
}

// Tx is a committed transaction.
type Tx struct {
	Hash   string // upper-case hex
	Height int64
	Index  int
	Code   uint32 // 0: applied; otherwise refused by the application
	Log    string
	Type   string // the application's transaction type, when the driver knows it
	Data   []byte
	Events []Event // what the transaction emitted, in order
	// Channel is the Fabric channel the transaction is on, when it is
	// not the network's own (its ChainID): Height and Index are then
	// that channel's.
	Channel string
}

// Event is something a committed transaction emitted: an Ethereum log,
// with its first topic as Type, or a CometBFT event.
type Event struct {
	Type       string
	Contract   string // the emitting contract, when the chain names one
	Attributes []EventAttribute
}

// EventAttribute is one key and value of an event.
type EventAttribute struct {
	Key   string
	Value string
}

// SubmitResult is a node's answer to a submitted transaction.
type SubmitResult struct {
	Hash string
	// Code and Log are the application's verdict on admission; a non-zero
	// code means the transaction was refused and will never be committed.
	Code uint32
	Log  string
}

// QueryResult is the application's answer to a query.
type QueryResult struct {
	Code   uint32
	Log    string
	Value  []byte
	Height int64
}

// ErrTxNotFound is returned by Ledger.Tx for a transaction the node has
// not committed.
var ErrTxNotFound = errors.New("transaction not found")

// Ledger is implemented by drivers whose chains the platform reads blocks
// from and submits transactions to, for the explorer and the gateway. An
// error from these methods means the node could not be asked (try
// another); an application's refusal is a result, not an error.
type Ledger interface {
	// LatestHeight is the height of the node's newest committed block.
	LatestHeight(ctx context.Context, node PlannedNode) (int64, error)
	// Blocks returns the committed blocks from..to (inclusive), in order.
	Blocks(ctx context.Context, node PlannedNode, from, to int64) ([]Block, error)
	// Submit hands a signed transaction to the node's pool and returns
	// once the node admitted or refused it.
	Submit(ctx context.Context, node PlannedNode, tx []byte) (SubmitResult, error)
	// Tx returns a committed transaction by hash, or ErrTxNotFound.
	Tx(ctx context.Context, node PlannedNode, hash string) (*Tx, error)
	// Query asks the node's application.
	Query(ctx context.Context, node PlannedNode, path string, data []byte) (QueryResult, error)
}

// Resender is implemented by ledgers whose chain takes longer than the
// gateway's default wait (gateway.Gateway.ResendAfter) to put an
// admitted transaction in a block, so that the gateway does not hand the
// same bytes to another node while the first still has them in hand.
type Resender interface {
	// ResendAfter is how long an admitted transaction may stay out of a
	// block before the gateway hands it to another node.
	ResendAfter() time.Duration
}

// PlanLedger is implemented by drivers whose nodes answer only callers
// that sign their requests with keys of the network (a Fabric peer serves
// its channel's blocks to the channel's members): the ledger is read with
// the network's stored plan, which holds those keys. A driver is either a
// Ledger or a PlanLedger.
type PlanLedger interface {
	// LedgerWith returns the ledger of the network whose plan is plan.
	LedgerWith(plan *Plan) Ledger
}

// ChannelLedgers is implemented by PlanLedgers whose networks keep more
// ledgers than the one LedgerWith reads, each of some of the network's
// organisations (Fabric's channels besides the one every organisation
// shares). The explorer indexes each apart.
type ChannelLedgers interface {
	// Channels names the network's other ledgers, as its plan has them.
	Channels(plan *Plan) []string
	// ChannelLedger returns the ledger of channel ch of the network whose
	// plan is plan: it reads blocks from the peers of ch's members only.
	ChannelLedger(plan *Plan, ch string) (Ledger, error)
}

// ErrNotSupported is returned by a ledger for what its chain does not do
// through the platform.
var ErrNotSupported = errors.New("the network's chain does not accept application transactions")

// ErrMalformed wraps a ledger's refusal of a transaction or a query that
// is not in the form its chain takes (a Fabric call's body): the caller
// must change it, and no node would take it.
var ErrMalformed = errors.New("malformed request")

// TxSenders is implemented by ledgers whose transactions must reach the
// chain in order per sender, as Ethereum's nonces make them: a node holds
// a sender's later transaction back until the one before it arrives, so
// the gateway hands one sender's transactions to one node while it
// answers, rather than spreading them over the nodes.
type TxSenders interface {
	// TxSender names the account that signed tx, when it can be read.
	TxSender(tx []byte) (string, bool)
}

// ReadyNodes are the network's nodes that are Running, highest first, as
// the explorer and the gateway reach them.
func ReadyNodes(n *apis.Network) []PlannedNode {
	var out []PlannedNode
	nodes := append([]apis.NodeStatus(nil), n.Status.Nodes...)
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].Height > nodes[j].Height })
	for _, s := range nodes {
		if s.Phase == apis.NodeRunning && len(s.Endpoints) > 0 {
			out = append(out, PlannedNode{Name: s.Name, Role: s.Role, Organization: s.Organization, NodeID: s.NodeID, Endpoints: s.Endpoints})
		}
	}
	return out
}

// HeaderVerifier is implemented by drivers that can prove a block header
// was signed by the chain's validators.
type HeaderVerifier interface {
	// VerifiedAppHash returns the application hash in the header of
	// height, after checking that the header's commit carries the
	// signatures of more than two thirds of its validators' power.
	VerifiedAppHash(ctx context.Context, node PlannedNode, height int64) ([]byte, error)
}

// ErrUnavailable means no node of the network could be asked.
var ErrUnavailable = errors.New("no node of the network is reachable")

// ErrContractRefused wraps the reason a network cannot take a contract
// operation as asked (a package it cannot run, a version its nodes do not
// serve): the request must change, retrying will not help.
var ErrContractRefused = errors.New("contract operation refused")

// ContractResult says how the chain knows a deployed contract and which
// transaction, if any, put it there.
type ContractResult struct {
	// Ref is the contract's name on the chain: a module, an address, a
	// chaincode name.
	Ref    string
	TxHash string
	Height int64
	// Collections are the private data collections the contract got,
	// when the driver took them from the package (a Fabric package's
	// collections.json) because the request gave none.
	Collections []apis.Collection
}

// DeployRequest is one deployment of a package as a network's contract.
type DeployRequest struct {
	Name    string
	Package *apis.Package
	// Current is the contract's newest revision, nil for a new contract.
	Current *apis.ContractRevision
	// Args are the contract's constructor arguments, as text, in the
	// order the contract declares them; a driver whose contracts take
	// none refuses any.
	Args []string
	// EndorsementPolicy is who must endorse the contract's transactions,
	// in the chain's own terms, for chains whose contracts have such a
	// policy (a Fabric chaincode's); "" is the chain's default. A driver
	// whose contracts have none refuses any, with an apis.ErrorList
	// naming the field endorsementPolicy.
	EndorsementPolicy string
	// Channel is the channel to deploy on, for chains with more than one
	// (a Fabric network's spec.fabric.channels); "" is the network's own.
	// A driver with one refuses any, naming the field channel.
	Channel string
	// Collections are the contract's private data collections, for
	// chains whose contracts have them (a Fabric chaincode's); nil keeps
	// an upgraded contract's (the API fills them in from Current). A
	// driver whose contracts have none refuses any, naming the field
	// collections.
	Collections []apis.Collection
	// Plan is the network's stored plan, for drivers that deploy with
	// the network's keys (a PlanLedger: a Fabric organisation's admin
	// installs and approves chaincode); nil for the others.
	Plan *Plan
}

// Contracts is implemented by drivers that deploy packages from the
// contract store onto their networks. The platform records each step as a
// revision of the contract; the driver does the chain's part.
type Contracts interface {
	// Templates are the driver's built-in packages, owned by
	// apis.BuiltinOwner.
	Templates() []apis.Package
	// ValidatePackage checks a package's kind and files for this chain,
	// naming the fields that are wrong.
	ValidatePackage(p *apis.Package) apis.ErrorList
	// DeployContract puts a package on the network as a contract: a new
	// one when req.Current is nil or removed, else an upgrade of it.
	DeployContract(ctx context.Context, n *apis.Network, req DeployRequest) (ContractResult, error)
	// RemoveContract takes a deployed contract out of use.
	RemoveContract(ctx context.Context, n *apis.Network, current *apis.ContractRevision) (ContractResult, error)
	// TxContract names the contract (its Ref) a transaction calls, when
	// the driver can tell.
	TxContract(n *apis.Network, tx []byte) (string, bool)
}

// GoRuntimeEnv turns a node's resources into the Go runtime's own limits
// (GOMAXPROCS, GOMEMLIMIT), which node programs written in Go, such as
// cometbft and geth, honour wherever they run.
func GoRuntimeEnv(r apis.Resources) map[string]string {
	env := map[string]string{}
	if r.CPU != "" {
		if q, err := resource.ParseQuantity(r.CPU); err == nil {
			env["GOMAXPROCS"] = fmt.Sprint(max(1, int(math.Ceil(float64(q.MilliValue())/1000))))
		}
	}
	if r.Memory != "" {
		if q, err := resource.ParseQuantity(r.Memory); err == nil {
			// Leave headroom below the limit for memory Go does not manage.
			env["GOMEMLIMIT"] = fmt.Sprint(q.Value() * 9 / 10)
		}
	}
	if len(env) == 0 {
		return nil
	}
	return env
}

// FileData is the content of spec's file at path, or nil.
func FileData(spec runtime.NodeSpec, path string) []byte {
	for _, f := range spec.Files {
		if f.Path == path {
			return f.Data
		}
	}
	return nil
}

// WithFile is spec with its file at path holding data (added, private to
// the node, if it had none); spec itself is left as it was.
func WithFile(spec runtime.NodeSpec, path string, data []byte) runtime.NodeSpec {
	spec.Files = slices.Clone(spec.Files)
	for i, f := range spec.Files {
		if f.Path == path {
			spec.Files[i].Data = data
			return spec
		}
	}
	spec.Files = append(spec.Files, runtime.File{Path: path, Data: data, Mode: 0o600})
	return spec
}

// CountRole counts spec's nodes of role.
func CountRole(spec *apis.NetworkSpec, role string) int {
	k := 0
	for _, ns := range spec.Nodes() {
		if ns.Role == role {
			k++
		}
	}
	return k
}
