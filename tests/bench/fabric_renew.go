package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// benchFabricRenewal renews every certificate of running network name
// (2 organisations x 2 peers, 3 Raft orderers): the seconds until none
// is due and every node renewed has restarted and runs, then until a
// notarisation commits again.
func benchFabricRenewal(ctx context.Context, c *client.Client, name string) error {
	base := "/api/v1/networks/" + name
	restarts := func() (int, error) {
		var ev struct {
			Items []apis.Event `json:"items"`
		}
		if err := c.Do(ctx, http.MethodGet, base+"/events?limit=5000", nil, "", &ev); err != nil {
			return 0, err
		}
		n := 0
		for _, e := range ev.Items {
			if e.Reason == "NodeReconfigured" {
				n++
			}
		}
		return n, nil
	}
	before, err := restarts()
	if err != nil {
		return err
	}
	// Whole seconds: a certificate issued in the second asked for counts
	// as issued after it.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	start := time.Now()
	if _, err := c.RenewCertificates(ctx, name, time.Time{}); err != nil {
		return err
	}
	const nodes = 7 // 4 peers and 3 orderers; not the chaincode host
	err = framework.Poll(ctx, 5*time.Minute, 50*time.Millisecond, func() (bool, string) {
		certs, err := c.Certificates(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		for _, ct := range certs.Items {
			if ct.Due != "" {
				return false, ct.Owner + " " + ct.Kind + " due: " + ct.Due
			}
		}
		r, err := restarts()
		if err != nil {
			return false, err.Error()
		}
		n, err := c.GetNetwork(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		for _, s := range n.Status.Nodes {
			if s.Phase != apis.NodeRunning {
				return false, s.Name + " " + s.Phase
			}
		}
		return r-before >= nodes && n.Status.Phase == apis.PhaseRunning, fmt.Sprintf("%d of %d nodes restarted; %s", r-before, nodes, framework.Describe(n))
	})
	if err != nil {
		return fmt.Errorf("renew the certificates of %s: %w", name, err)
	}
	renewed := round(time.Since(start).Seconds())
	start = time.Now()
	err = framework.Poll(ctx, 2*time.Minute, 200*time.Millisecond, func() (bool, string) {
		doc := sha256.Sum256([]byte("after renewal " + time.Now().String()))
		if err := notariseFabric(ctx, c, base, hex.EncodeToString(doc[:])); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if err != nil {
		return fmt.Errorf("notarise on %s after the renewal: %w", name, err)
	}
	emit(figure{Metric: "fabric_cert_renewal_s", Value: renewed, Unit: "s",
		Note: "POST .../certificates/renew on 2 organisations x 2 peers and 3 Raft orderers until no certificate is due and the 7 nodes have restarted with theirs, one at a time, and run (the orderers' new TLS certificates rotated into the channel first)"})
	emit(figure{Metric: "fabric_cert_renewal_endorse_s", Value: round(time.Since(start).Seconds()), Unit: "s",
		Note: "then until a notarisation, endorsed by both organisations, commits: the other peers learn the renewed peers' new gossip identities"})
	return nil
}
