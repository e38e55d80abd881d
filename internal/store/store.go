// Package store persists what the management API creates at run time: APIs
// deployed through it, webhook subscriptions and API keys.
//
// Two implementations sit behind one interface: an embedded bbolt file under
// the gateway's dataDir (the default) and PostgreSQL when server.store is a
// postgres:// URL, so several gateways can share one state. Open picks one.
package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"time"
)

// Sentinel errors; implementations wrap them so callers test with errors.Is.
var (
	// ErrNotFound reports that the addressed API, subscription or key does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists reports that a subscription or key with the same identity already exists.
	ErrExists = errors.New("store: already exists")
	// ErrInvalid reports a record the store refuses, such as one without an ID.
	ErrInvalid = errors.New("store: invalid record")
)

// Subscription statuses.
const (
	// StatusActive subscriptions are delivered to.
	StatusActive = "active"
	// StatusFailed subscriptions stopped on a message they could not deliver
	// and resume from it when resumed.
	StatusFailed = "failed"
	// StatusPaused subscriptions were stopped on request.
	StatusPaused = "paused"
	// StatusGone subscriptions were disabled because the callback answered 410 Gone.
	StatusGone = "gone"
)

// Store is the persistent state behind the management API. All methods are
// safe for concurrent use. Each call is one transaction: it blocks until the
// change is durable (fsynced for bbolt, committed for PostgreSQL) or failed.
// The context bounds waiting for a database connection and, for PostgreSQL,
// the whole call; bbolt checks it before starting and cannot abandon a write
// midway. Returned values are copies the caller may modify.
type Store interface {
	// PutAPI creates or replaces the API definition with this id. doc is the
	// definition as received and format names its syntax ("yaml" or "json").
	PutAPI(ctx context.Context, id string, doc []byte, format string) error
	// GetAPI returns the API definition with this id, or ErrNotFound.
	GetAPI(ctx context.Context, id string) (API, error)
	// ListAPIs returns every stored API definition, ordered by id.
	ListAPIs(ctx context.Context) ([]API, error)
	// DeleteAPI removes the API definition with this id, or returns
	// ErrNotFound. Its subscriptions and keys are kept: they may belong to an
	// API of the same id defined in the configuration file.
	DeleteAPI(ctx context.Context, id string) error

	// CreateSubscription stores a new subscription; ErrExists when its ID is
	// taken. A zero CreatedAt is set to the current time;
	// times are kept in UTC to the microsecond.
	CreateSubscription(ctx context.Context, s Subscription) error
	// GetSubscription returns the subscription with this id, or ErrNotFound.
	GetSubscription(ctx context.Context, id string) (Subscription, error)
	// ListSubscriptions returns the subscriptions of one API, or of every API
	// when apiID is "", ordered by creation time then id.
	ListSubscriptions(ctx context.Context, apiID string) ([]Subscription, error)
	// UpdateStatus reads the subscription with this id, applies fn to it and
	// writes the result back atomically: concurrent updates of the same
	// subscription are serialised, none is lost. fn is called once, while the
	// record is locked, so it must be quick and must not call the store; if it
	// returns an error nothing is written and that error is returned. Changes
	// fn makes to ID, APIID and CreatedAt are ignored. ErrNotFound when the
	// subscription does not exist.
	UpdateStatus(ctx context.Context, id string, fn func(*Subscription) error) error
	// DeleteSubscription removes the subscription with this id, or returns ErrNotFound.
	DeleteSubscription(ctx context.Context, id string) error

	// CreateKey stores a new API key. Only its hash is stored; ErrExists
	// when the ID is taken or the API already has a key with the same hash.
	// A zero CreatedAt is set to the current time;
	// times are kept in UTC to the microsecond.
	CreateKey(ctx context.Context, k Key) error
	// FindKey returns the key of this API whose hash is hash, or ErrNotFound.
	FindKey(ctx context.Context, apiID string, hash []byte) (Key, error)
	// ListKeys returns the keys of one API, ordered by creation time then id.
	ListKeys(ctx context.Context, apiID string) ([]Key, error)
	// DeleteKey removes the key keyID of this API, or returns ErrNotFound
	// (also when the key belongs to another API).
	DeleteKey(ctx context.Context, apiID, keyID string) error

	// Close releases the database. It waits for calls in progress.
	Close() error
}

