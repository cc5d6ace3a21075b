package fabric

import (
	"net"
	"strconv"

	"sigs.k8s.io/yaml"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain/fabric/builder"
)

// Paths in a node's home directory. The process runtime runs a node with
// its home as working directory and FABRIC_CFG_PATH is ".", which Fabric
// makes absolute (viper's config search paths are), so it finds its
// config file there and resolves the relative paths in it against the
// config file's directory: every path a node reads through Fabric's
// config is an absolute path inside its home, wherever the runtime put
// that.
const (
	dirMSP      = "msp"
	dirTLS      = "tls"
	dirData     = "data"
	dirBuilders = "builders"
	dirChannel  = "channel"

	fileCoreYAML    = "core.yaml"
	fileOrdererYAML = "orderer.yaml"
)

// Where a node listens and is reached, by port name.
type addrs struct {
	listenHost string // what it binds
	host       string // what others dial
	ports      map[string]int
}

func (a addrs) listen(port string) string {
	return net.JoinHostPort(a.listenHost, strconv.Itoa(a.ports[port]))
}

func (a addrs) reach(port string) string {
	return net.JoinHostPort(a.host, strconv.Itoa(a.ports[port]))
}

// peerConfig is a peer's core.yaml: the keys ChainDock sets, the rest
// left to the peer's defaults.
type peerConfig struct {
	id, networkID, mspID string
	addrs                addrs
	// bootstrap are the listen addresses of the other peers of its
	// organisation, which it gossips with first.
	bootstrap []string
	// couchDB is the address of its CouchDB; empty, it keeps its state in
	// LevelDB.
	couchDB string
	// builder is the external builder it builds chaincode packages with.
	builder externalBuilder
	// version is spec.fabric.version: the release of the peer binary.
	version string
}

// externalBuilder is an entry of a peer's chaincode.externalBuilders.
type externalBuilder struct {
	name, path string
	// propagate are the peer's environment variables the builder gets,
	// besides the few it always does.
	propagate []string
}

// chaindockBuilder is ChainDock's builder in a node's home. The peer runs
// its steps from its own working directory, the home, so the relative
// path holds.
var chaindockBuilder = externalBuilder{name: builder.Name, path: dirBuilders + "/" + builder.Name}

// ccaasBuilder is Fabric's own, in the official peer image.
var ccaasBuilder = externalBuilder{name: ccaasBuilderName, path: ccaasBuilderPath, propagate: []string{ccaasBuilderEnv}}

func (b externalBuilder) yaml() map[string]any {
	m := map[string]any{"name": b.name, "path": b.path}
	if len(b.propagate) > 0 {
		m["propagateEnvironment"] = b.propagate
	}
	return m
}

