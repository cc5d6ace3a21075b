package ethereum

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"

	"github.com/ethereum/go-ethereum/common"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/runtime"
)

var _ chain.Scaler = (*Driver)(nil)

// Reshape implements chain.Scaler. The genesis stays as it is: a new
// sealer joins by a Clique vote of the sealers (Admit), not by a new
// genesis. Every node lists every other as a static, trusted peer, so the
// nodes that stay get a config.toml with the new nodes in it (and the
// removed ones out), and, in pods, wait for the new nodes' names too
// before they start; they are restarted with it, one at a time.
func (d *Driver) Reshape(_ context.Context, req chain.ReshapeRequest) (*chain.Plan, error) {
	n := req.Network
	s, err := settingsOf(n)
	if err != nil {
		return nil, fmt.Errorf("reshape %s: %w", n.Metadata.Name, err)
	}
	place := chain.PlacementOf(req.Placement, req.Host)
	var genesisData []byte
	var kept []chain.PlannedNode
	for _, pn := range req.Plan.Nodes {
		if genesisData == nil {
			genesisData = chain.FileData(pn.Spec, fileGenesis)
		}
		if !slices.Contains(req.Remove, pn.Name) {
			kept = append(kept, pn)
		}
	}
	if genesisData == nil {
		return nil, fmt.Errorf("reshape %s: the plan has no genesis", n.Metadata.Name)
	}
	added := make([]*node, len(req.Add))
	for i, ns := range req.Add {
		if slices.ContainsFunc(kept, func(pn chain.PlannedNode) bool { return pn.Name == ns.Name }) {
			return nil, fmt.Errorf("reshape %s: node %s is already planned", n.Metadata.Name, ns.Name)
		}
		if added[i], err = newNode(req.Rand, place.NodeHost(ns.Name), ns, req.Ports[ns.Name]); err != nil {
			return nil, fmt.Errorf("reshape %s: %w", n.Metadata.Name, err)
		}
	}
	enodes := make([]string, 0, len(kept)+len(added))
	for _, pn := range kept {
		enodes = append(enodes, pn.Endpoints[PortP2P])
	}
	for _, nd := range added {
		enodes = append(enodes, nd.enode)
	}
	others := func(self string) []string {
		return slices.DeleteFunc(slices.Clone(enodes), func(e string) bool { return e == self })
	}

	out := &chain.Plan{ChainID: req.Plan.ChainID}
	for _, pn := range kept {
		peers := others(pn.Endpoints[PortP2P])
		cfg := nodeConfig(place.ListenHost(), pn.Spec.Ports[PortP2P], peers)
		changed := false
		if !slices.Equal(cfg, chain.FileData(pn.Spec, fileConfig)) {
			pn.Spec = chain.WithFile(pn.Spec, fileConfig, cfg)
			changed = true
		}
		if init := withPeerNames(pn.Spec.Init, peerNames(peers)); !reflect.DeepEqual(init, pn.Spec.Init) {
			pn.Spec.Init = init
			changed = true
		}
		if changed {
			pn.Revision++
		}
		out.Nodes = append(out.Nodes, pn)
	}
	planReq := chain.PlanRequest{Network: n, Host: req.Host, Placement: req.Placement, Rand: req.Rand, Now: req.Now}
	for _, nd := range added {
		pn, err := plannedNode(planReq, place, s, nd, genesisData, others(nd.enode))
		if err != nil {
			return nil, fmt.Errorf("reshape %s: %w", n.Metadata.Name, err)
		}
		pn.Joining = nd.sealer != nil
		out.Nodes = append(out.Nodes, pn)
	}
	return out, nil
}

// withPeerNames is a node's init steps with its peers step waiting for
// names: the step is replaced, added before the others when names there
// are, or dropped when there are none. steps itself is left as it was.
func withPeerNames(steps []runtime.InitStep, names []string) []runtime.InitStep {
	out := slices.DeleteFunc(slices.Clone(steps), func(st runtime.InitStep) bool { return st.Name == stepPeers })
	if len(names) == 0 {
		return out
	}
	return append([]runtime.InitStep{peersStep(names)}, out...)
}

// sealerAddress is the account a planned sealer seals with: its
// --miner.etherbase.
func sealerAddress(pn chain.PlannedNode) (common.Address, bool) {
	i := slices.Index(pn.Spec.Args, "--miner.etherbase")
	if i < 0 || i+1 >= len(pn.Spec.Args) || !common.IsHexAddress(pn.Spec.Args[i+1]) {
		return common.Address{}, false
	}
	return common.HexToAddress(pn.Spec.Args[i+1]), true
}

