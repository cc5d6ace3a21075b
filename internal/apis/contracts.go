package apis

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// BuiltinOwner owns the templates every chain driver ships; no
// organization may take the name.
const BuiltinOwner = "builtin"

// Limits on packages.
const (
	MaxPackageFiles   = 256
	MaxPackageBytes   = 8 << 20
	MaxPackagePathLen = 256
	MaxDescriptionLen = 1024
)

// Package is a versioned contract in the contract store: the source and
// artifacts one chain deploys. What a package holds depends on its kind:
// an ABCI module description for CometBFT, Solidity source with ABI and
// bytecode for an EVM chain, chaincode source for Fabric. A package is
// immutable: a change is a new version.
type Package struct {
	// Owner is the organization that uploaded it, or BuiltinOwner.
	Owner       string        `json:"owner"`
	Name        string        `json:"name"`
	Version     string        `json:"version"`
	Chain       string        `json:"chain"`
	Kind        string        `json:"kind"`
	Description string        `json:"description,omitempty"`
	Files       []PackageFile `json:"files,omitempty"`
	// Checksum is "sha256:" and the hex digest of Digest. When an upload
	// carries one, it must match.
	Checksum  string     `json:"checksum,omitempty"`
	Builtin   bool       `json:"builtin,omitempty"`
	CreatedBy string     `json:"createdBy,omitempty"`
	CreatedAt *time.Time `json:"createdAt,omitempty"`
}

// PackageFile is one file of a package: Text for text, Data (base64 in
// JSON) for anything else.
type PackageFile struct {
	Path string `json:"path"`
	Text string `json:"text,omitempty"`
	Data []byte `json:"data,omitempty"`
}

// Content is the file's bytes.
func (f PackageFile) Content() []byte {
	if f.Data != nil {
		return f.Data
	}
	return []byte(f.Text)
}

// File returns the package's file at p.
func (p *Package) File(name string) (PackageFile, bool) {
	for _, f := range p.Files {
		if f.Path == name {
			return f, true
		}
	}
	return PackageFile{}, false
}

// Ref names the package.
func (p *Package) Ref() PackageRef {
	return PackageRef{Owner: p.Owner, Name: p.Name, Version: p.Version, Checksum: p.Checksum}
}

