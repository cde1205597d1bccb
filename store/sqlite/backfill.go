package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hookd/hookd/store"
)

// Backfills ([store.BackfillStore]). Every change runs in a write
// transaction on the one writer connection (writeTx: BEGIN IMMEDIATE), so
// changes to a run never interleave, within this process or with another
// one. Reads go through the read-only pool. Times, leases' included, are
// the process's clock in unix microseconds.

var _ store.BackfillStore = (*Store)(nil)

const backfillRunColumns = `id, kind, origin, since, until, phase, cursor, listed, applied, counts,
    created_at, updated_at, finished_at`

func scanBackfillRun(row interface{ Scan(...any) error }) (store.BackfillRun, error) {
	var (
		r                    store.BackfillRun
		since, until, ended  sql.NullInt64
		createdAt, updatedAt int64
		counts               string
	)
	if err := row.Scan(&r.ID, &r.Kind, &r.Origin, &since, &until, &r.Phase, &r.Cursor, &r.Listed, &r.Applied,
		&counts, &createdAt, &updatedAt, &ended); err != nil {
		return store.BackfillRun{}, err
	}
	var err error
	if r.Counts, err = unmarshalCounts(counts); err != nil {
		return store.BackfillRun{}, fmt.Errorf("backfill run %d: counts: %w", r.ID, err)
	}
	r.Since, r.Until, r.FinishedAt = fromNullMicros(since), fromNullMicros(until), fromNullMicros(ended)
	r.CreatedAt, r.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	return r, nil
}

func unmarshalCounts(s string) (map[string]int64, error) {
	m := map[string]int64{}
	if s == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]int64{}
	}
	return m, nil
}

func runName(id int64) string { return strconv.FormatInt(id, 10) }

type queryRower interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func getBackfillRun(ctx context.Context, q queryRower, id int64) (store.BackfillRun, error) {
	r, err := scanBackfillRun(q.QueryRowContext(ctx, `SELECT `+backfillRunColumns+` FROM backfill_runs WHERE id = ?1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.BackfillRun{}, notFound("backfill run", runName(id))
	}
	return r, err
}

// runPhase returns the run's phase, or ErrNotFound.
func runPhase(ctx context.Context, q queryRower, id int64) (string, error) {
	var phase string
	err := q.QueryRowContext(ctx, `SELECT phase FROM backfill_runs WHERE id = ?1`, id).Scan(&phase)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("backfill run", runName(id))
	}
	return phase, err
}

// CreateBackfillRun stores a new run in the listing phase.
func (s *Store) CreateBackfillRun(ctx context.Context, r store.BackfillRun) (store.BackfillRun, error) {
	if r.Kind == "" {
		return store.BackfillRun{}, fmt.Errorf("create backfill run: %w: empty kind", store.ErrInvalidArgument)
	}
	if !r.Since.IsZero() && !r.Until.IsZero() && r.Until.Before(r.Since) {
		return store.BackfillRun{}, fmt.Errorf("create backfill run: %w: until %v before since %v",
			store.ErrInvalidArgument, r.Until, r.Since)
	}
	var out store.BackfillRun
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO backfill_runs (kind, origin, since, until, phase, cursor, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, 'listing', ?5, ?6, ?6)`, r.Kind, r.Origin, nullMicros(r.Since), nullMicros(r.Until), r.Cursor, now)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		out, err = getBackfillRun(ctx, tx, id)
		return err
	})
	if err != nil {
		return store.BackfillRun{}, queryError("create backfill run", err)
	}
	return out, nil
}

// GetBackfillRun returns a run, or [store.ErrNotFound].
func (s *Store) GetBackfillRun(ctx context.Context, id int64) (store.BackfillRun, error) {
	r, err := getBackfillRun(ctx, s.rdb, id)
	if err != nil {
		return store.BackfillRun{}, queryError("get backfill run "+runName(id), err)
	}
	return r, nil
}

// UnfinishedBackfillRun returns the newest run of the kind that is not
// done, or [store.ErrNotFound].
func (s *Store) UnfinishedBackfillRun(ctx context.Context, kind string) (store.BackfillRun, error) {
	r, err := scanBackfillRun(s.rdb.QueryRowContext(ctx, `SELECT `+backfillRunColumns+` FROM backfill_runs
WHERE kind = ?1 AND phase <> 'done' ORDER BY id DESC LIMIT 1`, kind))
	if errors.Is(err, sql.ErrNoRows) {
		return store.BackfillRun{}, fmt.Errorf("unfinished backfill run of kind %q: %w", kind, store.ErrNotFound)
	}
	if err != nil {
		return store.BackfillRun{}, queryError("unfinished backfill run "+kind, err)
	}
	return r, nil
}