// Admit implements chain.Scaler: every running sealer proposes the new
// one, and Clique makes it a signer once more than half of the signers
// have voted for it, each in a block it seals. A proposal lives in a
// sealer's memory only, so it is made again at every call until the
// signer list has the new sealer.
func (d *Driver) Admit(ctx context.Context, n *apis.Network, _ *chain.Plan, pn chain.PlannedNode) (bool, error) {
	addr, ok := sealerAddress(pn)
	if !ok {
		return false, fmt.Errorf("admit %s: it has no sealer account", pn.Name)
	}
	return d.vote(ctx, n, pn.Name, addr, true)
}

// Retire implements chain.Scaler: the sealers vote the sealer out, as
// Admit votes one in; it votes too, as two sealers need both votes.
func (d *Driver) Retire(ctx context.Context, n *apis.Network, _ *chain.Plan, pn chain.PlannedNode) (bool, error) {
	addr, ok := sealerAddress(pn)
	if !ok {
		return false, fmt.Errorf("retire %s: it has no sealer account", pn.Name)
	}
	return d.vote(ctx, n, pn.Name, addr, false)
}

// vote asks every running sealer to propose authorize for addr (but the
// subject itself, not yet a signer, when authorizing), and reports whether
// the signer list already says so (then the proposals are discarded, so
// that none votes on).
func (d *Driver) vote(ctx context.Context, n *apis.Network, subject string, addr common.Address, authorize bool) (bool, error) {
	voters := 0
	var errs []error
	done := false
	asked := false
	for _, pn := range chain.ReadyNodes(n) {
		if pn.Role != apis.RoleValidator || (authorize && pn.Name == subject) {
			continue
		}
		c, err := d.rpcClient(ctx, pn)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !asked {
			var signers []common.Address
			if err := c.CallContext(ctx, &signers, "clique_getSigners", "latest"); err != nil {
				errs = append(errs, fmt.Errorf("%s: clique_getSigners: %w", pn.Name, err))
				continue
			}
			asked = true
			done = slices.Contains(signers, addr) == authorize
		}
		method, params := "clique_propose", []any{addr, authorize}
		if done {
			method, params = "clique_discard", []any{addr}
		}
		if err := c.CallContext(ctx, nil, method, params...); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", pn.Name, method, err))
			continue
		}
		voters++
	}
	if !asked {
		return false, fmt.Errorf("no running sealer of %s answers: %w", n.Metadata.Name, errors.Join(errs...))
	}
	if !done && voters == 0 {
		return false, fmt.Errorf("no sealer of %s took the proposal for %s: %w", n.Metadata.Name, addr.Hex(), errors.Join(errs...))
	}
	return done, nil
}

// ValidateScale implements chain.Scaler. Clique lets a signer seal at
// most one of any floor(N/2)+1 consecutive blocks, so the chain goes on
// only while more than half of the N signers seal; and a vote passes
// only with more than half of them. A change is refused when the
// sealers running now could not carry it: removing sealers needs a
// majority of the current ones running to vote them out and a majority of
// those left running to go on; adding them needs a majority running to
// vote them in.
func (d *Driver) ValidateScale(old, spec *apis.NetworkSpec, status *apis.NetworkStatus) apis.ErrorList {
	var errs apis.ErrorList
	oldSealers, newSealers := chain.CountRole(old, apis.RoleValidator), chain.CountRole(spec, apis.RoleValidator)
	if newSealers == oldSealers {
		return nil
	}
	running := map[string]bool{}
	for _, ns := range status.Nodes {
		if ns.Role == apis.RoleValidator && ns.Phase == apis.NodeRunning {
			running[ns.Name] = true
		}
	}
	field := "validators"
	if len(spec.Organizations) > 0 {
		field = "organizations"
	}
	if majority := oldSealers/2 + 1; len(running) < majority {
		errs.Add(field, "%d of the %d sealers run; a Clique vote needs %d: heal the network before changing its sealers", len(running), oldSealers, majority)
		return errs
	}
	if newSealers < oldSealers {
		stay := map[string]bool{}
		for _, ns := range spec.Nodes() {
			if ns.Role == apis.RoleValidator {
				stay[ns.Name] = true
			}
		}
		left := 0
		for name := range running {
			if stay[name] {
				left++
			}
		}
		if majority := newSealers/2 + 1; left < majority {
			errs.Add(field, "%d sealers would be left, %s of them running; Clique seals only while more than half of the sealers (%d) do", newSealers, strconv.Itoa(left), majority)
		}
	}
	return errs
}
