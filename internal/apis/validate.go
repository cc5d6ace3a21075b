package apis

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Limits that keep one spec from asking for more than a platform can give.
const (
	MaxNameLength       = 40
	MaxValidators       = 100
	MaxFullNodes        = 100
	MaxOrganizations    = 32
	minConsensusTimeout = 10 * time.Millisecond
	maxConsensusTimeout = time.Minute
)

// Registries tells validation which chains and runtimes this server has.
type Registries struct {
	Chains   []string
	Runtimes []string
}

// ValidateNetwork returns every problem with n, each with its field path.
func ValidateNetwork(n *Network, reg Registries) ErrorList {
	var errs ErrorList
	if n.APIVersion != APIVersion {
		errs.Add("apiVersion", "must be %q, not %q", APIVersion, n.APIVersion)
	}
	if n.Kind != KindNetwork {
		errs.Add("kind", "must be %q, not %q", KindNetwork, n.Kind)
	}
	validateName(n.Metadata.Name, "metadata.name", &errs)
	for k, v := range n.Metadata.Labels {
		p := Path("metadata.labels", k)
		for _, m := range validation.IsQualifiedName(k) {
			errs.Add(p, "invalid label key: %s", m)
		}
		for _, m := range validation.IsValidLabelValue(v) {
			errs.Add(p, "invalid label value: %s", m)
		}
	}
	validateSpec(&n.Spec, reg, &errs)
	return errs
}

func validateName(name, path string, errs *ErrorList) {
	switch {
	case name == "":
		errs.Add(path, "is required")
	case len(name) > MaxNameLength:
		errs.Add(path, "%q is %d characters, more than %d", name, len(name), MaxNameLength)
	default:
		if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
			errs.Add(path, "%q is not a valid name: use lower-case letters, digits and '-', starting and ending with a letter or digit", name)
		}
	}
}

// RuntimeKubernetes is the runtime whose networks name a cluster.
const RuntimeKubernetes = "kubernetes"

func validateSpec(s *NetworkSpec, reg Registries, errs *ErrorList) {
	switch {
	case s.Chain == "":
		errs.Add("spec.chain", "is required (one of %v)", reg.Chains)
	case !slices.Contains(reg.Chains, s.Chain):
		errs.Add("spec.chain", "unknown chain %q (one of %v)", s.Chain, reg.Chains)
	}
	switch {
	case s.Runtime == "":
		errs.Add("spec.runtime", "is required (one of %v)", reg.Runtimes)
	case !slices.Contains(reg.Runtimes, s.Runtime):
		errs.Add("spec.runtime", "unknown runtime %q (one of %v)", s.Runtime, reg.Runtimes)
	}
	switch {
	case s.Runtime == RuntimeKubernetes && s.Cluster == "":
		errs.Add("spec.cluster", "is required on runtime %s: name a registered cluster (chaindock get clusters)", RuntimeKubernetes)
	case s.Runtime != RuntimeKubernetes && s.Cluster != "":
		errs.Add("spec.cluster", "applies only to runtime %s, not %s", RuntimeKubernetes, s.Runtime)
	case s.Cluster != "" && (len(s.Cluster) > MaxNameLength || len(validation.IsDNS1123Label(s.Cluster)) > 0):
		errs.Add("spec.cluster", "%q is not a cluster name", s.Cluster)
	}

	// A server without the fabric driver names the chain unknown, above.
	fabric := s.Chain == ChainFabric && slices.Contains(reg.Chains, ChainFabric)
	if fabric && s.Validators != 0 {
		errs.Add("spec.validators", "does not apply to chain %s: its orderers are spec.fabric.orderers", ChainFabric)
	}
	if fabric && s.FullNodes != 0 {
		errs.Add("spec.fullNodes", "does not apply to chain %s: give each of spec.organizations its peers", ChainFabric)
	}
	if !fabric && s.Fabric != nil {
		errs.Add("spec.fabric", "applies only to chain %s, not %s", ChainFabric, s.Chain)
	}
	switch {
	case fabric && len(s.Organizations) == 0:
		errs.Add("spec.organizations", "is required for chain %s: list the peer organizations and the peers each runs", ChainFabric)
	case fabric:
		validateFabricOrgs(s, errs)
	case len(s.Organizations) > 0:
		if s.Validators != 0 {
			errs.Add("spec.validators", "must be empty when spec.organizations is set: give each organization its validators")
		}
		if s.FullNodes != 0 {
			errs.Add("spec.fullNodes", "must be empty when spec.organizations is set: give each organization its full nodes")
		}
		if len(s.Organizations) > MaxOrganizations {
			errs.Add("spec.organizations", "has %d organizations, more than %d", len(s.Organizations), MaxOrganizations)
		}
		seen := map[string]int{}
		total := 0
		for i, o := range s.Organizations {
			p := Index("spec.organizations", i)
			validateName(o.Name, Path(p, "name"), errs)
			if j, dup := seen[o.Name]; dup && o.Name != "" {
				errs.Add(Path(p, "name"), "%q is also organizations[%d]", o.Name, j)
			}
			seen[o.Name] = i
			validateCount(o.Validators, 0, MaxValidators, Path(p, "validators"), errs)
			validateCount(o.FullNodes, 0, MaxFullNodes, Path(p, "fullNodes"), errs)
			if o.Peers != 0 {
				errs.Add(Path(p, "peers"), "applies only to chain %s: this chain's organizations run validators and full nodes", ChainFabric)
			}
			validateResources(o.Resources, Path(p, "resources"), errs)
			total += o.Validators
		}
		if total == 0 {
			errs.Add("spec.organizations", "must have at least one validator in all")
		} else if total > MaxValidators {
			errs.Add("spec.organizations", "has %d validators in all, more than %d", total, MaxValidators)
		}
	default:
		validateCount(s.Validators, 1, MaxValidators, "spec.validators", errs)
		validateCount(s.FullNodes, 0, MaxFullNodes, "spec.fullNodes", errs)
	}
	if s.Consortium != "" {
		validateName(s.Consortium, "spec.consortium", errs)
		if len(s.Organizations) == 0 {
			errs.Add("spec.organizations", "is required for a consortium network: list the nodes each member organization runs")
		}
	}
	validateTimeout(s.Consensus.TimeoutCommit, "spec.consensus.timeoutCommit", errs)
	validateTimeout(s.Consensus.TimeoutPropose, "spec.consensus.timeoutPropose", errs)
	validateResources(s.Resources, "spec.resources", errs)
}

