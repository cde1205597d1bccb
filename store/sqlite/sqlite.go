// Package sqlite is hookd's embedded, default backend for [store.Store]:
// what hookd uses when no --database-url is given, keeping its data in one
// SQLite database, <data dir>/hookd.db.
//
// It is built on modernc.org/sqlite, SQLite translated to pure Go, so that
// hookd builds and runs with no C toolchain (`go run ./cmd/hookd` works
// everywhere). The database runs in WAL mode with synchronous=FULL: every
// commit is fsynced before [Store.Commit] reports it, so a crash or a
// kill -9 loses nothing that was acknowledged, and readers never wait for
// the writer.
//
// It keeps the same contract as the PostgreSQL backend (store/postgres):
// [Store.Commit] writes the inbox row, the customer's version-fenced state
// and the outbox rows of each write under its own savepoint in one
// transaction, so that one write's duplicate or fence conflict leaves the
// others intact. SQLite has a single writer, so the store has one writer
// connection, and concurrent Commit calls are gathered into one
// transaction (group commit): while one transaction is being made durable
// the next calls queue, and the first of them to get the writer commits
// them all, paying for one fsync. Reads go through a separate pool of
// read-only connections.
//
// Because commits are serialized, outbox sequence order is commit order:
// the notification cursor is simply the outbox sequence number.
//
// The schema lives in embedded, numbered migrations (migrations/*.sql),
// applied by [Store.Migrate]; [Open] does not migrate. Driver errors are
// translated to the store package's sentinel errors here and nowhere else.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	sqlitedriver "modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hookd/hookd/store"
)

// FileName is the name of the database file inside the data directory.
// SQLite keeps its write-ahead log beside it (hookd.db-wal, hookd.db-shm).
const FileName = "hookd.db"

// busyTimeoutMS is how long a connection waits for a lock held by another
// process (a concurrent `hookd migrate`, say) before failing with
// SQLITE_BUSY. Within one process the writer is never contended.
const busyTimeoutMS = 5000

// maxReaders bounds the read-only connection pool.
const maxReaders = 4

// Store is a [store.Store] kept in an SQLite database. It is safe for
// concurrent use. Create it with [Open] and release it with [Store.Close].
type Store struct {
	path string
	log  *slog.Logger

	// wdb has exactly one connection, which makes every write, and
	// writer serializes its use: a goroutine owns the writer while it
	// holds the one token (see Commit). wdb is used only by the owner.
	wdb    *sql.DB
	writer chan struct{}
	// Guarded by owning the writer:
	stmts  *statements // prepared on first use, after Migrate
	closed bool

	// qmu guards queue, the Commit calls waiting for the writer.
	qmu   sync.Mutex
	queue []*commitRequest

	// rdb is the pool of read-only connections that every read uses.
	rdb *sql.DB

	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open opens the store in dir, creating the directory (mode 0700) and the
// database file if they do not exist. It does not migrate: call
// [Store.Migrate]. A nil logger discards logs. An error opening the
// database wraps [store.ErrUnavailable].
func Open(ctx context.Context, dir string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if dir == "" {
		return nil, fmt.Errorf("open sqlite: %w: empty data directory", store.ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite: create data directory: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}

	busyTimeout := fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeoutMS)
	// The writer sets WAL mode (kept in the file) and full synchronous
	// commits; BEGIN IMMEDIATE takes the write lock at the start of a
	// transaction, so it never has to be upgraded halfway through.
	wdb, err := sql.Open("sqlite", dsn(path,
		"_txlock=immediate",
		busyTimeout,
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(FULL)",
		"_pragma=foreign_keys(ON)",
		// Each write's savepoint journals the pages it changes; in
		// memory, not in a temporary file, that costs no system calls.
		"_pragma=temp_store(MEMORY)",
		// After a burst, truncate the write-ahead log back to 64 MiB
		// once it has been checkpointed, rather than keep its peak size.
		"_pragma=journal_size_limit(67108864)",
	))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	// Connect now, so that WAL mode is set before a reader opens the file
	// and a database that cannot be opened fails Open.
	if err := connect(ctx, wdb); err != nil {
		wdb.Close()
		return nil, unavailable("open sqlite "+path, err)
	}

	rdb, err := sql.Open("sqlite", dsn(path,
		busyTimeout,
		"_pragma=foreign_keys(ON)",
		"_query_only=1",
	))
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	rdb.SetMaxOpenConns(maxReaders)
	rdb.SetMaxIdleConns(maxReaders)

	return &Store{
		path:   path,
		log:    logger,
		wdb:    wdb,
		writer: make(chan struct{}, 1),
		rdb:    rdb,
	}, nil
}

// connect opens db's first connection, retrying for up to busyTimeoutMS
// while SQLite answers SQLITE_BUSY. Setting WAL mode takes an exclusive
// lock, and when two processes open a new database at once SQLite can
// answer one of them SQLITE_BUSY at once instead of waiting out the busy
// timeout (it would otherwise risk a deadlock between them).
func connect(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeoutMS * time.Millisecond)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		err := db.PingContext(ctx)
		var se *sqlitedriver.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// dsn returns the driver's name for the database file at the absolute
// path, with the given query parameters. The path is given as a "file:"
// URI, percent-encoded, so that a directory name holding '?' or '%' cannot
// be taken for parameters.
func dsn(path string, params ...string) string {
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter: file:///C:/...
	}
	return "file:" + (&url.URL{Path: p}).EscapedPath() + "?" + strings.Join(params, "&")
}

// Path returns the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Close waits for a commit in progress, then closes the database. Calls
// made after Close fail with an error wrapping [store.ErrUnavailable]. It
// is safe to call more than once.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		s.writer <- struct{}{}
		defer func() { <-s.writer }()
		s.closed = true
		if s.stmts != nil {
			s.stmts.close()
			s.stmts = nil
		}
		if err := s.rdb.Close(); err != nil {
			s.log.Warn("close sqlite readers", "err", err)
		}
		// Closing the last connection checkpoints the WAL into the
		// database file.
		if err := s.wdb.Close(); err != nil {
			s.log.Warn("close sqlite writer", "err", err)
		}
	})
}

// errClosed is the cause of the errors returned after Close.
var errClosed = errors.New("store closed")

// acquireWriter waits until the calling goroutine owns the writer, or ctx
// is done. The owner must call releaseWriter.
func (s *Store) acquireWriter(ctx context.Context) error {
	select {
	case s.writer <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) releaseWriter() { <-s.writer }

// unavailable wraps err, a failure to reach the database or to complete a
// statement, in [store.ErrUnavailable] so that callers can tell it from a
// definite answer. err stays in the chain (context.Canceled, for one).
func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
}
