package fabric

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/lifecycle"
)

// allMembers, as a collection's only member, is every organisation of
// the channel.
const allMembers = "*"

// contractCollections are the collections req gives the contract, and
// those it has. A deployment that gives none takes the package's (its
// collections.json); an upgrade keeps the contract's, which the API
// gives, and never takes the package's: Fabric keeps a collection for
// good, so a collection is added only when asked for.
func contractCollections(req chain.DeployRequest) (cols, current []apis.Collection, err error) {
	cols = req.Collections
	if req.Current != nil {
		return cols, req.Current.Collections, nil
	}
	if cols == nil {
		if cols, err = packageCollections(req.Package); err != nil {
			return nil, nil, fmt.Errorf("%w: package %s: %v", chain.ErrContractRefused, req.Package.Ref(), err) //nolint:errorlint // callers classify by the sentinel alone; the cause is told
		}
	}
	return cols, nil, nil
}

// packageCollections are the collections of p's collections.json, nil
// when it has none.
func packageCollections(p *apis.Package) ([]apis.Collection, error) {
	f, ok := p.File(collectionsFile)
	if !ok {
		return nil, nil
	}
	var cols []apis.Collection
	dec := json.NewDecoder(bytes.NewReader(f.Content()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cols); err != nil {
		return nil, fmt.Errorf("%s: a JSON array of collections {\"name\", \"members\", \"requiredPeerCount\", \"maxPeerCount\", ...}: %w", collectionsFile, err)
	}
	if cols == nil {
		return nil, errors.New(collectionsFile + ": null; write [] for no collections")
	}
	return cols, nil
}

// collectionsConfig is a contract's private data collections as its
// chaincode definition carries them, the same bytes for every
// organisation's approval and the commit. Members are organisations of
// channel c (by name or MSP ID), written as the signature policy of
// their 'member' roles; a policy names them instead. current are the
// collections the contract has: Fabric keeps each for good, with its
// blockToLive. Every problem is reported, naming its field under
// collections.
func collectionsConfig(plan *chain.Plan, c fabricChannel, cols, current []apis.Collection) (*pb.CollectionConfigPackage, apis.ErrorList) {
	var errs apis.ErrorList
	orgs := channelMSPs(plan, c)
	var lc []lifecycle.Collection
	index := map[string]int{}
	for i, col := range cols {
		field := fmt.Sprintf("collections[%d]", i)
		if err := lifecycle.CheckCollectionName(col.Name); err != nil {
			errs.Add(field+".name", "%v", err)
		} else if j, ok := index[col.Name]; ok {
			errs.Add(field+".name", "%q is collections[%d]'s name too", col.Name, j)
		} else {
			index[col.Name] = i
		}
		var members string
		// memberIDs are the members' MSP IDs, when the collection names
		// them rather than a policy.
		var memberIDs []string
		switch {
		case len(col.Members) > 0 && col.Policy != "":
			errs.Add(field, "has members and a policy; give one")
		case len(col.Members) == 0 && strings.TrimSpace(col.Policy) == "":
			errs.Add(field+".members", "is empty: name the organisations whose peers keep the collection (the channel's: %s)", strings.Join(orgs, ", "))
		case slices.Equal(col.Members, []string{allMembers}):
			var principals []string
			for _, id := range orgs {
				principals = append(principals, fmt.Sprintf("'%s.member'", id))
			}
			members = "OR(" + strings.Join(principals, ", ") + ")"
			memberIDs = orgs
		case len(col.Members) > 0:
			var ids, principals []string
			for j, m := range col.Members {
				id := m
				if !strings.HasSuffix(m, "MSP") {
					id = MSPID(m)
				}
				switch {
				case m == allMembers:
					errs.Add(fmt.Sprintf("%s.members[%d]", field, j), "%q stands for every organisation alone; give it as the only member", m)
				case !slices.Contains(orgs, id):
					errs.Add(fmt.Sprintf("%s.members[%d]", field, j), "%q is not an organisation of channel %s (its organisations: %s)", m, c.name, strings.Join(orgs, ", "))
				case slices.Contains(ids, id):
					errs.Add(fmt.Sprintf("%s.members[%d]", field, j), "%q is given twice", m)
				default:
					ids = append(ids, id)
				}
			}
			slices.Sort(ids)
			memberIDs = ids
			for _, id := range ids {
				principals = append(principals, fmt.Sprintf("'%s.member'", id))
			}
			members = "OR(" + strings.Join(principals, ", ") + ")"
		case lifecycle.IsRule(col.Policy):
			errs.Add(field+".policy", "%q is a rule for endorsement; name the members, or write OR('%s.member', ...)", col.Policy, orgs[0])
		default:
			env, perrs := endorsementEnvelope(orgs, field+".policy", col.Policy)
			errs = append(errs, perrs...)
			if env != nil {
				members = strings.TrimSpace(col.Policy)
			}
		}
		if col.RequiredPeerCount < 0 {
			errs.Add(field+".requiredPeerCount", "%d: not below 0", col.RequiredPeerCount)
		}
		if col.MaxPeerCount < col.RequiredPeerCount {
			errs.Add(field+".maxPeerCount", "%d is below requiredPeerCount %d", col.MaxPeerCount, col.RequiredPeerCount)
		}
		// An endorsing peer hands the data to other member peers: with
		// fewer than requiredPeerCount of them every write would fail.
		if others := memberPeers(plan, memberIDs) - 1; memberIDs != nil && col.RequiredPeerCount > 0 && int(col.RequiredPeerCount) > others {
			errs.Add(field+".requiredPeerCount", "%d: the members have %d peers, so an endorsing peer has %d others to hand the data to and every write would fail; at most %d, or add peers first",
				col.RequiredPeerCount, others+1, max(others, 0), max(others, 0))
		}
		var endorse string
		if col.EndorsementPolicy != "" {
			// A rule is over the channel's organisations, as the
			// contract's is.
			env, perrs := endorsementEnvelope(orgs, field+".endorsementPolicy", col.EndorsementPolicy)
			errs = append(errs, perrs...)
			if env != nil {
				endorse = strings.TrimSpace(col.EndorsementPolicy)
				if lifecycle.IsRule(endorse) {
					endorse, _ = lifecycle.RulePolicy(endorse, orgs)
				}
			}
		}
		lc = append(lc, lifecycle.Collection{
			Name: col.Name, MemberPolicy: members, RequiredPeerCount: col.RequiredPeerCount, MaximumPeerCount: col.MaxPeerCount,
			BlockToLive: col.BlockToLive, MemberOnlyRead: col.MemberOnlyRead, MemberOnlyWrite: col.MemberOnlyWrite, EndorsementPolicy: endorse,
		})
	}
	for _, old := range current {
		i, ok := index[old.Name]
		switch {
		case !ok:
			errs.Add("collections", "leaves out %s, a collection of the contract: a Fabric chaincode keeps its collections for good; give it again", old.Name)
		case cols[i].BlockToLive != old.BlockToLive:
			errs.Add(fmt.Sprintf("collections[%d].blockToLive", i), "%d: collection %s keeps its blockToLive, %d, for good", cols[i].BlockToLive, old.Name, old.BlockToLive)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	pkg, err := lifecycle.CollectionPackage(lc)
	if err != nil {
		errs.Add("collections", "%v", err)
		return nil, errs
	}
	return pkg, nil
}

// memberPeers counts the peers of plan whose organisations' MSP IDs are
// among ids.
func memberPeers(plan *chain.Plan, ids []string) int {
	n := 0
	for _, pn := range plan.Nodes {
		if pn.Role == apis.RoleFull && slices.Contains(ids, MSPID(pn.Organization)) {
			n++
		}
	}
	return n
}