// validateFabricOrgs checks the peer organizations of a Fabric network;
// the fabric driver checks spec.fabric.
func validateFabricOrgs(s *NetworkSpec, errs *ErrorList) {
	if len(s.Organizations) > MaxOrganizations {
		errs.Add("spec.organizations", "has %d organizations, more than %d", len(s.Organizations), MaxOrganizations)
	}
	seen := map[string]int{}
	total := 0
	for i, o := range s.Organizations {
		p := Index("spec.organizations", i)
		validateName(o.Name, Path(p, "name"), errs)
		if j, dup := seen[o.Name]; dup && o.Name != "" {
			errs.Add(Path(p, "name"), "%q is also organizations[%d]", o.Name, j)
		}
		seen[o.Name] = i
		if o.Validators != 0 {
			errs.Add(Path(p, "validators"), "does not apply to chain %s: an organization runs peers, and the orderers are spec.fabric.orderers", ChainFabric)
		}
		if o.FullNodes != 0 {
			errs.Add(Path(p, "fullNodes"), "does not apply to chain %s: an organization runs peers", ChainFabric)
		}
		validateCount(o.Peers, 1, MaxFullNodes, Path(p, "peers"), errs)
		validateResources(o.Resources, Path(p, "resources"), errs)
		total += o.Peers
	}
	if total > MaxFullNodes {
		errs.Add("spec.organizations", "has %d peers in all, more than %d", total, MaxFullNodes)
	}
}

func validateCount(n, lo, hi int, path string, errs *ErrorList) {
	if n < lo || n > hi {
		errs.Add(path, "must be from %d to %d, not %d", lo, hi, n)
	}
}

func validateTimeout(d Duration, path string, errs *ErrorList) {
	if d.IsZero() {
		return
	}
	if d.Duration < minConsensusTimeout || d.Duration > maxConsensusTimeout {
		errs.Add(path, "must be from %s to %s, not %s", minConsensusTimeout, maxConsensusTimeout, d.Duration)
	}
}

