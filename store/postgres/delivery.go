package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookd/hookd/store"
)

// Outbound delivery ([store.DeliveryStore]).
//
// Concurrency: every change to an endpoint's queues takes the endpoint's
// transaction-scoped advisory lock (endpointLockKey) before anything
// else. Enqueue, Redeliver and DeleteEndpoint take it exclusive; Complete
// takes it shared, for every endpoint it touches, in ID order. Under READ
// COMMITTED every statement after the lock sees what the other holder
// committed, so that a delivery Enqueue leaves queued behind a head is
// promoted by the Complete that ends the head, and a Complete that finds
// no queued delivery cannot miss one committed meanwhile. Concurrent
// Completes share the lock. Claim takes no advisory lock: it only leases
// pending rows, under FOR UPDATE SKIP LOCKED.

var _ store.DeliveryStore = (*Store)(nil)

// endpointLockKey is the advisory lock key of an endpoint: a 64-bit FNV-1a
// hash of its ID, with a prefix so that it cannot be migrateLockKey by
// design.
func endpointLockKey(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte("hookd endpoint\x00"))
	h.Write([]byte(id))
	return int64(h.Sum64())
}

const (
	sqlLockEndpoint       = `SELECT pg_advisory_xact_lock($1)`
	sqlLockEndpointShared = `SELECT pg_advisory_xact_lock_shared($1)`
)

// endpointColumns are the columns scanEndpoint reads.
const endpointColumns = `id, url, description, kinds, customer_ids, secrets, paused, disabled_reason,
    disabled_at, failing_since, cursor, origin, created_at, updated_at`

