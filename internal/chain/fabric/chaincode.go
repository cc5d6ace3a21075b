package fabric

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/lifecycle"
	"github.com/chaindock/chaindock/internal/runtime"
	"github.com/chaindock/chaindock/internal/version"
)

// ChaincodeProgram serves the built-in chaincode templates on a network's
// chaincode host (spec.fabric.templates): one chaincode-as-a-service
// server per template, in one process.
const ChaincodeProgram = "chaindock-chaincode"

// ChaincodeImage is the image of the chaincode host on runtimes that run
// containers: ChainDock's own, the one the Helm chart runs the server
// from, of this server's version; it must hold chaindock-chaincode. The
// server's --image flag replaces it by program name
// (chaindock-chaincode=...).
func ChaincodeImage() string { return "chaindock/chaindock:" + version.Version }

// TemplateVersion is the version of every built-in chaincode package.
const TemplateVersion = "1.0.0"

// builtinChaincode are the templates chaindock-chaincode serves (package
// templates), in the order of the chaincode host's ports. Each is a port
// of the host, named after it, and the package builtin/fabric-<name>.
var builtinChaincode = []struct {
	name, description string
	// collections is the template's collections.json, if it has one.
	collections string
}{
	{"notary", "Notarisation chaincode: Notarize(hash, note) records a document's SHA-256 digest once, with who submitted it and when; Get(hash) reads it back. Served by the network's chaincode host (spec.fabric.templates).", ""},
	{"asset", "Asset transfer chaincode: Create(id, owner, value) makes an asset owned by an MSP ID; Transfer(id, newOwner) gives it away, by a client of its owner; Read(id) and History(id) read it. " +
		"Private data: CreatePrivateAsset(collection) writes the asset given in the transient map under \"asset\" ({\"id\", \"value\", \"details\"}) to a private data collection, " +
		"ReadPrivateAsset(collection, id) reads it back (an empty collection is the submitter's organisation's implicit one); its package's collections.json defines assetCollection, kept by every organisation. " +
		"Served by the network's chaincode host (spec.fabric.templates).", assetCollections},
}

// assetCollections is the asset template's collections.json: one
// collection every organisation of the channel keeps. A deployment's
// collections replace it.
const assetCollections = `[
  {"name": "assetCollection", "members": ["*"], "requiredPeerCount": 0, "maxPeerCount": 1, "memberOnlyRead": true, "memberOnlyWrite": true}
]
`

// chaincodePortNames are the chaincode host's ports: one per template.
func chaincodePortNames() []string {
	out := make([]string, len(builtinChaincode))
	for i, b := range builtinChaincode {
		out[i] = b.name
	}
	return out
}

// templatePackage is the contract store's name of template name.
func templatePackage(name string) string { return "fabric-" + name }

// chaincodeArtifact is where a plan keeps the chaincode package of
// template name.
func chaincodeArtifact(name string) string { return "chaincode/" + name + ".tar.gz" }

// chaincodeLabel is the label of a package's chaincode package: Fabric
// shows it with the package ID.
func chaincodeLabel(name, version string) string { return name + "_" + version }

// chaincodeDialTimeout is how long a peer waits for a chaincode server
// it dials, on a loaded machine.
const chaincodeDialTimeout = 10 * time.Second

// planChaincode plans the chaincode host: for each template, the
// chaincode-as-a-service package whose connection.json names the host's
// port for it, as the peers reach it, kept in the plan's artifacts (its
// bytes depend only on label and address, so its package ID is known
// now), and one chaindock-chaincode process serving each template under
// that package ID. In a pod the host listens on every address and the
// peers reach it at its Service, which place names; the address, and with
// it the package ID, changes only with the namespace or the port.
func planChaincode(ns apis.NodeSpec, ports map[string]int, place chain.Placement) (chain.PlannedNode, []runtime.File, error) {
	a := addrs{listenHost: place.ListenHost(), host: place.NodeHost(ns.Name), ports: ports}
	env := chain.GoRuntimeEnv(ns.Resources)
	spec := runtime.NodeSpec{
		Program:   ChaincodeProgram,
		Image:     ChaincodeImage(),
		Env:       env,
		Ports:     map[string]int{},
		Resources: runtime.Resources(ns.Resources),
	}
	endpoints := map[string]string{}
	var artifacts []runtime.File
	for _, b := range builtinChaincode {
		if ports[b.name] == 0 {
			return chain.PlannedNode{}, nil, fmt.Errorf("no %s port for node %s", b.name, ns.Name)
		}
		pkg, id, err := TemplatePackage(b.name, a.reach(b.name))
		if err != nil {
			return chain.PlannedNode{}, nil, fmt.Errorf("node %s: %w", ns.Name, err)
		}
		artifacts = append(artifacts, runtime.File{Path: chaincodeArtifact(b.name), Data: pkg, Mode: 0o644})
		spec.Args = append(spec.Args, "--serve", b.name+"="+id+"@"+a.listen(b.name))
		spec.Ports[b.name] = ports[b.name]
		endpoints[b.name] = "tcp://" + a.reach(b.name)
	}
	return chain.PlannedNode{
		Name:      ns.Name,
		Role:      ns.Role,
		Spec:      spec,
		Endpoints: endpoints,
	}, artifacts, nil
}

// TemplatePackage is the chaincode package of template name (notary,
// asset) served at address, and its package ID: the package's
// connection.json names address, and the bytes depend on nothing else.
func TemplatePackage(name, address string) (pkg []byte, id string, err error) {
	label := chaincodeLabel(templatePackage(name), TemplateVersion)
	pkg, err = lifecycle.Package(label, lifecycle.Connection{Address: address, DialTimeout: chaincodeDialTimeout})
	if err != nil {
		return nil, "", err
	}
	return pkg, lifecycle.PackageID(label, pkg), nil
}

// probeChaincode reports the chaincode host healthy when every one of its
// servers accepts connections. It keeps no ledger: its height is 0.
func probeChaincode(ctx context.Context, node chain.PlannedNode) (chain.NodeInfo, error) {
	var d net.Dialer
	for _, name := range chaincodePortNames() {
		u, err := url.Parse(node.Endpoints[name])
		if err != nil || u.Host == "" {
			return chain.NodeInfo{}, fmt.Errorf("probe %s: no %s endpoint", node.Name, name)
		}
		c, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return chain.NodeInfo{}, fmt.Errorf("probe %s: %s chaincode server: %w", node.Name, name, err)
		}
		_ = c.Close()
	}
	return chain.NodeInfo{}, nil
}
