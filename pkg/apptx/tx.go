package apptx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Type is a transaction type.
type Type string

// The transaction types.
const (
	TypeNotarize Type = "notarize"
	TypeIssue    Type = "issue"
	TypeTransfer Type = "transfer"
)

// Limits on transactions.
const (
	MaxTxBytes     = 64 << 10
	MaxTags        = 16
	MaxTagLen      = 64
	MaxMetaEntries = 16
	MaxMetaKeyLen  = 64
	MaxMetaValLen  = 256
)

// Tx is a decoded transaction.
type Tx struct {
	ChainID string
	Type    Type
	// From is the sender's ed25519 public key in lower-case hex.
	From  string
	Nonce uint64
	// Body is a NotarizeBody, IssueBody or TransferBody matching Type.
	Body Body
	Sig  []byte
}

// Body is the type-specific part of a transaction.
type Body interface {
	TxType() Type
	// Validate reports every malformed field, with its path, as one
	// *Error with CodeInvalidBody.
	Validate() error
}

// NotarizeBody records that a document with the given sha256 existed.
type NotarizeBody struct {
	Hash string            `json:"hash"`
	Tags []string          `json:"tags,omitempty"`
	Meta map[string]string `json:"meta,omitempty"`
}

// IssueBody creates Amount units of Asset for the sender, its issuer.
type IssueBody struct {
	Asset  string `json:"asset"`
	Amount uint64 `json:"amount"`
}

// TransferBody moves Amount units of Asset from the sender to To.
type TransferBody struct {
	Asset  string `json:"asset"`
	To     string `json:"to"`
	Amount uint64 `json:"amount"`
}

func (NotarizeBody) TxType() Type { return TypeNotarize }
func (IssueBody) TxType() Type    { return TypeIssue }
func (TransferBody) TxType() Type { return TypeTransfer }

func (b NotarizeBody) Validate() error {
	var errs []string
	if !isLowerHex(b.Hash, sha256.Size*2) {
		errs = append(errs, "body.hash: must be 64 lower-case hex characters (a sha256)")
	}
	if len(b.Tags) > MaxTags {
		errs = append(errs, fmt.Sprintf("body.tags: at most %d tags, got %d", MaxTags, len(b.Tags)))
	}
	for i, tag := range b.Tags {
		if tag == "" || len(tag) > MaxTagLen {
			errs = append(errs, fmt.Sprintf("body.tags[%d]: must be 1 to %d bytes", i, MaxTagLen))
		}
	}
	if len(b.Meta) > MaxMetaEntries {
		errs = append(errs, fmt.Sprintf("body.meta: at most %d entries, got %d", MaxMetaEntries, len(b.Meta)))
	}
	for _, k := range sortedKeys(b.Meta) {
		if k == "" || len(k) > MaxMetaKeyLen {
			errs = append(errs, fmt.Sprintf("body.meta[%q]: key must be 1 to %d bytes", k, MaxMetaKeyLen))
		}
		if len(b.Meta[k]) > MaxMetaValLen {
			errs = append(errs, fmt.Sprintf("body.meta[%q]: value must be at most %d bytes", k, MaxMetaValLen))
		}
	}
	return bodyErrors(errs)
}

func (b IssueBody) Validate() error {
	var errs []string
	if !ValidSymbol(b.Asset) {
		errs = append(errs, "body.asset: must match [A-Z0-9]{2,12}")
	}
	if b.Amount == 0 {
		errs = append(errs, "body.amount: must be greater than 0")
	}
	return bodyErrors(errs)
}

func (b TransferBody) Validate() error {
	var errs []string
	if !ValidSymbol(b.Asset) {
		errs = append(errs, "body.asset: must match [A-Z0-9]{2,12}")
	}
	if !ValidAddress(b.To) {
		errs = append(errs, "body.to: must be an address, 40 lower-case hex characters")
	}
	if b.Amount == 0 {
		errs = append(errs, "body.amount: must be greater than 0")
	}
	return bodyErrors(errs)
}