func (c peerConfig) yaml() ([]byte, error) {
	tlsFile := func(name string) map[string]any { return map[string]any{"file": dirTLS + "/" + name} }
	bootstrap := c.bootstrap
	if bootstrap == nil {
		bootstrap = []string{}
	}
	doc := map[string]any{
		"peer": map[string]any{
			"id":                     c.id,
			"networkId":              c.networkID,
			"listenAddress":          c.addrs.listen(PortListen),
			"address":                c.addrs.reach(PortListen),
			"addressAutoDetect":      false,
			"chaincodeListenAddress": c.addrs.listen(PortChaincode),
			"chaincodeAddress":       c.addrs.reach(PortChaincode),
			"mspConfigPath":          dirMSP,
			"localMspId":             c.mspID,
			"localMspType":           "bccsp",
			"fileSystemPath":         dirData,
			"BCCSP":                  bccsp(),
			"authentication":         map[string]any{"timewindow": "15m"},
			"tls": map[string]any{
				"enabled":            true,
				"clientAuthRequired": false,
				"cert":               tlsFile("server.crt"),
				"key":                tlsFile("server.key"),
				"rootcert":           tlsFile("ca.crt"),
			},
			"keepalive": map[string]any{
				"interval":       "7200s",
				"timeout":        "20s",
				"minInterval":    "60s",
				"client":         map[string]any{"interval": "60s", "timeout": "20s"},
				"deliveryClient": map[string]any{"interval": "60s", "timeout": "20s"},
			},
			"gossip": map[string]any{
				"bootstrap": bootstrap,
				"endpoint":  c.addrs.reach(PortListen),
				// Other organisations' peers reach it here, once anchor
				// peers make them know of it.
				"externalEndpoint":       c.addrs.reach(PortListen),
				"aliveTimeInterval":      "2s",
				"aliveExpirationTimeout": "10s",
				"reconnectInterval":      "10s",
				"useLeaderElection":      false,
				"orgLeader":              true,
				"state":                  map[string]any{"enabled": false},
				"pvtData": map[string]any{
					"pullRetryThreshold":              "60s",
					"transientstoreMaxBlockRetention": 1000,
					"pushAckTimeout":                  "3s",
					"btlPullMargin":                   10,
					"reconcileBatchSize":              10,
					"reconcileSleepInterval":          "1m",
					"reconciliationEnabled":           true,
					"implicitCollectionDisseminationPolicy": map[string]any{
						"requiredPeerCount": 0,
						"maxPeerCount":      1,
					},
				},
			},
			// Each peer pulls blocks from the orderers itself.
			"deliveryclient": map[string]any{
				"blockGossipEnabled":          false,
				"reconnectTotalTimeThreshold": "3600s",
				"connTimeout":                 "3s",
				"reConnectBackoffThreshold":   "3600s",
			},
			"gateway":   map[string]any{"enabled": true},
			"discovery": map[string]any{"enabled": true, "authCacheEnabled": true, "authCacheMaxSize": 1000, "authCachePurgeRetentionRatio": 0.75, "orgMembersAllowedAccess": false},
			"limits": map[string]any{"concurrency": map[string]any{
				"endorserService": 2500,
				"deliverService":  2500,
				"gatewayService":  500,
			}},
			// The endorsement and validation plugins, and the filters a
			// proposal passes: without them a peer endorses nothing
			// ("plugin with name escc wasn't found").
			"handlers": map[string]any{
				"authFilters": c.authFilters(),
				"decorators":  []any{map[string]any{"name": "DefaultDecorator"}},
				"endorsers":   map[string]any{"escc": map[string]any{"name": "DefaultEndorsement"}},
				"validators":  map[string]any{"vscc": map[string]any{"name": "DefaultValidation"}},
			},
			"maxRecvMsgSize": 100 << 20,
			"maxSendMsgSize": 100 << 20,
		},
		// No Docker: chaincodes run as services the peer dials, through
		// the external builders below.
		"vm": map[string]any{"endpoint": ""},
		"chaincode": map[string]any{
			// A builder for chaincode-as-a-service packages.
			"externalBuilders": []any{c.builder.yaml()},
			"installTimeout":   "300s",
			"startuptimeout":   "300s",
			"executetimeout":   "30s",
			"mode":             "net",
			"keepalive":        0,
			// _lifecycle takes chaincode installs, approvals and
			// commits; cscc joins channels; qscc answers block queries.
			"system":  map[string]any{"_lifecycle": "enable", "cscc": "enable", "lscc": "enable", "qscc": "enable"},
			"logging": map[string]any{"level": "info", "shim": "warning"},
		},
		"ledger": map[string]any{
			"state":   c.state(),
			"history": map[string]any{"enableHistoryDatabase": true},
			// No ledger.snapshots.rootDir: the peer wants it absolute and
			// reads it as written, while it makes peer.fileSystemPath
			// absolute, and the snapshots go under it by default.
		},
		"operations": map[string]any{
			"listenAddress": c.addrs.listen(PortOperations),
			"tls":           map[string]any{"enabled": false},
		},
		"metrics": map[string]any{"provider": "prometheus"},
	}
	return yaml.Marshal(doc)
}

// authFilters are the filters every proposal passes. Fabric 2.5's peer
// has no TimeWindowCheck (3.0 added it) and stops at start on a filter it
// does not have.
func (c peerConfig) authFilters() []any {
	out := []any{map[string]any{"name": "DefaultAuth"}, map[string]any{"name": "ExpirationCheck"}}
	if c.version != fabric25 {
		out = append(out, map[string]any{"name": "TimeWindowCheck"})
	}
	return out
}

// fabric25 is spec.fabric.version of Fabric 2.5 LTS, whose configuration
// differs from 3.1's only where authFilters says.
const fabric25 = "2.5"

