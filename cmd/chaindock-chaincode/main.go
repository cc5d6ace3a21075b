// Command chaindock-chaincode serves one of ChainDock's built-in chaincode
// templates as chaincode-as-a-service: a gRPC server that a Fabric peer
// dials, at the address the package's connection.json names.
//
//	chaindock-chaincode --contract notary --id notary_1.0:<hash> --address 0.0.0.0:9999
//
// One process can serve several templates, each under its own package ID
// at its own address, with --serve CONTRACT=ID@HOST:PORT once per server,
// as a Fabric network's chaincode host does:
//
//	chaindock-chaincode --serve notary=notary_1.0:<hash>@127.0.0.1:9998 \
//	    --serve asset=asset_1.0:<hash>@127.0.0.1:9999
//
// Each flag can come from the environment instead, with the names Fabric's
// samples use: CHAINCODE_ID, CHAINCODE_SERVER_ADDRESS, CHAINCODE_CONTRACT,
// CHAINCODE_TLS_KEY, CHAINCODE_TLS_CERT and CHAINCODE_CLIENT_CA_CERT (the
// TLS ones are PEM file paths). A flag wins over the environment.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"

	"github.com/chaindock/chaindock/internal/chain/fabric/templates"
)

// Environment variables read when the matching flag is not given.
const (
	EnvID       = "CHAINCODE_ID"
	EnvAddress  = "CHAINCODE_SERVER_ADDRESS"
	EnvContract = "CHAINCODE_CONTRACT"
	EnvTLSKey   = "CHAINCODE_TLS_KEY"
	EnvTLSCert  = "CHAINCODE_TLS_CERT"
	EnvClientCA = "CHAINCODE_CLIENT_CA_CERT"
)

type config struct {
	id, address, contract string
	// serves are the --serve flags, in order.
	serves                    []serve
	tlsKey, tlsCert, clientCA string
}

// serve is one chaincode server: a template under a package ID at an
// address.
type serve struct {
	contract, id, address string
}

// servers are the chaincode servers c asks for: the one --id, --address
// and --contract describe, if any, then each --serve.
func (c config) servers() []serve {
	var out []serve
	if c.id != "" || c.address != "" || c.contract != "" {
		out = append(out, serve{contract: c.contract, id: c.id, address: c.address})
	}
	return append(out, c.serves...)
}

// serveFlag collects repeated --serve CONTRACT=ID@HOST:PORT flags.
type serveFlag struct{ list *[]serve }

func (f serveFlag) String() string { return "" }

func (f serveFlag) Set(v string) error {
	contract, rest, ok := strings.Cut(v, "=")
	// A package ID has no '@'; the address is after the last one.
	at := strings.LastIndex(rest, "@")
	if !ok || contract == "" || at <= 0 || at == len(rest)-1 {
		return fmt.Errorf("%q is not CONTRACT=ID@HOST:PORT", v)
	}
	*f.list = append(*f.list, serve{contract: contract, id: rest[:at], address: rest[at+1:]})
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "chaindock-chaincode:", err)
		return 2
	}
	var servers []*shim.ChaincodeServer
	for _, sv := range cfg.servers() {
		server, err := newServer(cfg, sv)
		if err != nil {
			fmt.Fprintln(stderr, "chaindock-chaincode:", err)
			return 1
		}
		servers = append(servers, server)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	failed := make(chan error, len(servers))
	for i, server := range servers {
		sv := cfg.servers()[i]
		log.Info("serving chaincode", "contract", sv.contract, "chaincode_id", sv.id, "address", sv.address, "tls", cfg.tlsKey != "", "client_auth", cfg.clientCA != "")
		// Start returns only when the server fails.
		go func() { failed <- fmt.Errorf("%s at %s: %w", sv.contract, sv.address, server.Start()) }()
	}
	// One server down is the whole program down, so that its supervisor
	// restarts it rather than leaving a chaincode unserved.
	log.Error("chaincode server stopped", "err", <-failed)
	return 1
}

func parseConfig(args []string, getenv func(string) string, output io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("chaindock-chaincode", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&c.id, "id", getenv(EnvID), "chaincode package ID, label:hash, as the peer reports it ($"+EnvID+")")
	fs.StringVar(&c.address, "address", getenv(EnvAddress), "host:port to listen on ($"+EnvAddress+")")
	fs.StringVar(&c.contract, "contract", getenv(EnvContract), "template to serve: "+strings.Join(templates.Names(), " or ")+" ($"+EnvContract+")")
	fs.StringVar(&c.tlsKey, "tls-key", getenv(EnvTLSKey), "PEM file of the server's TLS key; with --tls-cert, serve TLS ($"+EnvTLSKey+")")
	fs.StringVar(&c.tlsCert, "tls-cert", getenv(EnvTLSCert), "PEM file of the server's TLS certificate ($"+EnvTLSCert+")")
	fs.StringVar(&c.clientCA, "tls-client-ca", getenv(EnvClientCA), "PEM file of the CAs that sign the peers' client certificates; when set, peers must present one ($"+EnvClientCA+")")
	fs.Var(serveFlag{&c.serves}, "serve", "CONTRACT=ID@HOST:PORT: serve a template under a package ID at an address as well; repeat for more servers")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var problems []string
	// Without --serve, --id, --address and --contract are the one server;
	// with it, they add one only when one of them is given.
	if len(c.serves) == 0 || c.id != "" || c.address != "" || c.contract != "" {
		if c.id == "" {
			problems = append(problems, "--id (or $"+EnvID+") is required: the package ID the peer gives the installed package")
		}
		if c.address == "" {
			problems = append(problems, "--address (or $"+EnvAddress+") is required")
		} else if _, port, err := net.SplitHostPort(c.address); err != nil || port == "" {
			problems = append(problems, fmt.Sprintf("--address %q is not host:port", c.address))
		}
		if c.contract == "" {
			problems = append(problems, "--contract (or $"+EnvContract+") is required: "+strings.Join(templates.Names(), " or "))
		}
	}
	for _, sv := range c.serves {
		if _, port, err := net.SplitHostPort(sv.address); err != nil || port == "" {
			problems = append(problems, fmt.Sprintf("--serve %s: %q is not host:port", sv.contract, sv.address))
		}
	}
	addrs := map[string]bool{}
	for _, sv := range c.servers() {
		if sv.address != "" && addrs[sv.address] {
			problems = append(problems, fmt.Sprintf("address %s is served twice", sv.address))
		}
		addrs[sv.address] = true
	}
	if (c.tlsKey == "") != (c.tlsCert == "") {
		problems = append(problems, "--tls-key and --tls-cert go together")
	}
	if c.clientCA != "" && c.tlsKey == "" {
		problems = append(problems, "--tls-client-ca needs --tls-key and --tls-cert")
	}
	if len(problems) > 0 {
		return c, errors.New(strings.Join(problems, "; "))
	}
	return c, nil
}

func newServer(c config, sv serve) (*shim.ChaincodeServer, error) {
	cc, err := templates.New(sv.contract)
	if err != nil {
		return nil, err
	}
	props := shim.TLSProperties{Disabled: c.tlsKey == ""}
	for _, f := range []struct {
		flag, path string
		dst        *[]byte
	}{{"--tls-key", c.tlsKey, &props.Key}, {"--tls-cert", c.tlsCert, &props.Cert}, {"--tls-client-ca", c.clientCA, &props.ClientCACerts}} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.flag, err)
		}
		*f.dst = b
	}
	return &shim.ChaincodeServer{CCID: sv.id, Address: sv.address, CC: cc, TLSProps: props}, nil
}