// API is an API definition deployed through the management API.
type API struct {
	ID string
	// Doc is the definition exactly as it was received.
	Doc []byte
	// Format is the syntax of Doc: "yaml" or "json".
	Format    string
	UpdatedAt time.Time
}

// Subscription is a webhook subscription on a push plan, with its delivery status.
type Subscription struct {
	ID          string            `json:"id"`
	APIID       string            `json:"apiId"`
	Plan        string            `json:"plan"`
	CallbackURL string            `json:"callbackUrl"`
	Headers     map[string]string `json:"headers,omitempty"`
	// Secret signs deliveries; it is stored as is because signing needs it.
	Secret                  string `json:"secret"`
	Retry                   Retry  `json:"retry"`
	MaxConcurrentDeliveries int    `json:"maxConcurrentDeliveries,omitempty"`
	// Status is one of StatusActive, StatusFailed, StatusPaused, StatusGone.
	Status string `json:"status"`
	// Delivered counts messages the callback accepted.
	Delivered int64 `json:"delivered"`
	// Failed counts failed delivery attempts, retried or not.
	Failed int64 `json:"failed"`
	// DeadLettered counts messages sent to the dead-letter queue.
	DeadLettered int64 `json:"deadLettered"`
	// Retrying is how many messages wait for a retry now.
	Retrying       int       `json:"retrying"`
	LastError      string    `json:"lastError,omitempty"`
	LastErrorAt    time.Time `json:"lastErrorAt"`
	LastDeliveryAt time.Time `json:"lastDeliveryAt"`
	CreatedAt      time.Time `json:"createdAt"`
}

// Retry bounds the redelivery of one message to a subscription.
type Retry struct {
	MaxAttempts  int           `json:"maxAttempts"`
	InitialDelay time.Duration `json:"initialDelay"`
	MaxDelay     time.Duration `json:"maxDelay"`
}

// Key is an API key of one API. The key itself is never stored, only a hash
// of it (the caller chooses the hash function and compares with it).
type Key struct {
	ID    string `json:"id"`
	APIID string `json:"apiId"`
	Hash  []byte `json:"hash"`
	// Prefix is the first characters of the key, shown to tell keys apart.
	Prefix    string    `json:"prefix,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// dbFile is the name of the embedded database under dataDir.
const dbFile = "sluice.db"

// Open opens the store named by dsn: "" opens (creating it if needed) the
// embedded database under dataDir; a postgres:// or postgresql:// URL opens
// that PostgreSQL database and creates the tables it lacks. Open blocks until
// the store is ready, the context ends, or (embedded) another process has
// held the database file for 10 seconds.
func Open(ctx context.Context, dsn, dataDir string) (Store, error) {
	switch {
	case dsn == "":
		if dataDir == "" {
			return nil, errors.New("store: dataDir is required for the embedded store")
		}
		return openBolt(ctx, filepath.Join(dataDir, dbFile))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	default:
		// The DSN may hold a password: name only what is before the colon.
		scheme, _, _ := strings.Cut(dsn, ":")
		return nil, fmt.Errorf("store: unsupported store %q: want \"\" (embedded) or a postgres:// URL", scheme)
	}
}

// prepareSubscription validates s and fills its defaults before a create.
func prepareSubscription(s *Subscription) error {
	if s.ID == "" || s.APIID == "" {
		return fmt.Errorf("%w: subscription needs an id and an apiId", ErrInvalid)
	}
	if s.Status == "" {
		s.Status = StatusActive
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now()
	}
	s.CreatedAt = s.CreatedAt.UTC().Truncate(time.Microsecond)
	return nil
}

// prepareKey validates k and fills its defaults before a create.
func prepareKey(k *Key) error {
	if k.ID == "" || k.APIID == "" || len(k.Hash) == 0 {
		return fmt.Errorf("%w: key needs an id, an apiId and a hash", ErrInvalid)
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now()
	}
	k.CreatedAt = k.CreatedAt.UTC().Truncate(time.Microsecond)
	return nil
}

// applyUpdate runs fn on a copy of cur and returns the result with the
// immutable fields restored.
func applyUpdate(cur Subscription, fn func(*Subscription) error) (Subscription, error) {
	next := cur
	next.Headers = maps.Clone(cur.Headers)
	if err := fn(&next); err != nil {
		return Subscription{}, err
	}
	next.ID, next.APIID, next.CreatedAt = cur.ID, cur.APIID, cur.CreatedAt
	return next, nil
}

// now is the current time in UTC at the precision PostgreSQL keeps, so both
// stores return the same times.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