// Digest is the SHA-256 of the package's identity and files: chain, kind,
// name, version and each file's path and content, each length-prefixed,
// files in the order given. Two uploads with the same digest are the same
// package.
func (p *Package) Digest() string {
	h := sha256.New()
	put := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, s := range []string{p.Chain, p.Kind, p.Name, p.Version} {
		put([]byte(s))
	}
	for _, f := range p.Files {
		put([]byte(f.Path))
		put(f.Content())
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// PackageRef names one version of a package.
type PackageRef struct {
	Owner    string `json:"owner"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Checksum string `json:"checksum,omitempty"`
}

func (r PackageRef) String() string { return r.Owner + "/" + r.Name + "@" + r.Version }

// ParsePackageRef reads "owner/name@version".
func ParsePackageRef(s string) (PackageRef, error) {
	owner, rest, ok := strings.Cut(s, "/")
	name, version, ok2 := strings.Cut(rest, "@")
	if !ok || !ok2 || owner == "" || name == "" || version == "" {
		return PackageRef{}, fmt.Errorf("package %q: want owner/name@version, for example builtin/notary@1.0.0", s)
	}
	return PackageRef{Owner: owner, Name: name, Version: version}, nil
}

// Contract lifecycle actions and states.
const (
	ContractDeploy  = "deploy"
	ContractUpgrade = "upgrade"
	ContractRemove  = "remove"

	ContractDeployed = "deployed"
	ContractRemoved  = "removed"
)

// ContractRevision is one step of a contract's life on a network: a
// deployment, an upgrade to another version of its package, or its
// removal. Revisions are numbered from 1 and never change; the newest
// says the contract's state.
type ContractRevision struct {
	Network  string     `json:"network"`
	Name     string     `json:"name"`
	Revision int64      `json:"revision"`
	Action   string     `json:"action"`
	State    string     `json:"state"`
	Package  PackageRef `json:"package"`
	// Ref is how the chain knows the contract: a module, an address, a
	// chaincode name.
	Ref string `json:"ref"`
	// TxHash and Height record the transaction that did it, on chains
	// where one did.
	TxHash string `json:"txHash,omitempty"`
	Height int64  `json:"height,omitempty"`
	// Args are the constructor arguments a deploy or upgrade gave.
	Args []string `json:"args,omitempty"`
	// EndorsementPolicy is who must endorse the contract's transactions,
	// as the deploy or upgrade gave it, on chains that have such a
	// policy; empty is the chain's default.
	EndorsementPolicy string `json:"endorsementPolicy,omitempty"`
	// Channel is the channel the contract is on, on chains with more
	// than one; empty is the network's own (a Fabric network's shared
	// channel).
	Channel string `json:"channel,omitempty"`
	// Collections are the contract's private data collections, on chains
	// that have them (a Fabric chaincode's), as the deploy or upgrade
	// gave them or, when it gave none, as they were kept.
	Collections []Collection `json:"collections,omitempty"`
	Actor       string       `json:"actor,omitempty"`
	Time        time.Time    `json:"time"`
}

// Collection is a private data collection of a contract: data that only
// its member organisations' peers keep, the chain holding a hash of it.
type Collection struct {
	Name string `json:"name"`
	// Members are the organisations whose peers keep the data; Policy,
	// instead, is a signature policy expression of OR-joined principals
	// saying the same. One of them is given.
	Members []string `json:"members,omitempty"`
	Policy  string   `json:"policy,omitempty"`
	// RequiredPeerCount is how many other member peers an endorsing peer
	// must hand the data to before it endorses; MaxPeerCount how many it
	// tries.
	RequiredPeerCount int32 `json:"requiredPeerCount,omitempty"`
	MaxPeerCount      int32 `json:"maxPeerCount,omitempty"`
	// BlockToLive is how many blocks the data is kept for; 0 is for good.
	BlockToLive uint64 `json:"blockToLive,omitempty"`
	// MemberOnlyRead and MemberOnlyWrite keep reads, or writes, to
	// clients of the member organisations.
	MemberOnlyRead  bool `json:"memberOnlyRead,omitempty"`
	MemberOnlyWrite bool `json:"memberOnlyWrite,omitempty"`
	// EndorsementPolicy, when set, endorses writes to the collection
	// instead of the contract's policy.
	EndorsementPolicy string `json:"endorsementPolicy,omitempty"`
}

// SameCollections reports whether a and b are the same collections, in
// the same order; none and an empty list are the same.
func SameCollections(a, b []Collection) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	return reflect.DeepEqual(a, b)
}

var versionPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

// ValidatePackage checks what every package needs, whatever its chain;
// the chain's driver checks the files.
func ValidatePackage(p *Package, reg Registries) ErrorList {
	var errs ErrorList
	validateName(p.Owner, "owner", &errs)
	validateName(p.Name, "name", &errs)
	if !versionPattern.MatchString(p.Version) {
		errs.Add("version", "%q is not a semantic version such as 1.0.0", p.Version)
	}
	switch {
	case p.Chain == "":
		errs.Add("chain", "is required: one of %v", reg.Chains)
	case !slices.Contains(reg.Chains, p.Chain):
		errs.Add("chain", "unknown chain %q: one of %v", p.Chain, reg.Chains)
	}
	if p.Kind == "" {
		errs.Add("kind", "is required")
	}
	if len(p.Description) > MaxDescriptionLen {
		errs.Add("description", "has %d characters, more than %d", len(p.Description), MaxDescriptionLen)
	}
	if len(p.Files) == 0 {
		errs.Add("files", "is required: a package holds at least one file")
	}
	if len(p.Files) > MaxPackageFiles {
		errs.Add("files", "has %d files, more than %d", len(p.Files), MaxPackageFiles)
	}
	seen := map[string]bool{}
	total := 0
	for i, f := range p.Files {
		at := fmt.Sprintf("files[%d]", i)
		switch {
		case f.Path == "":
			errs.Add(at+".path", "is required")
		case len(f.Path) > MaxPackagePathLen:
			errs.Add(at+".path", "has %d characters, more than %d", len(f.Path), MaxPackagePathLen)
		case path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == ".." || strings.HasPrefix(f.Path, "../") || strings.Contains(f.Path, "\\"):
			errs.Add(at+".path", "%q must be a clean relative path with '/' separators", f.Path)
		case seen[f.Path]:
			errs.Add(at+".path", "%q appears twice", f.Path)
		}
		seen[f.Path] = true
		if f.Text != "" && f.Data != nil {
			errs.Add(at, "has both text and data; give one")
		}
		total += len(f.Content())
	}
	if total > MaxPackageBytes {
		errs.Add("files", "hold %d bytes, more than %d", total, MaxPackageBytes)
	}
	if p.Checksum != "" && len(errs) == 0 && p.Checksum != p.Digest() {
		errs.Add("checksum", "%s does not match the content, whose checksum is %s", p.Checksum, p.Digest())
	}
	return errs
}
