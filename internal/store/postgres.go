package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgStore is the PostgreSQL Store. Tables are prefixed sluice_ and created in
// the connection's search_path (set ?search_path=schema in the URL to use a
// schema of your own). Subscriptions are one JSON document per row: only id
// and api_id are queried, and UpdateStatus locks the row.
type pgStore struct {
	pool *pgxpool.Pool
}

// migrationLock is the advisory lock key that serialises migrations of
// gateways starting together ("sluice" in ASCII).
const migrationLock = 0x736c75696365

// migrations are applied in order, each once; append, never edit.
var migrations = [][]string{
	{
		`CREATE TABLE sluice_apis (
			id text PRIMARY KEY,
			doc bytea NOT NULL,
			format text NOT NULL,
			updated_at timestamptz NOT NULL)`,
		`CREATE TABLE sluice_subscriptions (
			id text PRIMARY KEY,
			api_id text NOT NULL,
			created_at timestamptz NOT NULL,
			data jsonb NOT NULL)`,
		`CREATE INDEX sluice_subscriptions_api ON sluice_subscriptions (api_id, created_at, id)`,
		`CREATE TABLE sluice_keys (
			id text PRIMARY KEY,
			api_id text NOT NULL,
			hash bytea NOT NULL,
			prefix text NOT NULL,
			created_at timestamptz NOT NULL,
			UNIQUE (api_id, hash))`,
	},
}

func openPostgres(ctx context.Context, dsn string) (*pgStore, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	s := &pgStore{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// migrate brings the schema up to date in one transaction, so a failure
// leaves it as it was and concurrent gateways wait for each other.
func (s *pgStore) migrate(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS sluice_migrations (version int PRIMARY KEY)`); err != nil {
			return err
		}
		var done int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM sluice_migrations`).Scan(&done); err != nil {
			return err
		}
		for v := done + 1; v <= len(migrations); v++ {
			for _, stmt := range migrations[v-1] {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d: %w", v, err)
				}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO sluice_migrations (version) VALUES ($1)`, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: postgres: create tables: %w", err)
	}
	return nil
}

// pgError maps a unique violation to ErrExists and wraps anything else.
func pgError(op string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("%w: %s: %s", ErrExists, op, pe.Detail)
	}
	return fmt.Errorf("store: postgres: %s: %w", op, err)
}

// PutAPI implements Store.
func (s *pgStore) PutAPI(ctx context.Context, id string, doc []byte, format string) error {
	if id == "" {
		return fmt.Errorf("%w: API needs an id", ErrInvalid)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO sluice_apis (id, doc, format, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, format = excluded.format, updated_at = excluded.updated_at`,
		id, doc, format, now())
	if err != nil {
		return pgError("put API", err)
	}
	return nil
}

// GetAPI implements Store.
func (s *pgStore) GetAPI(ctx context.Context, id string) (API, error) {
	a := API{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT doc, format, updated_at FROM sluice_apis WHERE id = $1`, id).
		Scan(&a.Doc, &a.Format, &a.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return API{}, notFound("API", id)
	}
	if err != nil {
		return API{}, pgError("get API", err)
	}
	a.UpdatedAt = a.UpdatedAt.UTC()
	return a, nil
}

// ListAPIs implements Store.
func (s *pgStore) ListAPIs(ctx context.Context) ([]API, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, doc, format, updated_at FROM sluice_apis ORDER BY id`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (API, error) {
		var a API
		err := r.Scan(&a.ID, &a.Doc, &a.Format, &a.UpdatedAt)
		a.UpdatedAt = a.UpdatedAt.UTC()
		return a, err
	})
	if err != nil {
		return nil, pgError("list APIs", err)
	}
	return out, nil
}

// DeleteAPI implements Store.
func (s *pgStore) DeleteAPI(ctx context.Context, id string) error {
	return s.delete(ctx, "API", id, `DELETE FROM sluice_apis WHERE id = $1`, id)
}

// delete runs a DELETE and reports ErrNotFound when it removed nothing.
func (s *pgStore) delete(ctx context.Context, kind, id, sql string, args ...any) error {
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return pgError("delete "+kind, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(kind, id)
	}
	return nil
}

// CreateSubscription implements Store.
func (s *pgStore) CreateSubscription(ctx context.Context, sub Subscription) error {
	if err := prepareSubscription(&sub); err != nil {
		return err
	}
	data, err := json.Marshal(sub)
	if err != nil {
		return fmt.Errorf("store: encode subscription: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO sluice_subscriptions (id, api_id, created_at, data) VALUES ($1, $2, $3, $4)`,
		sub.ID, sub.APIID, sub.CreatedAt, data)
	if err != nil {
		return pgError("create subscription", err)
	}
	return nil
}

// GetSubscription implements Store.
func (s *pgStore) GetSubscription(ctx context.Context, id string) (Subscription, error) {
	return getSubscription(ctx, s.pool, id, "")
}

// getSubscription reads one subscription, with lock appended to the query.
func getSubscription(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, id, lock string) (Subscription, error) {
	var data []byte
	err := q.QueryRow(ctx, `SELECT data FROM sluice_subscriptions WHERE id = $1`+lock, id).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return Subscription{}, notFound("subscription", id)
	}
	if err != nil {
		return Subscription{}, pgError("get subscription", err)
	}
	var sub Subscription
	if err := json.Unmarshal(data, &sub); err != nil {
		return Subscription{}, fmt.Errorf("store: corrupt subscription %q: %w", id, err)
	}
	return sub, nil
}

// ListSubscriptions implements Store.
func (s *pgStore) ListSubscriptions(ctx context.Context, apiID string) ([]Subscription, error) {
	rows, _ := s.pool.Query(ctx, `SELECT data FROM sluice_subscriptions
		WHERE $1 = '' OR api_id = $1 ORDER BY created_at, id`, apiID)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Subscription, error) {
		var sub Subscription
		var data []byte
		if err := r.Scan(&data); err != nil {
			return sub, err
		}
		return sub, json.Unmarshal(data, &sub)
	})
	if err != nil {
		return nil, pgError("list subscriptions", err)
	}
	return out, nil
}

