package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	ab "github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/chaindock/chaindock/internal/api"
	"github.com/chaindock/chaindock/internal/chain/fabric"
	fchannel "github.com/chaindock/chaindock/internal/chain/fabric/channel"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
	"github.com/chaindock/chaindock/internal/client"
	"github.com/chaindock/chaindock/tests/framework"
)

// TestFabricExplorer deploys one orderer and two organisations of one
// peer each, waits until the explorer has indexed the channel from a
// peer, and checks through the API that the channel's genesis block is
// explorer height 1 (Fabric's block 0) with the header hash of the block
// every node joined with, that its config transaction is found by its
// ID, that the two organisations' anchor peer updates are the config
// transactions of heights 2 and 3, and that the gateway refuses
// application transactions with a problem rather than an error of the
// server.
func TestFabricExplorer(t *testing.T) {
	binDir, dataDir := setup(t)
	fabBin := fabricBin(t)
	ctx := t.Context()
	srv := startFabricServer(t, binDir, dataDir, fabBin, "--port-range", "36600-36699", "--probe-interval", "500ms")
	c := srv.Client

	const name, channel = "fex", "ledger"
	n, applied := applyFabric(t, c, name, `  organizations:
    - {name: org1, peers: 1}
    - {name: org2, peers: 1}
  fabric: {orderers: 1, channel: `+channel+"}\n", 90*time.Second)
	running := time.Now()
	t.Logf("deployed: 1 orderer and 2 peers on channel %s, Running %.1fs after apply", channel, running.Sub(applied).Seconds())

	// The genesis block as the plan made it, from a node's home.
	genesis := genesisBlock(t, dataDir, channel)
	wantHash := headerHash(t, genesis.Header)
	txID, txTime := configTx(t, genesis)

	base := "/api/v1/networks/" + name
	var st api.ExplorerStatus
	if err := framework.Poll(ctx, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		if err := getJSON(ctx, c, base+"/explorer", &st); err != nil {
			return false, err.Error()
		}
		return st.IndexedHeight >= 3, fmt.Sprintf("explorer %+v", st)
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("explorer indexed the genesis block and the two anchor peer updates %.1fs after the network ran (%.1fs after apply): %+v",
		time.Since(running).Seconds(), time.Since(applied).Seconds(), st)
	if st.IndexedHeight != 3 || st.ChainHeight != 3 || st.Lag != 0 {
		t.Errorf("explorer status %+v, want indexed and chain height 3 (the genesis block and two anchor peer updates), lag 0", st)
	}

	var page api.BlockList
	if err := getJSON(ctx, c, base+"/blocks", &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 3 || page.Next != "" {
		t.Fatalf("blocks %+v, want the genesis block and two anchor peer updates", page)
	}
	// Each organisation's admin set its anchor peer: a config update,
	// cut into a block of its own by the orderer.
	for i, h := range []int64{3, 2} {
		var blk struct {
			api.Block
			Txs []api.Tx `json:"transactions"`
		}
		if err := getJSON(ctx, c, fmt.Sprintf("%s/blocks/%d", base, h), &blk); err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		if page.Items[i].Height != h || blk.Proposer != "OrdererMSP/orderer-0.orderer."+name || len(blk.Txs) != 1 ||
			blk.Txs[0].Type != "CONFIG" || blk.Txs[0].Code != 0 {
			t.Errorf("block %d: %+v, want an anchor peer update: one valid CONFIG transaction, signed by orderer-0", h, blk)
		}
	}
	anchored := page.Items[0]
	b := page.Items[2]
	if b.Height != 1 || b.Hash != wantHash || b.NumTxs != 1 {
		t.Errorf("listed block %+v, want height 1, hash %s, 1 transaction", b, wantHash)
	}
	if d := b.Time.Sub(txTime); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("block time %s, want the config transaction's %s", b.Time, txTime)
	}

	for _, id := range []string{"1", wantHash, strings.ToLower(wantHash)} {
		var blk struct {
			api.Block
			Txs []api.Tx `json:"transactions"`
		}
		if err := getJSON(ctx, c, base+"/blocks/"+id, &blk); err != nil {
			t.Fatalf("block %s: %v", id, err)
		}
		if blk.Height != 1 || blk.Hash != wantHash || len(blk.Txs) != 1 {
			t.Fatalf("block %s: %+v, want the genesis block with its transaction", id, blk)
		}
		tx := blk.Txs[0]
		if tx.Hash != strings.ToUpper(txID) || tx.Height != 1 || tx.Index != 0 || tx.Code != 0 || tx.Type != "CONFIG" || len(tx.Data) == 0 {
			t.Errorf("block %s: transaction %s height %d index %d code %d type %q (%d bytes), want config transaction %s",
				id, tx.Hash, tx.Height, tx.Index, tx.Code, tx.Type, len(tx.Data), txID)
		}
	}
	var tx api.Tx
	if err := getJSON(ctx, c, base+"/transactions/"+txID, &tx); err != nil {
		t.Fatalf("transaction %s: %v", txID, err)
	}
	if tx.Hash != strings.ToUpper(txID) || tx.Height != 1 || tx.Type != "CONFIG" {
		t.Errorf("transaction %s: %+v", txID, tx)
	}
	// Fabric's block 3 does not exist yet: no transaction came.
	expectProblem(t, c, http.MethodGet, base+"/blocks/4", nil, http.StatusNotFound, "block 4")
	expectProblem(t, c, http.MethodGet, base+"/blocks/0", nil, http.StatusBadRequest, "height")

	// A fourth block: an endorser transaction no peer endorsed, which the
	// orderer orders (its own identity is a channel writer) and the peers
	// commit as invalid.
	env, txID2, sent := unendorsedTx(t, dataDir, channel)
	orderer, _ := framework.NodeByName(n, "orderer-0")
	broadcast(t, orderer.Endpoints[fabric.PortListen], dataDir, env)
	if err := framework.Poll(ctx, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		if err := getJSON(ctx, c, base+"/explorer", &st); err != nil {
			return false, err.Error()
		}
		return st.IndexedHeight >= 4, fmt.Sprintf("explorer %+v", st)
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("explorer indexed block 4 %.1fs after the transaction was broadcast (the orderer's batch timeout is %s): %+v",
		time.Since(sent).Seconds(), fchannel.DefaultBatchTimeout, st)
	if err := getJSON(ctx, c, base+"/blocks", &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 4 || page.Items[0].Height != 4 || page.Items[1].Hash != anchored.Hash || page.Items[3].Hash != wantHash {
		t.Fatalf("blocks %+v, want heights 4 to 1", page.Items)
	}
	// Fabric's block 3 holds the one transaction: its data hash is the
	// envelope's, its previous hash the second anchor update's block's.
	prev, _ := hex.DecodeString(anchored.Hash)
	data := sha256.Sum256(env)
	want2 := headerHash(t, &cb.BlockHeader{Number: 3, PreviousHash: prev, DataHash: data[:]})
	b2 := page.Items[0]
	if b2.Hash != want2 || b2.NumTxs != 1 || b2.Proposer != "OrdererMSP/orderer-0.orderer."+name {
		t.Errorf("block 4 %+v, want hash %s, 1 transaction, signed by OrdererMSP/orderer-0.orderer.%s", b2, want2, name)
	}
	if d := b2.Time.Sub(sent); d < -time.Second || d > time.Second {
		t.Errorf("block 4 time %s, want about %s when the transaction was made", b2.Time, sent)
	}
	if err := getJSON(ctx, c, base+"/transactions/"+txID2, &tx); err != nil {
		t.Fatalf("transaction %s: %v", txID2, err)
	}
	if tx.Hash != strings.ToUpper(txID2) || tx.Height != 4 || tx.Index != 0 || tx.Code == 0 ||
		tx.Log != pb.TxValidationCode(tx.Code).String() || tx.Type != "ENDORSER_TRANSACTION/basic" {
		t.Errorf("transaction %s: %+v, want an invalid endorser transaction of chaincode basic at height 4", txID2, tx)
	}
	if len(tx.Events) != 1 || tx.Events[0].Type != "Ping" || tx.Events[0].Contract != "basic" {
		t.Errorf("transaction %s: events %+v, want Ping from basic", txID2, tx.Events)
	}
	t.Logf("block 4: %s, signed by %s; transaction %s: code %d %s", b2.Hash, b2.Proposer, tx.Hash, tx.Code, tx.Log)

	// Applications' transactions are chaincode calls (see
	// fabric_gateway_test.go): other bodies and paths are refused.
	expectProblem(t, c, http.MethodPost, base+"/transactions", []byte("tx"), http.StatusBadRequest, `{"chaincode": name`)
	expectProblem(t, c, http.MethodGet, base+"/query?path=/state", nil, http.StatusBadRequest, "/chaincode/function")

	deleteFabricNetwork(t, srv, dataDir, n)
}

// expectProblem sends a request and checks that the server answers it
// with a problem document of status whose detail names want.
func expectProblem(t *testing.T, c *client.Client, method, path string, body []byte, status int, want string) {
	t.Helper()
	resp, err := c.Raw(t.Context(), method, path, body, "application/octet-stream")
	if err == nil {
		resp.Body.Close()
		t.Errorf("%s %s: HTTP %d, want %d", method, path, resp.StatusCode, status)
		return
	}
	var p *client.Error
	if !errors.As(err, &p) || p.Status != status || !strings.Contains(strings.ToLower(p.Detail), want) {
		t.Errorf("%s %s: %v, want a problem of HTTP %d naming %q", method, path, err, status, want)
		return
	}
	t.Logf("%s %s: HTTP %d: %s", method, path, p.Status, p.Detail)
}

// genesisBlock reads the genesis block of channel ch that the plan gave
// the nodes, from the first node home under dataDir that keeps it.
func genesisBlock(t *testing.T, dataDir, ch string) *cb.Block {
	t.Helper()
	var found string
	err := filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return err
		}
		if !d.IsDir() && d.Name() == ch+".block" && filepath.Base(filepath.Dir(p)) == "channel" {
			found = p
		}
		return nil
	})
	if err != nil || found == "" {
		t.Fatalf("no channel/%s.block under %s: %v", ch, dataDir, err)
	}
	raw, err := os.ReadFile(found)
	if err != nil {
		t.Fatal(err)
	}
	var b cb.Block
	if err := proto.Unmarshal(raw, &b); err != nil {
		t.Fatalf("%s: %v", found, err)
	}
	if b.GetHeader().GetNumber() != 0 || len(b.GetData().GetData()) != 1 {
		t.Fatalf("%s: block %d with %d transactions, want a genesis block", found, b.GetHeader().GetNumber(), len(b.GetData().GetData()))
	}
	return &b
}

