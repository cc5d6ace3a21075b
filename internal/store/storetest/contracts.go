package storetest

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/store"
)

// RunContracts runs the contract store part of the suite.
func RunContracts(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	t.Run("Packages", func(t *testing.T) { testPackages(t, open(t)) })
	t.Run("Revisions", func(t *testing.T) { testRevisions(t, open(t)) })
	t.Run("RevisionRace", func(t *testing.T) { testRevisionRace(t, open(t)) })
	t.Run("DeleteTakesContracts", func(t *testing.T) { testDeleteTakesContracts(t, open(t)) })
}

func samplePackage(owner, name, version string) *apis.Package {
	at := genesis
	p := &apis.Package{Owner: owner, Name: name, Version: version, Chain: "cometbft", Kind: "abci-module",
		Description: "a sample", CreatedBy: "user:alice", CreatedAt: &at,
		Files: []apis.PackageFile{{Path: "module.json", Text: `{"module":"notary"}`}, {Path: "bin/x", Data: []byte{0, 1, 2, 255}}}}
	p.Checksum = p.Digest()
	return p
}

func testPackages(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := samplePackage("org1", "notary", "1.0.0")
	must(t, s.CreatePackage(ctx, p))
	if err := s.CreatePackage(ctx, samplePackage("org1", "notary", "1.0.0")); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("same version twice: %v, want ErrAlreadyExists", err)
	}
	must(t, s.CreatePackage(ctx, samplePackage("org1", "notary", "1.1.0")))
	must(t, s.CreatePackage(ctx, samplePackage("org2", "notary", "1.0.0")))

	got, err := s.GetPackage(ctx, "org1", "notary", "1.0.0")
	must(t, err)
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("GetPackage:\n got %+v\nwant %+v", got, p)
	}
	if got.Digest() != p.Checksum {
		t.Fatalf("the stored files changed: digest %s, want %s", got.Digest(), p.Checksum)
	}
	if _, err := s.GetPackage(ctx, "org1", "notary", "9.9.9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing version: %v, want ErrNotFound", err)
	}

	list, err := s.ListPackages(ctx, []string{"org1"})
	must(t, err)
	if len(list) != 2 || list[0].Version != "1.0.0" || list[1].Version != "1.1.0" || list[0].Files != nil {
		t.Fatalf("ListPackages(org1) = %+v, want both org1 versions without files", list)
	}
	all, err := s.ListPackages(ctx, nil)
	must(t, err)
	if len(all) != 3 {
		t.Fatalf("ListPackages(nil) has %d packages, want 3", len(all))
	}
	none, err := s.ListPackages(ctx, []string{})
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("ListPackages(no owners) = %d packages, want 0", len(none))
	}

	must(t, s.DeletePackage(ctx, "org1", "notary", "1.0.0"))
	if err := s.DeletePackage(ctx, "org1", "notary", "1.0.0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting twice: %v, want ErrNotFound", err)
	}
	if _, err := s.GetPackage(ctx, "org2", "notary", "1.0.0"); err != nil {
		t.Fatalf("deleting org1's package took org2's: %v", err)
	}
}

func revision(name string, rev int64, action, state, version string) apis.ContractRevision {
	return apis.ContractRevision{Name: name, Revision: rev, Action: action, State: state,
		Package: apis.PackageRef{Owner: "org1", Name: "notary", Version: version, Checksum: "sha256:00"},
		Ref:     "module:" + name, TxHash: "AB", Height: rev * 10, Actor: "user:alice", Time: genesis.Add(time.Duration(rev) * time.Second)}
}

