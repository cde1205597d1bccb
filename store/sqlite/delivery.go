package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hookd/hookd/store"
)

// Outbound delivery ([store.DeliveryStore]). Every change runs in a
// transaction on the one writer connection, owned as Commit owns it
// (acquireWriter) and begun with BEGIN IMMEDIATE: changes never
// interleave, within this process or (by SQLite's write lock) with another
// process. Reads go through the read-only pool. Times are the process's
// clock, in unix microseconds.

var _ store.DeliveryStore = (*Store)(nil)

// writeTx runs fn in a write transaction, with now the transaction's
// timestamp, and commits it if fn returns nil.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx, now int64) error) (err error) {
	if err := s.acquireWriter(ctx); err != nil {
		return err
	}
	defer s.releaseWriter()
	if s.closed {
		return errClosed
	}
	tx, err := s.wdb.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return err
	}
	if err := fn(tx, micros(time.Now())); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		_, _ = s.wdb.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	return nil
}

// queryError wraps an error of a delivery statement: a sentinel as it
// is, a constraint violation as ErrInvalidArgument, anything else as
// ErrUnavailable.
func queryError(op string, err error) error {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidArgument) || errors.Is(err, store.ErrDuplicate) {
		return err
	}
	var se *sqlitedriver.Error
	if errors.As(err, &se) && !transient(err) && (se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT || se.Code()&0xff == sqlite3.SQLITE_TOOBIG) {
		return fmt.Errorf("%s: %w: %w", op, store.ErrInvalidArgument, err)
	}
	return unavailable(op, err)
}

func notFound(what, id string) error { return fmt.Errorf("%s %s: %w", what, id, store.ErrNotFound) }

type secretJSON struct {
	Value     string `json:"value"`
	ExpiresAt int64  `json:"expires_at,omitempty"` // unix microseconds
}

