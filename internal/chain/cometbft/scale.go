package cometbft

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

var _ chain.Scaler = (*Driver)(nil)

// Reshape implements chain.Scaler. A new node gets its keys, the genesis as
// it is and every other node as a persistent peer; it dials them, so the
// nodes that stay need no change for it. A new validator starts as a full
// node and joins consensus by a validator-set update (Admit). Nodes that
// listed a removed node as a peer get a config without it and restart
// with it, one at a time.
func (d *Driver) Reshape(_ context.Context, req chain.ReshapeRequest) (*chain.Plan, error) {
	n := req.Network
	var genesisJSON []byte
	var kept, removed []chain.PlannedNode
	for _, pn := range req.Plan.Nodes {
		if genesisJSON == nil {
			genesisJSON = chain.FileData(pn.Spec, fileGenesis)
		}
		if slices.Contains(req.Remove, pn.Name) {
			removed = append(removed, pn)
		} else {
			kept = append(kept, pn)
		}
	}
	if genesisJSON == nil {
		return nil, fmt.Errorf("reshape %s: the plan has no genesis", n.Metadata.Name)
	}
	place := chain.PlacementOf(req.Placement, req.Host)
	added := make([]nodeKeys, len(req.Add))
	for i, ns := range req.Add {
		if slices.ContainsFunc(kept, func(pn chain.PlannedNode) bool { return pn.Name == ns.Name }) {
			return nil, fmt.Errorf("reshape %s: node %s is already planned", n.Metadata.Name, ns.Name)
		}
		k, err := newKeys(req.Rand, &n.Spec, ns, req.Ports[ns.Name], place.NodeHost(ns.Name))
		if err != nil {
			return nil, fmt.Errorf("reshape %s: %w", n.Metadata.Name, err)
		}
		added[i] = k
	}

	out := &chain.Plan{ChainID: req.Plan.ChainID}
	var gone []string
	for _, pn := range removed {
		gone = append(gone, peerAddress(pn))
	}
	for _, pn := range kept {
		cfg := chain.FileData(pn.Spec, fileConfig)
		if peers := persistentPeers(cfg); slices.ContainsFunc(peers, func(p string) bool { return slices.Contains(gone, p) }) {
			peers = slices.DeleteFunc(peers, func(p string) bool { return slices.Contains(gone, p) })
			pn.Spec = chain.WithFile(pn.Spec, fileConfig, withPersistentPeers(cfg, peers))
			pn.Revision++
		}
		out.Nodes = append(out.Nodes, pn)
	}
	var all []string
	for _, pn := range kept {
		all = append(all, peerAddress(pn))
	}
	for _, k := range added {
		all = append(all, k.peersAddr)
	}
	for _, k := range added {
		peers := slices.DeleteFunc(slices.Clone(all), func(p string) bool { return p == k.peersAddr })
		pn, err := plannedNode(n, place, k, genesisJSON, peers)
		if err != nil {
			return nil, fmt.Errorf("reshape %s: %w", n.Metadata.Name, err)
		}
		pn.Joining = k.node.Role == apis.RoleValidator
		out.Nodes = append(out.Nodes, pn)
	}
	return out, nil
}

// peerAddress is a planned node's ID@host:port, as persistent peers name it.
func peerAddress(pn chain.PlannedNode) string {
	return strings.TrimPrefix(pn.Endpoints[PortP2P], "tcp://")
}

var persistentPeersLine = regexp.MustCompile(`(?m)^persistent_peers = "([^"]*)"$`)

// persistentPeers reads the persistent peers of a config.toml.
func persistentPeers(cfg []byte) []string {
	m := persistentPeersLine.FindSubmatch(cfg)
	if m == nil || len(m[1]) == 0 {
		return nil
	}
	return strings.Split(string(m[1]), ",")
}

// withPersistentPeers is cfg with its persistent peers set to peers.
func withPersistentPeers(cfg []byte, peers []string) []byte {
	return persistentPeersLine.ReplaceAllLiteral(cfg, []byte(`persistent_peers = "`+strings.Join(peers, ",")+`"`))
}

// validatorKey reads a planned node's validator key.
func validatorKey(pn chain.PlannedNode) (privval.FilePVKey, error) {
	var k privval.FilePVKey
	data := chain.FileData(pn.Spec, filePrivValidator)
	if data == nil {
		return k, fmt.Errorf("node %s has no validator key", pn.Name)
	}
	if err := cmtjson.Unmarshal(data, &k); err != nil {
		return k, fmt.Errorf("validator key of %s: %w", pn.Name, err)
	}
	return k, nil
}