func bodyErrors(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return &Error{Code: CodeInvalidBody, Msg: strings.Join(errs, "; ")}
}

// ValidSymbol reports whether s is an asset symbol: 2 to 12 of [A-Z0-9].
func ValidSymbol(s string) bool {
	if len(s) < 2 || len(s) > 12 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// ValidAddress reports whether s is an address as Address returns it.
func ValidAddress(s string) bool { return isLowerHex(s, AddressLen*2) }

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Notarize builds an unsigned notarisation of the document whose sha256 is
// docHash (lower-case hex).
func Notarize(chainID string, from ed25519.PublicKey, nonce uint64, docHash string, tags []string, meta map[string]string) *Tx {
	return &Tx{ChainID: chainID, Type: TypeNotarize, From: hex.EncodeToString(from), Nonce: nonce,
		Body: NotarizeBody{Hash: docHash, Tags: tags, Meta: meta}}
}

// Issue builds an unsigned issue of amount units of asset.
func Issue(chainID string, from ed25519.PublicKey, nonce uint64, asset string, amount uint64) *Tx {
	return &Tx{ChainID: chainID, Type: TypeIssue, From: hex.EncodeToString(from), Nonce: nonce,
		Body: IssueBody{Asset: asset, Amount: amount}}
}

// Transfer builds an unsigned transfer of amount units of asset to the
// address to.
func Transfer(chainID string, from ed25519.PublicKey, nonce uint64, asset, to string, amount uint64) *Tx {
	return &Tx{ChainID: chainID, Type: TypeTransfer, From: hex.EncodeToString(from), Nonce: nonce,
		Body: TransferBody{Asset: asset, To: to, Amount: amount}}
}

// signDoc fixes the order of the keys of the sign bytes.
type signDoc struct {
	ChainID string `json:"chainID"`
	Type    Type   `json:"type"`
	From    string `json:"from"`
	Nonce   uint64 `json:"nonce"`
	Body    Body   `json:"body"`
}

type wireTx struct {
	ChainID string          `json:"chainID"`
	Type    Type            `json:"type"`
	From    string          `json:"from"`
	Nonce   uint64          `json:"nonce"`
	Body    json.RawMessage `json:"body"`
	Sig     string          `json:"sig,omitempty"`
}

// SignBytes returns the canonical bytes that Sig signs (see the package
// documentation).
func SignBytes(tx *Tx) ([]byte, error) {
	if tx.Body == nil {
		return nil, errors.New("sign bytes: transaction has no body")
	}
	return marshalCompact(signDoc{ChainID: tx.ChainID, Type: tx.Type, From: tx.From, Nonce: tx.Nonce, Body: tx.Body})
}

func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Sign sets tx.Sig to priv's signature of the sign bytes. tx.From must be
// priv's public key.
func Sign(tx *Tx, priv ed25519.PrivateKey) error {
	pub, ok := priv.Public().(ed25519.PublicKey)
	if !ok || hex.EncodeToString(pub) != tx.From {
		return errors.New("sign: the key is not the transaction's sender")
	}
	sb, err := SignBytes(tx)
	if err != nil {
		return err
	}
	tx.Sig = ed25519.Sign(priv, sb)
	return nil
}

// Encode returns the transaction's bytes, to broadcast as they are.
func Encode(tx *Tx) ([]byte, error) {
	sb, err := SignBytes(tx)
	if err != nil {
		return nil, err
	}
	if len(tx.Sig) == 0 {
		return sb, nil
	}
	sig, err := json.Marshal(base64.StdEncoding.EncodeToString(tx.Sig))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(sb)+len(sig)+8)
	out = append(out, sb[:len(sb)-1]...)
	out = append(out, `,"sig":`...)
	out = append(out, sig...)
	return append(out, '}'), nil
}