func marshalSecrets(ss []store.Secret) string {
	out := make([]secretJSON, 0, len(ss))
	for _, s := range ss {
		j := secretJSON{Value: s.Value}
		if !s.ExpiresAt.IsZero() {
			j.ExpiresAt = micros(s.ExpiresAt)
		}
		out = append(out, j)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func marshalStrings(ss []string) string {
	if ss == nil {
		ss = []string{}
	}
	b, _ := json.Marshal(ss)
	return string(b)
}

// nullMicros returns t in unix microseconds, or NULL for the zero time.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}

const endpointColumns = `id, url, description, kinds, customer_ids, secrets, paused, disabled_reason,
    disabled_at, failing_since, cursor, origin, created_at, updated_at`

func scanEndpoint(row interface{ Scan(...any) error }) (store.Endpoint, error) {
	var (
		e                        store.Endpoint
		kinds, customers, secret string
		paused                   int64
		disabledAt, failingSince sql.NullInt64
		createdAt, updatedAt     int64
	)
	if err := row.Scan(&e.ID, &e.URL, &e.Description, &kinds, &customers, &secret, &paused, &e.DisabledReason,
		&disabledAt, &failingSince, &e.Cursor, &e.Origin, &createdAt, &updatedAt); err != nil {
		return store.Endpoint{}, err
	}
	var ss []secretJSON
	if err := errors.Join(json.Unmarshal([]byte(kinds), &e.Kinds), json.Unmarshal([]byte(customers), &e.CustomerIDs),
		json.Unmarshal([]byte(secret), &ss)); err != nil {
		return store.Endpoint{}, fmt.Errorf("endpoint %s: %w", e.ID, err)
	}
	if len(e.Kinds) == 0 {
		e.Kinds = nil
	}
	if len(e.CustomerIDs) == 0 {
		e.CustomerIDs = nil
	}
	for _, j := range ss {
		s := store.Secret{Value: j.Value}
		if j.ExpiresAt != 0 {
			s.ExpiresAt = fromMicros(j.ExpiresAt)
		}
		e.Secrets = append(e.Secrets, s)
	}
	e.Paused = paused != 0
	e.DisabledAt, e.FailingSince = fromNullMicros(disabledAt), fromNullMicros(failingSince)
	e.CreatedAt, e.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	return e, nil
}

func getEndpointTx(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) (store.Endpoint, error) {
	e, err := scanEndpoint(q.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE id = ?1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Endpoint{}, notFound("endpoint", id)
	}
	return e, err
}

func validateEndpoint(e store.Endpoint) error {
	if e.ID == "" {
		return fmt.Errorf("%w: empty endpoint ID", store.ErrInvalidArgument)
	}
	if e.Cursor != "" {
		if _, err := parseCursor(e.Cursor); err != nil {
			return err
		}
	}
	return nil
}

// latestCursorTx is LatestCursor inside a transaction.
func latestCursorTx(ctx context.Context, tx *sql.Tx) (string, error) {
	var seq sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT max(seq) FROM outbox`).Scan(&seq); err != nil || !seq.Valid {
		return "", err
	}
	return strconv.FormatInt(seq.Int64, 10), nil
}

// CreateEndpoint stores a new endpoint, or returns [store.ErrDuplicate].
func (s *Store) CreateEndpoint(ctx context.Context, e store.Endpoint) (store.Endpoint, error) {
	return s.putEndpoint(ctx, e, false)
}

// UpsertEndpoint creates e or updates its URL, description, filter,
// secrets and origin, keeping the rest.
func (s *Store) UpsertEndpoint(ctx context.Context, e store.Endpoint) (store.Endpoint, error) {
	return s.putEndpoint(ctx, e, true)
}

func (s *Store) putEndpoint(ctx context.Context, e store.Endpoint, upsert bool) (store.Endpoint, error) {
	op := "create endpoint " + e.ID
	if upsert {
		op = "upsert endpoint " + e.ID
	}
	if err := validateEndpoint(e); err != nil {
		return store.Endpoint{}, fmt.Errorf("%s: %w", op, err)
	}
	var out store.Endpoint
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		cursor := e.Cursor
		if cursor == "" {
			var err error
			if cursor, err = latestCursorTx(ctx, tx); err != nil {
				return err
			}
		}
		var disabledAt any
		if e.DisabledReason != "" {
			disabledAt = now
			if !e.DisabledAt.IsZero() {
				disabledAt = micros(e.DisabledAt)
			}
		}
		paused := 0
		if e.Paused {
			paused = 1
		}
		q := `
INSERT INTO endpoints (id, url, description, kinds, customer_ids, secrets, paused, disabled_reason,
                       disabled_at, cursor, origin, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)`
		if upsert {
			q += `
ON CONFLICT (id) DO UPDATE SET url = excluded.url, description = excluded.description,
    kinds = excluded.kinds, customer_ids = excluded.customer_ids, secrets = excluded.secrets,
    origin = excluded.origin, updated_at = excluded.updated_at`
		}
		_, err := tx.ExecContext(ctx, q, e.ID, e.URL, e.Description, marshalStrings(e.Kinds), marshalStrings(e.CustomerIDs),
			marshalSecrets(e.Secrets), paused, e.DisabledReason, disabledAt, cursor, cmp.Or(e.Origin, "api"), now)
		var se *sqlitedriver.Error
		if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT && strings.Contains(se.Error(), "endpoints.id") {
			return fmt.Errorf("%s: %w", op, store.ErrDuplicate)
		}
		if err != nil {
			return err
		}
		out, err = getEndpointTx(ctx, tx, e.ID)
		return err
	})
	if err != nil {
		return store.Endpoint{}, queryError(op, err)
	}
	return out, nil
}

// GetEndpoint returns the endpoint, or [store.ErrNotFound].
func (s *Store) GetEndpoint(ctx context.Context, id string) (store.Endpoint, error) {
	e, err := getEndpointTx(ctx, s.rdb, id)
	if err != nil {
		return store.Endpoint{}, queryError("get endpoint "+id, err)
	}
	return e, nil
}

// ListEndpoints returns every endpoint, ordered by ID.
func (s *Store) ListEndpoints(ctx context.Context) ([]store.Endpoint, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+endpointColumns+` FROM endpoints ORDER BY id`)
	if err != nil {
		return nil, unavailable("list endpoints", err)
	}
	defer rows.Close()
	var es []store.Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, unavailable("list endpoints", err)
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("list endpoints", err)
	}
	return es, nil
}

// UpdateEndpoint changes the fields u sets.
func (s *Store) UpdateEndpoint(ctx context.Context, id string, u store.EndpointUpdate) (store.Endpoint, error) {
	var kinds, customers, secrets, paused any
	if u.Kinds != nil {
		kinds = marshalStrings(*u.Kinds)
	}
	if u.CustomerIDs != nil {
		customers = marshalStrings(*u.CustomerIDs)
	}
	if u.Secrets != nil {
		secrets = marshalSecrets(*u.Secrets)
	}
	if u.Paused != nil {
		paused = 0
		if *u.Paused {
			paused = 1
		}
	}
	var url, description any
	if u.URL != nil {
		url = *u.URL
	}
	if u.Description != nil {
		description = *u.Description
	}
	var out store.Endpoint
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		res, err := tx.ExecContext(ctx, `
UPDATE endpoints SET
    url = coalesce(?2, url),
    description = coalesce(?3, description),
    kinds = coalesce(?4, kinds),
    customer_ids = coalesce(?5, customer_ids),
    secrets = coalesce(?6, secrets),
    paused = coalesce(?7, paused),
    disabled_reason = CASE WHEN ?8 THEN '' ELSE disabled_reason END,
    disabled_at = CASE WHEN ?8 THEN NULL ELSE disabled_at END,
    failing_since = CASE WHEN ?8 THEN NULL ELSE failing_since END,
    updated_at = ?9
WHERE id = ?1`, id, url, description, kinds, customers, secrets, paused, u.ClearDisabled, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmp.Or(err, notFound("endpoint", id))
		}
		out, err = getEndpointTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return store.Endpoint{}, queryError("update endpoint "+id, err)
	}
	return out, nil
}

// DeleteEndpoint removes the endpoint with its deliveries and attempts.
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM endpoints WHERE id = ?1`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmp.Or(err, notFound("endpoint", id))
		}
		return nil
	})
	if err != nil {
		return queryError("delete endpoint "+id, err)
	}
	return nil
}