// valSetTx is the kvstore application's transaction that sets a
// validator's voting power (0 takes it out).
func valSetTx(k privval.FilePVKey, power int64) []byte {
	return fmt.Appendf(nil, "val=%s!%s!%d", k.PubKey.Type(), base64.StdEncoding.EncodeToString(k.PubKey.Bytes()), power)
}

// Admit implements chain.Scaler: a validator-set update gives the new
// validator its voting power, once it runs (it has synced as a full node).
func (d *Driver) Admit(ctx context.Context, n *apis.Network, _ *chain.Plan, pn chain.PlannedNode) (bool, error) {
	return d.setPower(ctx, n, pn, validatorPower)
}

// Retire implements chain.Scaler: a validator-set update takes the
// validator's voting power away; it is removed once it has none.
func (d *Driver) Retire(ctx context.Context, n *apis.Network, _ *chain.Plan, pn chain.PlannedNode) (bool, error) {
	return d.setPower(ctx, n, pn, 0)
}

// setPower reports whether pn's validator has power in the newest
// validator set, and when it has not yet, submits the update to a running
// validator other than pn. The update is submitted again at every call
// until it shows: a node's mempool may lose it.
func (d *Driver) setPower(ctx context.Context, n *apis.Network, pn chain.PlannedNode, power int64) (bool, error) {
	if app(&n.Spec) != AppKVStore {
		return false, fmt.Errorf("%s: the %s application takes no validator-set updates", n.Metadata.Name, app(&n.Spec))
	}
	k, err := validatorKey(pn)
	if err != nil {
		return false, err
	}
	var errs []error
	for _, node := range chain.ReadyNodes(n) {
		if node.Role != apis.RoleValidator || node.Name == pn.Name {
			continue
		}
		c, err := d.rpc(node)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		perPage := 100
		vals, err := c.Validators(ctx, nil, nil, &perPage)
		if err != nil {
			errs = append(errs, fmt.Errorf("validators from %s: %w", node.Name, err))
			continue
		}
		has := false
		for _, v := range vals.Validators {
			has = has || bytes.Equal(v.Address, k.Address) && v.VotingPower == power
		}
		if power == 0 {
			has = !slices.ContainsFunc(vals.Validators, func(v *types.Validator) bool { return bytes.Equal(v.Address, k.Address) })
		}
		if has {
			return true, nil
		}
		res, err := c.BroadcastTxSync(ctx, valSetTx(k, power))
		if err != nil && !strings.Contains(err.Error(), "tx already exists in cache") {
			errs = append(errs, fmt.Errorf("validator-set update through %s: %w", node.Name, err))
			continue
		}
		if err == nil && res.Code != 0 {
			return false, fmt.Errorf("%s refused the validator-set update of %s: code %d: %s", node.Name, pn.Name, res.Code, res.Log)
		}
		return false, nil
	}
	return false, fmt.Errorf("no running validator of %s answers: %w", n.Metadata.Name, errors.Join(errs...))
}

// ValidateScale implements chain.Scaler. CometBFT commits a block while
// validators holding more than two thirds of the voting power sign it;
// all validators here hold the same power. A validator-set change is
// itself a transaction, so more than two thirds of the validators must
// run now; after it, more than two thirds of the new set must run.
// Validator changes need the kvstore application: ChainDock's own takes
// no validator-set updates. Full nodes may come and go on any.
func (d *Driver) ValidateScale(old, spec *apis.NetworkSpec, status *apis.NetworkStatus) apis.ErrorList {
	var errs apis.ErrorList
	oldVals, newVals := chain.CountRole(old, apis.RoleValidator), chain.CountRole(spec, apis.RoleValidator)
	if newVals == oldVals {
		return nil
	}
	field := "validators"
	if len(spec.Organizations) > 0 {
		field = "organizations"
	}
	if app(spec) != AppKVStore {
		errs.Add(field, "the %s application takes no validator-set updates, so its validators cannot change on a running network; add or remove full nodes", app(spec))
		return errs
	}
	running := map[string]bool{}
	for _, ns := range status.Nodes {
		if ns.Role == apis.RoleValidator && ns.Phase == apis.NodeRunning && !ns.Joining {
			running[ns.Name] = true
		}
	}
	if len(running)*3 <= 2*oldVals {
		errs.Add(field, "%d of the %d validators run; a validator-set update needs more than two thirds: heal the network before changing its validators", len(running), oldVals)
		return errs
	}
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
	// New validators run (they have synced) before they get power.
	if after := left + max(0, newVals-oldVals); after*3 <= 2*newVals {
		errs.Add(field, "%d validators would be left, %d of them running; CometBFT commits only while more than two thirds of them sign", newVals, after)
	}
	return errs
}
