package fabric

import (
	"context"
	"fmt"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

// Every change of a running channel (anchor peers, organisations,
// consenters, revocations) is a config update made against the
// configuration a member peer has, signed as the channel's policy needs,
// sent to an orderer, and done once that peer has the block it is in.

// orderUpdate sends env, a config update of channel ch signed as its
// policy needs, to an orderer of the network as submitter, and waits
// until reader's configuration of ch satisfies done.
func orderUpdate(ctx context.Context, n *apis.Network, plan *chain.Plan, ch string, submitter *admin, env *cb.Envelope, reader chain.PlannedNode, done func(*cb.Config) (bool, error)) error {
	if err := broadcastTo(ctx, n, plan, submitter, env); err != nil {
		return err
	}
	err := poll(ctx, func() (bool, error) {
		cfg, err := channelConfig(ctx, plan, ch, reader)
		if err != nil {
			return false, err
		}
		return done(cfg)
	})
	if err != nil {
		return fmt.Errorf("the update was ordered, but %s never had it: %w", reader.Name, err)
	}
	return nil
}

// signAsAdmin signs u as organisation admin a.
func signAsAdmin(u *channel.Update, a *admin) (*cb.Envelope, error) {
	s, err := signerOf(a)
	if err != nil {
		return nil, err
	}
	return u.Sign(s)
}