// DisableEndpoint sets DisabledReason and DisabledAt unless already set.
func (s *Store) DisableEndpoint(ctx context.Context, id, reason string) error {
	if reason == "" {
		return fmt.Errorf("disable endpoint %s: %w: empty reason", id, store.ErrInvalidArgument)
	}
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM endpoints WHERE id = ?1)`, id).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return notFound("endpoint", id)
		}
		_, err := tx.ExecContext(ctx, `UPDATE endpoints SET disabled_reason = ?2, disabled_at = ?3, updated_at = ?3
WHERE id = ?1 AND disabled_reason = ''`, id, reason, now)
		return err
	})
	if err != nil {
		return queryError("disable endpoint "+id, err)
	}
	return nil
}

// promote makes pending the oldest queued delivery of (endpoint,
// customer) when the pair has no pending one.
func promote(ctx context.Context, tx *sql.Tx, endpointID, customerID string, now int64) error {
	_, err := tx.ExecContext(ctx, `
UPDATE deliveries SET status = 'pending', next_attempt_at = ?3
WHERE seq = (SELECT seq FROM deliveries WHERE endpoint_id = ?1 AND customer_id = ?2 AND status = 'queued'
             ORDER BY seq LIMIT 1)
  AND NOT EXISTS (SELECT 1 FROM deliveries WHERE endpoint_id = ?1 AND customer_id = ?2 AND status = 'pending')`,
		endpointID, customerID, now)
	return err
}

// Enqueue turns notifications after the endpoint's cursor into
// deliveries. See [store.DeliveryStore]. Every committed outbox row is
// final in SQLite (see ReadNotifications).
func (s *Store) Enqueue(ctx context.Context, endpointID string, limit int) (read, created int, err error) {
	if limit <= 0 {
		return 0, 0, fmt.Errorf("enqueue: %w: limit %d, want > 0", store.ErrInvalidArgument, limit)
	}
	limit = min(limit, maxPageSize)
	err = s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		read, created = 0, 0
		e, err := getEndpointTx(ctx, tx, endpointID)
		if err != nil || !e.Active() {
			return err
		}
		after, err := parseCursor(e.Cursor)
		if err != nil {
			return err
		}
		type note struct {
			seq              int64
			customerID, kind string
		}
		rows, err := tx.QueryContext(ctx, `SELECT seq, customer_id, kind FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2`, after, limit)
		if err != nil {
			return err
		}
		var notes []note
		for rows.Next() {
			var n note
			if err := rows.Scan(&n.seq, &n.customerID, &n.kind); err != nil {
				rows.Close()
				return err
			}
			notes = append(notes, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(notes) == 0 {
			return err
		}
		var affected []string
		for _, n := range notes {
			if (len(e.Kinds) > 0 && !slices.Contains(e.Kinds, n.kind)) || (len(e.CustomerIDs) > 0 && !slices.Contains(e.CustomerIDs, n.customerID)) {
				continue
			}
			if _, err := tx.ExecContext(ctx, `