// secretJSON is a Secret as stored in endpoints.secrets.
type secretJSON struct {
	Value     string     `json:"value"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func marshalSecrets(ss []store.Secret) ([]byte, error) {
	out := make([]secretJSON, 0, len(ss))
	for _, s := range ss {
		j := secretJSON{Value: s.Value}
		if !s.ExpiresAt.IsZero() {
			t := s.ExpiresAt.UTC().Truncate(time.Microsecond)
			j.ExpiresAt = &t
		}
		out = append(out, j)
	}
	return json.Marshal(out)
}

func unmarshalSecrets(b []byte) ([]store.Secret, error) {
	var in []secretJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	var out []store.Secret
	for _, j := range in {
		s := store.Secret{Value: j.Value}
		if j.ExpiresAt != nil {
			s.ExpiresAt = *j.ExpiresAt
		}
		out = append(out, s)
	}
	return out, nil
}

func scanEndpoint(row pgx.Row) (store.Endpoint, error) {
	var (
		e                        store.Endpoint
		secrets                  []byte
		disabledAt, failingSince *time.Time
	)
	if err := row.Scan(&e.ID, &e.URL, &e.Description, &e.Kinds, &e.CustomerIDs, &secrets, &e.Paused,
		&e.DisabledReason, &disabledAt, &failingSince, &e.Cursor, &e.Origin, &e.CreatedAt, &e.UpdatedAt); err != nil {
		return store.Endpoint{}, err
	}
	var err error
	if e.Secrets, err = unmarshalSecrets(secrets); err != nil {
		return store.Endpoint{}, fmt.Errorf("endpoint %s: secrets: %w", e.ID, err)
	}
	if disabledAt != nil {
		e.DisabledAt = *disabledAt
	}
	if failingSince != nil {
		e.FailingSince = *failingSince
	}
	if len(e.Kinds) == 0 {
		e.Kinds = nil
	}
	if len(e.CustomerIDs) == 0 {
		e.CustomerIDs = nil
	}
	return e, nil
}

// nonNil returns s, or an empty slice for nil (the array columns are NOT
// NULL).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// queryError wraps an error of a delivery statement: data PostgreSQL can
// never store is the caller's ErrInvalidArgument, anything else
// ErrUnavailable.
func queryError(op string, err error) error {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidArgument) || errors.Is(err, store.ErrDuplicate) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.ConstraintName == constraintOnePending {
		// The safety net under the advisory locks: a race, not the
		// caller's data. Retrying finds the queue as it is.
		return unavailable(op, err)
	}
	if classify(err) == faultData {
		return fmt.Errorf("%s: %w: %w", op, ErrInvalidArgument, err)
	}
	return unavailable(op, err)
}

// constraintOnePending is the unique index that keeps one pending
// delivery per (endpoint, customer) (0003_delivery.sql).
const constraintOnePending = "deliveries_one_pending_key"

func notFound(what, id string) error { return fmt.Errorf("%s %s: %w", what, id, store.ErrNotFound) }

// initialCursor returns c, checked, or LatestCursor's when empty.
func (s *Store) initialCursor(ctx context.Context, c string) (string, error) {
	if c != "" {
		if _, err := parseCursor(c); err != nil {
			return "", err
		}
		return c, nil
	}
	return s.LatestCursor(ctx)
}

func validateEndpoint(e store.Endpoint) error {
	if e.ID == "" {
		return fmt.Errorf("%w: empty endpoint ID", ErrInvalidArgument)
	}
	return nil
}

// CreateEndpoint stores a new endpoint, or returns [store.ErrDuplicate].
func (s *Store) CreateEndpoint(ctx context.Context, e store.Endpoint) (store.Endpoint, error) {
	if err := validateEndpoint(e); err != nil {
		return store.Endpoint{}, fmt.Errorf("create endpoint: %w", err)
	}
	cursor, err := s.initialCursor(ctx, e.Cursor)
	if err != nil {
		return store.Endpoint{}, fmt.Errorf("create endpoint %s: %w", e.ID, err)
	}
	secrets, err := marshalSecrets(e.Secrets)
	if err != nil {
		return store.Endpoint{}, fmt.Errorf("create endpoint %s: %w: %w", e.ID, ErrInvalidArgument, err)
	}
	var disabledAt *time.Time
	if e.DisabledReason != "" {
		t := time.Now()
		if !e.DisabledAt.IsZero() {
			t = e.DisabledAt
		}
		disabledAt = &t
	}
	row := s.pool.QueryRow(ctx, `
INSERT INTO endpoints (id, url, description, kinds, customer_ids, secrets, paused, disabled_reason,
                       disabled_at, cursor, origin)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING `+endpointColumns,
		e.ID, e.URL, e.Description, nonNil(e.Kinds), nonNil(e.CustomerIDs), secrets, e.Paused, e.DisabledReason,
		disabledAt, cursor, cmp.Or(e.Origin, "api"))
	out, err := scanEndpoint(row)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return store.Endpoint{}, fmt.Errorf("create endpoint %s: %w", e.ID, store.ErrDuplicate)
	}
	if err != nil {
		return store.Endpoint{}, queryError("create endpoint "+e.ID, err)
	}
	return out, nil
}

// UpsertEndpoint creates e or updates its URL, description, filter,
// secrets and origin, keeping the rest.
func (s *Store) UpsertEndpoint(ctx context.Context, e store.Endpoint) (store.Endpoint, error) {
	if err := validateEndpoint(e); err != nil {
		return store.Endpoint{}, fmt.Errorf("upsert endpoint: %w", err)
	}
	cursor, err := s.initialCursor(ctx, e.Cursor)
	if err != nil {
		return store.Endpoint{}, fmt.Errorf("upsert endpoint %s: %w", e.ID, err)
	}
	secrets, err := marshalSecrets(e.Secrets)
	if err != nil {
		return store.Endpoint{}, fmt.Errorf("upsert endpoint %s: %w: %w", e.ID, ErrInvalidArgument, err)
	}
	row := s.pool.QueryRow(ctx, `
INSERT INTO endpoints (id, url, description, kinds, customer_ids, secrets, paused, cursor, origin)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (id) DO UPDATE SET url = excluded.url, description = excluded.description,
    kinds = excluded.kinds, customer_ids = excluded.customer_ids, secrets = excluded.secrets,
    origin = excluded.origin, updated_at = now()
RETURNING `+endpointColumns,
		e.ID, e.URL, e.Description, nonNil(e.Kinds), nonNil(e.CustomerIDs), secrets, e.Paused, cursor, cmp.Or(e.Origin, "api"))
	out, err := scanEndpoint(row)
	if err != nil {
		return store.Endpoint{}, queryError("upsert endpoint "+e.ID, err)
	}
	return out, nil
}

// GetEndpoint returns the endpoint, or [store.ErrNotFound].
func (s *Store) GetEndpoint(ctx context.Context, id string) (store.Endpoint, error) {
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Endpoint{}, notFound("endpoint", id)
	}
	if err != nil {
		return store.Endpoint{}, queryError("get endpoint "+id, err)
	}
	return e, nil
}

// ListEndpoints returns every endpoint, ordered by ID.
func (s *Store) ListEndpoints(ctx context.Context) ([]store.Endpoint, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+endpointColumns+` FROM endpoints ORDER BY id`)
	es, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Endpoint, error) { return scanEndpoint(row) })
	if err != nil {
		return nil, queryError("list endpoints", err)
	}
	return es, nil
}

// UpdateEndpoint changes the fields u sets.
func (s *Store) UpdateEndpoint(ctx context.Context, id string, u store.EndpointUpdate) (store.Endpoint, error) {
	var kinds, customerIDs []string
	if u.Kinds != nil {
		kinds = nonNil(*u.Kinds)
	}
	if u.CustomerIDs != nil {
		customerIDs = nonNil(*u.CustomerIDs)
	}
	var secrets []byte
	if u.Secrets != nil {
		var err error
		if secrets, err = marshalSecrets(*u.Secrets); err != nil {
			return store.Endpoint{}, fmt.Errorf("update endpoint %s: %w: %w", id, ErrInvalidArgument, err)
		}
	}
	row := s.pool.QueryRow(ctx, `
UPDATE endpoints SET
    url = coalesce($2, url),
    description = coalesce($3, description),
    kinds = coalesce($4, kinds),
    customer_ids = coalesce($5, customer_ids),
    secrets = coalesce($6::jsonb, secrets),
    paused = coalesce($7, paused),
    disabled_reason = CASE WHEN $8 THEN '' ELSE disabled_reason END,
    disabled_at = CASE WHEN $8 THEN NULL ELSE disabled_at END,
    failing_since = CASE WHEN $8 THEN NULL ELSE failing_since END,
    updated_at = now()
WHERE id = $1
RETURNING `+endpointColumns,
		id, u.URL, u.Description, kinds, customerIDs, secrets, u.Paused, u.ClearDisabled)
	e, err := scanEndpoint(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Endpoint{}, notFound("endpoint", id)
	}
	if err != nil {
		return store.Endpoint{}, queryError("update endpoint "+id, err)
	}
	return e, nil
}

// DeleteEndpoint removes the endpoint with its deliveries and attempts.
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlLockEndpoint, endpointLockKey(id)); err != nil {
			return err
		}
		// No foreign key cascades (0010_delivery_foreign_keys.sql): under
		// the endpoint's lock nothing inserts the endpoint's deliveries or
		// attempts meanwhile.
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM delivery_attempts a USING deliveries d WHERE d.endpoint_id = $1 AND a.delivery_seq = d.seq`, id)
		b.Queue(`DELETE FROM deliveries WHERE endpoint_id = $1`, id)
		b.Queue(`DELETE FROM endpoints WHERE id = $1`, id).Exec(func(tag pgconn.CommandTag) error {
			n = tag.RowsAffected()
			return nil
		})
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return queryError("delete endpoint "+id, err)
	}
	if n == 0 {
		return notFound("endpoint", id)
	}
	return nil
}

