package fabric

import (
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/chaindock/chaindock/internal/chain"
	"github.com/chaindock/chaindock/internal/chain/fabric/channel"
)

// Heights. Fabric numbers a channel's blocks from 0, its genesis block,
// and calls the count of blocks its height; the explorer counts heights
// from 1. A block's explorer height is its number plus one, so that the
// channel's height is the explorer height of its newest block, as the
// probe reports it.

// Height is the explorer height of Fabric block number.
func Height(number uint64) int64 {
	if number >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(number) + 1
}

// BlockNumber is the Fabric number of the block at explorer height h
// (h >= 1).
func BlockNumber(h int64) uint64 { return uint64(max(h, 1) - 1) } //nolint:gosec // max(h, 1) - 1 >= 0

// BlockHash is the hash of a block header as Fabric computes it
// (protoutil.BlockHeaderHash): the SHA-256 of the ASN.1 DER sequence of
// its number, previous hash and data hash. The next block's header holds
// it as its previous hash.
func BlockHash(h *cb.BlockHeader) []byte {
	der, err := asn1.Marshal(struct {
		Number       *big.Int
		PreviousHash []byte
		DataHash     []byte
	}{new(big.Int).SetUint64(h.GetNumber()), h.GetPreviousHash(), h.GetDataHash()})
	if err != nil {
		// Marshalling a big.Int and two byte strings cannot fail.
		panic(fmt.Sprintf("block header hash: %v", err))
	}
	sum := sha256.Sum256(der)
	return sum[:]
}

