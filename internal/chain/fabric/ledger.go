package fabric

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

var (
	_ chain.PlanLedger     = (*Driver)(nil)
	_ chain.ChannelLedgers = (*Driver)(nil)
)

// ledgerTimeout bounds one call to a peer.
const ledgerTimeout = 10 * time.Second

// LedgerWith implements chain.PlanLedger: the channel's blocks, read
// from a peer through its query system chaincode (QSCC) with proposals
// signed by the admin of the peer's organisation, whose keys the plan
// keeps. Heights are block numbers plus one (see Height).
func (d *Driver) LedgerWith(plan *chain.Plan) chain.Ledger {
	return &ledger{plan: plan, conns: d.conns}
}

// Channels implements chain.ChannelLedgers: the channels of
// spec.fabric.channels that the plan made, in its order.
// A channel still being made is among them: until its peers have joined
// it, reading it fails, and the index catches up once they have.
func (d *Driver) Channels(plan *chain.Plan) []string { return planChannelNames(plan) }

// ChannelLedger implements chain.ChannelLedgers: the ledger of channel ch,
// read as LedgerWith's is from a peer of one of its members, signed by
// that member's admin. It reads blocks (LatestHeight, Blocks); calls go
// through LedgerWith's, which knows every channel.
func (d *Driver) ChannelLedger(plan *chain.Plan, ch string) (chain.Ledger, error) {
	members, err := channelMembers(plan, ch)
	if err != nil {
		return nil, err
	}
	sub := *plan
	sub.ChainID = ch
	return &ledger{plan: &sub, members: members, conns: d.conns}, nil
}

// ChannelMembers are the member organisations of channel ch of
// spec.fabric.channels as plan has them: once a change of its members
// is done, not when it is asked for.
// A channel still being made has none yet.
func ChannelMembers(plan *chain.Plan, ch string) ([]string, error) {
	if err := channelMade(plan, ch); err != nil {
		return nil, err
	}
	return channelMembers(plan, ch)
}

// channelMembers is ChannelMembers of a channel made or being made.
func channelMembers(plan *chain.Plan, ch string) ([]string, error) {
	if ch == "" || ch == plan.ChainID {
		return nil, fmt.Errorf("the plan has no channel %q besides %s", ch, plan.ChainID)
	}
	c, ok := planChannel(plan, ch)
	if !ok {
		return nil, fmt.Errorf("the plan has no channel %q besides %s", ch, plan.ChainID)
	}
	if len(c.orgs) == 0 {
		return nil, fmt.Errorf("channel %s: the plan names no member organisation with peers", ch)
	}
	return c.orgs, nil
}

// ledger reads a network's channel from its peers.
type ledger struct {
	plan *chain.Plan
	// members, when set, are the only organisations whose peers have
	// joined the channel (one of spec.fabric.channels).
	members []string
	// conns, when set, keeps the connections to the peers between calls.
	conns *conns
}

var _ chain.Ledger = (*ledger)(nil)

// peer is a connection to a peer of the network and the admin of its
// organisation, who signs what the ledger asks it.
type peer struct {
	name    string
	conn    *grpc.ClientConn
	a       *admin
	release func()
}

// close gives the connection back, or closes it when it is not pooled.
func (p *peer) close() { p.release() }

// dial connects to node, a peer, as its organisation's admin.
func (l *ledger) dial(node chain.PlannedNode) (*peer, error) {
	if node.Role != apis.RoleFull {
		return nil, fmt.Errorf("%s is no peer (%s): a channel is read and called through its peers", node.Name, node.Role)
	}
	if l.plan == nil || l.plan.ChainID == "" {
		return nil, fmt.Errorf("%s: no plan to read the channel with", node.Name)
	}
	if l.members != nil && !slices.Contains(l.members, node.Organization) {
		return nil, fmt.Errorf("%s: organisation %s is no member of channel %s (its members: %s)", node.Name, node.Organization, l.plan.ChainID, strings.Join(l.members, ", "))
	}
	a, err := loadAdmin(l.plan, node.Organization)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", node.Name, err)
	}
	if l.conns != nil {
		conn, release, err := l.conns.get(node, a)
		if err != nil {
			return nil, err
		}
		return &peer{name: node.Name, conn: conn, a: a, release: release}, nil
	}
	conn, err := dialPeer(node, a)
	if err != nil {
		return nil, err
	}
	return &peer{name: node.Name, conn: conn, a: a, release: func() { _ = conn.Close() }}, nil
}

// qscc calls fn of the peer's QSCC with the channel's name as the first
// argument, and returns the answer's payload.
func (l *ledger) qscc(ctx context.Context, p *peer, fn string, args ...string) ([]byte, error) {
	return l.qsccOn(ctx, p, l.plan.ChainID, fn, args...)
}

// qsccOn is qscc on channel ch.
func (l *ledger) qsccOn(ctx context.Context, p *peer, ch, fn string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, ledgerTimeout)
	defer cancel()
	in := [][]byte{[]byte(ch)}
	for _, s := range args {
		in = append(in, []byte(s))
	}
	resp, err := invoke(ctx, pb.NewEndorserClient(p.conn), p.a, "qscc", fn, in...)
	if err != nil {
		return nil, err
	}
	return resp.GetResponse().GetPayload(), nil
}