// sqlOrderStaged fixes the apply order of a run's staged events (?1):
// oldest created first, and for equal times the reverse of listing order.
const sqlOrderStaged = `
UPDATE backfill_events SET ord = o.ord
FROM (SELECT seq, row_number() OVER (ORDER BY created ASC, seq DESC) AS ord
      FROM backfill_events WHERE run_id = ?1) AS o
WHERE backfill_events.seq = o.seq`

// StageBackfillPage adds one listed page to a run in the listing phase.
// See [store.BackfillStore].
func (s *Store) StageBackfillPage(ctx context.Context, runID int64, events []store.StagedEvent, next string, last bool) error {
	op := "stage backfill page of run " + runName(runID)
	for i, e := range events {
		if e.EventID == "" {
			return fmt.Errorf("%s: %w: event %d has an empty ID", op, store.ErrInvalidArgument, i)
		}
	}
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		phase, err := runPhase(ctx, tx, runID)
		if err != nil {
			return err
		}
		if phase != store.BackfillListing {
			return fmt.Errorf("%s: %w: run is %s, not %s", op, store.ErrInvalidArgument, phase, store.BackfillListing)
		}
		if len(events) > 0 {
			// One by one in page order, so that seq is listing order.
			ins, err := tx.PrepareContext(ctx, `
INSERT INTO backfill_events (run_id, event_id, created, payload) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (run_id, event_id) DO NOTHING`)
			if err != nil {
				return err
			}
			defer ins.Close()
			for _, e := range events {
				p := e.Payload
				if p == nil {
					p = []byte{}
				}
				if _, err := ins.ExecContext(ctx, runID, e.EventID, micros(e.Created), p); err != nil {
					return err
				}
			}
		}
		phase = store.BackfillListing
		if last {
			if _, err := tx.ExecContext(ctx, sqlOrderStaged, runID); err != nil {
				return err
			}
			phase = store.BackfillApplying
		}
		_, err = tx.ExecContext(ctx, `
UPDATE backfill_runs SET cursor = ?2, phase = ?3, updated_at = ?4,
    listed = (SELECT count(*) FROM backfill_events WHERE run_id = ?1)
WHERE id = ?1`, runID, next, phase, now)
		return err
	})
	if err != nil {
		return queryError(op, err)
	}
	return nil
}

// sqlStagedEvents reads a run's phase (?1) with its staged events whose
// ord is above ?2, in ord order, at most ?3: one row with NULL event
// columns when there is none, no row when the run does not exist.
const sqlStagedEvents = `
SELECT r.phase, e.ord, e.event_id, e.created, e.payload
FROM backfill_runs r
LEFT JOIN backfill_events e ON e.run_id = r.id AND e.ord > ?2
WHERE r.id = ?1
ORDER BY e.ord
LIMIT ?3`

