package secrets

import (
	"context"
	"fmt"

	"github.com/chaindock/chaindock/internal/store"
)

// SealedStore seals every blob before it reaches the underlying store and
// opens it on the way out; everything else passes through.
type SealedStore struct {
	store.Store
	Keys *Keyring
}

var _ store.Store = (*SealedStore)(nil)

func blobAAD(ownerUID, key string) []byte { return []byte("blob\x00" + ownerUID + "\x00" + key) }

// PutBlob implements store.Store.
func (s *SealedStore) PutBlob(ctx context.Context, ownerUID, key string, data []byte) error {
	sealed, err := s.Keys.Seal(data, blobAAD(ownerUID, key))
	if err != nil {
		return fmt.Errorf("seal blob %s: %w", key, err)
	}
	return s.Store.PutBlob(ctx, ownerUID, key, sealed)
}

// GetBlob implements store.Store.
func (s *SealedStore) GetBlob(ctx context.Context, ownerUID, key string) ([]byte, error) {
	sealed, err := s.Store.GetBlob(ctx, ownerUID, key)
	if err != nil {
		return nil, err
	}
	pt, err := s.Keys.Open(sealed, blobAAD(ownerUID, key))
	if err != nil {
		return nil, fmt.Errorf("open blob %s of %s: %w", key, ownerUID, err)
	}
	return pt, nil
}

// KeyIDs reports the primary key and every key in the ring.
func (s *SealedStore) KeyIDs() (string, []string) { return s.Keys.Primary(), s.Keys.IDs() }
