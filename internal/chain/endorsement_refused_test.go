package chain_test

import (
	"errors"
	"testing"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	_ "github.com/chaindock/chaindock/internal/chain/cometbft"
	_ "github.com/chaindock/chaindock/internal/chain/ethereum"
)

// Chains whose contracts have no endorsement policy refuse one, and
// chains of one chain a channel, naming the field, before they touch the
// network.
func TestEndorsementPolicyRefused(t *testing.T) {
	for _, name := range []string{"cometbft", "ethereum"} {
		t.Run(name, func(t *testing.T) {
			d, err := chain.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			c, ok := d.(chain.Contracts)
			if !ok {
				t.Fatalf("the %s driver deploys no contracts", name)
			}
			n := &apis.Network{Metadata: apis.ObjectMeta{Name: "net"}, Spec: apis.NetworkSpec{Chain: name}}
			pkg := &apis.Package{Owner: "acme", Name: "p", Version: "1.0.0", Chain: name}
			_, err = c.DeployContract(t.Context(), n, chain.DeployRequest{Name: "c", Package: pkg, EndorsementPolicy: "ANY"})
			var errs apis.ErrorList
			if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Field != "endorsementPolicy" {
				t.Fatalf("deploy with an endorsement policy: %v; want one problem naming endorsementPolicy", err)
			}
			t.Log(err)
			// Nor have they channels.
			_, err = c.DeployContract(t.Context(), n, chain.DeployRequest{Name: "c", Package: pkg, Channel: "pair"})
			if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Field != "channel" {
				t.Fatalf("deploy on a channel: %v; want one problem naming channel", err)
			}
		})
	}
}