func validateResources(r Resources, path string, errs *ErrorList) {
	check := func(v, field string) {
		if v == "" {
			return
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			errs.Add(Path(path, field), "%q is not a quantity (examples: \"500m\", \"2\", \"512Mi\")", v)
			return
		}
		if q.Sign() <= 0 {
			errs.Add(Path(path, field), "must be more than zero, not %q", v)
		}
	}
	check(r.CPU, "cpu")
	check(r.Memory, "memory")
}

// SetDefaults fills in the fields a user may leave out.
func SetDefaults(n *Network) {
	if n.Spec.Consensus.TimeoutCommit.IsZero() {
		n.Spec.Consensus.TimeoutCommit = Duration{time.Second}
	}
	if n.Spec.Consensus.TimeoutPropose.IsZero() {
		n.Spec.Consensus.TimeoutPropose = Duration{3 * time.Second}
	}
	if n.Spec.Consensus.CreateEmptyBlocks == nil {
		// An Ethereum chain with a block period of 0 seals only when a
		// transaction waits: its height standing still is no stall.
		// Nor is a Fabric channel's, whose orderers cut a block only when
		// transactions wait.
		e := n.Spec.Ethereum
		t := n.Spec.Chain != ChainFabric && (e == nil || e.BlockPeriod == nil || e.BlockPeriod.Duration != 0)
		n.Spec.Consensus.CreateEmptyBlocks = &t
	}
}

// Node roles.
const (
	RoleValidator = "validator"
	RoleFull      = "full"
	// RoleChaincode is a Fabric network's chaincode host: it serves
	// chaincode to the peers and is no member of the channel.
	RoleChaincode = "chaincode"
)

// ChaincodeNode is the name of a Fabric network's chaincode host.
const ChaincodeNode = "chaincode-0"

// NodeSpec is one node a network spec asks for.
type NodeSpec struct {
	Name         string
	Role         string
	Organization string
	Resources    Resources
}

// Nodes lists the nodes of a network in a stable order, validators first.
// Names are stable too: "validator-0", or "org1-validator-0" with
// organizations, so that a node keeps its name (and its keys) across
// reconciles.
func (s *NetworkSpec) Nodes() []NodeSpec {
	if s.Chain == ChainFabric {
		return s.fabricNodes()
	}
	var out []NodeSpec
	add := func(org string, validators, full int, res Resources) {
		prefix := ""
		if org != "" {
			prefix = org + "-"
		}
		if res == (Resources{}) {
			res = s.Resources
		}
		for i := range validators {
			out = append(out, NodeSpec{Name: fmt.Sprintf("%s%s-%d", prefix, RoleValidator, i), Role: RoleValidator, Organization: org, Resources: res})
		}
		for i := range full {
			out = append(out, NodeSpec{Name: fmt.Sprintf("%s%s-%d", prefix, RoleFull, i), Role: RoleFull, Organization: org, Resources: res})
		}
	}
	if len(s.Organizations) == 0 {
		add("", s.Validators, s.FullNodes, s.Resources)
		return out
	}
	for _, o := range s.Organizations {
		add(o.Name, o.Validators, 0, o.Resources)
	}
	for _, o := range s.Organizations {
		add(o.Name, 0, o.FullNodes, o.Resources)
	}
	return out
}

// fabricNodes are a Fabric network's nodes: its orderers ("orderer-0"),
// which order and so are its validators, then each organization's peers
// ("org1-peer-0"), which keep the ledger and vote in no consensus, and
// with spec.fabric.templates the host of the built-in chaincode.
func (s *NetworkSpec) fabricNodes() []NodeSpec {
	var out []NodeSpec
	for i := range min(s.Fabric.OrdererCount(), MaxValidators) {
		out = append(out, NodeSpec{Name: fmt.Sprintf("orderer-%d", i), Role: RoleValidator, Organization: s.Fabric.OrdererOrg(), Resources: s.Resources})
	}
	for _, o := range s.Organizations {
		res := o.Resources
		if res == (Resources{}) {
			res = s.Resources
		}
		for i := range o.Peers {
			out = append(out, NodeSpec{Name: fmt.Sprintf("%s-peer-%d", o.Name, i), Role: RoleFull, Organization: o.Name, Resources: res})
		}
	}
	if s.Fabric != nil && s.Fabric.Templates {
		out = append(out, NodeSpec{Name: ChaincodeNode, Role: RoleChaincode, Resources: s.Resources})
	}
	return out
}
