package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolStat returns the connection pool's statistics, for metrics.
func (s *Store) PoolStat() *pgxpool.Stat { return s.pool.Stat() }

// OutboxStall describes the notifications committed but not yet visible
// to subscribers because an older transaction is still open: readers
// return only rows whose transaction ID is below the snapshot's xmin (see
// sqlReadNotifications), so one open transaction holds back every row
// committed after it began.
type OutboxStall struct {
	// Waiting is the number of committed outbox rows at or above xmin,
	// up to OutboxStallCap.
	Waiting int64
	// Oldest is how long ago the oldest of them was written (0 when none
	// waits, or when only rows written before migration 0005 wait).
	Oldest time.Duration
	// Holder is the oldest open transaction with a transaction ID (what
	// holds xmin back), when pg_stat_activity shows one.
	Holder *OpenTransaction
}

// OpenTransaction is a backend from pg_stat_activity. Query is the
// backend's current or last statement, cut to 200 characters; it is
// empty when the role may not see it.
type OpenTransaction struct {
	PID        int32
	State      string
	Age        time.Duration // since the transaction started
	QueryStart time.Time
	Query      string
}

// OutboxStallCap bounds how many waiting rows OutboxStall counts: a
// stall that holds back more reports OutboxStallCap.
const OutboxStallCap = 100000

// sqlOutboxStall counts the committed outbox rows a reader cannot return
// yet (txid at or above the snapshot's xmin: rows of transactions still
// open are not visible to this statement at all), up to OutboxStallCap,
// and the age of the oldest of them.
//
// On an outbox without statistics (a new database, until autovacuum
// analyzes it) the planner guesses that a third of the rows match: without
// the ORDER BY … LIMIT it planned a parallel bitmap scan of a large
// outbox, and launching its two workers every second cost about 9 ms of
// PostgreSQL's CPU each time (the scan itself 0.2 ms). The
// LIMIT makes it a walk of outbox_txid_seq_idx from xmin that stops at
// the cap, however large the outbox or the stall. Under the cap both
// figures are exact; past it, the age is that of the oldest of the first
// OutboxStallCap rows by txid, which hold the oldest transactions' rows.
const sqlOutboxStall = `
SELECT count(*), COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at))::float8, 0)
FROM (
    SELECT created_at FROM outbox
    WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY txid
    LIMIT 100000 -- OutboxStallCap
) waiting`

// sqlOldestOpenTransaction finds the backend whose transaction holds xmin
// back: the oldest with a transaction ID. (A prepared transaction can
// hold it too; it has no backend and is not shown.)
const sqlOldestOpenTransaction = `
SELECT pid, COALESCE(state, ''), EXTRACT(EPOCH FROM clock_timestamp() - xact_start)::float8,
       COALESCE(query_start, 'epoch'::timestamptz), left(COALESCE(query, ''), 200)
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL AND xact_start IS NOT NULL AND pid <> pg_backend_pid()
ORDER BY age(backend_xid) DESC
LIMIT 1`

// OutboxStall reports what waits behind open transactions (see
// [OutboxStall]). The holder is looked up only when rows wait.
func (s *Store) OutboxStall(ctx context.Context) (OutboxStall, error) {
	var st OutboxStall
	var secs float64
	if err := s.pool.QueryRow(ctx, sqlOutboxStall).Scan(&st.Waiting, &secs); err != nil {
		return st, unavailable("outbox stall", err)
	}
	st.Oldest = time.Duration(max(secs, 0) * float64(time.Second))
	if st.Waiting == 0 {
		return st, nil
	}
	var h OpenTransaction
	var age float64
	err := s.pool.QueryRow(ctx, sqlOldestOpenTransaction).Scan(&h.PID, &h.State, &age, &h.QueryStart, &h.Query)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return st, unavailable("outbox stall: open transactions", err)
	default:
		h.Age = time.Duration(max(age, 0) * float64(time.Second))
		st.Holder = &h
	}
	return st, nil
}
