package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-gateway/pkg/hash"
	"github.com/hyperledger/fabric-gateway/pkg/identity"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	gatewaypb "github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	mspb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
	cdclient "github.com/chaindock/chaindock/internal/client"
)

// TestFabricIdentity runs one orderer and one organisation of one peer
// with the notarisation chaincode, and enrols application identities
// through the API: app1, whose key the platform makes and keeps, signs a
// notarisation sent through ChainDock's gateway (the committed
// transaction's creator is app1's certificate); app2, enrolled from a
// certificate signing request made here, signs a notarisation sent with
// Fabric's own Go SDK straight to the peer's Gateway service, with the
// endpoint and TLS CA the enrolment returned. A call naming app2 through
// ChainDock's gateway, which does not have its key, is refused; once app2
// is removed and revoked the peer refuses its SDK submissions; a call
// naming app1 once it is removed is refused.
func TestFabricIdentity(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "38300-38399", "--probe-interval", "500ms")
	c := srv.Client

	const name, channel = "fid", "ids"
	n, _ := applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
  fabric: {orderers: 1, channel: `+channel+", templates: true}\n", 90*time.Second)
	base := "/api/v1/networks/" + name
	var notary api.Contract
	if err := c.Do(ctx, http.MethodPost, base+"/contracts", []byte(`{"name":"notary","package":"builtin/fabric-notary@1.0.0"}`), "application/json", &notary); err != nil {
		t.Fatal(err)
	}
	t.Logf("notary deployed at block %d", notary.Height)

	// A call naming no identity is signed by the organisation's built-in
	// application identity, a client: the channel's Writers admit it.
	builtin := notarise(t, c, name, "", "the built-in identity's")
	if ou := builtin.cert.Subject.OrganizationalUnit; builtin.mspID != "Org1MSP" || !slices.Equal(ou, []string{"client"}) || !strings.HasPrefix(builtin.cert.Subject.CommonName, fabric.AppName+"@") {
		t.Fatalf("a call naming no identity was signed by %s of %s (OUs %v); want the built-in application identity, a client", builtin.cert.Subject.CommonName, builtin.mspID, ou)
	}
	t.Logf("a call naming no identity: transaction %s signed by %s (OU client)", builtin.hash, builtin.cert.Subject.CommonName)

	// app1: the platform makes the key.
	start := time.Now()
	app1, err := c.EnrollIdentity(ctx, name, api.IdentityRequest{Organization: "org1", Name: "app1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("app1 enrolled in %.2fs: %s of %s, key held %v, peers %+v", time.Since(start).Seconds(), app1.Name, app1.MSPID, app1.KeyHeld, app1.Peers)
	app1Cert, err := pki.ParseCertPEM([]byte(app1.Certificate))
	if err != nil || app1.PrivateKey == "" || !app1.KeyHeld || !slices.Equal(app1Cert.Subject.OrganizationalUnit, []string{"client"}) || app1Cert.Subject.CommonName != "app1" {
		t.Fatalf("app1: certificate %v, key returned %v, held %v", err, app1.PrivateKey != "", app1.KeyHeld)
	}
	tx1 := notarise(t, c, name, "app1", "app1's")
	if !tx1.cert.Equal(app1Cert) || tx1.mspID != "Org1MSP" {
		t.Fatalf("the transaction naming app1 was signed by %s of %s; want app1's certificate", tx1.cert.Subject.CommonName, tx1.mspID)
	}
	t.Logf("through ChainDock's gateway as app1: transaction %s, whose creator is app1's certificate", tx1.hash)

	// app2: from a certificate signing request; the key stays here.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "app2"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	app2, err := c.EnrollIdentity(ctx, name, api.IdentityRequest{Organization: "org1", Name: "app2",
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	if err != nil {
		t.Fatal(err)
	}
	if app2.PrivateKey != "" || app2.KeyHeld || len(app2.Peers) != 1 || len(app2.TLSCACertificates) == 0 {
		t.Fatalf("app2: %+v; want no key, one peer, the TLS CA", app2)
	}
	app2Cert, err := pki.ParseCertPEM([]byte(app2.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	if !app2Cert.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Fatal("app2's certificate is not for the request's key")
	}
	// ChainDock's gateway cannot sign as app2.
	doc := sha256.Sum256([]byte("signed elsewhere " + time.Now().String()))
	s, err := submitTx(ctx, c, name, fmt.Appendf(nil, `{"chaincode":"notary","function":"Notarize","args":[%q,"x"],"identity":"app2"}`, hex.EncodeToString(doc[:])))
	if err != nil {
		t.Fatal(err)
	}
	if s.status != http.StatusBadRequest || !strings.Contains(s.problem.Detail, "certificate signing request") {
		t.Fatalf("a call naming app2 through the gateway: HTTP %d %+v; want 400 saying the key is not held", s.status, s.problem)
	}
	t.Logf("as expected: %s", s.problem.Detail)

	// Fabric's own SDK, with app2's key and what the enrolment returned.
	peer := app2.Peers[0]
	contract := sdkContract(t, app2, app2Cert, key, channel)
	sdkDoc := hex.EncodeToString(doc[:])
	start = time.Now()
	if _, err := contract.SubmitTransaction("Notarize", sdkDoc, "signed by app2 with Fabric's SDK"); err != nil {
		t.Fatalf("submit with Fabric's SDK as app2 to %s: %v", peer.Endpoint, err)
	}
	t.Logf("submitted with Fabric's SDK as app2 to %s and committed in %.2fs", peer.Endpoint, time.Since(start).Seconds())
	got, err := contract.EvaluateTransaction("Get", sdkDoc)
	if err != nil {
		t.Fatal(err)
	}
	var rec notaryRecord
	if err := json.Unmarshal(got, &rec); err != nil || rec.Hash != sdkDoc || rec.Submitter != "Org1MSP" || !strings.Contains(rec.Note, "app2") {
		t.Fatalf("Get with Fabric's SDK: %s (%v); want the record, submitter Org1MSP", got, err)
	}
	// The explorer has it, created by app2.
	var tx api.Tx
	if err := pollJSON(t, c, base+"/transactions/"+strings.ToUpper(rec.TxID), &tx); err != nil {
		t.Fatalf("explorer: %s: %v", rec.TxID, err)
	}
	if cert, msp := creator(t, tx.Data); !cert.Equal(app2Cert) || msp != "Org1MSP" || tx.Code != 0 {
		t.Fatalf("transaction %s: code %d, creator %s of %s; want valid, app2's", rec.TxID, tx.Code, cert.Subject.CommonName, msp)
	}
	t.Logf("Get with Fabric's SDK: %+v; the explorer's transaction %s was created by app2", rec, tx.Hash)

	// Renewal. app1, whose key the platform holds: a new certificate for
	// that key, the one it replaces revoked first; the gateway signs with
	// the new one, and the old one, with app1's key, is refused.
	key1, err := pki.ParseKeyPEM([]byte(app1.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	renewed1, err := c.RenewIdentity(ctx, name, "org1", "app1", api.RenewRequest{RevokePrevious: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("app1 renewed, its previous certificate revoked, in %.2fs; it expires %s", time.Since(start).Seconds(), renewed1.NotAfter)
	app1New, err := pki.ParseCertPEM([]byte(renewed1.Certificate))
	if err != nil || app1New.SerialNumber.Cmp(app1Cert.SerialNumber) == 0 || !app1New.PublicKey.(*ecdsa.PublicKey).Equal(&key1.PublicKey) || renewed1.PrivateKey != "" {
		t.Fatalf("app1 renewed: %v; want a new certificate for its key, the key not shown", err)
	}
	if tx := notarise(t, c, name, "app1", "app1 renewed"); !tx.cert.Equal(app1New) {
		t.Fatalf("a call naming app1 after its renewal was signed by certificate %s; want the new one %s", tx.cert.SerialNumber, app1New.SerialNumber)
	}
	oldDoc := sha256.Sum256([]byte("app1's previous certificate " + time.Now().String()))
	_, err = sdkContract(t, app1, app1Cert, key1, channel).SubmitTransaction("Notarize", hex.EncodeToString(oldDoc[:]), "signed with app1's revoked certificate")
	if why := sdkError(err); !strings.Contains(why, "access denied") {
		t.Fatalf("Fabric's SDK with app1's previous certificate after the renewal revoked it: %s; want access denied", why)
	}
	t.Logf("as expected, app1's previous certificate: %s", sdkError(err))
	// app2, from a CSR: a new request for a new key; without
	// revokePrevious its previous certificate stays valid.
	key2, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "app2"}}, key2)
	if err != nil {
		t.Fatal(err)
	}
	renewed2, err := c.RenewIdentity(ctx, name, "org1", "app2", api.RenewRequest{CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	if err != nil {
		t.Fatal(err)
	}
	app2New, err := pki.ParseCertPEM([]byte(renewed2.Certificate))
	if err != nil || !app2New.PublicKey.(*ecdsa.PublicKey).Equal(&key2.PublicKey) {
		t.Fatalf("app2 renewed: %v; want a certificate for the new request's key", err)
	}
	renewedContract := sdkContract(t, app2, app2New, key2, channel)
	for i, ct := range []*client.Contract{renewedContract, contract} {
		d := sha256.Sum256(fmt.Appendf(nil, "app2 renewed %d %s", i, time.Now()))
		if _, err := ct.SubmitTransaction("Notarize", hex.EncodeToString(d[:]), "app2 renewed"); err != nil {
			t.Fatalf("Fabric's SDK as app2 after its renewal, with its %s certificate: %s", []string{"new", "previous"}[i], sdkError(err))
		}
	}
	t.Logf("app2 renewed for a new key: Fabric's SDK submits with the new certificate, and with the previous one, not revoked")
	// From here app2 signs with its new certificate, which its removal
	// revokes.
	contract = renewedContract

	// The CLI: enrol with the key written to a directory, list, remove.
	cl := cli{t: t, bin: filepath.Join(binDir, "chaindock"), dataDir: dataDir}
	dir := filepath.Join(t.TempDir(), "app3")
	cl.ok("identities", "enroll", name, "org1", "app3", "--out", dir)
	keyInfo, err := os.Stat(filepath.Join(dir, "key.pem"))
	if err != nil || keyInfo.Mode().Perm() != 0o600 {
		t.Fatalf("the CLI's key.pem: %v %v; want mode 0600", err, keyInfo)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if cert, err := pki.ParseCertPEM(certPEM); err != nil || cert.Subject.CommonName != "app3" {
		t.Fatalf("the CLI's cert.pem: %v", err)
	}
	out := cl.ok("identities", "renew", name, "org1", "app3", "--out", dir)
	renewedPEM, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if cert, err := pki.ParseCertPEM(renewedPEM); err != nil || cert.Subject.CommonName != "app3" || string(renewedPEM) == string(certPEM) || !strings.Contains(out, "certificate written to") {
		t.Fatalf("chaindock identities renew --out: %v, cert.pem replaced %v:\n%s", err, string(renewedPEM) != string(certPEM), out)
	}
	cl.fails("csr: is required", "identities", "renew", name, "org1", "app2")
	listed := cl.ok("identities", "list", name)
	for _, want := range []string{"app1", "app2", "app3", "no (CSR)", "Org1MSP", "EXPIRES", time.Now().AddDate(1, 0, 0).Format("2006-01")} {
		if !strings.Contains(listed, want) {
			t.Fatalf("chaindock identities list does not say %q:\n%s", want, listed)
		}
	}
	t.Logf("chaindock identities list:\n%s", listed)
	cl.fails(`"org9" is no peer organisation`, "identities", "enroll", name, "org9", "app4")
	if out := cl.ok("identities", "delete", name, "org1", "app3", "--revoke=false"); !strings.Contains(out, "removed") {
		t.Fatalf("chaindock identities delete: %q", out)
	}

	// The list shows both, without keys; app1 removed cannot sign.
	ids, err := c.ListIdentities(ctx, name, "org1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0].PrivateKey != "" || ids[1].PrivateKey != "" {
		t.Fatalf("list: %+v", ids)
	}
	// app2 removed, and revoked on the channel: Fabric's SDK, which has
	// its key, is refused from then on.
	start = time.Now()
	if err := c.DeleteIdentity(ctx, name, "org1", "app2", true); err != nil {
		t.Fatal(err)
	}
	t.Logf("app2 revoked on the channel and removed in %.2fs", time.Since(start).Seconds())
	late := sha256.Sum256([]byte("after the revocation " + time.Now().String()))
	_, err = contract.SubmitTransaction("Notarize", hex.EncodeToString(late[:]), "signed by a revoked app2")
	why := sdkError(err)
	if !strings.Contains(why, "access denied") {
		t.Fatalf("app2 submitting with Fabric's SDK after its revocation: %s; want access denied", why)
	}
	// The peer tells the client only "access denied"; its log says why.
	revoked := false
	for deadline := time.Now().Add(10 * time.Second); !revoked && time.Now().Before(deadline); {
		var logs strings.Builder
		if err := c.Logs(ctx, name, peer.Name, 300, false, &logs); err != nil {
			t.Fatal(err)
		}
		revoked = strings.Contains(logs.String(), "The certificate has been revoked")
		if !revoked {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !revoked {
		t.Fatalf("%s refused app2 (%s), but its log does not say the certificate is revoked", peer.Name, why)
	}
	t.Logf("as expected, app2 after its revocation: %s (%s's log: the certificate has been revoked)", why, peer.Name)
	var ans api.QueryAnswer
	q := url.Values{"path": {"/notary/Get"}, "data": {fmt.Sprintf("[%q]", hex.EncodeToString(late[:]))}}
	if err := getJSON(ctx, c, base+"/query?"+q.Encode(), &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Code == 0 || !strings.Contains(ans.Log, "not notarised") {
		t.Fatalf("the document app2 sent after its revocation: %+v; want not notarised", ans)
	}
	// The organisation's other identities are not affected.
	after := notarise(t, c, name, "", "after a revocation")
	t.Logf("the built-in identity still signs: transaction %s", after.hash)

	if err := c.DeleteIdentity(ctx, name, "org1", "app1", true); err != nil {
		t.Fatal(err)
	}
	s, err = submitTx(ctx, c, name, fmt.Appendf(nil, `{"chaincode":"notary","function":"Get","args":[%q],"identity":"app1"}`, sdkDoc))
	if err != nil {
		t.Fatal(err)
	}
	if s.status != http.StatusBadRequest || !strings.Contains(s.problem.Detail, `"app1" is no identity enrolled`) {
		t.Fatalf("a call naming app1 after its removal: HTTP %d %+v; want 400", s.status, s.problem)
	}
	t.Logf("after removal, as expected: %s", s.problem.Detail)

	deleteFabricNetwork(t, srv, dataDir, n)
}

// sdkContract is the notarisation chaincode on channel through Fabric's
// own Go SDK, connected straight to the first peer an enrolment
// returned, signing as cert with key; the test closes it.
func sdkContract(t *testing.T, enrolled *api.Identity, cert *x509.Certificate, key *ecdsa.PrivateKey, channel string) *client.Contract {
	t.Helper()
	peer := enrolled.Peers[0]
	roots := x509.NewCertPool()
	for _, p := range enrolled.TLSCACertificates {
		roots.AppendCertsFromPEM([]byte(p))
	}
	conn, err := grpc.NewClient(peer.Endpoint, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: peer.TLSHostName})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	id, err := identity.NewX509Identity(enrolled.MSPID, cert)
	if err != nil {
		t.Fatal(err)
	}
	sign, err := identity.NewPrivateKeySign(key)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := client.Connect(id, client.WithSign(sign), client.WithHash(hash.SHA256), client.WithClientConnection(conn),
		client.WithEndorseTimeout(30*time.Second), client.WithSubmitTimeout(30*time.Second), client.WithCommitStatusTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	return gw.GetNetwork(channel).GetContract("notary")
}

// sdkError is an error of Fabric's SDK with the peers' reasons, which are
// in the gRPC status's details; "no error" for nil.
func sdkError(err error) string {
	if err == nil {
		return "no error"
	}
	why := err.Error()
	for _, d := range status.Convert(err).Details() {
		if ed, ok := d.(*gatewaypb.ErrorDetail); ok {
			why += "; " + ed.GetAddress() + ": " + ed.GetMessage()
		}
	}
	return why
}

// notarised is a committed notarisation and who signed it.
type notarised struct {
	hash  string
	cert  *x509.Certificate
	mspID string
}

// notarise notarises a new document through ChainDock's gateway, signed
// as identity (none: the default), waits for its commit, and reads its
// creator from the explorer's copy of the transaction.
func notarise(t *testing.T, c *cdclient.Client, network, ident, note string) notarised {
	t.Helper()
	doc := sha256.Sum256([]byte(note + " " + time.Now().String()))
	body := map[string]any{"chaincode": "notary", "function": "Notarize", "args": []string{hex.EncodeToString(doc[:]), note}}
	if ident != "" {
		body["identity"] = ident
	}
	b, _ := json.Marshal(body)
	s, err := submitTx(t.Context(), c, network, b)
	if err != nil {
		t.Fatal(err)
	}
	if s.status != http.StatusOK || s.receipt["committed"] != true {
		t.Fatalf("notarise as %q: HTTP %d %v %+v; want 200, committed", ident, s.status, s.receipt, s.problem)
	}
	h, _ := s.receipt["hash"].(string)
	var tx api.Tx
	if err := pollJSON(t, c, "/api/v1/networks/"+network+"/transactions/"+url.PathEscape(h), &tx); err != nil {
		t.Fatalf("explorer: %s: %v", h, err)
	}
	if tx.Code != 0 {
		t.Fatalf("transaction %s: code %d %s; want valid", h, tx.Code, tx.Log)
	}
	cert, msp := creator(t, tx.Data)
	return notarised{hash: h, cert: cert, mspID: msp}
}

// creator is the certificate and MSP ID of the creator of a transaction
// envelope, from its signature header.
func creator(t *testing.T, env []byte) (*x509.Certificate, string) {
	t.Helper()
	var e cb.Envelope
	var p cb.Payload
	var sh cb.SignatureHeader
	var id mspb.SerializedIdentity
	if err := proto.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(e.GetPayload(), &p); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(p.GetHeader().GetSignatureHeader(), &sh); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(sh.GetCreator(), &id); err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertPEM(id.GetIdBytes())
	if err != nil {
		t.Fatalf("creator of the transaction: %v", err)
	}
	return cert, id.GetMspid()
}
