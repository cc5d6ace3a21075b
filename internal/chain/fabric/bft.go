package fabric

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

// Metrics of a BFT orderer (Fabric's orderer/consensus/smartbft), by
// channel. SmartBFT counts no nodes a leader hears from, as etcdraft's
// active nodes: the cluster service's streams stand for it.
const (
	metricBFTClusterSize = "consensus_BFT_cluster_size"
	metricBFTLeaderID    = "consensus_BFT_leader_id"
	// MetricBFTIsLeader is 1 on the BFT leader of a channel.
	MetricBFTIsLeader = "consensus_BFT_is_leader"
	// metricIngressStreams counts the streams other consenters hold to
	// the orderer (of any channel: a BFT network has one, see validateChannels). A follower has
	// one from the leader, which sends it heartbeats, as soon as the
	// leader reaches it; the leader has them once the followers send it
	// messages of their own, when they order transactions.
	metricIngressStreams = "cluster_comm_ingress_stream_count"
	// metricSent, by channel and host, counts the messages the orderer
	// has sent to another consenter.
	metricSent = "cluster_comm_msg_send_time_count"
)

// bftOrderers are the orderer counts BFT takes: n = 3f+1 for f = 0, 1, 2
// (more orderers than that tolerate no more faults until the next). A
// running network goes from one to another through the counts between,
// a consenter at a time (see validateOrdererChange).
var bftOrderers = []int{1, 4, 7}

// validateBFT checks spec.fabric of a BFT network: Fabric 3.x, and 3f+1
// orderers.
func validateBFT(f *apis.FabricSpec) apis.ErrorList {
	const p = "spec.fabric"
	var errs apis.ErrorList
	if n := f.Orderers; n != 0 && !slices.Contains(bftOrderers, n) {
		errs.Add(p+".orderers", "must be 1, 4 or 7 with consensus %s, not %d: BFT with 3f+1 orderers survives f faulty ones, and %d survive no more than %d", apis.FabricConsensusBFT, n, n, bftFaults(n))
	}
	if v := f.Version; v != "" && v[0] < '3' {
		errs.Add(p+".version", "must be 3.1 or left out with consensus %s, not %q: Fabric orders with BFT from 3.0 on", apis.FabricConsensusBFT, v)
	}
	return errs
}

// bftFaults is how many faulty orderers of n BFT tolerates: f of 3f+1.
func bftFaults(n int) int { return max((n-1)/3, 0) }

// bftReady reports whether an orderer's BFT consensus of channel ch, of
// metrics m (body parsed), has a leader in touch with the others: the
// leader has sent to a quorum of the other consenters, a follower hears
// from another consenter. The leader of a fresh channel is the first
// consenter, which all know without a message; so without that, a
// network reported Running could have a leader no one hears.
func bftReady(body, ch string, m map[string]float64) bool {
	size := int(m[metricBFTClusterSize])
	if size == 0 || m[metricBFTLeaderID] < 1 {
		return false
	}
	if m[MetricBFTIsLeader] == 1 {
		return sentTo(body, ch)+1 >= channel.BFTQuorum(size)
	}
	return m[metricIngressStreams] >= 1
}

// bftPeers are the other consenters an orderer of a BFT channel has
// streams from; for a leader of a channel that has ordered nothing yet,
// the consenters it has sent heartbeats to.
func bftPeers(body, ch string, m map[string]float64) int {
	n := int(m[metricIngressStreams])
	if n == 0 && m[MetricBFTIsLeader] == 1 {
		n = sentTo(body, ch)
	}
	return min(n, max(int(m[metricBFTClusterSize])-1, 0))
}

// bftCaughtUp reports whether new orderer node, which has joined BFT
// channel ch and follows its leader (bftReady), has the blocks a
// consenter of the channel had a moment before: a consenter that joins
// with the latest config block pulls the blocks before it, then those
// ordered since, and only then helps the quorum. Until it does, a
// cluster that grew to 3f+2 has one consenter to spare less than it
// should, so the network is not Running yet.
func (d *Driver) bftCaughtUp(ctx context.Context, n *apis.Network, plan *chain.Plan, node chain.PlannedNode, ch string) (bool, error) {
	ref, err := ordererOf(n, plan)
	if err != nil {
		return false, err
	}
	height := func(o chain.PlannedNode) (float64, error) {
		body, err := d.get(ctx, o.Endpoints[PortOperations]+"/metrics")
		if err != nil {
			return 0, fmt.Errorf("%s: %w", o.Name, err)
		}
		return ParseMetrics(body, ch)[metricHeight], nil
	}
	want, err := height(ref)
	if err != nil {
		return false, err
	}
	have, err := height(node)
	if err != nil {
		return false, err
	}
	return want > 0 && have >= want, nil
}

// isBFT reports whether the metrics are a BFT orderer's.
func isBFT(m map[string]float64) bool { return m[metricBFTClusterSize] > 0 }

// sentTo counts the hosts an orderer has sent messages of channel ch
// to, from its Prometheus text body.
func sentTo(body, ch string) int {
	n := 0
	want := `channel="` + ch + `"`
	for line := range strings.Lines(body) {
		rest, ok := strings.CutPrefix(line, metricSent+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "}")
		if !ok || !strings.Contains(labels, want) || !strings.Contains(labels, `host="`) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil && v > 0 {
			n++
		}
	}
	return n
}
