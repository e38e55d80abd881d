package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Buckets of the embedded database. Records are JSON; keyHashes indexes keys
// by apiID + 0x00 + hash so FindKey is one lookup.
var (
	bucketAPIs      = []byte("apis")
	bucketSubs      = []byte("subscriptions")
	bucketKeys      = []byte("keys")
	bucketKeyHashes = []byte("keyHashes")
)

// boltStore is the embedded Store: one bbolt file, whose write transactions
// are serialised by bbolt itself, which makes UpdateStatus atomic.
type boltStore struct {
	db *bolt.DB
}

// boltAPI is how an API definition is stored.
type boltAPI struct {
	Doc       []byte    `json:"doc"`
	Format    string    `json:"format"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func openBolt(ctx context.Context, path string) (*boltStore, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	// The timeout turns a second gateway on the same dataDir into an error
	// instead of a hang on the file lock.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("store: %s is locked by another process (is another gateway using this dataDir?)", path)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketAPIs, bucketSubs, bucketKeys, bucketKeyHashes} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: initialise %s: %w", path, err)
	}
	return &boltStore{db: db}, nil
}

// update and view run fn in a transaction after checking the context, which
// bbolt itself does not take.
func (s *boltStore) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

func (s *boltStore) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// get decodes the record id of bucket b into v, or returns ErrNotFound.
func get(tx *bolt.Tx, b []byte, id string, v any) error {
	data := tx.Bucket(b).Get([]byte(id))
	if data == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("store: corrupt %s record %q: %w", b, id, err)
	}
	return nil
}

func put(tx *bolt.Tx, b []byte, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s record: %w", b, err)
	}
	return tx.Bucket(b).Put([]byte(id), data)
}

// list decodes every record of bucket b that keep accepts.
func list[T any](tx *bolt.Tx, b []byte, keep func(*T) bool) ([]T, error) {
	var out []T
	err := tx.Bucket(b).ForEach(func(k, data []byte) error {
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("store: corrupt %s record %q: %w", b, k, err)
		}
		if keep(&v) {
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

func notFound(kind, id string) error { return fmt.Errorf("%w: %s %q", ErrNotFound, kind, id) }

// PutAPI implements Store.
func (s *boltStore) PutAPI(ctx context.Context, id string, doc []byte, format string) error {
	if id == "" {
		return fmt.Errorf("%w: API needs an id", ErrInvalid)
	}
	rec := boltAPI{Doc: doc, Format: format, UpdatedAt: now()}
	return s.update(ctx, func(tx *bolt.Tx) error { return put(tx, bucketAPIs, id, rec) })
}

// GetAPI implements Store.
func (s *boltStore) GetAPI(ctx context.Context, id string) (API, error) {
	var rec boltAPI
	err := s.view(ctx, func(tx *bolt.Tx) error { return get(tx, bucketAPIs, id, &rec) })
	if errors.Is(err, ErrNotFound) {
		return API{}, notFound("API", id)
	}
	if err != nil {
		return API{}, err
	}
	return API{ID: id, Doc: rec.Doc, Format: rec.Format, UpdatedAt: rec.UpdatedAt}, nil
}

// ListAPIs implements Store. bbolt iterates in key order, which is id order.
func (s *boltStore) ListAPIs(ctx context.Context) ([]API, error) {
	var out []API
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAPIs).ForEach(func(k, data []byte) error {
			var rec boltAPI
			if err := json.Unmarshal(data, &rec); err != nil {
				return fmt.Errorf("store: corrupt API record %q: %w", k, err)
			}
			out = append(out, API{ID: string(k), Doc: rec.Doc, Format: rec.Format, UpdatedAt: rec.UpdatedAt})
			return nil
		})
	})
	return out, err
}

// DeleteAPI implements Store.
func (s *boltStore) DeleteAPI(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAPIs)
		if b.Get([]byte(id)) == nil {
			return notFound("API", id)
		}
		return b.Delete([]byte(id))
	})
}

// CreateSubscription implements Store.
func (s *boltStore) CreateSubscription(ctx context.Context, sub Subscription) error {
	if err := prepareSubscription(&sub); err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSubs).Get([]byte(sub.ID)) != nil {
			return fmt.Errorf("%w: subscription %q", ErrExists, sub.ID)
		}
		return put(tx, bucketSubs, sub.ID, sub)
	})
}

// GetSubscription implements Store.
func (s *boltStore) GetSubscription(ctx context.Context, id string) (Subscription, error) {
	var sub Subscription
	err := s.view(ctx, func(tx *bolt.Tx) error { return get(tx, bucketSubs, id, &sub) })
	if errors.Is(err, ErrNotFound) {
		return Subscription{}, notFound("subscription", id)
	}
	return sub, err
}

// ListSubscriptions implements Store.
func (s *boltStore) ListSubscriptions(ctx context.Context, apiID string) ([]Subscription, error) {
	var out []Subscription
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = list(tx, bucketSubs, func(sub *Subscription) bool { return apiID == "" || sub.APIID == apiID })
		return err
	})
	slices.SortFunc(out, func(a, b Subscription) int {
		return cmpCreated(a.CreatedAt, b.CreatedAt, a.ID, b.ID)
	})
	return out, err
}

// UpdateStatus implements Store.
func (s *boltStore) UpdateStatus(ctx context.Context, id string, fn func(*Subscription) error) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		var cur Subscription
		if err := get(tx, bucketSubs, id, &cur); err != nil {
			if errors.Is(err, ErrNotFound) {
				return notFound("subscription", id)
			}
			return err
		}
		next, err := applyUpdate(cur, fn)
		if err != nil {
			return err
		}
		return put(tx, bucketSubs, id, next)
	})
}

// DeleteSubscription implements Store.
func (s *boltStore) DeleteSubscription(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSubs)
		if b.Get([]byte(id)) == nil {
			return notFound("subscription", id)
		}
		return b.Delete([]byte(id))
	})
}

// hashIndex is the keyHashes entry of a key.
func hashIndex(apiID string, hash []byte) []byte {
	return append(append([]byte(apiID), 0), hash...)
}

// CreateKey implements Store.
func (s *boltStore) CreateKey(ctx context.Context, k Key) error {
	if err := prepareKey(&k); err != nil {
		return err
	}
	if strings.IndexByte(k.APIID, 0) >= 0 {
		// The hash index separates the API id from the hash with a NUL.
		return fmt.Errorf("%w: API id contains a NUL byte", ErrInvalid)
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		idx := hashIndex(k.APIID, k.Hash)
		if tx.Bucket(bucketKeys).Get([]byte(k.ID)) != nil {
			return fmt.Errorf("%w: key %q", ErrExists, k.ID)
		}
		if tx.Bucket(bucketKeyHashes).Get(idx) != nil {
			return fmt.Errorf("%w: API %q already has a key with this hash", ErrExists, k.APIID)
		}
		if err := put(tx, bucketKeys, k.ID, k); err != nil {
			return err
		}
		return tx.Bucket(bucketKeyHashes).Put(idx, []byte(k.ID))
	})
}

// FindKey implements Store.
func (s *boltStore) FindKey(ctx context.Context, apiID string, hash []byte) (Key, error) {
	var k Key
	err := s.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketKeyHashes).Get(hashIndex(apiID, hash))
		if id == nil {
			return ErrNotFound
		}
		return get(tx, bucketKeys, string(id), &k)
	})
	if errors.Is(err, ErrNotFound) {
		return Key{}, fmt.Errorf("%w: no such key for API %q", ErrNotFound, apiID)
	}
	return k, err
}

// ListKeys implements Store.
func (s *boltStore) ListKeys(ctx context.Context, apiID string) ([]Key, error) {
	var out []Key
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = list(tx, bucketKeys, func(k *Key) bool { return k.APIID == apiID })
		return err
	})
	slices.SortFunc(out, func(a, b Key) int { return cmpCreated(a.CreatedAt, b.CreatedAt, a.ID, b.ID) })
	return out, err
}

// DeleteKey implements Store.
func (s *boltStore) DeleteKey(ctx context.Context, apiID, keyID string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		var k Key
		if err := get(tx, bucketKeys, keyID, &k); err != nil || k.APIID != apiID {
			if err == nil || errors.Is(err, ErrNotFound) {
				return notFound("key", keyID)
			}
			return err
		}
		idx := hashIndex(k.APIID, k.Hash)
		// Only drop the index entry if it points at this key.
		if bytes.Equal(tx.Bucket(bucketKeyHashes).Get(idx), []byte(k.ID)) {
			if err := tx.Bucket(bucketKeyHashes).Delete(idx); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketKeys).Delete([]byte(keyID))
	})
}

// Close implements Store. bbolt waits for open transactions.
func (s *boltStore) Close() error { return s.db.Close() }

// cmpCreated orders records by creation time, then id.
func cmpCreated(ta, tb time.Time, ida, idb string) int {
	if c := ta.Compare(tb); c != 0 {
		return c
	}
	return strings.Compare(ida, idb)
}

var _ Store = (*boltStore)(nil)