// DisableEndpoint sets DisabledReason and DisabledAt unless already set.
func (s *Store) DisableEndpoint(ctx context.Context, id, reason string) error {
	if reason == "" {
		return fmt.Errorf("disable endpoint %s: %w: empty reason", id, ErrInvalidArgument)
	}
	var found bool
	err := s.pool.QueryRow(ctx, `
WITH u AS (
    UPDATE endpoints SET disabled_reason = $2, disabled_at = now(), updated_at = now()
    WHERE id = $1 AND disabled_reason = ''
)
SELECT EXISTS (SELECT 1 FROM endpoints WHERE id = $1)`, id, reason).Scan(&found)
	if err != nil {
		return queryError("disable endpoint "+id, err)
	}
	if !found {
		return notFound("endpoint", id)
	}
	return nil
}

// sqlPromote makes pending, for the endpoint $1 and each customer in $2,
// the oldest queued delivery when the pair has no pending one (Redeliver;
// Enqueue inserts each head pending, and Complete promotes in its own
// statement). Each customer is looked up on its own (LATERAL), so that every lookup is a
// short range of deliveries_queue_idx whatever plan the statement cache
// settles on: as one DISTINCT ON over "customer_id = ANY($2)", the
// generic plan of a batch of 500 customers took 350 ms on a table of 40,000
// deliveries and held the endpoint's lock meanwhile.
const sqlPromote = `
UPDATE deliveries d SET status = 'pending', next_attempt_at = now()
FROM (SELECT h.seq
      FROM unnest($2::text[]) AS c(customer_id)
      CROSS JOIN LATERAL (
          SELECT q.seq, q.status FROM deliveries q
          WHERE q.endpoint_id = $1 AND q.customer_id = c.customer_id AND q.status IN ('queued', 'pending')
          ORDER BY q.seq
          LIMIT 1) h
      WHERE h.status = 'queued') p
WHERE d.seq = p.seq AND NOT EXISTS (
    SELECT 1 FROM deliveries x
    WHERE x.endpoint_id = $1 AND x.customer_id = d.customer_id AND x.status = 'pending')`

// sqlEnqueueRead reads up to $3 final notifications after the outbox
// position ($1 txid, $2 seq), in commit order.
const sqlEnqueueRead = `
SELECT txid::text AS txid_text, seq, customer_id, kind
FROM outbox
WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
  AND (txid, seq) > ($1::text::xid8, $2::bigint)
ORDER BY outbox.txid, outbox.seq
LIMIT $3`