func testRevisions(t *testing.T, s store.Store) {
	ctx := t.Context()
	net := "uid-net"
	if err := s.AddContractRevision(ctx, net, revision("n", 2, apis.ContractDeploy, apis.ContractDeployed, "1.0.0")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("revision 2 first: %v, want ErrConflict", err)
	}
	steps := []apis.ContractRevision{
		revision("n", 1, apis.ContractDeploy, apis.ContractDeployed, "1.0.0"),
		revision("n", 2, apis.ContractUpgrade, apis.ContractDeployed, "1.1.0"),
		revision("n", 3, apis.ContractRemove, apis.ContractRemoved, "1.1.0"),
	}
	// Constructor arguments come back as given, quotes and all.
	steps[1].Args = []string{"Gold \"GLD\"", "", "1000000000000000000000", "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"}
	// So does an endorsement policy.
	steps[1].EndorsementPolicy = "OR('Org1MSP.peer', AND('Org2MSP.peer', \"Org3MSP.peer\"))"
	// And a channel.
	steps[1].Channel = "pair"
	// And private data collections.
	steps[1].Collections = []apis.Collection{
		{Name: "org1Private", Members: []string{"org1"}, MaxPeerCount: 1, BlockToLive: 100, MemberOnlyRead: true},
		{Name: "shared", Policy: "OR('Org1MSP.member', 'Org2MSP.member')", RequiredPeerCount: 1, MaxPeerCount: 2, EndorsementPolicy: "AND('Org1MSP.peer', 'Org2MSP.peer')"},
	}
	for _, r := range steps {
		must(t, s.AddContractRevision(ctx, net, r))
	}
	must(t, s.AddContractRevision(ctx, net, revision("m", 1, apis.ContractDeploy, apis.ContractDeployed, "1.0.0")))
	must(t, s.AddContractRevision(ctx, "uid-other", revision("n", 1, apis.ContractDeploy, apis.ContractDeployed, "1.1.0")))
	if err := s.AddContractRevision(ctx, net, revision("n", 3, apis.ContractDeploy, apis.ContractDeployed, "1.0.0")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("revision 3 twice: %v, want ErrConflict", err)
	}

	hist, err := s.ContractRevisions(ctx, net, "n")
	must(t, err)
	if !reflect.DeepEqual(hist, steps) {
		t.Fatalf("history:\n got %+v\nwant %+v", hist, steps)
	}
	now, err := s.Contracts(ctx, net)
	must(t, err)
	if len(now) != 2 || now[0].Name != "m" || now[0].Revision != 1 || now[1].Name != "n" || now[1].State != apis.ContractRemoved {
		t.Fatalf("Contracts = %+v, want m@1 deployed and n@3 removed", now)
	}
	used, err := s.PackageInUse(ctx, apis.PackageRef{Owner: "org1", Name: "notary", Version: "1.1.0"})
	must(t, err)
	if !reflect.DeepEqual(used, []string{"uid-other"}) {
		t.Fatalf("1.1.0 in use on %v, want only uid-other (n was removed from uid-net)", used)
	}
	used, err = s.PackageInUse(ctx, apis.PackageRef{Owner: "org1", Name: "notary", Version: "1.0.0"})
	must(t, err)
	if !reflect.DeepEqual(used, []string{net}) {
		t.Fatalf("1.0.0 in use on %v, want [%s] (contract m)", used, net)
	}
}

// testRevisionRace has writers race for the same revision: exactly one wins.
func testRevisionRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	const writers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  int
		errs []error
	)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.AddContractRevision(ctx, "uid-race", revision("c", 1, apis.ContractDeploy, apis.ContractDeployed, "1.0.0"))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else if !errors.Is(err, store.ErrConflict) {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || len(errs) > 0 {
		t.Fatalf("%d writers won revision 1, want 1; other errors: %v", won, errs)
	}
}

func testDeleteTakesContracts(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, err := s.Create(ctx, &store.Object{Kind: apis.KindNetwork, Name: "a", Spec: []byte("{}")})
	must(t, err)
	must(t, s.AddContractRevision(ctx, a.UID, revision("n", 1, apis.ContractDeploy, apis.ContractDeployed, "1.0.0")))
	must(t, s.AddContractRevision(ctx, "uid-b", revision("n", 1, apis.ContractDeploy, apis.ContractDeployed, "1.0.0")))
	must(t, s.Delete(ctx, a.Kind, a.Name, a.UID))
	if got, err := s.Contracts(ctx, a.UID); err != nil || len(got) != 0 {
		t.Fatalf("contracts of a deleted network: %v, %v", got, err)
	}
	if got, _ := s.Contracts(ctx, "uid-b"); len(got) != 1 {
		t.Fatalf("deleting a took b's contracts: %v", got)
	}
}
