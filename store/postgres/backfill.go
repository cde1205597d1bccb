package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/store"
)

// Backfills ([store.BackfillStore]).
//
// Concurrency: every change to a run locks its row (SELECT ... FOR
// UPDATE) before anything else, so that two calls on one run, from any
// processes, take turns and each sees what the other committed. Leases
// are one upsert each, decided on the database's clock (now()), so that
// members whose clocks disagree still agree on who holds a lease.

var _ store.BackfillStore = (*Store)(nil)

// backfillRunColumns are the columns scanBackfillRun reads.
const backfillRunColumns = `id, kind, origin, since, until, phase, cursor, listed, applied, counts,
    created_at, updated_at, finished_at`

func scanBackfillRun(row pgx.Row) (store.BackfillRun, error) {
	var (
		r                   store.BackfillRun
		since, until, ended *time.Time
		counts              []byte
	)
	if err := row.Scan(&r.ID, &r.Kind, &r.Origin, &since, &until, &r.Phase, &r.Cursor, &r.Listed, &r.Applied,
		&counts, &r.CreatedAt, &r.UpdatedAt, &ended); err != nil {
		return store.BackfillRun{}, err
	}
	var err error
	if r.Counts, err = unmarshalCounts(counts); err != nil {
		return store.BackfillRun{}, fmt.Errorf("backfill run %d: counts: %w", r.ID, err)
	}
	r.Since, r.Until, r.FinishedAt = derefTime(since), derefTime(until), derefTime(ended)
	return r, nil
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// nullTime returns t, or nil (NULL) for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func unmarshalCounts(b []byte) (map[string]int64, error) {
	m := map[string]int64{}
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]int64{}
	}
	return m, nil
}

func runName(id int64) string { return strconv.FormatInt(id, 10) }

// CreateBackfillRun stores a new run in the listing phase.
func (s *Store) CreateBackfillRun(ctx context.Context, r store.BackfillRun) (store.BackfillRun, error) {
	if r.Kind == "" {
		return store.BackfillRun{}, fmt.Errorf("create backfill run: %w: empty kind", ErrInvalidArgument)
	}
	if !r.Since.IsZero() && !r.Until.IsZero() && r.Until.Before(r.Since) {
		return store.BackfillRun{}, fmt.Errorf("create backfill run: %w: until %v before since %v",
			ErrInvalidArgument, r.Until, r.Since)
	}
	out, err := scanBackfillRun(s.pool.QueryRow(ctx, `
INSERT INTO backfill_runs (kind, origin, since, until, phase, cursor)
VALUES ($1, $2, $3, $4, 'listing', $5)
RETURNING `+backfillRunColumns, r.Kind, r.Origin, nullTime(r.Since), nullTime(r.Until), r.Cursor))
	if err != nil {
		return store.BackfillRun{}, queryError("create backfill run", err)
	}
	return out, nil
}

