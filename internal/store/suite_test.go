package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// location returns a fresh, empty place for a store, which Open(ctx, dsn,
// dataDir) opens as many times as a test wants.
type location func(t *testing.T) (dsn, dataDir string)

// TestStore runs the same suite against every implementation.
func TestStore(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		t.Parallel()
		runSuite(t, func(t *testing.T) (string, string) { return "", t.TempDir() })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		runSuite(t, postgresLocation(t))
	})
}

// postgresLocation connects to the local PostgreSQL server and gives every
// test its own schema, dropped at cleanup, so parallel runs never collide.
// It skips when the server is unreachable unless SLUICE_REQUIRE_SERVICES=1.
func postgresLocation(t *testing.T) location {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var admin *pgx.Conn
	var base string
	var errs []error
	for _, user := range []string{"postgres", "root"} {
		dsn := "postgres://" + user + "@127.0.0.1:5432/test?sslmode=disable"
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			admin, base = c, dsn
			break
		}
		errs = append(errs, err)
	}
	if admin == nil {
		msg := fmt.Sprintf("PostgreSQL at 127.0.0.1:5432/test not reachable: %v", errors.Join(errs...))
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var mu sync.Mutex // a pgx.Conn serves one query at a time
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	return func(t *testing.T) (string, string) {
		schema := "sluice_test_" + randomHex(t, 8)
		exec := func(sql string) error {
			mu.Lock()
			defer mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := admin.Exec(ctx, sql)
			return err
		}
		if err := exec("CREATE SCHEMA " + schema); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		t.Cleanup(func() {
			if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
				t.Errorf("drop schema %s: %v", schema, err)
			}
		})
		return base + "&search_path=" + schema, ""
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// open opens the store at loc and closes it at cleanup.
func open(t *testing.T, dsn, dataDir string) Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, dataDir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newStore(t *testing.T, loc location) Store {
	dsn, dir := loc(t)
	return open(t, dsn, dir)
}

func sampleSub(id, apiID string) Subscription {
	return Subscription{
		ID:          id,
		APIID:       apiID,
		Plan:        "webhooks",
		CallbackURL: "https://example.com/hook/" + id,
		Headers:     map[string]string{"X-Team": "orders"},
		Secret:      "whsec_c2VjcmV0",
		Retry:       Retry{MaxAttempts: 5, InitialDelay: time.Second, MaxDelay: time.Minute},
		Status:      StatusActive,
		CreatedAt:   time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
	}
}

// sameSub fails unless got equals want, comparing times as instants.
func sameSub(t *testing.T, got, want Subscription) {
	t.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.LastDeliveryAt.Equal(want.LastDeliveryAt) {
		t.Fatalf("times: got created %v, last delivery %v; want %v, %v",
			got.CreatedAt, got.LastDeliveryAt, want.CreatedAt, want.LastDeliveryAt)
	}
	got.CreatedAt, got.LastDeliveryAt = time.Time{}, time.Time{}
	want.CreatedAt, want.LastDeliveryAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("subscription:\n got %+v\nwant %+v", got, want)
	}
}

func subIDs(subs []Subscription) string {
	ids := make([]string, len(subs))
	for i, s := range subs {
		ids[i] = s.ID
	}
	return strings.Join(ids, ",")
}

func hashOf(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

func mustErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// runSuite is the behaviour every Store implementation must have.
func runSuite(t *testing.T, loc location) {
	tests := []struct {
		desc string
		run  func(t *testing.T, loc location)
	}{
		{"APIs are created, replaced, listed by id and deleted", testAPIs},
		{"subscriptions are created, read, listed and deleted", testSubscriptions},
		{"UpdateStatus writes what fn changed, except identity", testUpdateStatus},
		{"100 concurrent UpdateStatus increments are all kept", testConcurrentUpdates},
		{"keys are found by API and hash only", testKeys},
		{"everything survives Close and reopen", testPersistence},
		{"invalid records are refused", testInvalid},
		{"a cancelled context fails the call", testCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			tt.run(t, loc)
		})
	}
}