// sqlEnqueueInsert inserts deliveries to the endpoint $1 of the
// notifications $2 (outbox seqs) of the customers $3, in order, each
// customer's first of the batch ($4) pending when its (endpoint,
// customer) has no pending or queued delivery (it is the head then), the
// others queued. The statement's snapshot does not see its own rows,
// hence $4. Under the endpoint's exclusive lock nothing else changes the
// pair's queue meanwhile. Each first looks its pair up on its own
// (LATERAL, LIMIT 1): as NOT EXISTS, the generic plan settled on a
// hashed subplan that read every queued and pending delivery of the
// endpoint on every call, so that Enqueue slowed as the backlog grew and
// held the endpoint's lock (which Complete waits for) meanwhile.
const sqlEnqueueInsert = `
INSERT INTO deliveries (endpoint_id, customer_id, outbox_seq, status)
SELECT $1, n.customer_id, n.outbox_seq, CASE WHEN n.first AND b.busy IS NULL THEN 'pending' ELSE 'queued' END
FROM unnest($2::bigint[], $3::text[], $4::bool[]) WITH ORDINALITY AS n(outbox_seq, customer_id, first, ord)
LEFT JOIN LATERAL (
    SELECT true AS busy FROM deliveries q
    WHERE n.first AND q.endpoint_id = $1 AND q.customer_id = n.customer_id AND q.status IN ('queued', 'pending')
    LIMIT 1) b ON true
ORDER BY n.ord`

// Enqueue turns notifications after the endpoint's cursor into
// deliveries. See [store.DeliveryStore].
func (s *Store) Enqueue(ctx context.Context, endpointID string, limit int) (read, created int, err error) {
	if limit <= 0 {
		return 0, 0, fmt.Errorf("enqueue: %w: limit %d, want > 0", ErrInvalidArgument, limit)
	}
	limit = min(limit, maxPageSize)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		read, created = 0, 0
		// No statement before the read assigns the transaction an ID.
		if _, err := tx.Exec(ctx, sqlDeliveryTx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlLockEndpoint, endpointLockKey(endpointID)); err != nil {
			return err
		}
		var (
			kinds, customers []string
			paused           bool
			disabled, cursor string
		)
		err := tx.QueryRow(ctx, `SELECT kinds, customer_ids, paused, disabled_reason, cursor FROM endpoints WHERE id = $1`,
			endpointID).Scan(&kinds, &customers, &paused, &disabled, &cursor)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("endpoint", endpointID)
		}
		if err != nil {
			return err
		}
		if paused || disabled != "" {
			return nil
		}
		after, err := parseCursor(cursor)
		if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, sqlEnqueueRead, fmt.Sprint(after.txid), after.seq, limit)
		var (
			txid        string
			seq         int64
			customerID  string
			kind        string
			last        string
			outboxSeqs  []int64
			customerIDs []string
			firsts      []bool
			seen        = map[string]bool{}
		)
		_, err = pgx.ForEachRow(rows, []any{&txid, &seq, &customerID, &kind}, func() error {
			read++
			last = txid + "-" + fmt.Sprint(seq)
			if (len(kinds) > 0 && !slices.Contains(kinds, kind)) || (len(customers) > 0 && !slices.Contains(customers, customerID)) {
				return nil
			}
			outboxSeqs = append(outboxSeqs, seq)
			customerIDs = append(customerIDs, customerID)
			firsts = append(firsts, !seen[customerID])
			seen[customerID] = true
			return nil
		})
		if err != nil || read == 0 {
			return err
		}
		b := &pgx.Batch{}
		if len(outboxSeqs) > 0 {
			// Each customer's head goes in pending at once, without a
			// promotion after the insert (sqlPromote).
			b.Queue(sqlEnqueueInsert, endpointID, outboxSeqs, customerIDs, firsts)
		}
		b.Queue(`UPDATE endpoints SET cursor = $2 WHERE id = $1`, endpointID, last)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		created = len(outboxSeqs)
		return nil
	})
	if err != nil {
		return 0, 0, queryError("enqueue "+endpointID, err)
	}
	return read, created, nil
}

// deliveryColumns are the columns scanDelivery reads, from deliveries d
// joined to outbox o.
const deliveryColumns = `d.seq, d.id, d.endpoint_id, d.customer_id, d.status, d.attempts, d.step, d.next_attempt_at,
    d.last_status, d.last_error, d.created_at, d.ended_at,
    o.txid::text, o.seq, o.customer_id, o.version, o.kind, o.event_id, o.occurred_at, o.customer`

func scanDelivery(row pgx.Row) (store.Delivery, int64, error) {
	var (
		d      store.Delivery
		seq    int64
		ended  *time.Time
		txid   string
		obSeq  int64
		n      store.Notification
		status string
	)
	if err := row.Scan(&seq, &d.ID, &d.EndpointID, &d.CustomerID, &status, &d.Attempts, &d.Step, &d.NextAttemptAt,
		&d.LastStatus, &d.LastError, &d.CreatedAt, &ended,
		&txid, &obSeq, &n.CustomerID, &n.Version, &n.Kind, &n.EventID, &n.OccurredAt, &n.Customer); err != nil {
		return store.Delivery{}, 0, err
	}
	d.Status = store.DeliveryStatus(status)
	if ended != nil {
		d.EndedAt = *ended
	}
	p, err := rowPosition(txid, obSeq)
	if err != nil {
		return store.Delivery{}, 0, err
	}
	n.Cursor = p.cursor()
	d.Notification = n
	return d, seq, nil
}

