package fabric

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/grpc"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/lifecycle"
)

// catchUpChaincode brings a peer that has just joined channel ch up to
// the chaincode the channel runs, as Fabric's lifecycle has an
// organisation that joins after a chaincode was defined do: for each
// committed definition, the package a member organisation approved is
// installed on the peer (a template's from the plan, another's copied
// from a member peer, which keeps it), and the peer's organisation, when
// it has not approved the committed definition yet, approves it at the
// committed sequence with that package, one definition at a time, each
// approval seen committed before the next is sent. It reports true once
// the peer has every package and its organisation's approval of every
// definition is committed, as the peer sees it; false while the peer
// still pulls the channel's blocks. Each step is skipped when done, so a
// call after a failure picks up where it was.
//
// The approval repeats the committed definition's endorsement policy
// and private data collections byte for byte, as _lifecycle stores it (a channel policy reference or
// a signature policy alike): Fabric counts an approval only when its
// definition is the committed one exactly.
//
// The definitions are read from ref, a peer that has been a member of
// channel ch for a while.
func catchUpChaincode(ctx context.Context, n *apis.Network, plan *chain.Plan, ch string, ref, node chain.PlannedNode, a *admin) (bool, error) {
	ra, err := loadAdmin(plan, ref.Organization)
	if err != nil {
		return false, err
	}
	rs, err := signerOf(ra)
	if err != nil {
		return false, err
	}
	rconn, err := dialPeer(ref, ra)
	if err != nil {
		return false, err
	}
	defer rconn.Close()
	defs, err := lifecycle.Definitions(ctx, rconn, rs, ch)
	if err != nil {
		return false, fmt.Errorf("%s: %w", ref.Name, err)
	}
	if len(defs) == 0 {
		return true, nil
	}

	s, err := signerOf(a)
	if err != nil {
		return false, err
	}
	conn, err := dialPeer(node, a)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	var orderer *grpc.ClientConn
	defer func() {
		if orderer != nil {
			_ = orderer.Close()
		}
	}()

	done := true
	for _, def := range defs {
		approval, err := lifecycle.Approved(ctx, rconn, rs, ch, def.Name, def.Sequence)
		if err != nil {
			return false, fmt.Errorf("%s: %w", ref.Name, err)
		}
		if approval.PackageID == "" {
			// The member organisation runs no package of it either.
			continue
		}
		pkg, err := packageFor(ctx, plan, rconn, rs, approval.PackageID)
		if err != nil {
			return false, fmt.Errorf("%s: %s: %w", ref.Name, def.Name, err)
		}
		if _, err := lifecycle.Install(ctx, conn, s, pkg); err != nil {
			return false, fmt.Errorf("%s: %w", node.Name, err)
		}

		// The peer approves what it has seen committed: before that, it
		// would approve a new definition at that sequence.
		cur, err := lifecycle.Committed(ctx, conn, s, ch, def.Name)
		switch {
		case errors.Is(err, lifecycle.ErrNotCommitted):
			done = false
			continue
		case err != nil:
			return false, fmt.Errorf("%s: %w", node.Name, err)
		case cur.Sequence < def.Sequence:
			done = false
			continue
		case cur.Sequence > def.Sequence:
			// Upgraded meanwhile: the next call sees the new definition.
			done = false
			continue
		case cur.Approvals[s.MSPID]:
			continue
		}
		if orderer == nil {
			if orderer, err = dialOrderer(n, plan, a); err != nil {
				return false, err
			}
		}
		approve := lifecycle.Definition{
			Name: def.Name, Version: def.Version, Sequence: def.Sequence, PackageID: approval.PackageID,
			ValidationParameter: def.ValidationParameter, InitRequired: def.InitRequired, Collections: def.Collections,
		}
		if _, err := lifecycle.Approve(ctx, conn, orderer, s, ch, approve); err != nil {
			return false, fmt.Errorf("%s: %w", node.Name, err)
		}
		// Until it is committed the peer does not know of the approval,
		// and a call meanwhile would send it again, which the channel
		// then refuses as a conflicting write: see it committed first.
		err = poll(ctx, func() (bool, error) {
			cur, err := lifecycle.Committed(ctx, conn, s, ch, def.Name)
			return err == nil && cur.Approvals[s.MSPID], err
		})
		if err != nil {
			return false, fmt.Errorf("%s: approval of %s sequence %d for %s sent, not seen committed: %w", node.Name, def.Name, def.Sequence, s.MSPID, err)
		}
	}
	return done, nil
}

// packageFor is the chaincode package of packageID: a template's, which
// the plan keeps, or the one installed on peer.
func packageFor(ctx context.Context, plan *chain.Plan, peer grpc.ClientConnInterface, s channel.Signer, packageID string) ([]byte, error) {
	for _, b := range builtinChaincode {
		pkg := plan.Artifact(chaincodeArtifact(b.name))
		if pkg == nil {
			continue
		}
		if c, err := lifecycle.ReadPackage(pkg); err == nil && lifecycle.PackageID(c.Label, pkg) == packageID {
			return pkg, nil
		}
	}
	return lifecycle.InstalledPackageBytes(ctx, peer, s, packageID)
}

// memberPeerOf is a peer that runs and has joined the channel, of
// organisation org when it has one.
func memberPeerOf(n *apis.Network, plan *chain.Plan, org string) (chain.PlannedNode, error) {
	own := *plan
	own.Nodes = slices.DeleteFunc(slices.Clone(plan.Nodes), func(pn chain.PlannedNode) bool { return pn.Organization != org })
	if p, err := memberPeer(n, &own); err == nil {
		return p, nil
	}
	return memberPeer(n, plan)
}