// StagedEvents returns up to limit staged events of a run in the applying
// phase whose Ord is above afterOrd, in Ord order. A run still listing is
// ErrInvalidArgument; a done run has none left.
func (s *Store) StagedEvents(ctx context.Context, runID, afterOrd int64, limit int) ([]store.StagedEvent, error) {
	op := "staged events of run " + runName(runID)
	if limit <= 0 {
		return nil, fmt.Errorf("%s: %w: limit %d, want > 0", op, store.ErrInvalidArgument, limit)
	}
	limit = min(limit, maxPageSize)
	rows, err := s.rdb.QueryContext(ctx, sqlStagedEvents, runID, afterOrd, limit)
	if err != nil {
		return nil, unavailable(op, err)
	}
	defer rows.Close()
	var (
		found bool
		phase string
		out   []store.StagedEvent
	)
	for rows.Next() {
		var (
			ord, created sql.NullInt64
			id           sql.NullString
			p            []byte
		)
		if err := rows.Scan(&phase, &ord, &id, &created, &p); err != nil {
			return nil, unavailable(op, err)
		}
		found = true
		if ord.Valid {
			if p == nil {
				p = []byte{}
			}
			out = append(out, store.StagedEvent{Ord: ord.Int64, EventID: id.String, Created: fromMicros(created.Int64), Payload: p})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	if !found {
		return nil, notFound("backfill run", runName(runID))
	}
	if phase == store.BackfillListing {
		return nil, fmt.Errorf("%s: %w: run is still %s", op, store.ErrInvalidArgument, phase)
	}
	return out, nil
}

// AdvanceBackfillRun records how far a run in the applying phase got.
// See [store.BackfillStore]. Applied never goes down: a lower applied
// (a stale call) leaves it, but its counts are still added.
func (s *Store) AdvanceBackfillRun(ctx context.Context, runID, applied int64, counts map[string]int64, done bool) error {
	op := "advance backfill run " + runName(runID)
	if applied < 0 {
		return fmt.Errorf("%s: %w: applied %d", op, store.ErrInvalidArgument, applied)
	}
	for k, v := range counts {
		if k == "" || v < 0 {
			return fmt.Errorf("%s: %w: count %q = %d", op, store.ErrInvalidArgument, k, v)
		}
	}
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		var (
			phase      string
			listed     int64
			prevCounts string
		)
		err := tx.QueryRowContext(ctx, `SELECT phase, listed, counts FROM backfill_runs WHERE id = ?1`,
			runID).Scan(&phase, &listed, &prevCounts)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("backfill run", runName(runID))
		}
		if err != nil {
			return err
		}
		if phase != store.BackfillApplying {
			return fmt.Errorf("%s: %w: run is %s, not %s", op, store.ErrInvalidArgument, phase, store.BackfillApplying)
		}
		if applied > listed {
			return fmt.Errorf("%s: %w: applied %d, but only %d events were staged", op, store.ErrInvalidArgument, applied, listed)
		}
		merged, err := unmarshalCounts(prevCounts)
		if err != nil {
			return fmt.Errorf("counts: %w", err)
		}
		for k, v := range counts {
			merged[k] += v
		}
		mergedJSON, err := json.Marshal(merged)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
UPDATE backfill_runs SET applied = max(applied, ?2), counts = ?3, updated_at = ?5,
    phase = CASE WHEN ?4 THEN 'done' ELSE phase END,
    finished_at = CASE WHEN ?4 THEN ?5 ELSE finished_at END
WHERE id = ?1`, runID, applied, string(mergedJSON), done, now); err != nil {
			return err
		}
		if done {
			_, err = tx.ExecContext(ctx, `DELETE FROM backfill_events WHERE run_id = ?1`, runID)
		}
		return err
	})
	if err != nil {
		return queryError(op, err)
	}
	return nil
}

// GetCheckpoint returns the time stored under name, or
// [store.ErrNotFound].
func (s *Store) GetCheckpoint(ctx context.Context, name string) (time.Time, error) {
	var at int64
	err := s.rdb.QueryRowContext(ctx, `SELECT at FROM checkpoints WHERE name = ?1`, name).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, notFound("checkpoint", name)
	}
	if err != nil {
		return time.Time{}, queryError("get checkpoint "+name, err)
	}
	return fromMicros(at), nil
}

// SetCheckpoint stores t under name.
func (s *Store) SetCheckpoint(ctx context.Context, name string, t time.Time) error {
	if name == "" {
		return fmt.Errorf("set checkpoint: %w: empty name", store.ErrInvalidArgument)
	}
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO checkpoints (name, at, updated_at) VALUES (?1, ?2, ?3)
ON CONFLICT (name) DO UPDATE SET at = excluded.at, updated_at = excluded.updated_at`, name, micros(t), now)
		return err
	})
	if err != nil {
		return queryError("set checkpoint "+name, err)
	}
	return nil
}

// TryLease takes or renews the lease for owner until now+ttl, unless
// another owner holds it unexpired. Writes are serialized (the writer,
// and SQLite's write lock across processes), so the upsert and the read
// that follows it see no other change in between.
func (s *Store) TryLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	op := "try lease " + name
	if name == "" || owner == "" {
		return false, fmt.Errorf("%s: %w: empty name or owner", op, store.ErrInvalidArgument)
	}
	if ttl < time.Microsecond {
		return false, fmt.Errorf("%s: %w: ttl %v", op, store.ErrInvalidArgument, ttl)
	}
	var held bool
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		if _, err := tx.ExecContext(ctx, `
INSERT INTO leases (name, owner, until) VALUES (?1, ?2, ?3)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
WHERE leases.owner = excluded.owner OR leases.until <= ?4`, name, owner, now+ttl.Microseconds(), now); err != nil {
			return err
		}
		var holder string
		if err := tx.QueryRowContext(ctx, `SELECT owner FROM leases WHERE name = ?1`, name).Scan(&holder); err != nil {
			return err
		}
		held = holder == owner
		return nil
	})
	if err != nil {
		return false, queryError(op, err)
	}
	return held, nil
}

// ReleaseLease gives the lease up if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE name = ?1 AND owner = ?2`, name, owner)
		return err
	})
	if err != nil {
		return queryError("release lease "+name, err)
	}
	return nil
}
