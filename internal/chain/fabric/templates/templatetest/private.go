package templatetest

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
)

// implicitPrefix begins the name of an organisation's implicit
// collection, which every chaincode has.
const implicitPrefix = "_implicit_org_"

type collection struct {
	members        []string
	memberOnlyRead bool
}

type privateWrite struct {
	collection, key string
	value           []byte
}

// DefineCollection gives the chaincode the private data collection name,
// kept by the peers of members (MSP IDs); with memberOnlyRead, clients of
// other organisations may not read it, as a peer refuses them.
func (l *Ledger) DefineCollection(name string, memberOnlyRead bool, members ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.collections == nil {
		l.collections = map[string]collection{}
	}
	l.collections[name] = collection{members: members, memberOnlyRead: memberOnlyRead}
}

// PrivateData returns the committed value of key in collection, or nil.
func (l *Ledger) PrivateData(name, key string) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.private[name][key]
}

func (l *Ledger) commitPrivate(writes []privateWrite) {
	if l.private == nil {
		l.private = map[string]map[string][]byte{}
	}
	for _, w := range writes {
		if l.private[w.collection] == nil {
			l.private[w.collection] = map[string][]byte{}
		}
		if w.value == nil {
			delete(l.private[w.collection], w.key) // purged
			continue
		}
		l.private[w.collection][w.key] = w.value
	}
}

// collection is the definition of name: an implicit collection has its
// organisation as member.
func (l *Ledger) collection(name string) (collection, error) {
	if msp, ok := strings.CutPrefix(name, implicitPrefix); ok {
		return collection{members: []string{msp}}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.collections[name]
	if !ok {
		return collection{}, fmt.Errorf("collection %s could not be found", name)
	}
	return c, nil
}

// WithTransient sets the transaction's transient map.
func (tx *Tx) WithTransient(m map[string][]byte) *Tx {
	tx.transient = m
	return tx
}

// GetTransient returns the transaction's transient map.
func (tx *Tx) GetTransient() (map[string][]byte, error) { return tx.transient, nil }

// GetPrivateData reads the committed value of key in collection, as a
// peer of the submitter's organisation has it: nil when the
// organisation is no member; refused when the collection is
// memberOnlyRead.
func (tx *Tx) GetPrivateData(name, key string) ([]byte, error) {
	c, err := tx.ledger.collection(name)
	if err != nil {
		return nil, err
	}
	member := slices.Contains(c.members, tx.mspID)
	if c.memberOnlyRead && !member {
		return nil, fmt.Errorf("tx creator does not have read access permission on privatedata in collectionName:%s", name)
	}
	if !member {
		return nil, nil
	}
	return tx.ledger.PrivateData(name, key), nil
}

// GetPrivateDataHash returns the SHA-256 of the committed value of key
// in collection, which every peer has; nil when there is none.
func (tx *Tx) GetPrivateDataHash(name, key string) ([]byte, error) {
	if _, err := tx.ledger.collection(name); err != nil {
		return nil, err
	}
	v := tx.ledger.PrivateData(name, key)
	if v == nil {
		return nil, nil
	}
	sum := sha256.Sum256(v)
	return sum[:], nil
}

// PutPrivateData records a write to collection.
func (tx *Tx) PutPrivateData(name, key string, value []byte) error {
	if _, err := tx.ledger.collection(name); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("key must not be empty")
	}
	if len(value) == 0 {
		return fmt.Errorf("value for key %q must not be empty", key)
	}
	tx.private = append(tx.private, privateWrite{collection: name, key: key, value: append([]byte(nil), value...)})
	return nil
}

// PurgePrivateData records the purge of key from collection: its value
// and hash are gone once the transaction commits.
func (tx *Tx) PurgePrivateData(name, key string) error {
	if _, err := tx.ledger.collection(name); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("key must not be empty")
	}
	tx.private = append(tx.private, privateWrite{collection: name, key: key})
	return nil
}
