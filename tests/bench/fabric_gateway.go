package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	fgw "github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-gateway/pkg/hash"
	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
	"github.com/chaindock/chaindock/internal/client"
)

const (
	// fabricQueries are the measured queries of each series, after
	// fabricWarmUp unmeasured ones.
	fabricQueries = 200
	fabricWarmUp  = 10
	// fabricWorkers notarise fabricPerWorker documents each, side by side.
	fabricWorkers   = 8
	fabricPerWorker = 10
)

// benchFabricGateway measures calls to the notarisation chaincode of
// running network name (fabricToChaincode's, channel trade): queries
// through ChainDock's gateway against the same query with Fabric's own
// SDK straight to a peer's Gateway service, and notarisations committed
// per second through ChainDock's gateway.
func benchFabricGateway(ctx context.Context, c *client.Client, name string) error {
	base := "/api/v1/networks/" + name
	doc := sha256.Sum256([]byte("bench " + time.Now().String()))
	docHex := hex.EncodeToString(doc[:])
	if err := notariseFabric(ctx, c, base, docHex); err != nil {
		return err
	}

	// Queries through the gateway, signed by org1's built-in identity.
	q := base + "/query?" + url.Values{"path": {"/notary/Get"}, "data": {fmt.Sprintf("[%q]", docHex)}}.Encode()
	viaGateway := func(ctx context.Context) error {
		var ans api.QueryAnswer
		if err := c.Do(ctx, http.MethodGet, q, nil, "", &ans); err != nil {
			return err
		}
		if ans.Code != 0 {
			return fmt.Errorf("query: code %d: %s", ans.Code, ans.Log)
		}
		return nil
	}
	gw, err := sequential(ctx, viaGateway)
	if err != nil {
		return fmt.Errorf("queries through the gateway: %w", err)
	}

	// The same query with Fabric's SDK, as an identity of org1 enrolled
	// through the API, straight to org1's first peer.
	id, err := c.EnrollIdentity(ctx, name, api.IdentityRequest{Organization: "org1", Name: "bench"})
	if err != nil {
		return err
	}
	contract, closeSDK, err := sdkNotary(id)
	if err != nil {
		return err
	}
	defer closeSDK()
	viaSDK := func(context.Context) error {
		_, err := contract.EvaluateTransaction("Get", docHex)
		return err
	}
	sdk, err := sequential(ctx, viaSDK)
	if err != nil {
		return fmt.Errorf("queries with Fabric's SDK: %w", err)
	}
	how := fmt.Sprintf("%d sequential evaluations of the notarisation chaincode's Get (after %d unmeasured) on 2 organisations x 2 peers", fabricQueries, fabricWarmUp)
	gwHow := "GET /api/v1/networks/NAME/query?path=/notary/Get (SQLite store; the server signs as org1's application identity and asks a peer's Gateway service)"
	emit(figure{Metric: "fabric_gateway_query_p50_ms", Value: pct(gw, 0.5), Unit: "ms", Note: how + ", " + gwHow + fmt.Sprintf("; p99 %.1f ms", pct(gw, 0.99))})
	emit(figure{Metric: "fabric_sdk_query_p50_ms", Value: pct(sdk, 0.5), Unit: "ms",
		Note: how + ", with Fabric's Go SDK (fabric-gateway v1.7.0) straight to org1-peer-0" + fmt.Sprintf("; p99 %.1f ms", pct(sdk, 0.99))})

	// Notarisations from fabricWorkers clients at once, each waiting for
	// its commit before the next.
	batches := make([][][]byte, fabricWorkers)
	for w := range batches {
		for i := range fabricPerWorker {
			d := sha256.Sum256(fmt.Appendf(nil, "bench %d %d %s", w, i, time.Now()))
			batches[w] = append(batches[w], []byte(hex.EncodeToString(d[:])))
		}
	}
	lat, took, err := perWorker(ctx, batches, func(ctx context.Context, _ int, d []byte) error {
		return notariseFabric(ctx, c, base, string(d))
	})
	if err != nil {
		return fmt.Errorf("notarisations through the gateway: %w", err)
	}
	emit(figure{Metric: "fabric_gateway_notarise_tps", Value: round(float64(len(lat)) / took.Seconds()), Unit: "tx/s",
		Note: fmt.Sprintf("%d notarisations from %d concurrent clients through POST .../transactions?wait=commit, each endorsed by both organisations and committed before the client sends its next; 3 Raft orderers cutting a block every 2 s at most; p50 %.0f ms, p99 %.0f ms",
			len(lat), fabricWorkers, pct(lat, 0.5), pct(lat, 0.99))})
	return nil
}

// sequential runs call fabricWarmUp times, then fabricQueries times
// measured.
func sequential(ctx context.Context, call func(context.Context) error) ([]time.Duration, error) {
	var lat []time.Duration
	for i := range fabricWarmUp + fabricQueries {
		t0 := time.Now()
		if err := call(ctx); err != nil {
			return nil, err
		}
		if i >= fabricWarmUp {
			lat = append(lat, time.Since(t0))
		}
	}
	return lat, nil
}

// notariseFabric notarises document d through the gateway and waits for
// its commit.
func notariseFabric(ctx context.Context, c *client.Client, base, d string) error {
	body, err := json.Marshal(map[string]any{"chaincode": "notary", "function": "Notarize", "args": []string{d, "bench"}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var rc struct {
		Committed bool `json:"committed"`
		Code      int  `json:"code"`
	}
	if err := c.Do(ctx, http.MethodPost, base+"/transactions?wait=commit", body, "application/json", &rc); err != nil {
		return err
	}
	if !rc.Committed || rc.Code != 0 {
		return fmt.Errorf("notarisation of %s: committed %v, code %d", d, rc.Committed, rc.Code)
	}
	return nil
}

// sdkNotary is the notarisation chaincode on channel trade through
// Fabric's Go SDK, signing as enrolled identity id (whose key the
// platform made and returned), connected to the first of its peers.
func sdkNotary(id *api.Identity) (*fgw.Contract, func(), error) {
	cert, err := pki.ParseCertPEM([]byte(id.Certificate))
	if err != nil {
		return nil, nil, err
	}
	key, err := pki.ParseKeyPEM([]byte(id.PrivateKey))
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	for _, p := range id.TLSCACertificates {
		roots.AppendCertsFromPEM([]byte(p))
	}
	peer := id.Peers[0]
	conn, err := grpc.NewClient(peer.Endpoint, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: peer.TLSHostName})))
	if err != nil {
		return nil, nil, err
	}
	xid, err := identity.NewX509Identity(id.MSPID, cert)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	sign, err := identity.NewPrivateKeySign(key)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	gw, err := fgw.Connect(xid, fgw.WithSign(sign), fgw.WithHash(hash.SHA256), fgw.WithClientConnection(conn),
		fgw.WithEvaluateTimeout(30*time.Second))
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return gw.GetNetwork("trade").GetContract("notary"), func() { gw.Close(); conn.Close() }, nil
}