INSERT INTO deliveries (id, endpoint_id, customer_id, outbox_seq, status, next_attempt_at, created_at)
VALUES ('msg_' || lower(hex(randomblob(16))), ?1, ?2, ?3, 'queued', ?4, ?4)`, endpointID, n.customerID, n.seq, now); err != nil {
				return err
			}
			created++
			if !slices.Contains(affected, n.customerID) {
				affected = append(affected, n.customerID)
			}
		}
		for _, c := range affected {
			if err := promote(ctx, tx, endpointID, c, now); err != nil {
				return err
			}
		}
		read = len(notes)
		_, err = tx.ExecContext(ctx, `UPDATE endpoints SET cursor = ?2 WHERE id = ?1`, endpointID, strconv.FormatInt(notes[len(notes)-1].seq, 10))
		return err
	})
	if err != nil {
		return 0, 0, queryError("enqueue "+endpointID, err)
	}
	return read, created, nil
}

const deliveryColumns = `d.seq, d.id, d.endpoint_id, d.customer_id, d.status, d.attempts, d.step, d.next_attempt_at,
    d.last_status, d.last_error, d.created_at, d.ended_at,
    o.seq, o.customer_id, o.version, o.kind, o.event_id, o.occurred_at, o.customer`

const deliveryFrom = ` FROM deliveries d JOIN outbox o ON o.seq = d.outbox_seq`

func scanDelivery(row interface{ Scan(...any) error }) (store.Delivery, int64, error) {
	var (
		d                         store.Delivery
		seq, obSeq                int64
		status                    string
		next, createdAt, occurred int64
		ended                     sql.NullInt64
		n                         store.Notification
	)
	if err := row.Scan(&seq, &d.ID, &d.EndpointID, &d.CustomerID, &status, &d.Attempts, &d.Step, &next,
		&d.LastStatus, &d.LastError, &createdAt, &ended,
		&obSeq, &n.CustomerID, &n.Version, &n.Kind, &n.EventID, &occurred, &n.Customer); err != nil {
		return store.Delivery{}, 0, err
	}
	d.Status = store.DeliveryStatus(status)
	d.NextAttemptAt, d.CreatedAt, d.EndedAt = fromMicros(next), fromMicros(createdAt), fromNullMicros(ended)
	n.Cursor = strconv.FormatInt(obSeq, 10)
	n.OccurredAt = fromMicros(occurred)
	d.Notification = n
	return d, seq, nil
}

type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

func queryDeliveries(ctx context.Context, q querier, query string, args ...any) ([]store.Delivery, []int64, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		ds   []store.Delivery
		seqs []int64
	)
	for rows.Next() {
		d, seq, err := scanDelivery(rows)
		if err != nil {
			return nil, nil, err
		}
		ds, seqs = append(ds, d), append(seqs, seq)
	}
	return ds, seqs, rows.Err()
}

// Claim leases due pending deliveries of the endpoint.
func (s *Store) Claim(ctx context.Context, endpointID, owner string, limit int, lease time.Duration) ([]store.Claimed, error) {
	if limit <= 0 || lease <= 0 || owner == "" {
		return nil, fmt.Errorf("claim: %w: limit %d, lease %v, owner %q", store.ErrInvalidArgument, limit, lease, owner)
	}
	var cs []store.Claimed
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		cs = nil
		rows, err := tx.QueryContext(ctx, `
