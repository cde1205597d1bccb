package backfill

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/storetest/backends"

	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// The engine's tests run against the real stores: PostgreSQL (a fresh
// database per test, on the server pgtest names) and the embedded SQLite
// store (a fresh directory per test).

// openTimeout bounds opening and migrating a store.
const openTimeout = 30 * time.Second

// backend is a real store, and how another member reaches the same data.
type backend struct {
	store.BackfillStore
	// member returns the store another member of the deployment uses: a
	// second Store on the same PostgreSQL database (its own pool), or
	// the SQLite store itself (one process owns the file).
	member func(t *testing.T) store.BackfillStore
}

// stores are the backends every engine test runs against.
var stores = []struct {
	name string
	open func(t *testing.T) backend
}{
	{"postgres", openPostgres},
	{"sqlite", openSQLite},
}

// openPostgres returns a migrated PostgreSQL store on a fresh database,
// closed (before the database is dropped) when the test finishes.
func openPostgres(t *testing.T) backend {
	t.Helper()
	url := pgtest.NewDatabase(t)
	open := func(t *testing.T) *postgres.Store {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
		defer cancel()
		s, err := postgres.Open(ctx, url, nil)
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		// Registered after NewDatabase's cleanup, so it runs before the drop.
		t.Cleanup(s.Close)
		return s
	}
	s := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("postgres Migrate: %v", err)
	}
	return backend{BackfillStore: s, member: func(t *testing.T) store.BackfillStore { return open(t) }}
}

// openSQLite returns a migrated SQLite store in a fresh directory
// (internal/storetest/backends); one process, so a second member is the
// same store.
func openSQLite(t *testing.T) backend {
	s := backends.OpenSQLite(t)
	return backend{BackfillStore: s, member: func(*testing.T) store.BackfillStore { return s }}
}

// eachStore runs fn as a parallel subtest per backend, on a fresh store.
func eachStore(t *testing.T, fn func(t *testing.T, st backend)) {
	t.Helper()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			fn(t, s.open(t))
		})
	}
}

// unfinished returns the newest unfinished run of kind, failing the test
// on an error other than ErrNotFound (returned as found=false).
func unfinished(t *testing.T, st store.BackfillStore, kind string) (store.BackfillRun, bool) {
	t.Helper()
	run, err := st.UnfinishedBackfillRun(t.Context(), kind)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("UnfinishedBackfillRun(%s): %v", kind, err)
		}
		return store.BackfillRun{}, false
	}
	return run, true
}
