package fabric

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/chaindock/chaindock/internal/apis"
	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/pki"
)

func TestHeightNumbering(t *testing.T) {
	for _, c := range []struct {
		number uint64
		height int64
	}{{0, 1}, {1, 2}, {41, 42}} {
		if h := Height(c.number); h != c.height {
			t.Errorf("Height(%d) = %d, want %d", c.number, h, c.height)
		}
		if n := BlockNumber(c.height); n != c.number {
			t.Errorf("BlockNumber(%d) = %d, want %d", c.height, n, c.number)
		}
	}
}

// TestBlockHash checks the header hash against an encoding written out
// by hand: the DER sequence of an INTEGER and two OCTET STRINGs that
// Fabric's protoutil.BlockHeaderHash hashes.
func TestBlockHash(t *testing.T) {
	prev := []byte{0xaa, 0xbb}
	data := []byte{0x01, 0x02, 0x03}
	der := []byte{0x30, 3 + 4 + 5,
		0x02, 0x01, 0x07, // number 7
		0x04, 0x02, 0xaa, 0xbb,
		0x04, 0x03, 0x01, 0x02, 0x03,
	}
	want := sha256.Sum256(der)
	got := BlockHash(&cb.BlockHeader{Number: 7, PreviousHash: prev, DataHash: data})
	if !slices.Equal(got, want[:]) {
		t.Errorf("hash %x, want %x", got, want)
	}
	// A number with its top bit set takes a leading zero byte in DER.
	der = []byte{0x30, 4 + 2 + 2, 0x02, 0x02, 0x00, 0x80, 0x04, 0x00, 0x04, 0x00}
	want = sha256.Sum256(der)
	if got := BlockHash(&cb.BlockHeader{Number: 128}); !slices.Equal(got, want[:]) {
		t.Errorf("hash of block 128 %x, want %x", got, want)
	}
}

// TestDecodeGenesisBlock decodes the channel's genesis block as the plan
// makes it: explorer height 1, one CONFIG transaction with the block's
// transaction ID.
func TestDecodeGenesisBlock(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	raw := plan.Artifact(BlockPath(plan.ChainID))
	var gen cb.Block
	if err := proto.Unmarshal(raw, &gen); err != nil {
		t.Fatal(err)
	}
	b, err := decodeBlock(raw)
	if err != nil {
		t.Fatal(err)
	}
	if b.Height != 1 || b.Hash != strings.ToUpper(hex.EncodeToString(BlockHash(gen.Header))) || len(b.Hash) != 64 {
		t.Errorf("block height %d hash %s, want 1 and the header's hash", b.Height, b.Hash)
	}
	if b.Proposer != "" {
		t.Errorf("the genesis block names signer %q: it has none", b.Proposer)
	}
	if len(b.Txs) != 1 {
		t.Fatalf("%d transactions, want 1", len(b.Txs))
	}
	tx := b.Txs[0]
	env := &cb.Envelope{}
	payload := &cb.Payload{}
	ch := &cb.ChannelHeader{}
	if err := proto.Unmarshal(gen.Data.Data[0], env); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, ch); err != nil {
		t.Fatal(err)
	}
	if tx.Hash != strings.ToUpper(ch.TxId) || len(tx.Hash) != 64 || tx.Height != 1 || tx.Index != 0 ||
		tx.Code != 0 || tx.Log != "" || tx.Type != "CONFIG" || !slices.Equal(tx.Data, gen.Data.Data[0]) {
		t.Errorf("config transaction %+v, want ID %s", tx, ch.TxId)
	}
	if b.Time.IsZero() || !b.Time.Equal(ch.Timestamp.AsTime()) {
		t.Errorf("block time %s, want the config transaction's %s", b.Time, ch.Timestamp.AsTime())
	}
}

