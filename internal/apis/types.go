package apis

import (
	"time"
)

// APIVersion is the only resource version this server speaks.
const APIVersion = "chaindock/v1"

// KindNetwork is the kind of a Network resource.
const KindNetwork = "Network"

// KindFabricIdentity is the kind of an application identity enrolled in a
// Fabric network. An object is named NETWORK-UID/ORG/NAME, so that a
// network made again under the same name starts with none, and the
// network's deletion takes its identities with it.
const KindFabricIdentity = "FabricIdentity"

// ObjectMeta is the metadata every resource carries.
type ObjectMeta struct {
	Name              string            `json:"name"`
	UID               string            `json:"uid,omitempty"`
	Owner             string            `json:"owner,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	Generation        int64             `json:"generation,omitempty"`
	CreationTimestamp *time.Time        `json:"creationTimestamp,omitempty"`
	DeletionTimestamp *time.Time        `json:"deletionTimestamp,omitempty"`
}

// Network is a blockchain network: its nodes, where they run and how the
// chain is configured.
type Network struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   ObjectMeta    `json:"metadata"`
	Spec       NetworkSpec   `json:"spec"`
	Status     NetworkStatus `json:"status,omitempty"`
}

// NetworkSpec is the desired state of a network.
type NetworkSpec struct {
	// Chain names the chain driver, for example "cometbft".
	Chain string `json:"chain"`
	// Runtime names where the nodes run, for example "process".
	Runtime string `json:"runtime"`
	// Cluster names the registered Kubernetes cluster a network on the
	// kubernetes runtime runs on.
	Cluster string `json:"cluster,omitempty"`
	// Validators is the number of consensus nodes when the network has no
	// organizations.
	Validators int `json:"validators,omitempty"`
	// FullNodes is the number of non-voting nodes when the network has no
	// organizations.
	FullNodes int `json:"fullNodes,omitempty"`
	// Organizations splits the nodes between member organizations of a
	// consortium; each organization runs its own validators and full nodes.
	Organizations []OrganizationNodes `json:"organizations,omitempty"`
	// Consortium names the consortium whose members share the network;
	// every organization in Organizations must be a member.
	Consortium string `json:"consortium,omitempty"`
	// Consensus tunes block production.
	Consensus Consensus `json:"consensus,omitempty"`
	// Resources are the default resources of every node.
	Resources Resources `json:"resources,omitempty"`
	// CometBFT holds settings only the cometbft driver reads.
	CometBFT *CometBFTSpec `json:"cometbft,omitempty"`
	// Ethereum holds settings only the ethereum driver reads.
	Ethereum *EthereumSpec `json:"ethereum,omitempty"`
	// Fabric holds settings only the fabric driver reads.
	Fabric *FabricSpec `json:"fabric,omitempty"`
}

// OrganizationNodes are the nodes one organization contributes to a network.
type OrganizationNodes struct {
	Name       string `json:"name"`
	Validators int    `json:"validators,omitempty"`
	FullNodes  int    `json:"fullNodes,omitempty"`
	// Peers is the number of peers the organization runs in a Fabric
	// network, which has no validators or full nodes of its own kind.
	Peers     int       `json:"peers,omitempty"`
	Resources Resources `json:"resources,omitempty"`
}

// Consensus tunes block production. Durations are Go duration strings.
type Consensus struct {
	TimeoutCommit  Duration `json:"timeoutCommit,omitempty"`
	TimeoutPropose Duration `json:"timeoutPropose,omitempty"`
	// CreateEmptyBlocks defaults to true: an idle chain keeps a heartbeat.
	CreateEmptyBlocks *bool `json:"createEmptyBlocks,omitempty"`
}

// Resources are a node's compute resources, as Kubernetes quantities
// ("500m", "2", "512Mi").
type Resources struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

// CometBFTSpec holds CometBFT-only settings.
type CometBFTSpec struct {
	// App is the ABCI application: "kvstore" (built into CometBFT, the
	// default) or "chaindock" (ChainDock's notarisation and asset-transfer
	// application, run beside each node).
	App string `json:"app,omitempty"`
	// SnapshotInterval is how many blocks apart the chaindock application
	// takes state-sync snapshots; 0 means the default (100).
	SnapshotInterval int `json:"snapshotInterval,omitempty"`
}

// EthereumSpec holds the settings of a go-ethereum Clique
// (proof-of-authority) network. Its sealers are the network's validators;
// its full nodes follow the chain without sealing.
type EthereumSpec struct {
	// ChainID is the EIP-155 chain ID, also used as the network ID. Unset,
	// it is derived from the network's name.
	ChainID *uint64 `json:"chainID,omitempty"`
	// BlockPeriod is the time between blocks, in whole seconds; unset, 1s.
	// "0s" seals a block only when a transaction waits, which only a
	// single sealer can do.
	BlockPeriod *Duration `json:"blockPeriod,omitempty"`
	// GasLimit is the gas limit of every block; 0 means 30,000,000.
	GasLimit uint64 `json:"gasLimit,omitempty"`
	// Alloc funds accounts in the genesis block: a 0x-prefixed address to
	// its balance in wei, as a decimal string.
	Alloc map[string]string `json:"alloc,omitempty"`
}

// ChainFabric is the chain whose networks have peer organizations and an
// ordering service rather than validators and full nodes.
const ChainFabric = "fabric"

// FabricChannel is a channel of some of a Fabric network's peer
// organisations, besides the one all of them share.
type FabricChannel struct {
	Name string `json:"name"`
	// Organizations are its member organisations, by name (at least one).
	Organizations []string `json:"organizations"`
}

// FabricSpec holds the settings of a Hyperledger Fabric network: its
// ordering service and its channel. Its peer organizations are
// spec.organizations, each with its peers.
type FabricSpec struct {
	// OrdererOrganization names the organization that runs the ordering
	// service; unset, "orderer". It has an MSP of its own and no peers.
	OrdererOrganization string `json:"ordererOrganization,omitempty"`
	// Orderers is the number of orderers: with Raft 1, 3 or 5 (unset,
	// 3); with BFT 1, 4 or 7 (unset, 4).
	Orderers int `json:"orderers,omitempty"`
	// Consensus is how the orderers agree on blocks: "etcdraft" (unset),
	// crash fault tolerant, or "BFT" (SmartBFT, Fabric 3.x), which
	// orders correctly while fewer than a third of the orderers are
	// faulty or malicious.
	Consensus string `json:"consensus,omitempty"`
	// Channel is the application channel every peer joins; unset, the
	// network's name.
	Channel string `json:"channel,omitempty"`
	// Channels are more channels, each of some of the peer
	// organisations: their peers join it, and every orderer orders it.
	Channels []FabricChannel `json:"channels,omitempty"`
	// Version is the Fabric release the network's binaries are, as
	// major.minor: "3.1" (unset) or "2.5". The channel's capabilities are
	// ones both run.
	Version string `json:"version,omitempty"`
	// Templates runs ChainDock's built-in chaincode (the notarisation and
	// asset templates) on a node of the network's own, chaincode-0, so
	// that builtin/fabric-notary and builtin/fabric-asset can be deployed
	// on it. On Kubernetes it runs as a pod of ChainDock's image.
	Templates bool `json:"templates,omitempty"`
	// RenewCertificates renews, once this time has come, every
	// certificate of the network's peers, Raft orderers, admins and
	// built-in application identities issued before it, one node
	// restarted at a time (POST /networks/{name}/certificates/renew sets
	// it to now).
	// Certificates are renewed anyway once two thirds of their validity
	// have passed.
	RenewCertificates *time.Time `json:"renewCertificates,omitempty"`
}

// Defaults of spec.fabric.
const (
	DefaultFabricOrdererOrganization = "orderer"
	DefaultFabricOrderers            = 3
	DefaultFabricBFTOrderers         = 4
	FabricConsensusEtcdRaft          = "etcdraft"
	FabricConsensusBFT               = "BFT"
	DefaultFabricVersion             = "3.1"
)

// OrdererOrg is the spec's orderer organization, its default
// filled in.
func (f *FabricSpec) OrdererOrg() string {
	if f == nil || f.OrdererOrganization == "" {
		return DefaultFabricOrdererOrganization
	}
	return f.OrdererOrganization
}

// OrdererCount is the spec's number of orderers, its default filled in.
func (f *FabricSpec) OrdererCount() int {
	switch {
	case f != nil && f.Orderers != 0:
		return f.Orderers
	case f.IsBFT():
		return DefaultFabricBFTOrderers
	}
	return DefaultFabricOrderers
}

// IsBFT reports whether the ordering service runs BFT consensus.
func (f *FabricSpec) IsBFT() bool {
	return f != nil && f.Consensus == FabricConsensusBFT
}

// Network phases.
const (
	PhasePending   = "Pending"
	PhaseDeploying = "Deploying"
	PhaseRunning   = "Running"
	PhaseDegraded  = "Degraded"
	PhaseDeleting  = "Deleting"
	PhaseFailed    = "Failed"
)

// Node phases.
const (
	NodePending    = "Pending"
	NodeStarting   = "Starting"
	NodeRunning    = "Running"
	NodeCrashed    = "Crashed"
	NodeCatchingUp = "CatchingUp"
	NodeStalled    = "Stalled"
)

// NetworkStatus is what the controller last observed.
type NetworkStatus struct {
	Phase string `json:"phase,omitempty"`
	// Message says why the network is not Running, when it is not.
	Message            string       `json:"message,omitempty"`
	ObservedGeneration int64        `json:"observedGeneration,omitempty"`
	ChainID            string       `json:"chainID,omitempty"`
	Height             int64        `json:"height,omitempty"`
	Nodes              []NodeStatus `json:"nodes,omitempty"`
	LastProbeTime      *time.Time   `json:"lastProbeTime,omitempty"`
	// DeployStartedAt and RunningSince tell how long the deploy took; a
	// network that was Running once is Degraded, not Deploying, when a
	// node fails.
	DeployStartedAt *time.Time `json:"deployStartedAt,omitempty"`
	RunningSince    *time.Time `json:"runningSince,omitempty"`
}

// PodInfo is a node's pod as its cluster reports it.
type PodInfo struct {
	Name string `json:"name"` // namespace/name
	// UID changes when the cluster replaces the pod.
	UID      string `json:"uid,omitempty"`
	Phase    string `json:"phase"`
	Ready    bool   `json:"ready"`
	Restarts int    `json:"restarts"`
	PodIP    string `json:"podIP,omitempty"`
	HostIP   string `json:"hostIP,omitempty"`
	Node     string `json:"node,omitempty"`
}

// NodeStatus is the observed state of one node.
type NodeStatus struct {
	Name         string `json:"name"`
	Role         string `json:"role"`
	Organization string `json:"organization,omitempty"`
	Phase        string `json:"phase"`
	Message      string `json:"message,omitempty"`
	Height       int64  `json:"height"`
	Peers        int    `json:"peers"`
	CatchingUp   bool   `json:"catchingUp,omitempty"`
	// Pod is the node's pod, on the kubernetes runtime.
	Pod *PodInfo `json:"pod,omitempty"`
	// Sealing tells whether a block-producing node produces blocks, where
	// the chain lets the probe tell (an Ethereum sealer: its miner runs
	// and it is among the chain's signers).
	Sealing       *bool      `json:"sealing,omitempty"`
	LastBlockTime *time.Time `json:"lastBlockTime,omitempty"`
	Restarts      int        `json:"restarts"`
	LastRestart   *time.Time `json:"lastRestart,omitempty"`
	// ConsecutiveCrashes counts crashes without a healthy minute between
	// them; it sets the restart backoff.
	ConsecutiveCrashes int               `json:"consecutiveCrashes,omitempty"`
	HeightChangedAt    *time.Time        `json:"heightChangedAt,omitempty"`
	StartedAt          *time.Time        `json:"startedAt,omitempty"`
	PID                int               `json:"pid,omitempty"`
	Endpoints          map[string]string `json:"endpoints,omitempty"`
	// NodeID is the chain's identity of the node (CometBFT node ID).
	NodeID string `json:"nodeID,omitempty"`
	// Joining is true for a node added to a running network until it runs
	// and, for a validator, the chain has admitted it to consensus.
	Joining bool `json:"joining,omitempty"`
}

// Event is something that happened to a resource, newest last.
type Event struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Name    string    `json:"name"`
	UID     string    `json:"uid,omitempty"`
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Node    string    `json:"node,omitempty"`
	Message string    `json:"message"`
}

// Event types.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)
