// Package storetest opens real stores for tests, on both engines, and holds the conformance suite that every
// store test runs through on each.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgresEnv names the environment variable with the PostgreSQL server URL for tests. The test command
// (scripts/test) starts a throwaway cluster and sets it.
const PostgresEnv = "HEARTH_TEST_POSTGRES"

// Engines lists the engines to run a test on, each with a function that opens a fresh, migrated store.
func Engines() []struct {
	Name string
	Open func(t testing.TB, clock hearth.Clock) *store.DB
} {
	return []struct {
		Name string
		Open func(t testing.TB, clock hearth.Clock) *store.DB
	}{{"sqlite", SQLite}, {"postgres", Postgres}}
}

// SQLite opens a fresh, migrated SQLite store in a temporary folder.
func SQLite(t testing.TB, clock hearth.Clock) *store.DB {
	t.Helper()
	return open(t, store.Options{Dir: t.TempDir(), Clock: clock})
}

// PostgresURL returns a URL to a fresh, empty schema of the test PostgreSQL server, dropped when the test ends.
// Without a server it skips the test, except under CI, where PostgreSQL tests must never silently skip.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := postgresServer(t)
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	admin := stdlib.OpenDB(*cfg)
	defer admin.Close()
	b := make([]byte, 8)
	rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// postgresServer returns the test PostgreSQL server's URL. Without one it skips the test, except under CI.
func postgresServer(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: under CI the PostgreSQL tests must run (use scripts/test)", PostgresEnv)
		}
		t.Skipf("%s is not set; run scripts/test to start a throwaway PostgreSQL", PostgresEnv)
	}
	return base
}

// Postgres opens a fresh, migrated store in its own schema of the test PostgreSQL server.
func Postgres(t testing.TB, clock hearth.Clock) *store.DB {
	t.Helper()
	return open(t, store.Options{URL: PostgresURL(t), Clock: clock})
}

func open(t testing.TB, opts store.Options) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// PostgresDatabase opens a fresh, migrated store in a database of its own on the test PostgreSQL server,
// created with options (as CREATE DATABASE takes them, such as a locale), and dropped when the test ends.
// It skips the test when the server cannot make such a database (a build without ICU, say).
func PostgresDatabase(t testing.TB, clock hearth.Clock, options string) *store.DB {
	t.Helper()
	base := postgresServer(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	admin := stdlib.OpenDB(*cfg)
	defer admin.Close()
	b := make([]byte, 8)
	rand.Read(b)
	name := "test_" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 `+options); err != nil {
		t.Skipf("PostgreSQL cannot create a database %s: %v", options, err)
	}
	t.Cleanup(func() {
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	u.Path = "/" + name
	return open(t, store.Options{URL: u.String(), Clock: clock})
}