// endorserTx is an endorser transaction envelope calling chaincode cc,
// which emits event (if not empty).
func endorserTx(t *testing.T, txID, cc, event string, payload []byte, at time.Time) []byte {
	t.Helper()
	must := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var events []byte
	if event != "" {
		events = must(&pb.ChaincodeEvent{ChaincodeId: cc, TxId: txID, EventName: event, Payload: payload})
	}
	action := must(&pb.ChaincodeAction{Events: events, ChaincodeId: &pb.ChaincodeID{Name: cc, Version: "1.0"}})
	tx := must(&pb.Transaction{Actions: []*pb.TransactionAction{{
		Payload: must(&pb.ChaincodeActionPayload{Action: &pb.ChaincodeEndorsedAction{
			ProposalResponsePayload: must(&pb.ProposalResponsePayload{Extension: action}),
		}}),
	}}})
	ch := must(&cb.ChannelHeader{
		Type: int32(cb.HeaderType_ENDORSER_TRANSACTION), TxId: txID, ChannelId: "trade",
		Timestamp: timestamppb.New(at),
		Extension: must(&pb.ChaincodeHeaderExtension{ChaincodeId: &pb.ChaincodeID{Name: cc}}),
	})
	return must(&cb.Envelope{Payload: must(&cb.Payload{Header: &cb.Header{ChannelHeader: ch}, Data: tx})})
}

// TestDecodeEndorserBlock decodes a block of two endorser transactions,
// the second marked invalid in the TRANSACTIONS_FILTER, signed by an
// orderer.
func TestDecodeEndorserBlock(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	certPEM := plan.Artifact(orgPath("orderer", artAdminMSP+"/"+pki.MSPSignCert))
	cert, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 4, 12, 30, 0, 0, time.UTC)
	id1 := strings.Repeat("ab", 32)
	id2 := strings.Repeat("cd", 32)
	envs := [][]byte{
		endorserTx(t, id1, "basic", "Transfer", []byte(`{"to":"bob"}`), at),
		endorserTx(t, id2, "basic", "", nil, at.Add(time.Second)),
	}
	creator, _ := proto.Marshal(&mb.SerializedIdentity{Mspid: "OrdererMSP", IdBytes: certPEM})
	shdr, _ := proto.Marshal(&cb.SignatureHeader{Creator: creator, Nonce: []byte("n")})
	sigs, _ := proto.Marshal(&cb.Metadata{Signatures: []*cb.MetadataSignature{{SignatureHeader: shdr, Signature: []byte("s")}}})
	header := &cb.BlockHeader{Number: 4, PreviousHash: []byte("previous"), DataHash: []byte("data")}
	blk := &cb.Block{
		Header: header,
		Data:   &cb.BlockData{Data: envs},
		Metadata: &cb.BlockMetadata{Metadata: [][]byte{
			sigs, nil,
			{byte(pb.TxValidationCode_VALID), byte(pb.TxValidationCode_MVCC_READ_CONFLICT)},
		}},
	}
	raw, _ := proto.Marshal(blk)
	b, err := decodeBlock(raw)
	if err != nil {
		t.Fatal(err)
	}
	if b.Height != 5 || b.Hash != strings.ToUpper(hex.EncodeToString(BlockHash(header))) || !b.Time.Equal(at) {
		t.Errorf("block 4: height %d, hash %s, time %s", b.Height, b.Hash, b.Time)
	}
	if want := "OrdererMSP/" + cert.Subject.CommonName; b.Proposer != want {
		t.Errorf("signer %q, want %q", b.Proposer, want)
	}
	if len(b.Txs) != 2 {
		t.Fatalf("%d transactions, want 2", len(b.Txs))
	}
	valid, invalid := b.Txs[0], b.Txs[1]
	if valid.Hash != strings.ToUpper(id1) || valid.Height != 5 || valid.Index != 0 || valid.Code != 0 || valid.Log != "" ||
		valid.Type != "ENDORSER_TRANSACTION/basic" {
		t.Errorf("valid transaction %+v", valid)
	}
	wantEvents := []chain.Event{{Type: "Transfer", Contract: "basic", Attributes: []chain.EventAttribute{{Key: "payload", Value: `{"to":"bob"}`}}}}
	if len(valid.Events) != 1 || valid.Events[0].Type != wantEvents[0].Type || valid.Events[0].Contract != "basic" ||
		!slices.Equal(valid.Events[0].Attributes, wantEvents[0].Attributes) {
		t.Errorf("events %+v, want %+v", valid.Events, wantEvents)
	}
	if invalid.Hash != strings.ToUpper(id2) || invalid.Index != 1 || invalid.Code != uint32(pb.TxValidationCode_MVCC_READ_CONFLICT) ||
		invalid.Log != "MVCC_READ_CONFLICT" || invalid.Type != "ENDORSER_TRANSACTION/basic" || len(invalid.Events) != 0 {
		t.Errorf("invalid transaction %+v", invalid)
	}
}