// Decode parses a transaction. It checks the JSON shape only (CodeMalformed,
// CodeUnknownType, CodeInvalidBody for a body field of the wrong JSON type);
// ValidateBasic and VerifySignature check the rest.
func Decode(bz []byte) (*Tx, error) {
	var w wireTx
	if err := decodeStrict(bz, &w); err != nil {
		return nil, errorf(CodeMalformed, "malformed transaction: %s", jsonProblem(err, ""))
	}
	tx := &Tx{ChainID: w.ChainID, Type: w.Type, From: w.From, Nonce: w.Nonce}
	switch w.Type {
	case TypeNotarize:
		var b NotarizeBody
		if err := decodeBody(w.Body, &b); err != nil {
			return nil, err
		}
		tx.Body = b
	case TypeIssue:
		var b IssueBody
		if err := decodeBody(w.Body, &b); err != nil {
			return nil, err
		}
		tx.Body = b
	case TypeTransfer:
		var b TransferBody
		if err := decodeBody(w.Body, &b); err != nil {
			return nil, err
		}
		tx.Body = b
	default:
		return nil, errorf(CodeUnknownType, "type: unknown transaction type %q (want notarize, issue or transfer)", w.Type)
	}
	if w.Sig != "" {
		sig, err := base64.StdEncoding.DecodeString(w.Sig)
		if err != nil {
			return nil, errorf(CodeMalformed, "sig: not base64: %v", err)
		}
		tx.Sig = sig
	}
	return tx, nil
}

func decodeBody(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return errorf(CodeInvalidBody, "body: missing")
	}
	if err := decodeStrict(raw, v); err != nil {
		return errorf(CodeInvalidBody, "invalid body: %s", jsonProblem(err, "body."))
	}
	return nil
}

func decodeStrict(bz []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(bz))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// jsonProblem names the field a decoding error is about.
func jsonProblem(err error, prefix string) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s%s: cannot hold JSON %s", prefix, te.Field, te.Value)
	}
	return err.Error()
}

// ValidateBasic checks what needs no state: the sender's key, the body's
// fields, a signature being present and, for a transfer, that it is not to
// the sender.
func (tx *Tx) ValidateBasic() error {
	if _, err := tx.PubKey(); err != nil {
		return err
	}
	if tx.Body == nil || tx.Body.TxType() != tx.Type {
		return errorf(CodeInvalidBody, "body: does not match type %q", tx.Type)
	}
	if err := tx.Body.Validate(); err != nil {
		return err
	}
	if b, ok := tx.Body.(TransferBody); ok && b.To == tx.Sender() {
		return errorf(CodeSelfTransfer, "body.to: is the sender's own address")
	}
	if len(tx.Sig) == 0 {
		return errorf(CodeUnsigned, "sig: missing")
	}
	return nil
}

// PubKey decodes From.
func (tx *Tx) PubKey() (ed25519.PublicKey, error) {
	if !isLowerHex(tx.From, ed25519.PublicKeySize*2) {
		return nil, errorf(CodeInvalidSender, "from: must be an ed25519 public key, 64 lower-case hex characters")
	}
	pub, _ := hex.DecodeString(tx.From)
	return ed25519.PublicKey(pub), nil
}

// Sender is the address of From ("" if From is malformed).
func (tx *Tx) Sender() string {
	pub, err := tx.PubKey()
	if err != nil {
		return ""
	}
	return Address(pub)
}

// VerifySignature checks Sig against From and the sign bytes.
func (tx *Tx) VerifySignature() error {
	pub, err := tx.PubKey()
	if err != nil {
		return err
	}
	if len(tx.Sig) == 0 {
		return errorf(CodeUnsigned, "sig: missing")
	}
	sb, err := SignBytes(tx)
	if err != nil {
		return errorf(CodeInvalidBody, "body: %v", err)
	}
	if len(tx.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, sb, tx.Sig) {
		return errorf(CodeBadSignature, "sig: not a valid signature by from of the sign bytes")
	}
	return nil
}

// Hash is the transaction's hash as CometBFT computes and shows it: the
// upper-case hex of sha256 of the raw bytes.
func Hash(txBytes []byte) string {
	sum := sha256.Sum256(txBytes)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}
