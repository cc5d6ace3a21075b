// Package templatetest runs ChainDock's chaincode templates without a
// peer: an in-memory ledger, and the stub and transaction context of one
// transaction on it.
//
// fabric-chaincode-go v2 has no mock stub (v1's shimtest is gone), so this
// is the smallest fake that keeps the rules of Fabric a contract depends
// on: a transaction reads the state committed before it, never its own
// writes; its writes count only when it commits; a key's history lists
// committed writes newest first, as Fabric 2 returns them; the timestamp is
// the transaction's, the same on every endorser. Stub methods the templates
// do not use panic.
package templatetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Ledger is the committed state of one chaincode on one channel.
type Ledger struct {
	mu      sync.Mutex
	state   map[string][]byte
	history map[string][]*queryresult.KeyModification // oldest first
	txs     int
	now     time.Time
	certs   map[string][]byte // PEM client certificate by MSP ID
	// private is the private data by collection, as a member peer
	// keeps it; collections are those the chaincode defines.
	private     map[string]map[string][]byte
	collections map[string]collection
}

// NewLedger returns an empty ledger whose first transaction is at start;
// each transaction after it is one second later.
func NewLedger(start time.Time) *Ledger {
	return &Ledger{
		state:   map[string][]byte{},
		history: map[string][]*queryresult.KeyModification{},
		now:     start,
		certs:   map[string][]byte{},
	}
}

// State returns the committed value of key, or nil.
func (l *Ledger) State(key string) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state[key]
}

// Begin starts a transaction submitted by a client of mspID with args
// (function name first).
func (l *Ledger) Begin(mspID string, args ...string) *Tx {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.txs++
	ts := l.now.Add(time.Duration(l.txs-1) * time.Second)
	tx := &Tx{
		ledger: l,
		txID:   fmt.Sprintf("tx%04d", l.txs),
		ts:     ts,
		mspID:  mspID,
		writes: map[string][]byte{},
	}
	for _, a := range args {
		tx.args = append(tx.args, []byte(a))
	}
	return tx
}

// Invoke runs function of cc as a peer would for a client of mspID, and
// commits the transaction when cc answers with success.
func (l *Ledger) Invoke(cc shim.Chaincode, mspID, function string, args ...string) *peer.Response {
	tx := l.Begin(mspID, append([]string{function}, args...)...)
	resp := cc.Invoke(tx)
	if resp.GetStatus() == shim.OK {
		tx.Commit()
	}
	return resp
}

// cert returns a client certificate for mspID, made once.
func (l *Ledger) cert(mspID string) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.certs[mspID]; ok {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(len(l.certs) + 1)),
		Subject:      pkix.Name{CommonName: "user1", Organization: []string{mspID}},
		NotBefore:    l.now.Add(-time.Hour),
		NotAfter:     l.now.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	c := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	l.certs[mspID] = c
	return c, nil
}

// Tx is the stub of one transaction.
type Tx struct {
	// The interface is nil: the methods the templates do not use panic.
	shim.ChaincodeStubInterface

	ledger *Ledger
	txID   string
	ts     time.Time
	mspID  string
	args   [][]byte
	writes map[string][]byte // nil value: deleted
	order  []string
	done   bool

	transient map[string][]byte
	private   []privateWrite
}

var _ shim.ChaincodeStubInterface = (*Tx)(nil)

// Ctx is the transaction context a contract function receives.
func (tx *Tx) Ctx() contractapi.TransactionContextInterface {
	ctx := &contractapi.TransactionContext{}
	ctx.SetStub(tx)
	ctx.SetClientIdentity(Identity{MSP: tx.mspID, ID: "x509::CN=user1::" + tx.mspID})
	return ctx
}

// Commit applies the transaction's writes to the ledger.
func (tx *Tx) Commit() {
	l := tx.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	if tx.done {
		panic("transaction committed twice")
	}
	tx.done = true
	l.commitPrivate(tx.private)
	for _, k := range tx.order {
		v := tx.writes[k]
		if v == nil {
			delete(l.state, k)
		} else {
			l.state[k] = v
		}
		l.history[k] = append(l.history[k], &queryresult.KeyModification{
			TxId:      tx.txID,
			Value:     v,
			Timestamp: timestamppb.New(tx.ts),
			IsDelete:  v == nil,
		})
	}
}

