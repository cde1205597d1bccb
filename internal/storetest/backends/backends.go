// Package backends gives tests outside the store packages a fresh store of
// every backend: PostgreSQL (a new database on the server pgtest names)
// and the embedded SQLite store (a new directory). It lives apart from
// internal/storetest, which the backends' own tests import.
package backends

import (
	"context"
	"testing"
	"time"

	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres/pgtest"
	"github.com/hookd/hookd/store/sqlite"
)

// Store is what every backend implements: the event store, push
// delivery, backfills and the customer listing.
type Store interface {
	store.Store
	store.DeliveryStore
	store.BackfillStore
	store.CustomerLister
}

// Backend opens fresh stores of one kind.
type Backend struct {
	Name string // "postgres" or "sqlite"
	// Open returns a fresh, migrated store, closed when t ends.
	Open func(t *testing.T) Store
}

// All are the backends hookd ships.
var All = []Backend{
	{"postgres", func(t *testing.T) Store { return pgtest.NewStore(t) }},
	{"sqlite", OpenSQLite},
}

// OpenSQLite returns a migrated SQLite store in a fresh directory, closed
// when t ends.
func OpenSQLite(t *testing.T) Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlite.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("sqlite Migrate: %v", err)
	}
	return s
}

// Each runs f as a parallel subtest per backend, on a fresh store.
func Each(t *testing.T, f func(t *testing.T, st Store)) {
	t.Helper()
	for _, b := range All {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f(t, b.Open(t))
		})
	}
}