// TestLedgerRefusals checks what the ledger answers without asking a
// peer: no call that is not one, no orderer to read from, no
// transaction by a malformed ID.
func TestLedgerRefusals(t *testing.T) {
	_, plan := planFor(t, "two-orgs.good.yaml")
	l := New().LedgerWith(plan)
	ctx := t.Context()
	peer := planned(t, plan, "org1-peer-0")
	if _, err := l.Submit(ctx, peer, []byte("tx")); !errors.Is(err, chain.ErrMalformed) || !strings.Contains(err.Error(), `{"chaincode": NAME`) {
		t.Errorf("Submit: %v, want ErrMalformed saying what a call is", err)
	}
	if _, err := l.Query(ctx, peer, "/x", nil); !errors.Is(err, chain.ErrMalformed) {
		t.Errorf("Query: %v, want ErrMalformed", err)
	}
	// A caller signs only as an organisation it may: one of org2's
	// naming org1 is refused before any peer is asked (none runs here).
	org2Only := chain.WithSignsFor(ctx, func(org string) bool { return org == "org2" })
	call := []byte(`{"chaincode":"notary","function":"Notarize","args":["x"],"organization":"org1"}`)
	if _, err := l.Submit(org2Only, peer, call); !errors.Is(err, chain.ErrNotPermitted) || !strings.Contains(err.Error(), "org1") {
		t.Errorf("Submit as org1 by a caller of org2: %v, want ErrNotPermitted naming org1", err)
	}
	noOrg := chain.WithSignsFor(ctx, func(string) bool { return false })
	call = []byte(`{"chaincode":"notary","function":"Notarize","args":["x"]}`)
	if _, err := l.Submit(noOrg, peer, call); !errors.Is(err, chain.ErrNotPermitted) {
		t.Errorf("Submit by a caller of no organisation: %v, want ErrNotPermitted", err)
	}
	shared, _ := planChannel(l.(*ledger).plan, "")
	if got := l.(*ledger).defaultOrg(org2Only, shared); got != "org2" {
		t.Errorf("a call naming no organisation, by a caller of org2, is signed by %s", got)
	}
	if _, err := l.Tx(ctx, peer, "not-a-hash"); !errors.Is(err, chain.ErrTxNotFound) {
		t.Errorf("Tx of a malformed ID: %v, want ErrTxNotFound", err)
	}
	orderer := planned(t, plan, "orderer-0")
	if orderer.Role != apis.RoleValidator {
		t.Fatalf("orderer-0 has role %s", orderer.Role)
	}
	if _, err := l.LatestHeight(ctx, orderer); err == nil || !strings.Contains(err.Error(), "orderer") {
		t.Errorf("height from an orderer: %v, want an error naming it an orderer", err)
	}
	if _, err := l.Blocks(ctx, peer, 0, 1); err == nil {
		t.Error("blocks from height 0: no error")
	}
}