// sqlClaim leases up to $3 due pending deliveries of the endpoint $1 to
// $2 for $4 µs, and returns them with their notifications.
const sqlClaim = `
WITH c AS (
    UPDATE deliveries SET lease_owner = $2, lease_until = now() + $4::bigint * interval '1 microsecond',
                          attempts = attempts + 1
    WHERE seq IN (SELECT seq FROM deliveries
                  WHERE endpoint_id = $1 AND status = 'pending' AND next_attempt_at <= now()
                    AND (lease_until IS NULL OR lease_until <= now())
                  ORDER BY next_attempt_at, seq
                  LIMIT $3
                  FOR UPDATE SKIP LOCKED)
      AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = $1 AND NOT e.paused AND e.disabled_reason = '')
    RETURNING *
)
SELECT ` + deliveryColumns + `
FROM c d JOIN outbox o ON o.seq = d.outbox_seq
ORDER BY d.next_attempt_at, d.seq`

// Claim leases due pending deliveries of the endpoint. The database's
// clock decides what is due and when leases expire, so that members with
// skewed clocks agree.
func (s *Store) Claim(ctx context.Context, endpointID, owner string, limit int, lease time.Duration) ([]store.Claimed, error) {
	if limit <= 0 || lease <= 0 || owner == "" {
		return nil, fmt.Errorf("claim: %w: limit %d, lease %v, owner %q", ErrInvalidArgument, limit, lease, owner)
	}
	var cs []store.Claimed
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlDeliveryTx); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, sqlClaim, endpointID, owner, min(limit, maxPageSize), lease.Microseconds())
		var err error
		cs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Claimed, error) {
			d, _, err := scanDelivery(row)
			return store.Claimed{Delivery: d, Lease: store.Lease{DeliveryID: d.ID, Owner: owner, Attempt: d.Attempts}}, err
		})
		return err
	})
	if err != nil {
		return nil, queryError("claim "+endpointID, err)
	}
	return cs, nil
}

// sqlCompleteLookup finds the deliveries of a Complete's results ($1
// their IDs): the only lookup by ID; the statements after it work by seq.
const sqlCompleteLookup = `SELECT id, seq, endpoint_id FROM deliveries WHERE id = ANY($1::text[])`

// sqlCompleteLock locks the deliveries' rows ($1 their seqs) in seq order,
// so that two Completes whose batches overlap (a stale owner's and the
// current one's) wait for each other instead of deadlocking.
const sqlCompleteLock = `SELECT seq FROM deliveries WHERE seq = ANY($1::bigint[]) ORDER BY seq FOR NO KEY UPDATE`

// sqlComplete records the results under their leases, in one statement:
// the new status of each delivery whose lease still holds, and the
// promotion of the next queued delivery of each (endpoint, customer) whose
// head ended. A lease held means pending: only Claim sets lease_owner, on
// pending deliveries, and every change of status (here and Redeliver)
// clears it. (The statement's snapshot still shows the ended heads as
// pending, so the promotion does not look for a pending delivery: the
// one there was is the head that ended.)
const sqlComplete = `
WITH r AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::timestamptz[], $6::int[], $7::text[])
        AS r(seq, owner, attempt, outcome, next_at, status_code, error)
),
u AS (
    UPDATE deliveries d SET
        status = CASE r.outcome WHEN 1 THEN 'delivered' WHEN 3 THEN 'failed' ELSE 'pending' END,
        ended_at = CASE WHEN r.outcome IN (1, 3) THEN now() END,
        next_attempt_at = CASE WHEN r.outcome IN (2, 4) THEN r.next_at ELSE d.next_attempt_at END,
        step = d.step + CASE WHEN r.outcome = 4 THEN 0 ELSE 1 END,
        attempts = d.attempts - CASE WHEN r.outcome = 4 THEN 1 ELSE 0 END,
        last_status = CASE WHEN r.outcome = 4 THEN d.last_status ELSE r.status_code END,
        last_error = CASE WHEN r.outcome = 4 THEN d.last_error ELSE r.error END,
        lease_owner = NULL, lease_until = NULL
    FROM r
    WHERE d.seq = r.seq AND d.lease_owner = r.owner AND d.attempts = r.attempt
    RETURNING d.endpoint_id, d.customer_id, r.outcome
),
ended AS (SELECT DISTINCT endpoint_id, customer_id FROM u WHERE outcome IN (1, 3)),
p AS (
    UPDATE deliveries d SET status = 'pending', next_attempt_at = now()
    FROM (SELECT (SELECT q.seq FROM deliveries q
                  WHERE q.endpoint_id = e.endpoint_id AND q.customer_id = e.customer_id AND q.status = 'queued'
                  ORDER BY q.seq LIMIT 1) AS seq
          FROM ended e) h
    WHERE d.seq = h.seq
)
SELECT count(*) FROM u`

