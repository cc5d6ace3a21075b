package fabric

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/runtime"
)

// In pods (runtime kubernetes) nodes run the official Fabric images, which
// hold neither ChainDock's binary nor anything of the server's host. A
// node planned for a pod differs from one planned for a process in three
// ways, all here: a peer keeps its state in CouchDB, run beside it in its
// pod; it builds chaincode-as-a-service packages with Fabric's own ccaas
// builder from its image rather than ChainDock's; and its certificates
// name its Service. The chaincode host is the one node of ChainDock's
// own image (ChaincodeImage), since its program is ChainDock's; it is
// planned the same way in a pod, but for listening on every address and
// being reached at its Service (planChaincode).

// A peer's CouchDB. On the process runtime a peer keeps its state in
// LevelDB, in its home: nothing would run a CouchDB beside it there.
const (
	// CouchDBSidecar names the sidecar (its container, and its log).
	CouchDBSidecar = "couchdb"
	// CouchDBPort is where CouchDB serves. The image binds every address
	// of the pod, which the kubelet's startup probe needs; the peer dials
	// it on loopback, and a password guards it from the namespace's other
	// pods.
	CouchDBPort = 5984
	// couchDBUser is the CouchDB administrator the peer signs in as.
	couchDBUser = "admin"
)

// Files of a peer in a pod. The credentials are Secret files that both the
// sidecar and the peer read: the Kubernetes runtime writes environment
// variables into the pod spec as they are, so the password is never given
// as one, and core.yaml, which the ConfigMap holds, has placeholders where
// the credentials go.
const (
	dirCouchDB          = "couchdb"
	fileCouchDBUser     = dirCouchDB + "/user"
	fileCouchDBPassword = dirCouchDB + "/password"
	// dirCouchDBData is where CouchDB keeps its databases: in the node's
	// home, on its volume, so that the state outlives the pod as the
	// ledger does.
	dirCouchDBData = dirCouchDB + "/data"

	placeholderUser     = "@COUCHDB_USER@"
	placeholderPassword = "@COUCHDB_PASSWORD@"
)

// stepCredentials is the init step that writes the CouchDB credentials
// into core.yaml.
const stepCredentials = "couchdb-credentials" //nolint:gosec // the step's name, not a credential

// Fabric's builder for chaincode-as-a-service packages, which the official
// peer image carries (its Dockerfile copies release/<os-arch>/builders/ccaas/bin
// there) and its sample core.yaml configures. It takes the packages
// ChainDock makes: type ccaas, with connection.json and the optional
// META-INF indexes in code.tar.gz.
const (
	ccaasBuilderName = "ccaas_builder"
	ccaasBuilderPath = "/opt/hyperledger/ccaas_builder"
	// ccaasBuilderEnv, when the peer has it, holds JSON values that the
	// builder fills connection.json's templates with.
	ccaasBuilderEnv = "CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"
)

// inPods tells whether a plan is for pods: the controller gives a
// placement only for runtimes whose nodes have addresses of their own.
func inPods(req chain.PlanRequest) bool { return req.Placement != nil }

// couchDBCredentials are the Secret files with the CouchDB administrator
// of a peer, with a new password from r.
func couchDBCredentials(r io.Reader) ([]runtime.File, error) {
	if r == nil {
		r = rand.Reader
	}
	pw := make([]byte, 16)
	if _, err := io.ReadFull(r, pw); err != nil {
		return nil, fmt.Errorf("couchdb password: %w", err)
	}
	// Hexadecimal: the scripts below put it into core.yaml with sed, and
	// YAML takes it as it is.
	return []runtime.File{
		{Path: fileCouchDBUser, Data: []byte(couchDBUser), Mode: 0o600, Secret: true},
		{Path: fileCouchDBPassword, Data: fmt.Appendf(nil, "%x", pw), Mode: 0o600, Secret: true},
	}, nil
}

// couchDBAddress is where a peer reaches its CouchDB.
func couchDBAddress(place chain.Placement) string {
	return net.JoinHostPort(place.LocalHost(), strconv.Itoa(CouchDBPort))
}

// couchDBScript runs CouchDB through the image's own entrypoint, which
// makes the administrator from COUCHDB_USER and COUCHDB_PASSWORD: this
// script sets them from the Secret files first (the image's entrypoint
// reads no file for them in 3.3), and points CouchDB's databases at the
// node's volume. It runs as root in the node's home, as the entrypoint
// expects, which then runs CouchDB as its own user.
const couchDBScript = `set -e
mkdir -p ` + dirCouchDBData + `
chown couchdb:couchdb ` + dirCouchDBData + `
printf '[couchdb]\ndatabase_dir = %s\nview_index_dir = %s\n' "$PWD/` + dirCouchDBData + `" "$PWD/` + dirCouchDBData + `" >/opt/couchdb/etc/local.d/10-chaindock.ini
COUCHDB_USER=$(cat ` + fileCouchDBUser + `)
COUCHDB_PASSWORD=$(cat ` + fileCouchDBPassword + `)
export COUCHDB_USER COUCHDB_PASSWORD
exec /docker-entrypoint.sh /opt/couchdb/bin/couchdb
`

// couchDBSidecar runs a peer's CouchDB. It names no program: the image's
// entrypoint (tini, then its docker-entrypoint.sh) runs its arguments,
// the script above.
func couchDBSidecar(place chain.Placement) runtime.Sidecar {
	return runtime.Sidecar{
		Name:         CouchDBSidecar,
		Image:        CouchDBImage,
		Args:         []string{"sh", "-c", couchDBScript},
		ReadyAddress: couchDBAddress(place),
	}
}

// credentialsScript writes the CouchDB credentials into core.yaml in place
// of its placeholders. The runtime copies core.yaml afresh before every
// start, and the step runs after it.
const credentialsScript = `set -e
user=$(cat ` + fileCouchDBUser + `)
password=$(cat ` + fileCouchDBPassword + `)
sed -i -e "s/` + placeholderUser + `/$user/" -e "s/` + placeholderPassword + `/$password/" ` + fileCoreYAML + `
`

// credentialsStep runs credentialsScript in the node's own image (the
// peer image has sh and sed).
func credentialsStep() runtime.InitStep {
	return runtime.InitStep{Name: stepCredentials, Program: "sh", Args: []string{"-c", credentialsScript}}
}