UPDATE deliveries SET lease_owner = ?2, lease_until = ?4 + ?5, attempts = attempts + 1
WHERE seq IN (SELECT seq FROM deliveries
              WHERE endpoint_id = ?1 AND status = 'pending' AND next_attempt_at <= ?4
                AND (lease_until IS NULL OR lease_until <= ?4)
              ORDER BY next_attempt_at, seq LIMIT ?3)
  AND EXISTS (SELECT 1 FROM endpoints WHERE id = ?1 AND paused = 0 AND disabled_reason = '')
RETURNING seq`, endpointID, owner, min(limit, maxPageSize), now, lease.Microseconds())
		if err != nil {
			return err
		}
		var seqs []int64
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				rows.Close()
				return err
			}
			seqs = append(seqs, seq)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(seqs) == 0 {
			return err
		}
		b, _ := json.Marshal(seqs)
		ds, _, err := queryDeliveries(ctx, tx, `SELECT `+deliveryColumns+deliveryFrom+`
WHERE d.seq IN (SELECT value FROM json_each(?1)) ORDER BY d.next_attempt_at, d.seq`, string(b))
		for _, d := range ds {
			cs = append(cs, store.Claimed{Delivery: d, Lease: store.Lease{DeliveryID: d.ID, Owner: owner, Attempt: d.Attempts}})
		}
		return err
	})
	if err != nil {
		return nil, queryError("claim "+endpointID, err)
	}
	return cs, nil
}

// Complete records results in one transaction. See [store.DeliveryStore].
func (s *Store) Complete(ctx context.Context, results []store.Result) error {
	if len(results) == 0 {
		return nil
	}
	for _, r := range results {
		if r.Outcome < store.OutcomeDelivered || r.Outcome > store.OutcomeReleased {
			return fmt.Errorf("complete: %w: outcome %d", store.ErrInvalidArgument, r.Outcome)
		}
	}
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		healthOK := map[string]bool{}
		healthSince := map[string]int64{}
		var endpoints []string
		for _, r := range results {
			var (
				seq                    int64
				endpointID, customerID string
			)
			err := tx.QueryRowContext(ctx, `SELECT seq, endpoint_id, customer_id FROM deliveries WHERE id = ?1`,
				r.Lease.DeliveryID).Scan(&seq, &endpointID, &customerID)
			if errors.Is(err, sql.ErrNoRows) {
				continue // deleted
			}
			if err != nil {
				return err
			}
			a := r.Attempt
			if r.Outcome != store.OutcomeReleased {
				if _, err := tx.ExecContext(ctx, `
INSERT INTO delivery_attempts (delivery_seq, attempt, started_at, latency_us, status_code, error, body)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, coalesce(?7, x''))
ON CONFLICT (delivery_seq, attempt) DO NOTHING`,
					seq, cmp.Or(a.Attempt, r.Lease.Attempt), micros(a.StartedAt), a.Latency.Microseconds(), a.StatusCode, a.Error, a.Body); err != nil {
					return err
				}
				if !slices.Contains(endpoints, endpointID) {
					endpoints = append(endpoints, endpointID)
				}
				if r.Outcome == store.OutcomeDelivered || (a.StatusCode >= 200 && a.StatusCode < 300) {
					healthOK[endpointID] = true
				} else if since, seen := healthSince[endpointID]; !seen || micros(a.StartedAt) < since {
					healthSince[endpointID] = micros(a.StartedAt)
				}
			}
			var q string
			var args []any
			switch r.Outcome {
			case store.OutcomeDelivered, store.OutcomeFailed:
				status := store.DeliveryDelivered
				if r.Outcome == store.OutcomeFailed {
					status = store.DeliveryFailed
				}
				q, args = `status = ?4, ended_at = ?5, step = step + 1, last_status = ?6, last_error = ?7`,
					[]any{string(status), now, a.StatusCode, a.Error}
			case store.OutcomeRetry:
				q, args = `next_attempt_at = ?4, step = step + 1, last_status = ?5, last_error = ?6`,
					[]any{micros(r.NextAttemptAt), a.StatusCode, a.Error}
			case store.OutcomeReleased:
				q, args = `next_attempt_at = ?4, attempts = attempts - 1`, []any{micros(r.NextAttemptAt)}
			}
			res, err := tx.ExecContext(ctx, `UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, `+q+`