func testAPIs(t *testing.T, loc location) {
	ctx := context.Background()
	s := newStore(t, loc)
	_, err := s.GetAPI(ctx, "orders")
	mustErr(t, err, ErrNotFound, "GetAPI before PutAPI")
	must(t, s.PutAPI(ctx, "orders", []byte("id: orders\n"), "yaml"), "PutAPI")
	must(t, s.PutAPI(ctx, "orders", []byte(`{"id":"orders"}`), "json"), "PutAPI replace")
	must(t, s.PutAPI(ctx, "alerts", []byte("id: alerts\n"), "yaml"), "PutAPI")
	a, err := s.GetAPI(ctx, "orders")
	must(t, err, "GetAPI")
	if a.ID != "orders" || string(a.Doc) != `{"id":"orders"}` || a.Format != "json" || a.UpdatedAt.IsZero() {
		t.Fatalf("GetAPI after replace = %+v", a)
	}
	list, err := s.ListAPIs(ctx)
	must(t, err, "ListAPIs")
	if len(list) != 2 || list[0].ID != "alerts" || list[1].ID != "orders" || string(list[0].Doc) != "id: alerts\n" {
		t.Fatalf("ListAPIs = %+v, want alerts then orders", list)
	}
	must(t, s.DeleteAPI(ctx, "orders"), "DeleteAPI")
	mustErr(t, s.DeleteAPI(ctx, "orders"), ErrNotFound, "DeleteAPI twice")
	_, err = s.GetAPI(ctx, "orders")
	mustErr(t, err, ErrNotFound, "GetAPI after delete")
}

func testSubscriptions(t *testing.T, loc location) {
	ctx := context.Background()
	s := newStore(t, loc)
	a1, a2, b1 := sampleSub("a1", "orders"), sampleSub("a2", "orders"), sampleSub("b1", "alerts")
	a2.CreatedAt = a1.CreatedAt.Add(time.Second)
	b1.CreatedAt = a1.CreatedAt.Add(-time.Second)
	b1.MaxConcurrentDeliveries = 16
	for _, sub := range []Subscription{a2, a1, b1} {
		must(t, s.CreateSubscription(ctx, sub), "CreateSubscription "+sub.ID)
	}
	mustErr(t, s.CreateSubscription(ctx, sampleSub("a1", "other")), ErrExists, "CreateSubscription with a taken id")

	got, err := s.GetSubscription(ctx, "b1")
	must(t, err, "GetSubscription")
	sameSub(t, got, b1)

	for _, c := range []struct{ apiID, want string }{{"orders", "a1,a2"}, {"", "b1,a1,a2"}, {"nope", ""}} {
		list, err := s.ListSubscriptions(ctx, c.apiID)
		must(t, err, "ListSubscriptions")
		if subIDs(list) != c.want {
			t.Fatalf("ListSubscriptions(%q) = %q, want %q", c.apiID, subIDs(list), c.want)
		}
	}

	must(t, s.DeleteSubscription(ctx, "a1"), "DeleteSubscription")
	mustErr(t, s.DeleteSubscription(ctx, "a1"), ErrNotFound, "DeleteSubscription twice")
	_, err = s.GetSubscription(ctx, "a1")
	mustErr(t, err, ErrNotFound, "GetSubscription after delete")
	mustErr(t, s.UpdateStatus(ctx, "a1", func(*Subscription) error { return nil }), ErrNotFound, "UpdateStatus after delete")

	// A subscription created without status or time gets defaults.
	d := sampleSub("d", "orders")
	d.Status, d.CreatedAt = "", time.Time{}
	must(t, s.CreateSubscription(ctx, d), "CreateSubscription with defaults")
	got, err = s.GetSubscription(ctx, "d")
	must(t, err, "GetSubscription")
	if got.Status != StatusActive || time.Since(got.CreatedAt) > time.Hour || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("defaults: status %q created %v, want active and now in UTC", got.Status, got.CreatedAt)
	}
}