// sqlInsertAttempts records attempts ($1 delivery seqs, ...) of deliveries
// that still exist.
const sqlInsertAttempts = `
INSERT INTO delivery_attempts (delivery_seq, attempt, started_at, latency_us, status_code, error, body)
SELECT d.seq, a.attempt, a.started_at, a.latency_us, a.status_code, a.error, a.body
FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::bigint[], $5::int[], $6::text[], $7::bytea[])
    AS a(seq, attempt, started_at, latency_us, status_code, error, body)
JOIN deliveries d ON d.seq = a.seq
ON CONFLICT (delivery_seq, attempt) DO NOTHING`

// sqlEndpointHealth sets each endpoint's failing_since ($1 IDs, $2
// whether an attempt succeeded, $3 the first failed attempt's start),
// writing only the rows that change.
const sqlEndpointHealth = `
UPDATE endpoints e SET failing_since = CASE WHEN h.ok THEN NULL ELSE coalesce(e.failing_since, h.since) END
FROM unnest($1::text[], $2::bool[], $3::timestamptz[]) AS h(id, ok, since)
WHERE e.id = h.id AND (CASE WHEN h.ok THEN NULL ELSE coalesce(e.failing_since, h.since) END) IS DISTINCT FROM e.failing_since`

func delivered2xx(code int) bool { return code >= 200 && code < 300 }

// deliveryRef is what Complete looks up of a delivery.
type deliveryRef struct {
	seq        int64
	endpointID string
}

// Complete records results in one transaction. See [store.DeliveryStore].
func (s *Store) Complete(ctx context.Context, results []store.Result) error {
	if len(results) == 0 {
		return nil
	}
	ids := make([]string, len(results))
	for i, r := range results {
		if r.Outcome < store.OutcomeDelivered || r.Outcome > store.OutcomeReleased {
			return fmt.Errorf("complete: %w: outcome %d", ErrInvalidArgument, r.Outcome)
		}
		ids[i] = r.Lease.DeliveryID
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Which deliveries exist, their seqs and endpoints (neither ever
		// changes), to lock the endpoints before changing anything. Only
		// reads come before the locks: under READ COMMITTED each
		// statement after them sees what the other holders committed.
		b := &pgx.Batch{}
		b.Queue(sqlDeliveryTx)
		b.Queue(sqlCompleteLookup, ids)
		br := tx.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		rows, _ := br.Query()
		refs := make(map[string]deliveryRef, len(ids))
		var (
			id  string
			ref deliveryRef
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &ref.seq, &ref.endpointID}, func() error { refs[id] = ref; return nil })
		if err := errors.Join(err, br.Close()); err != nil {
			return err
		}
		if len(refs) == 0 {
			return nil // every delivery was deleted
		}
		b = completeBatch(results, refs)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return queryError("complete", err)
	}
	return nil
}

// completeBatch returns the statements that record results, for the
// deliveries refs holds (the others were deleted).
func completeBatch(results []store.Result, refs map[string]deliveryRef) *pgx.Batch {
	var endpoints []string
	for _, ref := range refs {
		endpoints = append(endpoints, ref.endpointID)
	}
	slices.Sort(endpoints)
	endpoints = slices.Compact(endpoints)

	var (
		uSeqs, aSeqs                  []int64
		uOwners, uErrors              []string
		uAttempts, uOutcomes, uStatus []int32
		uNext                         []time.Time
		aErrors                       []string
		aAttempts, aStatus            []int32
		aStarted                      []time.Time
		aLatency                      []int64
		aBodies                       [][]byte
		healthOK                      = map[string]bool{}
		healthSince                   = map[string]time.Time{}
	)
	for _, r := range results {
		ref, ok := refs[r.Lease.DeliveryID]
		if !ok {
			continue
		}
		uSeqs = append(uSeqs, ref.seq)
		uOwners = append(uOwners, r.Lease.Owner)
		uAttempts = append(uAttempts, int32(r.Lease.Attempt))
		uOutcomes = append(uOutcomes, int32(r.Outcome))
		uNext = append(uNext, r.NextAttemptAt)
		uStatus = append(uStatus, int32(r.Attempt.StatusCode))
		uErrors = append(uErrors, r.Attempt.Error)
		if r.Outcome == store.OutcomeReleased {
			continue
		}
		a := r.Attempt
		aSeqs = append(aSeqs, ref.seq)
		aAttempts = append(aAttempts, int32(cmp.Or(a.Attempt, r.Lease.Attempt)))
		aStarted = append(aStarted, a.StartedAt)
		aLatency = append(aLatency, a.Latency.Microseconds())
		aStatus = append(aStatus, int32(a.StatusCode))
		aErrors = append(aErrors, a.Error)
		aBodies = append(aBodies, payload(a.Body))
		if r.Outcome == store.OutcomeDelivered || delivered2xx(a.StatusCode) {
			healthOK[ref.endpointID] = true
		} else if since, seen := healthSince[ref.endpointID]; !seen || a.StartedAt.Before(since) {
			healthSince[ref.endpointID] = a.StartedAt
		}
	}
	var hIDs []string
	var hOK []bool
	var hSince []time.Time
	for _, ep := range endpoints {
		since, failed := healthSince[ep]
		if !healthOK[ep] && !failed {
			continue
		}
		hIDs, hOK, hSince = append(hIDs, ep), append(hOK, healthOK[ep]), append(hSince, since)
	}

	b := &pgx.Batch{}
	for _, ep := range endpoints {
		b.Queue(sqlLockEndpointShared, endpointLockKey(ep))
	}
	b.Queue(sqlCompleteLock, uSeqs)
	if len(aSeqs) > 0 {
		b.Queue(sqlInsertAttempts, aSeqs, aAttempts, aStarted, aLatency, aStatus, aErrors, aBodies)
	}
	b.Queue(sqlComplete, uSeqs, uOwners, uAttempts, uOutcomes, uNext, uStatus, uErrors)
	if len(hIDs) > 0 {
		b.Queue(sqlEndpointHealth, hIDs, hOK, hSince)
	}
	return b
}

