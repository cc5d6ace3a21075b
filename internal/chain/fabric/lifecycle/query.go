package lifecycle

import (
	"context"
	"fmt"

	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	lb "github.com/hyperledger/fabric-protos-go-apiv2/peer/lifecycle"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

// Definitions lists the chaincode definitions channelID runs, as peer
// sees them (_lifecycle QueryChaincodeDefinitions). Their Approvals are
// not filled in: Committed reads them for one name.
func Definitions(ctx context.Context, peer grpc.ClientConnInterface, admin channel.Signer, channelID string) ([]CommittedDefinition, error) {
	fail := func(err error) ([]CommittedDefinition, error) {
		return nil, fmt.Errorf("channel %s: query chaincode definitions: %w", channelID, err)
	}
	id, err := newIdentity(admin)
	if err != nil {
		return fail(err)
	}
	p, err := newProposal(id, channelID, fnQueryDefinitions, &lb.QueryChaincodeDefinitionsArgs{})
	if err != nil {
		return fail(err)
	}
	var res lb.QueryChaincodeDefinitionsResult
	if err := p.query(ctx, peer, &res); err != nil {
		return fail(err)
	}
	var out []CommittedDefinition
	for _, d := range res.GetChaincodeDefinitions() {
		c := CommittedDefinition{
			Name:                d.GetName(),
			Version:             d.GetVersion(),
			Sequence:            d.GetSequence(),
			EndorsementPlugin:   d.GetEndorsementPlugin(),
			ValidationPlugin:    d.GetValidationPlugin(),
			ValidationParameter: d.GetValidationParameter(),
			InitRequired:        d.GetInitRequired(),
			Collections:         d.GetCollections(),
		}
		var ap pb.ApplicationPolicy
		if proto.Unmarshal(d.GetValidationParameter(), &ap) == nil {
			c.EndorsementPolicy = ap.GetChannelConfigPolicyReference()
		}
		out = append(out, c)
	}
	return out, nil
}

// Approved returns the definition of name at sequence that the
// organisation of peer approved, with the package it chose; the admin
// must be of that organisation, whose approvals peer alone keeps.
func Approved(ctx context.Context, peer grpc.ClientConnInterface, admin channel.Signer, channelID, name string, sequence int64) (Definition, error) {
	id, err := newIdentity(admin)
	if err != nil {
		return Definition{}, fmt.Errorf("channel %s: query approval of %s sequence %d: %w", channelID, name, sequence, err)
	}
	res, err := approved(ctx, peer, id, channelID, name, sequence)
	if err != nil {
		return Definition{}, fmt.Errorf("channel %s: query %s's approval of %s sequence %d: %w", channelID, admin.MSPID, name, sequence, err)
	}
	def := Definition{
		Name:         name,
		Version:      res.GetVersion(),
		Sequence:     res.GetSequence(),
		PackageID:    res.GetSource().GetLocalPackage().GetPackageId(),
		InitRequired: res.GetInitRequired(),
		Collections:  res.GetCollections(),
	}
	var ap pb.ApplicationPolicy
	if proto.Unmarshal(res.GetValidationParameter(), &ap) == nil {
		def.EndorsementPolicy = ap.GetChannelConfigPolicyReference()
	}
	return def, nil
}

// InstalledPackageBytes returns the bytes of a package installed on peer
// (_lifecycle GetInstalledChaincodePackage), to install the same on
// another. The admin must be an admin of the peer's organisation.
func InstalledPackageBytes(ctx context.Context, peer grpc.ClientConnInterface, admin channel.Signer, packageID string) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("get installed package %s: %w", packageID, err)
	}
	id, err := newIdentity(admin)
	if err != nil {
		return fail(err)
	}
	p, err := newProposal(id, "", fnGetInstalledPackage, &lb.GetInstalledChaincodePackageArgs{PackageId: packageID})
	if err != nil {
		return fail(err)
	}
	var res lb.GetInstalledChaincodePackageResult
	if err := p.query(ctx, peer, &res); err != nil {
		return fail(err)
	}
	return res.GetChaincodeInstallPackage(), nil
}
