// Package postgres is hookd's PostgreSQL backend for [store.Store], built
// on pgx v5 and a pgxpool connection pool.
//
// The customer actors call [Store.Commit] to make an event durable: the
// inbox row, the customer's version-fenced state and the outbox rows go in
// one transaction, many actors' writes in one batch (group commit), each
// write under its own savepoint so that one write's duplicate or fence
// conflict leaves the others intact. The services read events and
// customers, and the notification fan-out follows the outbox with
// [Store.ReadNotifications], whose cursor orders rows by (transaction ID,
// sequence) and never returns a row while an older transaction is still
// running (DESIGN.md, invariant 6).
//
// The schema lives in embedded, numbered migrations (migrations/*.sql),
// applied by [Store.Migrate]; [Open] does not migrate. Driver errors are
// translated to the store package's sentinel errors here and nowhere else.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookd/hookd/store"
)

// ErrInvalidArgument is store.ErrInvalidArgument, kept here for callers
// of this package.
var ErrInvalidArgument = store.ErrInvalidArgument

// Store is a [store.Store] backed by PostgreSQL. It is safe for concurrent
// use. Create it with [Open] and release it with [Store.Close].
type Store struct {
	pool      *pgxpool.Pool
	log       *slog.Logger
	closeOnce sync.Once
	// fastCommits is positive while commits try the optimistic path
	// first; a failed attempt sets it to 1-optimisticBackoff, and each
	// commit counts it back up.
	fastCommits atomic.Int64
	// setBased: the optimistic path writes a batch set-based
	// (setbased.go) when it can; false, a statement per write.
	setBased bool
}

var _ store.Store = (*Store)(nil)

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// key=value connection string, including pgxpool's pool_* parameters) and
// checks that it answers. It does not migrate: call [Store.Migrate]. A nil
// logger discards logs. An unreachable database gives an error wrapping
// [store.ErrUnavailable].
func Open(ctx context.Context, url string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The error may quote the URL, password included: don't wrap it.
		return nil, errors.New("open postgres: malformed database URL")
	}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		registerArrayCodecs(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, unavailable("open postgres", err)
	}
	s := &Store{pool: pool, log: logger, setBased: true}
	s.fastCommits.Store(1)
	return s, nil
}

// Close closes the connection pool, waiting for connections in use to be
// returned. It is safe to call more than once.
func (s *Store) Close() {
	s.closeOnce.Do(s.pool.Close)
}

// unavailable wraps err, a failure to reach the database or to complete a
// statement, in [store.ErrUnavailable] so that callers can tell it from a
// definite answer. err stays in the chain (context.Canceled, for one).
func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
}