// GetBackfillRun returns a run, or [store.ErrNotFound].
func (s *Store) GetBackfillRun(ctx context.Context, id int64) (store.BackfillRun, error) {
	r, err := scanBackfillRun(s.pool.QueryRow(ctx, `SELECT `+backfillRunColumns+` FROM backfill_runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.BackfillRun{}, notFound("backfill run", runName(id))
	}
	if err != nil {
		return store.BackfillRun{}, queryError("get backfill run "+runName(id), err)
	}
	return r, nil
}

// UnfinishedBackfillRun returns the newest run of the kind that is not
// done, or [store.ErrNotFound].
func (s *Store) UnfinishedBackfillRun(ctx context.Context, kind string) (store.BackfillRun, error) {
	r, err := scanBackfillRun(s.pool.QueryRow(ctx, `SELECT `+backfillRunColumns+` FROM backfill_runs
WHERE kind = $1 AND phase <> 'done' ORDER BY id DESC LIMIT 1`, kind))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.BackfillRun{}, fmt.Errorf("unfinished backfill run of kind %q: %w", kind, store.ErrNotFound)
	}
	if err != nil {
		return store.BackfillRun{}, queryError("unfinished backfill run "+kind, err)
	}
	return r, nil
}

// lockRunPhase locks the run's row for the rest of tx and returns its
// phase, or ErrNotFound.
func lockRunPhase(ctx context.Context, tx pgx.Tx, runID int64) (string, error) {
	var phase string
	err := tx.QueryRow(ctx, `SELECT phase FROM backfill_runs WHERE id = $1 FOR UPDATE`, runID).Scan(&phase)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", notFound("backfill run", runName(runID))
	}
	return phase, err
}

// sqlOrderStaged fixes the apply order of a run's staged events ($1):
// oldest created first, and for equal times the reverse of listing order.
const sqlOrderStaged = `
UPDATE backfill_events e SET ord = o.ord
FROM (SELECT seq, row_number() OVER (ORDER BY created ASC, seq DESC) AS ord
      FROM backfill_events WHERE run_id = $1) o
WHERE e.run_id = $1 AND e.seq = o.seq`

// StageBackfillPage adds one listed page to a run in the listing phase.
// See [store.BackfillStore].
func (s *Store) StageBackfillPage(ctx context.Context, runID int64, events []store.StagedEvent, next string, last bool) error {
	op := "stage backfill page of run " + runName(runID)
	ids := make([]string, len(events))
	created := make([]time.Time, len(events))
	payloads := make([][]byte, len(events))
	for i, e := range events {
		if e.EventID == "" {
			return fmt.Errorf("%s: %w: event %d has an empty ID", op, ErrInvalidArgument, i)
		}
		ids[i], created[i], payloads[i] = e.EventID, e.Created, payload(e.Payload)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		phase, err := lockRunPhase(ctx, tx, runID)
		if err != nil {
			return err
		}
		if phase != store.BackfillListing {
			return fmt.Errorf("%s: %w: run is %s, not %s", op, ErrInvalidArgument, phase, store.BackfillListing)
		}
		b := &pgx.Batch{}
		if len(events) > 0 {
			// In page order, so that seq is listing order.
			b.Queue(`
INSERT INTO backfill_events (run_id, event_id, created, payload)
SELECT $1, e.event_id, e.created, e.payload
FROM unnest($2::text[], $3::timestamptz[], $4::bytea[]) WITH ORDINALITY AS e(event_id, created, payload, n)
ORDER BY e.n
ON CONFLICT (run_id, event_id) DO NOTHING`, runID, ids, created, payloads)
		}
		if last {
			b.Queue(sqlOrderStaged, runID)
		}
		phase = store.BackfillListing
		if last {
			phase = store.BackfillApplying
		}
		b.Queue(`
UPDATE backfill_runs SET cursor = $2, phase = $3, updated_at = now(),
    listed = (SELECT count(*) FROM backfill_events WHERE run_id = $1)
WHERE id = $1`, runID, next, phase)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return queryError(op, err)
	}
	return nil
}

// sqlStagedEvents reads a run's phase ($1) with its staged events whose
// ord is above $2, in ord order, at most $3: one row with NULL event
// columns when there is none, no row when the run does not exist.
const sqlStagedEvents = `
SELECT r.phase, e.ord, e.event_id, e.created, e.payload
FROM backfill_runs r
LEFT JOIN backfill_events e ON e.run_id = r.id AND e.ord > $2
WHERE r.id = $1
ORDER BY e.ord
LIMIT $3`

// StagedEvents returns up to limit staged events of a run in the applying
// phase whose Ord is above afterOrd, in Ord order. A run still listing is
// ErrInvalidArgument; a done run has none left.
func (s *Store) StagedEvents(ctx context.Context, runID, afterOrd int64, limit int) ([]store.StagedEvent, error) {
	op := "staged events of run " + runName(runID)
	if limit <= 0 {
		return nil, fmt.Errorf("%s: %w: limit %d, want > 0", op, ErrInvalidArgument, limit)
	}
	limit = min(limit, maxPageSize)
	rows, _ := s.pool.Query(ctx, sqlStagedEvents, runID, afterOrd, limit)
	var (
		found bool
		phase string
		out   []store.StagedEvent
	)
	for rows.Next() {
		var (
			ord     *int64
			id      *string
			created *time.Time
			p       []byte
		)
		if err := rows.Scan(&phase, &ord, &id, &created, &p); err != nil {
			rows.Close()
			return nil, queryError(op, err)
		}
		found = true
		if ord != nil {
			out = append(out, store.StagedEvent{Ord: *ord, EventID: *id, Created: *created, Payload: p})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, queryError(op, err)
	}
	if !found {
		return nil, notFound("backfill run", runName(runID))
	}
	if phase == store.BackfillListing {
		return nil, fmt.Errorf("%s: %w: run is still %s", op, ErrInvalidArgument, phase)
	}
	return out, nil
}

// AdvanceBackfillRun records how far a run in the applying phase got.
// See [store.BackfillStore]. Applied never goes down: a lower applied
// (a stale call) leaves it, but its counts are still added.
func (s *Store) AdvanceBackfillRun(ctx context.Context, runID, applied int64, counts map[string]int64, done bool) error {
	op := "advance backfill run " + runName(runID)
	if applied < 0 {
		return fmt.Errorf("%s: %w: applied %d", op, ErrInvalidArgument, applied)
	}
	for k, v := range counts {
		if k == "" || v < 0 {
			return fmt.Errorf("%s: %w: count %q = %d", op, ErrInvalidArgument, k, v)
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			phase      string
			listed     int64
			prevCounts []byte
		)
		err := tx.QueryRow(ctx, `SELECT phase, listed, counts FROM backfill_runs WHERE id = $1 FOR UPDATE`,
			runID).Scan(&phase, &listed, &prevCounts)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("backfill run", runName(runID))
		}
		if err != nil {
			return err
		}
		if phase != store.BackfillApplying {
			return fmt.Errorf("%s: %w: run is %s, not %s", op, ErrInvalidArgument, phase, store.BackfillApplying)
		}
		if applied > listed {
			return fmt.Errorf("%s: %w: applied %d, but only %d events were staged", op, ErrInvalidArgument, applied, listed)
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
		b := &pgx.Batch{}
		b.Queue(`
UPDATE backfill_runs SET applied = greatest(applied, $2), counts = $3::jsonb, updated_at = now(),
    phase = CASE WHEN $4 THEN 'done' ELSE phase END,
    finished_at = CASE WHEN $4 THEN now() ELSE finished_at END
WHERE id = $1`, runID, applied, mergedJSON, done)
		if done {
			b.Queue(`DELETE FROM backfill_events WHERE run_id = $1`, runID)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return queryError(op, err)
	}
	return nil
}

// GetCheckpoint returns the time stored under name, or
// [store.ErrNotFound].
func (s *Store) GetCheckpoint(ctx context.Context, name string) (time.Time, error) {
	var at time.Time
	err := s.pool.QueryRow(ctx, `SELECT at FROM checkpoints WHERE name = $1`, name).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, notFound("checkpoint", name)
	}
	if err != nil {
		return time.Time{}, queryError("get checkpoint "+name, err)
	}
	return at, nil
}

// SetCheckpoint stores t under name.
func (s *Store) SetCheckpoint(ctx context.Context, name string, t time.Time) error {
	if name == "" {
		return fmt.Errorf("set checkpoint: %w: empty name", ErrInvalidArgument)
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO checkpoints (name, at) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET at = excluded.at, updated_at = now()`, name, t)
	if err != nil {
		return queryError("set checkpoint "+name, err)
	}
	return nil
}

// TryLease takes or renews the lease for owner until now+ttl (the
// database's clock), unless another owner holds it unexpired. One upsert:
// of concurrent callers, from any processes, the one whose insert or
// update lands first holds it, and the others' conditional update then
// sees that row and does nothing.
func (s *Store) TryLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	op := "try lease " + name
	if name == "" || owner == "" {
		return false, fmt.Errorf("%s: %w: empty name or owner", op, ErrInvalidArgument)
	}
	if ttl < time.Microsecond {
		return false, fmt.Errorf("%s: %w: ttl %v", op, ErrInvalidArgument, ttl)
	}
	rows, _ := s.pool.Query(ctx, `
INSERT INTO leases (name, owner, until) VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
WHERE leases.owner = excluded.owner OR leases.until <= now()
RETURNING owner`, name, owner, ttl.Microseconds())
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, queryError(op, err)
	}
	return len(got) == 1 && got[0] == owner, nil
}

// ReleaseLease gives the lease up if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND owner = $2`, name, owner); err != nil {
		return queryError("release lease "+name, err)
	}
	return nil
}