func testUpdateStatus(t *testing.T, loc location) {
	ctx := context.Background()
	s := newStore(t, loc)
	want := sampleSub("s", "orders")
	must(t, s.CreateSubscription(ctx, want), "CreateSubscription")

	last := time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC)
	err := s.UpdateStatus(ctx, "s", func(sub *Subscription) error {
		sub.Status, sub.Failed, sub.LastError, sub.LastDeliveryAt = StatusFailed, 3, "callback answered 400", last
		sub.Headers["X-New"] = "1"
		sub.ID, sub.APIID, sub.CreatedAt = "hijack", "other", time.Now()
		return nil
	})
	must(t, err, "UpdateStatus")
	want.Status, want.Failed, want.LastError, want.LastDeliveryAt = StatusFailed, 3, "callback answered 400", last
	want.Headers = map[string]string{"X-Team": "orders", "X-New": "1"}
	got, err := s.GetSubscription(ctx, "s")
	must(t, err, "GetSubscription")
	sameSub(t, got, want)

	// An error from fn aborts the update and is returned as is.
	boom := errors.New("boom")
	mustErr(t, s.UpdateStatus(ctx, "s", func(sub *Subscription) error {
		sub.Status = StatusGone
		return boom
	}), boom, "UpdateStatus with failing fn")
	got, err = s.GetSubscription(ctx, "s")
	must(t, err, "GetSubscription")
	sameSub(t, got, want)
}

func testConcurrentUpdates(t *testing.T, loc location) {
	ctx := context.Background()
	s := newStore(t, loc)
	must(t, s.CreateSubscription(ctx, sampleSub("s", "orders")), "CreateSubscription")
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			errs <- s.UpdateStatus(ctx, "s", func(sub *Subscription) error {
				sub.Delivered++
				return nil
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err, "UpdateStatus")
	}
	got, err := s.GetSubscription(ctx, "s")
	must(t, err, "GetSubscription")
	if got.Delivered != n {
		t.Fatalf("Delivered = %d after %d concurrent increments", got.Delivered, n)
	}
}