// GetDelivery returns a delivery or [store.ErrNotFound].
func (s *Store) GetDelivery(ctx context.Context, id string) (store.Delivery, error) {
	d, _, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+`
FROM deliveries d JOIN outbox o ON o.seq = d.outbox_seq WHERE d.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Delivery{}, notFound("delivery", id)
	}
	if err != nil {
		return store.Delivery{}, queryError("get delivery "+id, err)
	}
	return d, nil
}

// ListDeliveries lists deliveries newest first, paged by keyset.
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, string, error) {
	if f.PageSize <= 0 {
		return nil, "", fmt.Errorf("list deliveries: %w: page size %d, want > 0", ErrInvalidArgument, f.PageSize)
	}
	size := min(f.PageSize, maxPageSize)
	below := int64(math.MaxInt64)
	if f.PageToken != "" {
		var err error
		if below, err = parsePageToken(f.PageToken); err != nil {
			return nil, "", fmt.Errorf("list deliveries: %w", err)
		}
	}
	args := []any{below, size + 1}
	var where strings.Builder
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			fmt.Fprintf(&where, " AND d.%s = $%d", col, len(args))
		}
	}
	add("endpoint_id", f.EndpointID)
	add("customer_id", f.CustomerID)
	add("status", string(f.Status))
	if f.Status != "" && f.Status != store.DeliveryDelivered {
		// Implied, and it lets the planner use the partial
		// deliveries_status_seq_partial_idx (0008).
		where.WriteString(" AND d.status <> 'delivered'")
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+deliveryColumns+`
FROM deliveries d JOIN outbox o ON o.seq = d.outbox_seq
WHERE d.seq < $1`+where.String()+`
ORDER BY d.seq DESC LIMIT $2`, args...)
	var seqs []int64
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Delivery, error) {
		d, seq, err := scanDelivery(row)
		seqs = append(seqs, seq)
		return d, err
	})
	if err != nil {
		return nil, "", queryError("list deliveries", err)
	}
	if len(ds) <= size {
		return ds, "", nil
	}
	return ds[:size], pageToken(seqs[size-1]), nil
}

// ListAttempts lists a delivery's attempts, newest first.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string, pageSize int, pageToken string) ([]store.Attempt, string, error) {
	if pageSize <= 0 {
		return nil, "", fmt.Errorf("list attempts: %w: page size %d, want > 0", ErrInvalidArgument, pageSize)
	}
	size := min(pageSize, maxPageSize)
	below := int64(math.MaxInt32)
	if pageToken != "" {
		var err error
		if below, err = parsePageToken(pageToken); err != nil {
			return nil, "", fmt.Errorf("list attempts: %w", err)
		}
		below = min(below, math.MaxInt32)
	}
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM deliveries WHERE id = $1`, deliveryID).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", notFound("delivery", deliveryID)
	}
	if err != nil {
		return nil, "", queryError("list attempts "+deliveryID, err)
	}
	rows, _ := s.pool.Query(ctx, `
SELECT attempt, started_at, latency_us, status_code, error, body FROM delivery_attempts
WHERE delivery_seq = $1 AND attempt < $2 ORDER BY attempt DESC LIMIT $3`, seq, below, size+1)
	as, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Attempt, error) {
		a := store.Attempt{DeliveryID: deliveryID}
		var latency int64
		err := row.Scan(&a.Attempt, &a.StartedAt, &latency, &a.StatusCode, &a.Error, &a.Body)
		a.Latency = time.Duration(latency) * time.Microsecond
		return a, err
	})
	if err != nil {
		return nil, "", queryError("list attempts "+deliveryID, err)
	}
	if len(as) <= size {
		return as, "", nil
	}
	return as[:size], store.PageToken(int64(as[size-1].Attempt)), nil
}

