package cometbft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/pkg/apptx"
)

var _ chain.Contracts = (*Driver)(nil)

// PackageKind is the kind of package a CometBFT network deploys: a module
// of ChainDock's application. The module's code ships in chaindock-app, so
// a package names the module and the version it needs; deploying checks
// that the network's nodes serve it and binds it to the network, and
// removing it makes the platform's gateway refuse its transactions.
const PackageKind = "abci-module"

// ModuleFile is the file of a package that says which module it is.
const ModuleFile = "module.json"

// moduleManifest is the content of ModuleFile.
type moduleManifest struct {
	Module  string `json:"module"`
	Version string `json:"version"`
}

var moduleDocs = map[string]string{
	apptx.ModuleNotary: `# notary

Notarisation of documents: a signed "notarize" transaction puts a document's
SHA-256 with its owner, block time, tags and metadata on chain, once.
Query /notary/doc?hash=H for the record and /notary/proof?hash=H for a Merkle
proof checked against the app hash of the block header after it.
`,
	apptx.ModuleAsset: `# asset

Asset transfer between ed25519 accounts: "issue" creates a symbol (its first
issuer owns it) or mints more of it, "transfer" moves an amount; balances never
go negative and nonces stop replays. Query /asset/balance, /asset/history and
/asset/info.
`,
}

// Templates implements chain.Contracts: one package per module of the
// application.
func (d *Driver) Templates() []apis.Package {
	var out []apis.Package
	for _, m := range apptx.Modules() {
		manifest, _ := json.MarshalIndent(struct {
			moduleManifest
			Types   []apptx.Type `json:"types"`
			Queries []string     `json:"queries"`
		}{moduleManifest{m.Name, m.Version}, m.Types, m.Queries}, "", "  ")
		p := apis.Package{Owner: apis.BuiltinOwner, Name: m.Name, Version: m.Version, Chain: "cometbft", Kind: PackageKind,
			Description: strings.SplitN(moduleDocs[m.Name], "\n", 4)[2], Builtin: true,
			Files: []apis.PackageFile{{Path: ModuleFile, Text: string(manifest) + "\n"}, {Path: "README.md", Text: moduleDocs[m.Name]}}}
		p.Checksum = p.Digest()
		out = append(out, p)
	}
	return out
}

// ValidatePackage implements chain.Contracts.
func (d *Driver) ValidatePackage(p *apis.Package) apis.ErrorList {
	var errs apis.ErrorList
	if p.Kind != PackageKind {
		errs.Add("kind", "%q: a cometbft package is of kind %q", p.Kind, PackageKind)
	}
	if _, ok := p.File(ModuleFile); !ok {
		errs.Add("files", "has no %s naming the application module and its version", ModuleFile)
		return errs
	}
	m, err := manifest(p)
	if err != nil {
		errs.Add("files["+ModuleFile+"]", "%v", err)
		return errs
	}
	var names []string
	for _, am := range apptx.Modules() {
		names = append(names, am.Name)
	}
	switch {
	case m.Module == "":
		errs.Add("files["+ModuleFile+"].module", "is required: one of %v", names)
	case !containsModule(m.Module):
		errs.Add("files["+ModuleFile+"].module", "unknown module %q: the application has %v", m.Module, names)
	}
	if m.Version == "" {
		errs.Add("files["+ModuleFile+"].version", "is required")
	}
	return errs
}

func containsModule(name string) bool {
	for _, m := range apptx.Modules() {
		if m.Name == name {
			return true
		}
	}
	return false
}

func manifest(p *apis.Package) (moduleManifest, error) {
	f, ok := p.File(ModuleFile)
	if !ok {
		return moduleManifest{}, fmt.Errorf("package %s has no %s", p.Ref(), ModuleFile)
	}
	var m moduleManifest
	if err := json.Unmarshal(f.Content(), &m); err != nil {
		return m, fmt.Errorf("is not valid JSON: %w", err)
	}
	return m, nil
}

// moduleRef is how the chain knows a module.
func moduleRef(module string) string { return "module/" + module }

