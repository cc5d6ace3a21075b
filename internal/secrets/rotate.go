package secrets

import (
	"context"
	"fmt"
)

// Reencrypt reseals every blob that is not sealed with the primary key, and
// returns how many it resealed. A blob a concurrent writer changes in the
// meantime is left to that writer, who sealed it with the primary key.
func (s *SealedStore) Reencrypt(ctx context.Context) (int, error) {
	refs, err := s.ListBlobs(ctx)
	if err != nil {
		return 0, err
	}
	primary := s.Keys.Primary()
	n := 0
	for _, ref := range refs {
		sealed, err := s.Store.GetBlob(ctx, ref.OwnerUID, ref.Key)
		if err != nil {
			continue // deleted meanwhile
		}
		if id, err := KeyID(sealed); err == nil && id == primary {
			continue
		}
		aad := blobAAD(ref.OwnerUID, ref.Key)
		var pt []byte
		if _, err := KeyID(sealed); err != nil {
			pt = sealed // stored before sealing was introduced
		} else if pt, err = s.Keys.Open(sealed, aad); err != nil {
			return n, fmt.Errorf("reencrypt %s/%s: %w", ref.OwnerUID, ref.Key, err)
		}
		resealed, err := s.Keys.Seal(pt, aad)
		if err != nil {
			return n, err
		}
		ok, err := s.ReplaceBlob(ctx, ref.OwnerUID, ref.Key, sealed, resealed)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Rotate adds a new primary key, reseals every blob with it and then
// retires the old keys. Reads keep working throughout: a blob is readable
// with either key until it is resealed.
func (s *SealedStore) Rotate(ctx context.Context) (string, int, error) {
	id, err := s.Keys.Rotate()
	if err != nil {
		return "", 0, err
	}
	n, err := s.Reencrypt(ctx)
	if err != nil {
		return id, n, fmt.Errorf("new key %s is primary, but resealing stopped: %w (the old keys are kept; it resumes at the next start)", id, err)
	}
	return id, n, s.Keys.Retire()
}