// LatestHeight implements chain.Ledger: the channel's height on the peer
// (QSCC GetChainInfo), the count of its blocks, which is the explorer
// height of the newest one.
func (l *ledger) LatestHeight(ctx context.Context, node chain.PlannedNode) (int64, error) {
	p, err := l.dial(node)
	if err != nil {
		return 0, err
	}
	defer p.close()
	b, err := l.qscc(ctx, p, "GetChainInfo")
	if err != nil {
		return 0, fmt.Errorf("height of channel %s on %s: %w", l.plan.ChainID, node.Name, err)
	}
	var info cb.BlockchainInfo
	if err := proto.Unmarshal(b, &info); err != nil {
		return 0, fmt.Errorf("height of channel %s on %s: %w", l.plan.ChainID, node.Name, err)
	}
	if info.GetHeight() > math.MaxInt64 {
		return 0, fmt.Errorf("height of channel %s on %s: implausible %d", l.plan.ChainID, node.Name, info.GetHeight())
	}
	return int64(info.GetHeight()), nil //nolint:gosec // checked above
}

// Blocks implements chain.Ledger: the blocks at explorer heights
// from..to, numbers from-1..to-1, each from QSCC GetBlockByNumber.
func (l *ledger) Blocks(ctx context.Context, node chain.PlannedNode, from, to int64) ([]chain.Block, error) {
	if from < 1 || to < from {
		return nil, fmt.Errorf("blocks %d..%d: heights start at 1", from, to)
	}
	p, err := l.dial(node)
	if err != nil {
		return nil, err
	}
	defer p.close()
	out := make([]chain.Block, 0, to-from+1)
	for h := from; h <= to; h++ {
		num := BlockNumber(h)
		b, err := l.qscc(ctx, p, "GetBlockByNumber", strconv.FormatUint(num, 10))
		if err != nil {
			return nil, fmt.Errorf("block %d of channel %s on %s: %w", num, l.plan.ChainID, node.Name, err)
		}
		blk, err := decodeBlock(b)
		if err != nil {
			return nil, fmt.Errorf("block %d of channel %s on %s: %w", num, l.plan.ChainID, node.Name, err)
		}
		if blk.Height != h {
			return nil, fmt.Errorf("block %d of channel %s on %s: the peer answered block %d", num, l.plan.ChainID, node.Name, BlockNumber(blk.Height))
		}
		out = append(out, blk)
	}
	return out, nil
}

func decodeBlock(b []byte) (chain.Block, error) {
	var blk cb.Block
	if err := proto.Unmarshal(b, &blk); err != nil {
		return chain.Block{}, err
	}
	return toBlock(&blk)
}

var txIDRE = regexp.MustCompile(`^[0-9A-Fa-f]{64}$`)

// Tx implements chain.Ledger: the transaction with ID hash, from the
// block QSCC GetBlockByTxID finds it in, so that it has its height, index
// and validation code.
func (l *ledger) Tx(ctx context.Context, node chain.PlannedNode, hash string) (*chain.Tx, error) {
	if !txIDRE.MatchString(hash) {
		return nil, chain.ErrTxNotFound
	}
	t, err := l.txOn(ctx, node, l.plan.ChainID, hash)
	if !errors.Is(err, chain.ErrTxNotFound) {
		return t, err
	}
	// A call of chaincode on another channel: asked of a peer of it. A
	// channel whose peer does not answer is passed over: the
	// transaction is looked for again on the gateway's next look.
	for _, name := range planChannelNames(l.plan) {
		c, ok := planChannel(l.plan, name)
		if !ok {
			continue
		}
		on, ok := peerOn(l.plan, c, node, node.Organization)
		if !ok {
			continue
		}
		if t, err := l.txOn(ctx, on, name, hash); err == nil {
			t.Channel = name
			return t, nil
		}
	}
	return nil, chain.ErrTxNotFound
}

// txOn is Tx on channel ch.
func (l *ledger) txOn(ctx context.Context, node chain.PlannedNode, ch, hash string) (*chain.Tx, error) {
	p, err := l.dial(node)
	if err != nil {
		return nil, err
	}
	defer p.close()
	b, err := l.qsccOn(ctx, p, ch, "GetBlockByTxID", strings.ToLower(hash))
	var refused *statusError
	switch {
	case errors.As(err, &refused) && txNotFound(refused.message):
		return nil, chain.ErrTxNotFound
	case err != nil:
		return nil, fmt.Errorf("transaction %s on %s: %w", hash, node.Name, err)
	}
	blk, err := decodeBlock(b)
	if err != nil {
		return nil, fmt.Errorf("transaction %s on %s: %w", hash, node.Name, err)
	}
	for _, t := range blk.Txs {
		if strings.EqualFold(t.Hash, hash) {
			return &t, nil
		}
	}
	return nil, chain.ErrTxNotFound
}

// txNotFound reports whether a peer's refusal of GetBlockByTxID says it
// has no such transaction: its block index's "no such transaction ID
// [...] in index", or "Entry not found in index" in older peers.
func txNotFound(msg string) bool {
	return strings.Contains(msg, "no such transaction ID") || strings.Contains(msg, "not found in index")
}