// hashText is a hash as the platform keeps it: upper-case hex.
func hashText(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// toBlock decodes a Fabric block as the explorer keeps it: its header's
// hash, its time (the first transaction's channel header timestamp), the
// orderer that signed it as Proposer, and its transactions with the
// validation codes the committing peer gave them.
func toBlock(b *cb.Block) (chain.Block, error) {
	h := b.GetHeader()
	if h == nil {
		return chain.Block{}, fmt.Errorf("block without a header")
	}
	height := Height(h.GetNumber())
	out := chain.Block{
		Height:   height,
		Hash:     hashText(BlockHash(h)),
		Proposer: signer(b),
	}
	filter := metadata(b, cb.BlockMetadataIndex_TRANSACTIONS_FILTER)
	for i, env := range b.GetData().GetData() {
		tx, ts, err := toTx(env)
		if err != nil {
			return chain.Block{}, fmt.Errorf("block %d, transaction %d: %w", h.GetNumber(), i, err)
		}
		tx.Height, tx.Index = height, i
		// A peer gives each transaction a validation code of one byte;
		// a block it has not validated has none (the genesis block it
		// joined with, as the plan made it).
		if i < len(filter) && filter[i] != byte(pb.TxValidationCode_VALID) {
			tx.Code, tx.Log = uint32(filter[i]), pb.TxValidationCode(filter[i]).String()
		}
		if i == 0 {
			out.Time = ts
		}
		out.Txs = append(out.Txs, tx)
	}
	return out, nil
}

// metadata is the block's metadata at index i, or nil.
func metadata(b *cb.Block, i cb.BlockMetadataIndex) []byte {
	md := b.GetMetadata().GetMetadata()
	if int(i) >= len(md) {
		return nil
	}
	return md[i]
}

// signer names the orderer that signed the block as nodes' IDs name it
// (MSP ID/common name), or "" when the block carries no signature, as a
// genesis block does not.
func signer(b *cb.Block) string {
	var md cb.Metadata
	if err := proto.Unmarshal(metadata(b, cb.BlockMetadataIndex_SIGNATURES), &md); err != nil || len(md.GetSignatures()) == 0 {
		return ""
	}
	var shdr cb.SignatureHeader
	if err := proto.Unmarshal(md.GetSignatures()[0].GetSignatureHeader(), &shdr); err != nil || len(shdr.GetCreator()) == 0 {
		return ""
	}
	id, cert, err := channel.Creator(shdr.GetCreator())
	if err != nil {
		return ""
	}
	return id.GetMspid() + "/" + cert.Subject.CommonName
}

// toTx decodes one transaction envelope: its ID, its type and, for an
// endorser transaction, the chaincode it called and the events it
// emitted. Data is the envelope itself.
func toTx(env []byte) (chain.Tx, time.Time, error) {
	var e cb.Envelope
	if err := proto.Unmarshal(env, &e); err != nil {
		return chain.Tx{}, time.Time{}, fmt.Errorf("envelope: %w", err)
	}
	var p cb.Payload
	if err := proto.Unmarshal(e.GetPayload(), &p); err != nil {
		return chain.Tx{}, time.Time{}, fmt.Errorf("payload: %w", err)
	}
	var ch cb.ChannelHeader
	if err := proto.Unmarshal(p.GetHeader().GetChannelHeader(), &ch); err != nil {
		return chain.Tx{}, time.Time{}, fmt.Errorf("channel header: %w", err)
	}
	tx := chain.Tx{Hash: strings.ToUpper(ch.GetTxId()), Data: env}
	if tx.Hash == "" {
		// Fabric gives every transaction an ID; hash the envelope should
		// one come without, so that the explorer still finds it.
		sum := sha256.Sum256(env)
		tx.Hash = hashText(sum[:])
	}
	var ts time.Time
	if t := ch.GetTimestamp(); t != nil {
		ts = t.AsTime().UTC()
	}
	typ := cb.HeaderType(ch.GetType())
	tx.Type = typ.String()
	if typ != cb.HeaderType_ENDORSER_TRANSACTION {
		return tx, ts, nil
	}
	var ext pb.ChaincodeHeaderExtension
	if err := proto.Unmarshal(ch.GetExtension(), &ext); err != nil {
		return chain.Tx{}, time.Time{}, fmt.Errorf("chaincode header extension: %w", err)
	}
	cc := ext.GetChaincodeId().GetName()
	events, actionCC, err := actionEvents(p.GetData())
	if err != nil {
		return chain.Tx{}, time.Time{}, err
	}
	if cc == "" {
		cc = actionCC
	}
	if cc != "" {
		tx.Type += "/" + cc
	}
	tx.Events = events
	return tx, ts, nil
}

// actionEvents reads the chaincode events of an endorser transaction's
// actions, and the chaincode the first action ran.
func actionEvents(data []byte) ([]chain.Event, string, error) {
	var t pb.Transaction
	if err := proto.Unmarshal(data, &t); err != nil {
		return nil, "", fmt.Errorf("transaction: %w", err)
	}
	var out []chain.Event
	cc := ""
	for _, a := range t.GetActions() {
		var cp pb.ChaincodeActionPayload
		if err := proto.Unmarshal(a.GetPayload(), &cp); err != nil {
			return nil, "", fmt.Errorf("chaincode action payload: %w", err)
		}
		var prp pb.ProposalResponsePayload
		if err := proto.Unmarshal(cp.GetAction().GetProposalResponsePayload(), &prp); err != nil {
			return nil, "", fmt.Errorf("proposal response payload: %w", err)
		}
		var ca pb.ChaincodeAction
		if err := proto.Unmarshal(prp.GetExtension(), &ca); err != nil {
			return nil, "", fmt.Errorf("chaincode action: %w", err)
		}
		if cc == "" {
			cc = ca.GetChaincodeId().GetName()
		}
		if len(ca.GetEvents()) == 0 {
			continue
		}
		var ev pb.ChaincodeEvent
		if err := proto.Unmarshal(ca.GetEvents(), &ev); err != nil {
			return nil, "", fmt.Errorf("chaincode event: %w", err)
		}
		if ev.GetEventName() == "" && ev.GetChaincodeId() == "" {
			continue
		}
		e := chain.Event{Type: ev.GetEventName(), Contract: ev.GetChaincodeId()}
		if len(ev.GetPayload()) > 0 {
			e.Attributes = []chain.EventAttribute{payloadAttribute(ev.GetPayload())}
		}
		out = append(out, e)
	}
	return out, cc, nil
}

// payloadAttribute is an event's payload: as text when it is UTF-8, else
// in base64.
func payloadAttribute(b []byte) chain.EventAttribute {
	if utf8.Valid(b) {
		return chain.EventAttribute{Key: "payload", Value: string(b)}
	}
	return chain.EventAttribute{Key: "payload.base64", Value: base64.StdEncoding.EncodeToString(b)}
}