// UpdateStatus implements Store. SELECT ... FOR UPDATE makes concurrent
// updaters of one subscription, in this process or another gateway, queue.
func (s *pgStore) UpdateStatus(ctx context.Context, id string, fn func(*Subscription) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := getSubscription(ctx, tx, id, " FOR UPDATE")
		if err != nil {
			return err
		}
		next, err := applyUpdate(cur, fn)
		if err != nil {
			return err
		}
		data, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("store: encode subscription: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE sluice_subscriptions SET data = $2 WHERE id = $1`, id, data); err != nil {
			return pgError("update subscription", err)
		}
		return nil
	})
}

// DeleteSubscription implements Store.
func (s *pgStore) DeleteSubscription(ctx context.Context, id string) error {
	return s.delete(ctx, "subscription", id, `DELETE FROM sluice_subscriptions WHERE id = $1`, id)
}

// CreateKey implements Store.
func (s *pgStore) CreateKey(ctx context.Context, k Key) error {
	if err := prepareKey(&k); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO sluice_keys (id, api_id, hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)`,
		k.ID, k.APIID, k.Hash, k.Prefix, k.CreatedAt)
	if err != nil {
		return pgError("create key", err)
	}
	return nil
}

const keyColumns = `id, api_id, hash, prefix, created_at`

func scanKey(r pgx.CollectableRow) (Key, error) {
	var k Key
	err := r.Scan(&k.ID, &k.APIID, &k.Hash, &k.Prefix, &k.CreatedAt)
	k.CreatedAt = k.CreatedAt.UTC()
	return k, err
}

// FindKey implements Store.
func (s *pgStore) FindKey(ctx context.Context, apiID string, hash []byte) (Key, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM sluice_keys WHERE api_id = $1 AND hash = $2`, apiID, hash)
	k, err := pgx.CollectExactlyOneRow(rows, scanKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, fmt.Errorf("%w: no such key for API %q", ErrNotFound, apiID)
	}
	if err != nil {
		return Key{}, pgError("find key", err)
	}
	return k, nil
}

// ListKeys implements Store.
func (s *pgStore) ListKeys(ctx context.Context, apiID string) ([]Key, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM sluice_keys WHERE api_id = $1 ORDER BY created_at, id`, apiID)
	out, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return nil, pgError("list keys", err)
	}
	return out, nil
}

// DeleteKey implements Store.
func (s *pgStore) DeleteKey(ctx context.Context, apiID, keyID string) error {
	return s.delete(ctx, "key", keyID, `DELETE FROM sluice_keys WHERE id = $1 AND api_id = $2`, keyID, apiID)
}

// Close implements Store. It waits for connections in use to be released.
func (s *pgStore) Close() error {
	s.pool.Close()
	return nil
}

var _ Store = (*pgStore)(nil)
