// Package pgtest gives tests a fresh PostgreSQL database of their own, and
// a migrated [postgres.Store] on it. Tests in any package may import it.
//
// The server is named by HOOKD_TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); the role
// must be allowed to create databases. A test whose server cannot be
// reached fails rather than skips, so that CI cannot pass without the
// database tests having run.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/store/postgres"
)

// EnvURL names the environment variable that points the tests at a
// PostgreSQL server.
const EnvURL = "HOOKD_TEST_DATABASE_URL"

// DefaultURL is used when EnvURL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// adminTimeout bounds creating and dropping a database.
const adminTimeout = 30 * time.Second

// NewDatabase creates an empty database with a unique name
// (hookd_test_<hex>) on the test server, drops it (closing any
// connections left to it) when the test and its subtests finish, and
// returns its URL. It fails the test if the server cannot be reached.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := serverURL(t)
	name := "hookd_test_" + randomHex(t)

	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	admin := connect(t, ctx, base)
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		admin := connect(t, ctx, base)
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})

	u := *base
	u.Path = "/" + name
	return u.String()
}

// NewStore opens a [postgres.Store] on a fresh database (see NewDatabase),
// migrates it, and closes it when the test finishes.
func NewStore(t testing.TB) *postgres.Store {
	t.Helper()
	s, _ := NewStoreURL(t)
	return s
}

// NewStoreURL is NewStore, and returns the database's URL too.
func NewStoreURL(t testing.TB) (*postgres.Store, string) {
	t.Helper()
	dbURL := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	s, err := postgres.Open(ctx, dbURL, nil)
	if err != nil {
		t.Fatalf("pgtest: open store: %v", err)
	}
	// Registered after NewDatabase's cleanup, so it runs before the drop.
	t.Cleanup(s.Close)
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("pgtest: migrate: %v", err)
	}
	return s, dbURL
}

// serverURL returns the test server's URL from the environment.
func serverURL(t testing.TB) *url.URL {
	t.Helper()
	raw := os.Getenv(EnvURL)
	if raw == "" {
		raw = DefaultURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("pgtest: %s must be a postgres:// URL", EnvURL)
	}
	return u
}

// connect opens one connection to u or fails the test, naming the
// environment variable to set.
func connect(t testing.TB, ctx context.Context, u *url.URL) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("pgtest: cannot reach PostgreSQL at %s (set %s to a server where the role may create databases): %v",
			u.Redacted(), EnvURL, err)
	}
	return conn
}

func randomHex(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("pgtest: random name: %v", err)
	}
	return hex.EncodeToString(b)
}

// ServerURL returns the URL of the test server's administrative database
// (EnvURL, or DefaultURL), for a test that acts on its own database from
// outside (ALTER DATABASE, pg_terminate_backend).
func ServerURL(t testing.TB) string {
	t.Helper()
	return serverURL(t).String()
}
