package fabric

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
)

// Metrics the probe reads from a node's operations endpoint.
const (
	metricHeight = "ledger_blockchain_height"
	// Peers of a peer: the members of the channel it knows by gossip.
	metricPeerMembers = "gossip_membership_total_peers_known"
	// Peers of an orderer: the other consenters Raft hears from, as the
	// leader counts them, of the channel's cluster size.
	metricActiveNodes = "consensus_etcdraft_active_nodes"
	metricClusterSize = "consensus_etcdraft_cluster_size"
	// MetricIsLeader is 1 on the Raft leader of a channel.
	MetricIsLeader = "consensus_etcdraft_is_leader"
)

// Probe implements chain.Driver: a node is healthy when its operations
// endpoint says so, and its height is its channel's. A node that has
// joined but holds no block of the channel yet (its ledger not open, or
// a restarted orderer still fetching) is catching up.
//
// An orderer's Raft is not looked at here: after a leader change the
// followers learn who is active only seconds after the new leader leads,
// and a node reported catching up all that while would make every
// election look like an outage. Bootstrap waits for the Raft instead.
func (d *Driver) Probe(ctx context.Context, node chain.PlannedNode) (chain.NodeInfo, error) {
	if node.Role == apis.RoleChaincode {
		return probeChaincode(ctx, node)
	}
	base := node.Endpoints[PortOperations]
	if base == "" {
		return chain.NodeInfo{}, fmt.Errorf("probe %s: no operations endpoint", node.Name)
	}
	if _, err := d.get(ctx, base+"/healthz"); err != nil {
		return chain.NodeInfo{}, fmt.Errorf("probe %s: %w", node.Name, err)
	}
	body, err := d.get(ctx, base+"/metrics")
	if err != nil {
		return chain.NodeInfo{}, fmt.Errorf("probe %s: %w", node.Name, err)
	}
	ch := channelOf(node.Spec)
	m := ParseMetrics(body, ch)
	info := chain.NodeInfo{Height: int64(m[metricHeight])}
	info.CatchingUp = !node.Joining && info.Height < 1
	if node.Role != apis.RoleValidator {
		info.Peers = int(m[metricPeerMembers])
		return info, nil
	}
	info.Peers = max(int(m[metricActiveNodes])-1, 0)
	if isBFT(m) {
		info.Peers = bftPeers(body, ch, m)
	}
	return info, nil
}

func (d *Driver) get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return "", fmt.Errorf("%s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// ParseMetrics reads the samples of Prometheus text exposition body that
// carry label channel="ch", by metric name. Samples without a channel
// label are read too, unless a channel's sample of the name is there.
func ParseMetrics(body, ch string) map[string]float64 {
	out := map[string]float64{}
	onChannel := map[string]bool{}
	want := `channel="` + ch + `"`
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		labels := ""
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			labels, rest = rest[1:end], rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		switch {
		case ch != "" && strings.Contains(labels, want):
			out[name], onChannel[name] = v, true
		case !strings.Contains(labels, `channel="`) && !onChannel[name]:
			out[name] = v
		}
	}
	return out
}

// raftReady reports whether an orderer's Raft of channel ch has a leader
// that hears from a majority of the consenters: whether it can order. Of
// a BFT channel, whether bftReady.
func (d *Driver) raftReady(ctx context.Context, node chain.PlannedNode, ch string) (bool, error) {
	body, err := d.get(ctx, node.Endpoints[PortOperations]+"/metrics")
	if err != nil {
		return false, err
	}
	m := ParseMetrics(body, ch)
	if isBFT(m) {
		return bftReady(body, ch, m), nil
	}
	active, size := int(m[metricActiveNodes]), int(m[metricClusterSize])
	return size > 0 && active >= size/2+1, nil
}
