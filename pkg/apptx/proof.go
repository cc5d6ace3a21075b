package apptx

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cometbft/cometbft/crypto/merkle"
	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
)

// NotaryProof answers /notary/proof: it proves that the state after block
// Height holds Leaf, the record of document DocHash.
type NotaryProof struct {
	DocHash string `json:"docHash"`
	Height  int64  `json:"height"`
	TxHash  string `json:"txHash"`
	// Leaf is EncodeLeaf(DocKey(DocHash), JSON of the NotaryRecord).
	Leaf        cmtbytes.HexBytes `json:"leaf"`
	Proof       merkle.Proof      `json:"proof"`
	Root        cmtbytes.HexBytes `json:"root"`
	PrevAppHash cmtbytes.HexBytes `json:"prevAppHash"`
	AppHash     cmtbytes.HexBytes `json:"appHash"`
}

// DocKey is the state key of a document's notary record.
func DocKey(docHash string) []byte { return []byte("doc/" + docHash) }

// EncodeLeaf is the canonical encoding of one written key and its new value:
// uvarint(len(key)) || key || uvarint(len(value)) || value.
func EncodeLeaf(key, value []byte) []byte {
	out := make([]byte, 0, len(key)+len(value)+2*binary.MaxVarintLen64)
	out = binary.AppendUvarint(out, uint64(len(key)))
	out = append(out, key...)
	out = binary.AppendUvarint(out, uint64(len(value)))
	return append(out, value...)
}

// DecodeLeaf reverses EncodeLeaf.
func DecodeLeaf(leaf []byte) (key, value []byte, err error) {
	key, value, rest, err := ReadLeaf(leaf)
	if err != nil {
		return nil, nil, err
	}
	if len(rest) != 0 {
		return nil, nil, errors.New("leaf: trailing bytes")
	}
	return key, value, nil
}

// ReadLeaf decodes the leaf at the start of buf and returns what follows it.
func ReadLeaf(buf []byte) (key, value, rest []byte, err error) {
	key, buf, err = readBytes(buf)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("leaf key: %w", err)
	}
	value, buf, err = readBytes(buf)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("leaf value: %w", err)
	}
	return key, value, buf, nil
}

func readBytes(buf []byte) ([]byte, []byte, error) {
	n, m := binary.Uvarint(buf)
	if m <= 0 {
		return nil, nil, errors.New("bad length")
	}
	buf = buf[m:]
	if n > uint64(len(buf)) {
		return nil, nil, errors.New("length past the end")
	}
	return buf[:n], buf[n:], nil
}

// NextAppHash is sha256(prev || root), the app hash after a block whose
// leaves have the given merkle root.
func NextAppHash(prev, root []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(root)
	return h.Sum(nil)
}

// VerifyProof checks p against a trusted app hash, the AppHash of the header
// of block p.Height+1: the leaf is the record of p.DocHash written at
// p.Height by p.TxHash, the merkle proof takes the leaf to p.Root, and
// sha256(p.PrevAppHash || p.Root) is appHash. The caller still compares
// p.DocHash with the hash of its own document.
func VerifyProof(p *NotaryProof, appHash []byte) error {
	if p == nil {
		return errors.New("verify proof: no proof")
	}
	key, value, err := DecodeLeaf(p.Leaf)
	if err != nil {
		return fmt.Errorf("verify proof: %w", err)
	}
	if !bytes.Equal(key, DocKey(p.DocHash)) {
		return fmt.Errorf("verify proof: leaf key %q is not the record of document %s", key, p.DocHash)
	}
	var rec NotaryRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		return fmt.Errorf("verify proof: leaf value is not a notary record: %w", err)
	}
	if rec.Hash != p.DocHash || rec.Height != p.Height || rec.TxHash != p.TxHash {
		return fmt.Errorf("verify proof: leaf record (document %s, height %d, tx %s) does not match the proof (document %s, height %d, tx %s)",
			rec.Hash, rec.Height, rec.TxHash, p.DocHash, p.Height, p.TxHash)
	}
	if err := p.Proof.ValidateBasic(); err != nil {
		return fmt.Errorf("verify proof: %w", err)
	}
	if err := p.Proof.Verify(p.Root, p.Leaf); err != nil {
		return fmt.Errorf("verify proof: merkle proof: %w", err)
	}
	if got := NextAppHash(p.PrevAppHash, p.Root); !bytes.Equal(got, appHash) {
		return fmt.Errorf("verify proof: sha256(prevAppHash || root) is %X, not the app hash %X", got, appHash)
	}
	return nil
}

// Record decodes the notary record in p.Leaf (verify p first).
func (p *NotaryProof) Record() (*NotaryRecord, error) {
	_, value, err := DecodeLeaf(p.Leaf)
	if err != nil {
		return nil, err
	}
	var rec NotaryRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}