// DeployContract implements chain.Contracts: it asks a running node which
// modules its application serves and binds the package's module when the
// versions agree.
func (d *Driver) DeployContract(ctx context.Context, n *apis.Network, req chain.DeployRequest) (chain.ContractResult, error) {
	name, pkg, current := req.Name, req.Package, req.Current
	if req.EndorsementPolicy != "" {
		return chain.ContractResult{}, apis.ErrorList{{Field: "endorsementPolicy",
			Detail: "a module of a CometBFT application has no endorsement policy: the validators run every transaction; leave it out"}}
	}
	if req.Channel != "" {
		return chain.ContractResult{}, apis.ErrorList{{Field: "channel", Detail: "a CometBFT network has one chain, no channels; leave it out"}}
	}
	if len(req.Collections) > 0 {
		return chain.ContractResult{}, apis.ErrorList{{Field: "collections", Detail: "a module of a CometBFT application has no private data collections: every validator keeps all its state; leave them out"}}
	}
	if len(req.Args) > 0 {
		return chain.ContractResult{}, fmt.Errorf("%w: a module of the application takes no arguments; %d given", chain.ErrContractRefused, len(req.Args))
	}
	if app(&n.Spec) != AppChainDock {
		return chain.ContractResult{}, fmt.Errorf("%w: network %s runs the %s application, which has no modules; create the network with spec.cometbft.app: %s",
			chain.ErrContractRefused, n.Metadata.Name, app(&n.Spec), AppChainDock)
	}
	m, err := manifest(pkg)
	if err != nil {
		return chain.ContractResult{}, fmt.Errorf("%w: package %s: %s %w", chain.ErrContractRefused, pkg.Ref(), ModuleFile, err)
	}
	ref := moduleRef(m.Module)
	if current != nil && current.State == apis.ContractDeployed && current.Ref != ref {
		return chain.ContractResult{}, fmt.Errorf("%w: contract %s is module %s; package %s is module %s",
			chain.ErrContractRefused, name, current.Ref, pkg.Ref(), m.Module)
	}
	info, err := d.appInfo(ctx, n)
	if err != nil {
		return chain.ContractResult{}, err
	}
	for _, served := range info.Modules {
		if served.Name != m.Module {
			continue
		}
		if served.Version != m.Version {
			return chain.ContractResult{}, fmt.Errorf("%w: the nodes of network %s serve module %s %s, not %s; a new module version comes with a new %s on every node",
				chain.ErrContractRefused, n.Metadata.Name, m.Module, served.Version, m.Version, AppProgram)
		}
		return chain.ContractResult{Ref: ref, Height: info.Height}, nil
	}
	return chain.ContractResult{}, fmt.Errorf("%w: the application of network %s has no module %s", chain.ErrContractRefused, n.Metadata.Name, m.Module)
}

// RemoveContract implements chain.Contracts. The module's code stays in
// the application and its state on chain; the gateway stops taking its
// transactions.
func (d *Driver) RemoveContract(ctx context.Context, n *apis.Network, current *apis.ContractRevision) (chain.ContractResult, error) {
	info, err := d.appInfo(ctx, n)
	if err != nil {
		return chain.ContractResult{}, err
	}
	return chain.ContractResult{Ref: current.Ref, Height: info.Height}, nil
}

// TxContract implements chain.Contracts: the module that executes the
// transaction's type.
func (d *Driver) TxContract(n *apis.Network, tx []byte) (string, bool) {
	if app(&n.Spec) != AppChainDock {
		return "", false
	}
	t, err := apptx.Decode(tx)
	if err != nil {
		return "", false
	}
	m := apptx.ModuleOf(t.Type)
	return moduleRef(m), m != ""
}

// appInfo asks the network's running nodes, highest first, for the
// application's /info until one answers.
func (d *Driver) appInfo(ctx context.Context, n *apis.Network) (apptx.Info, error) {
	var errs []error
	for _, node := range chain.ReadyNodes(n) {
		res, err := d.Query(ctx, node, apptx.PathInfo, nil)
		if err == nil && res.Code != 0 {
			err = fmt.Errorf("%s answered code %d: %s", node.Name, res.Code, res.Log)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var info apptx.Info
		if err := json.Unmarshal(res.Value, &info); err != nil {
			errs = append(errs, fmt.Errorf("%s: decode /info: %w", node.Name, err))
			continue
		}
		return info, nil
	}
	if len(errs) == 0 {
		return apptx.Info{}, fmt.Errorf("%w: network %s has no running node to ask", chain.ErrUnavailable, n.Metadata.Name)
	}
	return apptx.Info{}, fmt.Errorf("%w: no node of network %s answered: %w", chain.ErrUnavailable, n.Metadata.Name, errors.Join(errs...))
}
