// Command chaindock-chaincode serves one of ChainDock's built-in chaincode
// templates as chaincode-as-a-service: a gRPC server that a Fabric peer
// dials, at the address the package's connection.json names.
//
//	chaindock-chaincode --contract notary --id notary_1.0:<hash> --address 0.0.0.0:9999
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
	id, address, contract     string
	tlsKey, tlsCert, clientCA string
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
	server, err := newServer(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "chaindock-chaincode:", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	log.Info("serving chaincode", "contract", cfg.contract, "chaincode_id", cfg.id, "address", cfg.address, "tls", cfg.tlsKey != "", "client_auth", cfg.clientCA != "")
	// Start returns only when the server fails.
	if err := server.Start(); err != nil {
		log.Error("chaincode server stopped", "err", err)
		return 1
	}
	return 0
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
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var problems []string
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

func newServer(c config) (*shim.ChaincodeServer, error) {
	cc, err := templates.New(c.contract)
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
	return &shim.ChaincodeServer{CCID: c.id, Address: c.address, CC: cc, TLSProps: props}, nil
}