// sqlRedeliver puts failed deliveries back in their queues, queued; the
// promotion that follows makes each pending if its pair has no pending one.
const sqlRedeliverColumns = `status = 'queued', step = 0, next_attempt_at = now(), ended_at = NULL,
    lease_owner = NULL, lease_until = NULL`

// Redeliver puts a failed delivery back in its customer's queue.
func (s *Store) Redeliver(ctx context.Context, id string) (bool, error) {
	var endpointID string
	err := s.pool.QueryRow(ctx, `SELECT endpoint_id FROM deliveries WHERE id = $1`, id).Scan(&endpointID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, notFound("delivery", id)
	}
	if err != nil {
		return false, queryError("redeliver "+id, err)
	}
	var done bool
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Exclusive: a Complete that ends the pair's head concurrently
		// must see this delivery queued, or this must see the head ended.
		if _, err := tx.Exec(ctx, sqlLockEndpoint, endpointLockKey(endpointID)); err != nil {
			return err
		}
		var customerID string
		err := tx.QueryRow(ctx, `UPDATE deliveries SET `+sqlRedeliverColumns+`
WHERE id = $1 AND status = 'failed' RETURNING customer_id`, id).Scan(&customerID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		done = true
		_, err = tx.Exec(ctx, sqlPromote, endpointID, []string{customerID})
		return err
	})
	if err != nil {
		return false, queryError("redeliver "+id, err)
	}
	if !done {
		// Deleted meanwhile, or not failed.
		if _, err := s.GetDelivery(ctx, id); err != nil {
			return false, err
		}
	}
	return done, nil
}

// RedeliverFailed redelivers every failed delivery of the endpoint that
// ended at or after since.
func (s *Store) RedeliverFailed(ctx context.Context, endpointID string, since time.Time) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		n = 0
		if _, err := tx.Exec(ctx, sqlLockEndpoint, endpointLockKey(endpointID)); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM endpoints WHERE id = $1)`, endpointID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return notFound("endpoint", endpointID)
		}
		rows, _ := tx.Query(ctx, `UPDATE deliveries SET `+sqlRedeliverColumns+`
WHERE endpoint_id = $1 AND status = 'failed' AND ended_at >= $2 RETURNING customer_id`, endpointID, since)
		customers, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		n = int64(len(customers))
		if n == 0 {
			return nil
		}
		slices.Sort(customers)
		_, err = tx.Exec(ctx, sqlPromote, endpointID, slices.Compact(customers))
		return err
	})
	if err != nil {
		return 0, queryError("redeliver failed "+endpointID, err)
	}
	return n, nil
}

// sqlDeliveryTx begins each Enqueue, Claim and Complete transaction, in
// one statement (one round trip):
//
// It makes the transaction commit without waiting for its WAL flush.
// Delivery is at least once by design, so what a crash can lose of these
// transactions only repeats work: a lost Enqueue is read again from the
// endpoint's cursor, a lost Claim leaves the delivery to be claimed again,
// and a lost Complete sends the delivery again (the receiver deduplicates
// on webhook-id); each transaction is still atomic. It spares the WAL
// flushes that the ingest path's commits wait for (synchronous_commit on
// for everything else).
//
// And it keeps the statements' plans on their indexes, as sqlSetJoinPlans
// does for the set-based writes: every statement of these transactions
// finds its rows through an index (the primary key, deliveries_id_key, a
// queue index, or outbox_txid_seq_idx), and the generic plans the
// statement cache settles on, made while a table was small, hash-joined
// a sequential scan of deliveries to a batch's arrays. The plan cache does
// not track these settings, so they are set in every such transaction,
// their first planning included. TestDeliveryPlansLookUpByIndex checks
// the plans.
const sqlDeliveryTx = `SELECT set_config('synchronous_commit', 'off', true),
    set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),
    set_config('enable_seqscan', 'off', true)`

// Backlog returns each endpoint's queued and pending deliveries, every
// endpoint (0 for those with none).
func (s *Store) Backlog(ctx context.Context) ([]store.EndpointBacklog, error) {
	rows, _ := s.pool.Query(ctx, `
SELECT e.id, count(d.seq), min(d.created_at) FROM endpoints e
LEFT JOIN deliveries d ON d.endpoint_id = e.id AND d.status IN ('queued', 'pending')
GROUP BY e.id ORDER BY e.id`)
	bs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.EndpointBacklog, error) {
		var (
			b      store.EndpointBacklog
			oldest *time.Time
		)
		err := row.Scan(&b.EndpointID, &b.Undelivered, &oldest)
		if oldest != nil {
			b.OldestCreatedAt = *oldest
		}
		return b, err
	})
	if err != nil {
		return nil, queryError("backlog", err)
	}
	return bs, nil
}
