package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/auth"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/store"
)

// explorerNetwork loads the network in the path, checks action on it,
// and names the ledger the explorer reads for the request: the one every
// organisation of the network shares, or with ?channel=NAME one of
// spec.fabric.channels. A channel is read only by a caller who may act
// for one of its member organisations, as the gateway signs its queries
// (signsFor): any for a platform administrator. Its members are those of
// the network's plan, whose change of them is done, as the gateway's and
// the index's are. It returns the store's key of that ledger and the
// channel named, "" for the shared one.
func (a *API) explorerNetwork(w http.ResponseWriter, r *http.Request, action auth.Action) (*apis.Network, string, string, bool) {
	n, ok := a.ledgerNetwork(w, r, action)
	if !ok {
		return nil, "", "", false
	}
	ch := r.URL.Query().Get("channel")
	if ch == "" || n.Spec.Chain == apis.ChainFabric && ch == fabric.ChannelName(n.Metadata.Name, n.Spec.Fabric) {
		return n, n.Metadata.UID, "", true
	}
	if specChannel(n, ch) < 0 {
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: noChannel(n, ch)})
		return nil, "", "", false
	}
	plan, err := a.gatewayPlan(r.Context(), n)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict,
			Detail: fmt.Sprintf("network %s is not planned yet: its channel %s has no blocks to show", n.Metadata.Name, ch)})
		return nil, "", "", false
	} else if err != nil {
		a.storeError(w, r, err)
		return nil, "", "", false
	}
	members, err := fabric.ChannelMembers(plan, ch)
	if err != nil {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: fmt.Sprintf("network %s: %v", n.Metadata.Name, err)})
		return nil, "", "", false
	}
	if !slices.ContainsFunc(members, signsFor(principalFrom(r.Context()), n)) {
		writeProblem(w, r, Problem{Type: ProblemForbidden, Status: http.StatusForbidden,
			Detail: fmt.Sprintf("the caller belongs to no member organisation of channel %s of network %s (its members: %s)", ch, n.Metadata.Name, strings.Join(members, ", "))})
		return nil, "", "", false
	}
	return n, store.LedgerKey(n.Metadata.UID, ch), ch, true
}

// specChannel is the index of channel ch in n's spec.fabric.channels, -1
// when it has none of that name.
func specChannel(n *apis.Network, ch string) int {
	if n.Spec.Chain != apis.ChainFabric || n.Spec.Fabric == nil {
		return -1
	}
	return slices.IndexFunc(n.Spec.Fabric.Channels, func(c apis.FabricChannel) bool { return c.Name == ch })
}

// noChannel says that network n has no channel ch, and which it has.
func noChannel(n *apis.Network, ch string) string {
	if n.Spec.Chain != apis.ChainFabric {
		return fmt.Sprintf("network %s has no channel %q: it is a %s network, which has no channels", n.Metadata.Name, ch, n.Spec.Chain)
	}
	names := []string{fabric.ChannelName(n.Metadata.Name, n.Spec.Fabric)}
	if n.Spec.Fabric != nil {
		for _, c := range n.Spec.Fabric.Channels {
			names = append(names, c.Name)
		}
	}
	return fmt.Sprintf("network %s has no channel %q (its channels: %s)", n.Metadata.Name, ch, strings.Join(names, ", "))
}

// channelHeight is the height of channel ch of network n on a running
// peer of one of its members: the status of its index compares with it,
// as the network's status holds the shared channel's height only.
func (a *API) channelHeight(ctx context.Context, n *apis.Network, ch string) (int64, error) {
	d, err := chain.Get(n.Spec.Chain)
	if err != nil {
		return 0, err
	}
	cl, ok := d.(chain.ChannelLedgers)
	if !ok {
		return 0, fmt.Errorf("chain %s has no channels", n.Spec.Chain)
	}
	plan, err := a.gatewayPlan(ctx, n)
	if err != nil {
		return 0, err
	}
	members, err := fabric.ChannelMembers(plan, ch)
	if err != nil {
		return 0, err
	}
	l, err := cl.ChannelLedger(plan, ch)
	if err != nil {
		return 0, err
	}
	err = fmt.Errorf("no peer of a member of channel %s (%s) is running", ch, strings.Join(members, ", "))
	for _, node := range chain.ReadyNodes(n) {
		if node.Role != apis.RoleFull || !slices.Contains(members, node.Organization) {
			continue
		}
		h, herr := l.LatestHeight(ctx, node)
		if herr == nil {
			return h, nil
		}
		err = herr
	}
	return 0, err
}
