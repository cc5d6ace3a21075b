package fabric

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

// Name is the driver's registered name.
const Name = apis.ChainFabric

// Programs the process runtime runs.
const (
	PeerProgram    = "peer"
	OrdererProgram = "orderer"
)

// Images of the programs, on runtimes that run containers. The server's
// --image flag replaces them by program name (peer, orderer).
const (
	PeerImage    = "hyperledger/fabric-peer:3.1.5"
	OrdererImage = "hyperledger/fabric-orderer:3.1.5"
	// CouchDBImage runs a peer's state database beside it, in its pod.
	CouchDBImage = "couchdb:3.3.3"
)

// imageVersion is the Fabric release of PeerImage and OrdererImage.
const imageVersion = "3.1"

// Port names. An orderer's Raft traffic shares its listen port: the
// cluster service runs on the orderer's main gRPC server.
const (
	// PortListen is a node's gRPC service: a peer's endorser, deliver and
	// gossip, an orderer's broadcast, deliver and cluster.
	PortListen = "listen"
	// PortChaincode is where a peer's chaincodes dial it.
	PortChaincode = "chaincode"
	// PortOperations serves /healthz and Prometheus /metrics over HTTP.
	PortOperations = "operations"
	// PortAdmin is an orderer's channel participation API (HTTPS with
	// client certificates).
	PortAdmin = "admin"
)

// Fabric versions the driver plans for.
var versions = []string{"3.1", "2.5"}

// channelNameRE is Fabric's rule for a channel name.
var channelNameRE = regexp.MustCompile(`^[a-z][a-z0-9.-]*$`)

const maxChannelName = 249

func init() {
	chain.Register(Name, New())
}

// Driver plans, bootstraps and probes Fabric networks.
type Driver struct {
	client *http.Client
	// chaindock is the program a peer's external builder runs: this
	// server's own binary, which has the builder's command.
	chaindock string
	// conns are the connections its ledgers make to peers.
	conns *conns
}

var (
	_ chain.Driver       = (*Driver)(nil)
	_ chain.Bootstrapper = (*Driver)(nil)
	_ chain.IdleChain    = (*Driver)(nil)
)

// New returns the driver.
func New() *Driver {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	exe, err := os.Executable()
	if err != nil {
		exe = "chaindock"
	}
	return &Driver{client: &http.Client{Timeout: 3 * time.Second, Transport: chain.Transport(tr)}, chaindock: exe, conns: &conns{}}
}

// MakesEmptyBlocks implements chain.IdleChain: orderers cut a block only
// when transactions wait, so a channel stays at its genesis block until
// the first transaction.
func (d *Driver) MakesEmptyBlocks(*apis.NetworkSpec) bool { return false }

// Validate implements chain.Driver. The peer organizations were checked
// with the rest of the spec; this checks spec.fabric.
func (d *Driver) Validate(spec *apis.NetworkSpec) apis.ErrorList {
	var errs apis.ErrorList
	if spec.CometBFT != nil {
		errs.Add("spec.cometbft", "applies only to chain cometbft, not %s", Name)
	}
	if spec.Ethereum != nil {
		errs.Add("spec.ethereum", "applies only to chain ethereum, not %s", Name)
	}
	var defaults apis.Network
	apis.SetDefaults(&defaults)
	if t := spec.Consensus.TimeoutCommit; !t.IsZero() && t != defaults.Spec.Consensus.TimeoutCommit {
		errs.Add("spec.consensus.timeoutCommit", "applies only to chain cometbft")
	}
	if t := spec.Consensus.TimeoutPropose; !t.IsZero() && t != defaults.Spec.Consensus.TimeoutPropose {
		errs.Add("spec.consensus.timeoutPropose", "applies only to chain cometbft")
	}
	if c := spec.Consensus.CreateEmptyBlocks; c != nil && *c {
		errs.Add("spec.consensus.createEmptyBlocks", "must be false or left out: Fabric orderers cut a block only when transactions wait")
	}
	f := spec.Fabric
	if f == nil {
		f = &apis.FabricSpec{}
	}
	const p = "spec.fabric"
	switch f.Consensus {
	case "", apis.FabricConsensusEtcdRaft:
		switch n := f.Orderers; n {
		case 0, 1, 3, 5:
		case 2, 4:
			errs.Add(p+".orderers", "must be 1, 3 or 5, not %d: Raft needs a majority of its orderers, so %d survive no more failures than %d", n, n, n-1)
		default:
			errs.Add(p+".orderers", "must be 1, 3 or 5, not %d", n)
		}
	case apis.FabricConsensusBFT:
		errs = append(errs, validateBFT(f)...)
	default:
		errs.Add(p+".consensus", "unsupported consensus %q (supported: %s, %s)", f.Consensus, apis.FabricConsensusEtcdRaft, apis.FabricConsensusBFT)
	}
	if o := f.OrdererOrganization; o != "" {
		if len(o) > apis.MaxNameLength || !dnsLabel(o) {
			errs.Add(p+".ordererOrganization", "%q is not a valid name: use lower-case letters, digits and '-', starting and ending with a letter or digit", o)
		}
	}
	for i, o := range spec.Organizations {
		if o.Name == f.OrdererOrg() {
			errs.Add(apis.Path(apis.Index("spec.organizations", i), "name"), "%q is the orderer organization (spec.fabric.ordererOrganization): the ordering service is an organization of its own", o.Name)
		}
	}
	if c := f.Channel; c != "" {
		if msg := checkChannel(c); msg != "" {
			errs.Add(p+".channel", "%s", msg)
		}
	}
	errs = append(errs, validateChannels(spec)...)
	switch v := f.Version; {
	case v != "" && !slices.Contains(versions, v):
		errs.Add(p+".version", "unsupported version %q (supported: %s)", v, strings.Join(versions, ", "))
	case v != "" && v != imageVersion && spec.Runtime == apis.RuntimeKubernetes:
		// The pods run the official images of one release, which the
		// plan names; a network of another release runs on the process
		// runtime, with the user's binaries.
		errs.Add(p+".version", "must be %s or left out on runtime %s, not %q: its pods run %s and %s", imageVersion, apis.RuntimeKubernetes, v, PeerImage, OrdererImage)
	}
	return errs
}

// checkChannel explains what is wrong with a channel name, if anything.
func checkChannel(name string) string {
	switch {
	case len(name) > maxChannelName:
		return fmt.Sprintf("is %d characters, more than %d", len(name), maxChannelName)
	case !channelNameRE.MatchString(name):
		return fmt.Sprintf("%q is not a channel name: it starts with a lower-case letter and has only lower-case letters, digits, '.' and '-'", name)
	}
	return ""
}

// ChannelName is the channel of network name whose spec names none: the
// network's name, which is a valid channel name unless it starts with a
// digit.
func ChannelName(network string, f *apis.FabricSpec) string {
	if f != nil && f.Channel != "" {
		return f.Channel
	}
	if network != "" && network[0] >= 'a' && network[0] <= 'z' {
		return network
	}
	return "ch-" + network
}

// PortNames implements chain.Driver: orderers are the network's
// validators, peers its full nodes; the chaincode host has a port per
// template.
func (d *Driver) PortNames(_ *apis.NetworkSpec, role string) []string {
	if role == apis.RoleChaincode {
		return chaincodePortNames()
	}
	if role == apis.RoleValidator {
		return []string{PortListen, PortAdmin, PortOperations}
	}
	return []string{PortListen, PortChaincode, PortOperations}
}

var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func dnsLabel(s string) bool { return len(s) <= 63 && dnsLabelRE.MatchString(s) }
