package lifecycle

import (
	"errors"
	"fmt"
	"regexp"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
)

// Collection is a private data collection of a chaincode definition, as
// Fabric's StaticCollectionConfig has it.
type Collection struct {
	Name string
	// MemberPolicy is the signature policy expression of the
	// organisations that keep the collection's data: principals joined
	// by OR only, such as OR('Org1MSP.member', 'Org2MSP.member').
	MemberPolicy string
	// RequiredPeerCount is how many other peers an endorsing peer must
	// hand the data to before it endorses; MaximumPeerCount how many it
	// tries.
	RequiredPeerCount int32
	MaximumPeerCount  int32
	// BlockToLive is how many blocks the data is kept for; 0 is for good.
	BlockToLive uint64
	// MemberOnlyRead and MemberOnlyWrite let only clients of the member
	// organisations read, or write, the collection from the chaincode.
	MemberOnlyRead  bool
	MemberOnlyWrite bool
	// EndorsementPolicy, when set, is the signature policy expression
	// that endorses writes to the collection, instead of the
	// chaincode's.
	EndorsementPolicy string
}

// collectionNameRE is Fabric's rule for a collection name
// (core/chaincode/lifecycle); names beginning with '_' are its implicit
// collections'.
var collectionNameRE = regexp.MustCompile(`^[A-Za-z0-9-]+([A-Za-z0-9_-]+)*$`)

// CheckCollectionName says what is wrong with a collection name, or nil.
func CheckCollectionName(name string) error {
	if !collectionNameRE.MatchString(name) {
		return fmt.Errorf("%q: letters, digits, '-' and '_', not beginning with '_'", name)
	}
	return nil
}

// CollectionPackage is cols as a definition's CollectionConfigPackage,
// which every organisation's approval and the commit must carry alike;
// nil for none. The member policies must be ORs of principals, as the
// peer requires.
func CollectionPackage(cols []Collection) (*pb.CollectionConfigPackage, error) {
	if len(cols) == 0 {
		return nil, nil
	}
	pkg := &pb.CollectionConfigPackage{}
	seen := map[string]bool{}
	for i, c := range cols {
		fail := func(err error) (*pb.CollectionConfigPackage, error) {
			return nil, fmt.Errorf("collection %d (%s): %w", i, c.Name, err)
		}
		if err := CheckCollectionName(c.Name); err != nil {
			return fail(err)
		}
		if seen[c.Name] {
			return fail(errors.New("the name is given twice"))
		}
		seen[c.Name] = true
		if c.RequiredPeerCount < 0 || c.MaximumPeerCount < c.RequiredPeerCount {
			return fail(fmt.Errorf("peer counts %d required, %d at most: 0 <= required <= maximum", c.RequiredPeerCount, c.MaximumPeerCount))
		}
		members, _, err := ParseSignaturePolicy(c.MemberPolicy)
		if err != nil {
			return fail(fmt.Errorf("member policy: %w", err))
		}
		if err := orOnly(members.GetRule()); err != nil {
			return fail(fmt.Errorf("member policy: %w", err))
		}
		sc := &pb.StaticCollectionConfig{
			Name:              c.Name,
			MemberOrgsPolicy:  &pb.CollectionPolicyConfig{Payload: &pb.CollectionPolicyConfig_SignaturePolicy{SignaturePolicy: members}},
			RequiredPeerCount: c.RequiredPeerCount,
			MaximumPeerCount:  c.MaximumPeerCount,
			BlockToLive:       c.BlockToLive,
			MemberOnlyRead:    c.MemberOnlyRead,
			MemberOnlyWrite:   c.MemberOnlyWrite,
		}
		if c.EndorsementPolicy != "" {
			env, _, err := ParseSignaturePolicy(c.EndorsementPolicy)
			if err != nil {
				return fail(fmt.Errorf("endorsement policy: %w", err))
			}
			sc.EndorsementPolicy = &pb.ApplicationPolicy{Type: &pb.ApplicationPolicy_SignaturePolicy{SignaturePolicy: env}}
		}
		pkg.Config = append(pkg.Config, &pb.CollectionConfig{Payload: &pb.CollectionConfig_StaticCollectionConfig{StaticCollectionConfig: sc}})
	}
	return pkg, nil
}

// orOnly checks that rule is principals joined by OR (1 out of n).
func orOnly(rule *cb.SignaturePolicy) error {
	n := rule.GetNOutOf()
	if n == nil {
		return nil
	}
	if n.GetN() != 1 {
		return fmt.Errorf("must join its organisations with OR only (it needs %d of %d)", n.GetN(), len(n.GetRules()))
	}
	for _, r := range n.GetRules() {
		if err := orOnly(r); err != nil {
			return err
		}
	}
	return nil
}

// CollectionNames are the names of the collections of pkg, in order.
func CollectionNames(pkg *pb.CollectionConfigPackage) []string {
	var out []string
	for _, c := range pkg.GetConfig() {
		out = append(out, c.GetStaticCollectionConfig().GetName())
	}
	return out
}

// sameCollections reports whether two collection packages are the same
// configuration; none and an empty package are.
func sameCollections(a, b *pb.CollectionConfigPackage) bool {
	if len(a.GetConfig()) == 0 || len(b.GetConfig()) == 0 {
		return len(a.GetConfig()) == len(b.GetConfig())
	}
	return proto.Equal(a, b)
}