func testKeys(t *testing.T, loc location) {
	ctx := context.Background()
	s := newStore(t, loc)
	const secret = "sk_live_0123456789abcdef"
	k1 := Key{ID: "k1", APIID: "orders", Hash: hashOf(secret), Prefix: "sk_live_0123", CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	k2 := Key{ID: "k2", APIID: "orders", Hash: hashOf("another"), Prefix: "sk_live_anot", CreatedAt: k1.CreatedAt.Add(time.Minute)}
	must(t, s.CreateKey(ctx, k2), "CreateKey k2")
	must(t, s.CreateKey(ctx, k1), "CreateKey k1")
	mustErr(t, s.CreateKey(ctx, Key{ID: "k1", APIID: "alerts", Hash: hashOf("x")}), ErrExists, "CreateKey with a taken id")
	mustErr(t, s.CreateKey(ctx, Key{ID: "k3", APIID: "orders", Hash: hashOf(secret)}), ErrExists, "CreateKey with a taken hash")
	// The same key may exist for another API.
	must(t, s.CreateKey(ctx, Key{ID: "k4", APIID: "alerts", Hash: hashOf(secret)}), "CreateKey same hash, other API")

	got, err := s.FindKey(ctx, "orders", hashOf(secret))
	must(t, err, "FindKey")
	if got.ID != "k1" || got.APIID != "orders" || !bytes.Equal(got.Hash, k1.Hash) || got.Prefix != k1.Prefix || !got.CreatedAt.Equal(k1.CreatedAt) {
		t.Fatalf("FindKey = %+v, want %+v", got, k1)
	}
	for _, c := range []struct {
		desc  string
		apiID string
		hash  []byte
	}{
		{"the key itself instead of its hash", "orders", []byte(secret)},
		{"a wrong key", "orders", hashOf(secret + "x")},
		{"an unknown API", "billing", hashOf(secret)},
	} {
		_, err := s.FindKey(ctx, c.apiID, c.hash)
		mustErr(t, err, ErrNotFound, "FindKey with "+c.desc)
	}

	list, err := s.ListKeys(ctx, "orders")
	must(t, err, "ListKeys")
	if len(list) != 2 || list[0].ID != "k1" || list[1].ID != "k2" {
		t.Fatalf("ListKeys = %+v, want k1 then k2", list)
	}

	mustErr(t, s.DeleteKey(ctx, "alerts", "k1"), ErrNotFound, "DeleteKey of another API's key")
	must(t, s.DeleteKey(ctx, "orders", "k1"), "DeleteKey")
	mustErr(t, s.DeleteKey(ctx, "orders", "k1"), ErrNotFound, "DeleteKey twice")
	_, err = s.FindKey(ctx, "orders", hashOf(secret))
	mustErr(t, err, ErrNotFound, "FindKey after delete")
	if _, err := s.FindKey(ctx, "alerts", hashOf(secret)); err != nil {
		t.Fatalf("FindKey of the other API's key after delete: %v", err)
	}
	// The hash is free again.
	must(t, s.CreateKey(ctx, Key{ID: "k5", APIID: "orders", Hash: hashOf(secret)}), "CreateKey reusing a deleted hash")
}

func testPersistence(t *testing.T, loc location) {
	ctx := context.Background()
	dsn, dir := loc(t)
	s, err := Open(ctx, dsn, dir)
	must(t, err, "Open")
	sub := sampleSub("s", "orders")
	must(t, s.CreateSubscription(ctx, sub), "CreateSubscription")
	must(t, s.UpdateStatus(ctx, "s", func(x *Subscription) error { x.Delivered = 7; return nil }), "UpdateStatus")
	must(t, s.CreateKey(ctx, Key{ID: "k", APIID: "orders", Hash: hashOf("secret")}), "CreateKey")
	must(t, s.PutAPI(ctx, "orders", []byte("id: orders\n"), "yaml"), "PutAPI")
	must(t, s.Close(), "Close")

	// Reopening also re-runs the migrations, which must be idempotent.
	s = open(t, dsn, dir)
	got, err := s.GetSubscription(ctx, "s")
	must(t, err, "GetSubscription after reopen")
	sub.Delivered = 7
	sameSub(t, got, sub)
	_, err = s.FindKey(ctx, "orders", hashOf("secret"))
	must(t, err, "FindKey after reopen")
	a, err := s.GetAPI(ctx, "orders")
	must(t, err, "GetAPI after reopen")
	if string(a.Doc) != "id: orders\n" {
		t.Fatalf("API doc after reopen = %q", a.Doc)
	}
}

func testInvalid(t *testing.T, loc location) {
	ctx := context.Background()
	s := newStore(t, loc)
	mustErr(t, s.PutAPI(ctx, "", []byte("x"), "yaml"), ErrInvalid, "PutAPI without id")
	mustErr(t, s.CreateSubscription(ctx, sampleSub("", "orders")), ErrInvalid, "CreateSubscription without id")
	mustErr(t, s.CreateSubscription(ctx, sampleSub("s", "")), ErrInvalid, "CreateSubscription without API")
	mustErr(t, s.CreateKey(ctx, Key{ID: "k", APIID: "orders"}), ErrInvalid, "CreateKey without hash")
}

func testCancelled(t *testing.T, loc location) {
	s := newStore(t, loc)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.GetSubscription(ctx, "s")
	mustErr(t, err, context.Canceled, "GetSubscription")
	mustErr(t, s.UpdateStatus(ctx, "s", func(*Subscription) error { return nil }), context.Canceled, "UpdateStatus")
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := Open(ctx, "", "")
	if err == nil || !strings.Contains(err.Error(), "dataDir") {
		t.Fatalf("Open without dataDir: %v, want an error naming dataDir", err)
	}
	_, err = Open(ctx, "mysql://user:hunter2@db/x", t.TempDir())
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "mysql") {
		t.Fatalf("Open with an unsupported URL: %v, want an error naming the scheme without the password", err)
	}
	// A file where the data directory should be.
	file := t.TempDir() + "/file"
	must(t, os.WriteFile(file, nil, 0o600), "WriteFile")
	if _, err := Open(ctx, "", file); err == nil {
		t.Fatal("Open with a file as dataDir succeeded")
	}
}