// GetTxID returns the transaction's ID.
func (tx *Tx) GetTxID() string { return tx.txID }

// GetChannelID returns the channel's name.
func (tx *Tx) GetChannelID() string { return "testchannel" }

// GetTxTimestamp returns the transaction's time.
func (tx *Tx) GetTxTimestamp() (*timestamppb.Timestamp, error) { return timestamppb.New(tx.ts), nil }

// GetArgs returns the arguments, function name first.
func (tx *Tx) GetArgs() [][]byte { return tx.args }

// GetStringArgs returns the arguments as strings.
func (tx *Tx) GetStringArgs() []string {
	out := make([]string, len(tx.args))
	for i, a := range tx.args {
		out[i] = string(a)
	}
	return out
}

// GetFunctionAndParameters splits the arguments.
func (tx *Tx) GetFunctionAndParameters() (string, []string) {
	args := tx.GetStringArgs()
	if len(args) == 0 {
		return "", nil
	}
	return args[0], args[1:]
}

// GetCreator returns the submitter as a serialized MSP identity, which the
// contract API reads with cid.New.
func (tx *Tx) GetCreator() ([]byte, error) {
	cert, err := tx.ledger.cert(tx.mspID)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(&msp.SerializedIdentity{Mspid: tx.mspID, IdBytes: cert})
}

// GetState reads the committed state, as Fabric does: a transaction does
// not see its own writes.
func (tx *Tx) GetState(key string) ([]byte, error) {
	if key == "" {
		return nil, fmt.Errorf("key must not be empty")
	}
	return tx.ledger.State(key), nil
}

// PutState records a write.
func (tx *Tx) PutState(key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("key must not be empty")
	}
	if len(value) == 0 {
		// Fabric refuses an empty value: it would read back as absent.
		return fmt.Errorf("value for key %q must not be empty", key)
	}
	tx.write(key, append([]byte(nil), value...))
	return nil
}

// DelState records a deletion.
func (tx *Tx) DelState(key string) error {
	if key == "" {
		return fmt.Errorf("key must not be empty")
	}
	tx.write(key, nil)
	return nil
}

func (tx *Tx) write(key string, value []byte) {
	if _, ok := tx.writes[key]; !ok {
		tx.order = append(tx.order, key)
	}
	tx.writes[key] = value
}

// GetHistoryForKey lists the committed writes of key, newest first.
func (tx *Tx) GetHistoryForKey(key string) (shim.HistoryQueryIteratorInterface, error) {
	l := tx.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.history[key]
	mods := make([]*queryresult.KeyModification, 0, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		mods = append(mods, h[i])
	}
	return &historyIterator{mods: mods}, nil
}

type historyIterator struct {
	mods   []*queryresult.KeyModification
	closed bool
}

func (it *historyIterator) HasNext() bool { return !it.closed && len(it.mods) > 0 }

func (it *historyIterator) Close() error {
	it.closed = true
	return nil
}

func (it *historyIterator) Next() (*queryresult.KeyModification, error) {
	if !it.HasNext() {
		return nil, fmt.Errorf("history iterator exhausted or closed")
	}
	m := it.mods[0]
	it.mods = it.mods[1:]
	return m, nil
}

// Identity is the client identity of a transaction.
type Identity struct {
	MSP string
	ID  string
}

var _ cid.ClientIdentity = Identity{}

// GetID returns the identity's ID.
func (i Identity) GetID() (string, error) { return i.ID, nil }

// GetMSPID returns the identity's MSP ID.
func (i Identity) GetMSPID() (string, error) { return i.MSP, nil }

// GetAttributeValue finds no attributes.
func (i Identity) GetAttributeValue(string) (string, bool, error) { return "", false, nil }

// AssertAttributeValue fails: the identity has no attributes.
func (i Identity) AssertAttributeValue(name, _ string) error {
	return fmt.Errorf("attribute %q not found", name)
}

// GetX509Certificate returns nil: the fake identity has no certificate.
func (i Identity) GetX509Certificate() (*x509.Certificate, error) { return nil, nil }