// fabricVersion is f's Fabric release, its default filled in.
func fabricVersion(f *apis.FabricSpec) string {
	if f == nil || f.Version == "" {
		return apis.DefaultFabricVersion
	}
	return f.Version
}

// state is core.yaml's ledger.state: LevelDB, or CouchDB with the
// credentials' placeholders.
func (c peerConfig) state() map[string]any {
	if c.couchDB == "" {
		return map[string]any{"stateDatabase": "goleveldb", "totalQueryLimit": 100000}
	}
	return map[string]any{
		"stateDatabase":   "CouchDB",
		"totalQueryLimit": 100000,
		// Fabric's defaults (its sample core.yaml): the peer reads no
		// default for a key that is missing.
		"couchDBConfig": map[string]any{
			"couchDBAddress":        c.couchDB,
			"username":              placeholderUser,
			"password":              placeholderPassword,
			"maxRetries":            3,
			"maxRetriesOnStartup":   10,
			"requestTimeout":        "35s",
			"internalQueryLimit":    1000,
			"maxBatchUpdateSize":    1000,
			"createGlobalChangesDB": false,
			"cacheSize":             64,
		},
	}
}

// ordererConfig is an orderer's orderer.yaml.
type ordererConfig struct {
	mspID string
	addrs addrs
	// bft: the channel runs SmartBFT, which keeps its write-ahead log
	// in Consensus.WALDir (and reads no SnapDir).
	bft bool
}

func (c ordererConfig) yaml() ([]byte, error) {
	tls := func(name string) string { return dirTLS + "/" + name }
	doc := map[string]any{
		"General": map[string]any{
			"ListenAddress": c.addrs.listenHost,
			"ListenPort":    c.addrs.ports[PortListen],
			"TLS": map[string]any{
				"Enabled":            true,
				"PrivateKey":         tls("server.key"),
				"Certificate":        tls("server.crt"),
				"RootCAs":            []string{tls("ca.crt")},
				"ClientAuthRequired": false,
			},
			"Keepalive": map[string]any{"ServerMinInterval": "60s", "ServerInterval": "7200s", "ServerTimeout": "20s"},
			// Raft runs on the listen port; the orderer dials the other
			// consenters with its TLS certificate.
			"Cluster": map[string]any{
				"SendBufferSize":    100,
				"ClientCertificate": tls("server.crt"),
				"ClientPrivateKey":  tls("server.key"),
			},
			// No system channel: channels come through the channel
			// participation API.
			"BootstrapMethod": "none",
			"LocalMSPDir":     dirMSP,
			"LocalMSPID":      c.mspID,
			"BCCSP":           bccsp(),
			"Authentication":  map[string]any{"TimeWindow": "15m"},
		},
		"FileLedger": map[string]any{"Location": dirData + "/ledger"},
		"Operations": map[string]any{
			"ListenAddress": c.addrs.listen(PortOperations),
			"TLS":           map[string]any{"Enabled": false},
		},
		"Metrics": map[string]any{"Provider": "prometheus"},
		// The channel participation API takes only clients whose TLS
		// certificate the orderer organisation's TLS CA signed: its admin.
		"Admin": map[string]any{
			"ListenAddress": c.addrs.listen(PortAdmin),
			"TLS": map[string]any{
				"Enabled":            true,
				"Certificate":        tls("server.crt"),
				"PrivateKey":         tls("server.key"),
				"RootCAs":            []string{tls("ca.crt")},
				"ClientAuthRequired": true,
				"ClientRootCAs":      []string{tls("ca.crt")},
			},
		},
		"ChannelParticipation": map[string]any{"Enabled": true, "MaxRequestBodySize": "1 MB"},
		"Consensus": map[string]any{
			"WALDir":  dirData + "/etcdraft/wal",
			"SnapDir": dirData + "/etcdraft/snapshot",
		},
	}
	if c.bft {
		doc["Consensus"] = map[string]any{"WALDir": dirData + "/smartbft/wal"}
	}
	return yaml.Marshal(doc)
}

// bccsp is Fabric's software crypto provider: keys from the local MSP's
// keystore.
func bccsp() map[string]any {
	return map[string]any{
		"Default": "SW",
		"SW":      map[string]any{"Hash": "SHA2", "Security": 256},
	}
}
