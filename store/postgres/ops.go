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
	// Waiting is the number of committed outbox rows at or above xmin.
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

// sqlOutboxStall counts the committed outbox rows a reader cannot return
// yet (txid at or above the snapshot's xmin: rows of transactions still
// open are not visible to this statement at all) and the age of the
// oldest. The (txid, seq) index makes it a short range scan.
const sqlOutboxStall = `
SELECT count(*), COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at))::float8, 0)
FROM outbox
WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())`

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