WHERE seq = ?1 AND lease_owner = ?2 AND attempts = ?3 AND status = 'pending'`,
				append([]any{seq, r.Lease.Owner, r.Lease.Attempt}, args...)...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if n > 0 && (r.Outcome == store.OutcomeDelivered || r.Outcome == store.OutcomeFailed) {
				if err := promote(ctx, tx, endpointID, customerID, now); err != nil {
					return err
				}
			}
		}
		for _, ep := range endpoints {
			var err error
			if healthOK[ep] {
				_, err = tx.ExecContext(ctx, `UPDATE endpoints SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL`, ep)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE endpoints SET failing_since = ?2 WHERE id = ?1 AND failing_since IS NULL`, ep, healthSince[ep])
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return queryError("complete", err)
	}
	return nil
}

// GetDelivery returns a delivery or [store.ErrNotFound].
func (s *Store) GetDelivery(ctx context.Context, id string) (store.Delivery, error) {
	ds, _, err := queryDeliveries(ctx, s.rdb, `SELECT `+deliveryColumns+deliveryFrom+` WHERE d.id = ?1`, id)
	if err != nil {
		return store.Delivery{}, unavailable("get delivery "+id, err)
	}
	if len(ds) == 0 {
		return store.Delivery{}, notFound("delivery", id)
	}
	return ds[0], nil
}

// ListDeliveries lists deliveries newest first, paged by keyset.
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, string, error) {
	if f.PageSize <= 0 {
		return nil, "", fmt.Errorf("list deliveries: %w: page size %d, want > 0", store.ErrInvalidArgument, f.PageSize)
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
			fmt.Fprintf(&where, " AND d.%s = ?%d", col, len(args))
		}
	}
	add("endpoint_id", f.EndpointID)
	add("customer_id", f.CustomerID)
	add("status", string(f.Status))
	ds, seqs, err := queryDeliveries(ctx, s.rdb, `SELECT `+deliveryColumns+deliveryFrom+`
WHERE d.seq < ?1`+where.String()+` ORDER BY d.seq DESC LIMIT ?2`, args...)
	if err != nil {
		return nil, "", unavailable("list deliveries", err)
	}
	if len(ds) <= size {
		return ds, "", nil
	}
	return ds[:size], pageToken(seqs[size-1]), nil
}