// headerHash is a block header's hash as Fabric's protoutil computes
// it: SHA-256 of the DER sequence of number, previous hash and data hash.
func headerHash(t *testing.T, h *cb.BlockHeader) string {
	t.Helper()
	der, err := asn1.Marshal(struct {
		Number       *big.Int
		PreviousHash []byte
		DataHash     []byte
	}{new(big.Int).SetUint64(h.GetNumber()), h.GetPreviousHash(), h.GetDataHash()})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// configTx is the ID and time of a genesis block's config transaction.
func configTx(t *testing.T, b *cb.Block) (string, time.Time) {
	t.Helper()
	var env cb.Envelope
	var payload cb.Payload
	var ch cb.ChannelHeader
	if err := proto.Unmarshal(b.Data.Data[0], &env); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(env.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(payload.GetHeader().GetChannelHeader(), &ch); err != nil {
		t.Fatal(err)
	}
	if cb.HeaderType(ch.Type) != cb.HeaderType_CONFIG || len(ch.TxId) != 64 {
		t.Fatalf("genesis transaction of type %v with ID %q", cb.HeaderType(ch.Type), ch.TxId)
	}
	return ch.TxId, ch.Timestamp.AsTime()
}

// ordererHome is the home directory of the network's one orderer.
func ordererHome(t *testing.T, dataDir string) string {
	t.Helper()
	var found string
	err := filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return err
		}
		if !d.IsDir() && d.Name() == "orderer.yaml" {
			found = filepath.Dir(p)
		}
		return nil
	})
	if err != nil || found == "" {
		t.Fatalf("no orderer.yaml under %s: %v", dataDir, err)
	}
	return found
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unendorsedTx is an endorser transaction of channel ch calling chaincode
// basic, which emits event Ping, with no endorsement, signed by the
// orderer's own identity; it returns the envelope, its ID and when it was
// made.
func unendorsedTx(t *testing.T, dataDir, ch string) ([]byte, string, time.Time) {
	t.Helper()
	home := ordererHome(t, dataDir)
	certPEM, err := os.ReadFile(filepath.Join(home, "msp", pki.MSPSignCert))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(home, "msp", pki.MSPKey))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.ParseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	signer := configtx.SigningIdentity{Certificate: cert, PrivateKey: key, MSPID: "OrdererMSP"}
	creator := mustMarshal(t, &mb.SerializedIdentity{Mspid: "OrdererMSP", IdBytes: certPEM})
	nonce := make([]byte, 24)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	id := sha256.Sum256(append(append([]byte{}, nonce...), creator...))
	txID := hex.EncodeToString(id[:])
	now := time.Now()
	cc := &pb.ChaincodeID{Name: "basic"}
	shdr := mustMarshal(t, &cb.SignatureHeader{Creator: creator, Nonce: nonce})
	action := mustMarshal(t, &pb.ChaincodeAction{
		ChaincodeId: cc,
		Events:      mustMarshal(t, &pb.ChaincodeEvent{ChaincodeId: "basic", TxId: txID, EventName: "Ping", Payload: []byte("pong")}),
		Response:    &pb.Response{Status: 200},
	})
	txBytes := mustMarshal(t, &pb.Transaction{Actions: []*pb.TransactionAction{{
		Header: shdr,
		Payload: mustMarshal(t, &pb.ChaincodeActionPayload{Action: &pb.ChaincodeEndorsedAction{
			ProposalResponsePayload: mustMarshal(t, &pb.ProposalResponsePayload{ProposalHash: id[:], Extension: action}),
		}}),
	}}})
	payload := mustMarshal(t, &cb.Payload{
		Header: &cb.Header{
			ChannelHeader: mustMarshal(t, &cb.ChannelHeader{
				Type: int32(cb.HeaderType_ENDORSER_TRANSACTION), ChannelId: ch, TxId: txID,
				Timestamp: timestamppb.New(now),
				Extension: mustMarshal(t, &pb.ChaincodeHeaderExtension{ChaincodeId: cc}),
			}),
			SignatureHeader: shdr,
		},
		Data: txBytes,
	})
	sig, err := signer.Sign(rand.Reader, payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	return mustMarshal(t, &cb.Envelope{Payload: payload, Signature: sig}), txID, now
}

// broadcast hands an envelope to an orderer's AtomicBroadcast service and
// checks it took it.
func broadcast(t *testing.T, endpoint, dataDir string, env []byte) {
	t.Helper()
	if err := tryBroadcast(t, endpoint, dataDir, env); err != nil {
		t.Fatal(err)
	}
}

// tryBroadcast sends env to the orderer at endpoint, and returns its
// refusal as an error.
func tryBroadcast(t *testing.T, endpoint, dataDir string, env []byte) error {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		t.Fatalf("orderer endpoint %q", endpoint)
	}
	caPEM, err := os.ReadFile(filepath.Join(ordererHome(t, dataDir), "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no TLS CA certificate")
	}
	conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: u.Hostname(),
	})))
	if err != nil {
		return err
	}
	defer conn.Close()
	var e cb.Envelope
	if err := proto.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := ab.NewAtomicBroadcastClient(conn).Broadcast(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = stream.CloseSend() }()
	if err := stream.Send(&e); err != nil {
		return err
	}
	resp, err := stream.Recv()
	if err != nil {
		return err
	}
	if resp.GetStatus() != cb.Status_SUCCESS {
		return fmt.Errorf("broadcast: %s %s", resp.GetStatus(), resp.GetInfo())
	}
	return nil
}