// ListAttempts lists a delivery's attempts, newest first.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string, pageSize int, pageToken string) ([]store.Attempt, string, error) {
	if pageSize <= 0 {
		return nil, "", fmt.Errorf("list attempts: %w: page size %d, want > 0", store.ErrInvalidArgument, pageSize)
	}
	size := min(pageSize, maxPageSize)
	below := int64(math.MaxInt64)
	if pageToken != "" {
		var err error
		if below, err = parsePageToken(pageToken); err != nil {
			return nil, "", fmt.Errorf("list attempts: %w", err)
		}
	}
	var seq int64
	err := s.rdb.QueryRowContext(ctx, `SELECT seq FROM deliveries WHERE id = ?1`, deliveryID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", notFound("delivery", deliveryID)
	}
	if err != nil {
		return nil, "", unavailable("list attempts "+deliveryID, err)
	}
	rows, err := s.rdb.QueryContext(ctx, `
SELECT attempt, started_at, latency_us, status_code, error, body FROM delivery_attempts
WHERE delivery_seq = ?1 AND attempt < ?2 ORDER BY attempt DESC LIMIT ?3`, seq, below, size+1)
	if err != nil {
		return nil, "", unavailable("list attempts "+deliveryID, err)
	}
	defer rows.Close()
	var as []store.Attempt
	for rows.Next() {
		a := store.Attempt{DeliveryID: deliveryID}
		var started, latency int64
		if err := rows.Scan(&a.Attempt, &started, &latency, &a.StatusCode, &a.Error, &a.Body); err != nil {
			return nil, "", unavailable("list attempts "+deliveryID, err)
		}
		a.StartedAt, a.Latency = fromMicros(started), time.Duration(latency)*time.Microsecond
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", unavailable("list attempts "+deliveryID, err)
	}
	if len(as) <= size {
		return as, "", nil
	}
	return as[:size], store.PageToken(int64(as[size-1].Attempt)), nil
}

const sqlRedeliverSet = `status = 'queued', step = 0, next_attempt_at = ?2, ended_at = NULL,
    lease_owner = NULL, lease_until = NULL`

// Redeliver puts a failed delivery back in its customer's queue.
func (s *Store) Redeliver(ctx context.Context, id string) (bool, error) {
	var done bool
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		done = false
		var endpointID, customerID, status string
		err := tx.QueryRowContext(ctx, `SELECT endpoint_id, customer_id, status FROM deliveries WHERE id = ?1`, id).
			Scan(&endpointID, &customerID, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("delivery", id)
		}
		if err != nil || status != string(store.DeliveryFailed) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET `+sqlRedeliverSet+` WHERE id = ?1`, id, now); err != nil {
			return err
		}
		done = true
		return promote(ctx, tx, endpointID, customerID, now)
	})
	if err != nil {
		return false, queryError("redeliver "+id, err)
	}
	return done, nil
}

// RedeliverFailed redelivers every failed delivery of the endpoint that
// ended at or after since.
func (s *Store) RedeliverFailed(ctx context.Context, endpointID string, since time.Time) (int64, error) {
	var n int64
	err := s.writeTx(ctx, func(tx *sql.Tx, now int64) error {
		n = 0
		if _, err := getEndpointTx(ctx, tx, endpointID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `UPDATE deliveries SET `+sqlRedeliverSet+`
WHERE endpoint_id = ?1 AND status = 'failed' AND ended_at >= ?3 RETURNING customer_id`, endpointID, now, micros(since))
		if err != nil {
			return err
		}
		var customers []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return err
			}
			customers = append(customers, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		n = int64(len(customers))
		slices.Sort(customers)
		for _, c := range slices.Compact(customers) {
			if err := promote(ctx, tx, endpointID, c, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, queryError("redeliver failed "+endpointID, err)
	}
	return n, nil
}

// Backlog returns each endpoint's queued and pending deliveries, every
// endpoint (0 for those with none).
func (s *Store) Backlog(ctx context.Context) ([]store.EndpointBacklog, error) {
	rows, err := s.rdb.QueryContext(ctx, `
SELECT e.id, count(d.seq), coalesce(min(d.created_at), 0) FROM endpoints e
LEFT JOIN deliveries d ON d.endpoint_id = e.id AND d.status IN ('queued', 'pending')
GROUP BY e.id ORDER BY e.id`)
	if err != nil {
		return nil, unavailable("backlog", err)
	}
	defer rows.Close()
	var bs []store.EndpointBacklog
	for rows.Next() {
		var (
			b      store.EndpointBacklog
			oldest int64
		)
		if err := rows.Scan(&b.EndpointID, &b.Undelivered, &oldest); err != nil {
			return nil, unavailable("backlog", err)
		}
		if oldest != 0 {
			b.OldestCreatedAt = fromMicros(oldest)
		}
		bs = append(bs, b)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("backlog", err)
	}
	return bs, nil
}
