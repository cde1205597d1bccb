package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/store"
)

// Direct delivery (store.DirectStore): a notification whose (endpoint,
// customer) has nothing queued or pending is attempted before it has a
// row, and its row is inserted once, with its outcome. A delivery
// delivered at its first attempt then costs one insert into deliveries
// and one into delivery_attempts, where Enqueue, Claim and Complete
// insert it pending, update its lease (HOT) and update its status (not
// HOT: a new entry in each of the table's full indexes), in three
// transactions. Both transactions take the endpoint's exclusive lock, as
// Enqueue does: CommitDirect decides which of its rows are heads against
// the queue as it stands, which Complete's promotions change under the
// shared lock.

var _ store.DirectStore = (*Store)(nil)

// sqlDirectEndpoint reads what a batch needs of the endpoint $1, and
// whether $2 may take its direct delivery: the endpoint is active and
// nobody else's lease holds.
const sqlDirectEndpoint = `
SELECT kinds, customer_ids, cursor, created_at,
       NOT paused AND disabled_reason = '' AND (direct_owner IS NULL OR direct_owner = $2 OR direct_until <= now())
FROM endpoints WHERE id = $1`

// sqlTakeDirect leases the endpoint $1's direct delivery to $2 for $3 µs.
const sqlTakeDirect = `
UPDATE endpoints SET direct_owner = $2, direct_until = now() + $3::bigint * interval '1 microsecond' WHERE id = $1`

// sqlDirectBusy returns which of the customers $2 have a queued or
// pending delivery to the endpoint $1, each looked up on its own (see
// sqlEnqueueInsert).
const sqlDirectBusy = `
SELECT c.customer_id FROM unnest($2::text[]) AS c(customer_id)
CROSS JOIN LATERAL (
    SELECT 1 FROM deliveries q
    WHERE q.endpoint_id = $1 AND q.customer_id = c.customer_id AND q.status IN ('queued', 'pending')
    LIMIT 1) b`

// directID is the delivery ID of the notification at cursor to the
// endpoint created at created: the same whoever takes the batch, so that
// a batch sent again by the next owner carries the same webhook-ids, and
// not the same for an endpoint deleted and created again under its ID
// (which is sent the notifications again, as new deliveries).
func directID(endpointID string, created time.Time, cursor string) string {
	sum := sha256.Sum256([]byte(endpointID + "\x00" + strconv.FormatInt(created.UnixMicro(), 10) + "\x00" + cursor))
	return "msg_" + hex.EncodeToString(sum[:16])
}

// TakeDirect leases the endpoint's direct delivery and reads a batch. See
// [store.DirectStore].
func (s *Store) TakeDirect(ctx context.Context, endpointID, owner string, limit int, lease time.Duration) (store.DirectBatch, error) {
	if limit <= 0 || lease <= 0 || owner == "" {
		return store.DirectBatch{}, fmt.Errorf("take direct: %w: limit %d, lease %v, owner %q", ErrInvalidArgument, limit, lease, owner)
	}
	limit = min(limit, maxPageSize)
	var b store.DirectBatch
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b = store.DirectBatch{EndpointID: endpointID, Owner: owner}
		if _, err := tx.Exec(ctx, sqlDeliveryTx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlLockEndpoint, endpointLockKey(endpointID)); err != nil {
			return err
		}
		// The endpoint is read and the batch with it before the lease is
		// written: the write assigns the transaction an ID, which would
		// hold the snapshot's xmin, and so what the batch may read, below
		// it (see Enqueue). The endpoint's lock keeps the lease as read.
		var (
			kinds, customers []string
			created          time.Time
			takeable         bool
		)
		err := tx.QueryRow(ctx, sqlDirectEndpoint, endpointID, owner).Scan(&kinds, &customers, &b.From, &created, &takeable)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("endpoint", endpointID)
		}
		if err != nil || !takeable {
			return err // inactive, or another owner's
		}
		b.Taken, b.To = true, b.From
		after, err := parseCursor(b.From)
		if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, sqlReadNotifications, fmt.Sprint(after.txid), after.seq, limit)
		var (
			n    store.Notification
			txid string
			seq  int64
		)
		_, err = pgx.ForEachRow(rows, []any{&txid, &seq, &n.CustomerID, &n.Version, &n.Kind, &n.EventID, &n.OccurredAt, &n.Customer}, func() error {
			b.Read++
			p, err := rowPosition(txid, seq)
			if err != nil {
				return err
			}
			b.To = p.cursor()
			if (len(kinds) > 0 && !slices.Contains(kinds, n.Kind)) || (len(customers) > 0 && !slices.Contains(customers, n.CustomerID)) {
				return nil
			}
			n.Cursor = b.To
			b.Items = append(b.Items, store.DirectItem{ID: directID(endpointID, created, n.Cursor), Notification: n})
			n = store.Notification{}
			return nil
		})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlTakeDirect, endpointID, owner, lease.Microseconds()); err != nil {
			return err
		}
		if len(b.Items) == 0 {
			return nil
		}
		var ids []string
		for _, it := range b.Items {
			ids = append(ids, it.Notification.CustomerID)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		rows, _ = tx.Query(ctx, sqlDirectBusy, endpointID, ids)
		busy, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(busy) > 0 {
			set := make(map[string]bool, len(busy))
			for _, c := range busy {
				set[c] = true
			}
			for i := range b.Items {
				b.Items[i].Busy = set[b.Items[i].Notification.CustomerID]
			}
		}
		return nil
	})
	if err != nil {
		return store.DirectBatch{}, queryError("take direct "+endpointID, err)
	}
	return b, nil
}

// sqlCommitDirect inserts a batch's deliveries to the endpoint $1, in
// order. Each row is delivered, failed, or (mode 0) pending when it is its
// customer's head ($5: its first row of the batch not ended) and its
// (endpoint, customer) has nothing queued or pending, else queued. A head
// is looked up on its own (see sqlEnqueueInsert).
const sqlCommitDirect = `
INSERT INTO deliveries (id, endpoint_id, customer_id, outbox_seq, status, attempts, step, next_attempt_at,
                        last_status, last_error, ended_at)
SELECT n.id, $1, n.customer_id, n.outbox_seq,
       CASE n.mode WHEN 1 THEN 'delivered' WHEN 3 THEN 'failed'
            ELSE CASE WHEN n.head AND b.busy IS NULL THEN 'pending' ELSE 'queued' END END,
       n.attempts, n.attempts, n.next_at, n.status_code, n.error,
       CASE WHEN n.mode IN (1, 3) THEN now() END
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bool[], $6::int[], $7::int[], $8::timestamptz[],
            $9::int[], $10::text[])
    WITH ORDINALITY AS n(outbox_seq, customer_id, id, head, mode, attempts, next_at, status_code, error, ord)
LEFT JOIN LATERAL (
    SELECT true AS busy FROM deliveries q
    WHERE n.head AND q.endpoint_id = $1 AND q.customer_id = n.customer_id AND q.status IN ('queued', 'pending')
    LIMIT 1) b ON true
ORDER BY n.ord`

// sqlDirectAttempts records the first attempts of a batch's deliveries
// ($1 their IDs), which sqlCommitDirect inserted before it in the same
// transaction: each found through deliveries_id_key. (In one statement
// with the insert, through RETURNING, the join of the inserted rows to
// the batch's was a nested loop over both, quadratic in the batch.)
const sqlDirectAttempts = `
INSERT INTO delivery_attempts (delivery_seq, attempt, started_at, latency_us, status_code, error, body)
SELECT d.seq, 1, a.started_at, a.latency_us, a.status_code, a.error, a.body
FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::int[], $5::text[], $6::bytea[])
    AS a(id, started_at, latency_us, status_code, error, body)
JOIN deliveries d ON d.id = a.id`

// CommitDirect stores a taken batch. See [store.DirectStore].
func (s *Store) CommitDirect(ctx context.Context, b store.DirectBatch, results []store.DirectResult) error {
	if !b.Taken {
		return fmt.Errorf("commit direct: %w: batch not taken", ErrInvalidArgument)
	}
	if len(results) != len(b.Items) {
		return fmt.Errorf("commit direct: %w: %d results for %d items", ErrInvalidArgument, len(results), len(b.Items))
	}
	n := len(b.Items)
	var (
		outboxSeqs                 = make([]int64, n)
		customers, ids, errs       = make([]string, n), make([]string, n), make([]string, n)
		heads                      = make([]bool, n)
		modes, attemptsN, statuses = make([]int32, n), make([]int32, n), make([]int32, n)
		nextAt                     = make([]time.Time, n)
		// The attempts, of the attempted items.
		aIDs, aErrors []string
		aStarted      []time.Time
		aLatency      []int64
		aStatus       []int32
		aBodies       [][]byte
		waiting       = map[string]bool{} // customers with a row of the batch not ended
		ok            bool
		since         time.Time
		now           = time.Now()
	)
	for i, it := range b.Items {
		r := results[i]
		p, err := parseCursor(it.Notification.Cursor)
		if err != nil {
			return fmt.Errorf("commit direct: %w", err)
		}
		outboxSeqs[i], customers[i], ids[i] = p.seq, it.Notification.CustomerID, it.ID
		nextAt[i] = now
		ended := false
		if r.Attempted {
			switch r.Outcome {
			case store.OutcomeDelivered, store.OutcomeFailed:
				modes[i], ended = int32(r.Outcome), true
			case store.OutcomeRetry:
				nextAt[i] = r.NextAttemptAt
			default:
				return fmt.Errorf("commit direct: %w: outcome %d", ErrInvalidArgument, r.Outcome)
			}
			a := r.Attempt
			attemptsN[i], statuses[i], errs[i] = 1, int32(a.StatusCode), a.Error
			aIDs, aErrors, aStatus = append(aIDs, it.ID), append(aErrors, a.Error), append(aStatus, int32(a.StatusCode))
			aStarted, aLatency = append(aStarted, a.StartedAt), append(aLatency, a.Latency.Microseconds())
			aBodies = append(aBodies, payload(a.Body))
			if r.Outcome == store.OutcomeDelivered || delivered2xx(a.StatusCode) {
				ok = true
			} else if since.IsZero() || a.StartedAt.Before(since) {
				since = a.StartedAt
			}
		}
		if !ended {
			heads[i] = !waiting[customers[i]]
			waiting[customers[i]] = true
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlDeliveryTx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlLockEndpoint, endpointLockKey(b.EndpointID)); err != nil {
			return err
		}
		var (
			cursor string
			owner  *string
		)
		err := tx.QueryRow(ctx, `SELECT cursor, direct_owner FROM endpoints WHERE id = $1`, b.EndpointID).Scan(&cursor, &owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("endpoint", b.EndpointID)
		}
		if err != nil {
			return err
		}
		if cursor != b.From || owner == nil || *owner != b.Owner {
			return store.ErrLeaseLost
		}
		bt := &pgx.Batch{}
		if n > 0 {
			bt.Queue(sqlCommitDirect, b.EndpointID, outboxSeqs, customers, ids, heads, modes, attemptsN, nextAt,
				statuses, errs)
		}
		if len(aIDs) > 0 {
			bt.Queue(sqlDirectAttempts, aIDs, aStarted, aLatency, aStatus, aErrors, aBodies)
		}
		bt.Queue(`UPDATE endpoints SET cursor = $2 WHERE id = $1`, b.EndpointID, b.To)
		if ok || !since.IsZero() {
			bt.Queue(sqlEndpointHealth, []string{b.EndpointID}, []bool{ok}, []time.Time{since})
		}
		return tx.SendBatch(ctx, bt).Close()
	})
	if err != nil {
		if errors.Is(err, store.ErrLeaseLost) {
			return fmt.Errorf("commit direct %s: %w", b.EndpointID, err)
		}
		return queryError("commit direct "+b.EndpointID, err)
	}
	return nil
}

// ReleaseDirect gives up owner's lease. See [store.DirectStore].
func (s *Store) ReleaseDirect(ctx context.Context, endpointID, owner string) error {
	_, err := s.pool.Exec(ctx, `UPDATE endpoints SET direct_owner = NULL, direct_until = NULL WHERE id = $1 AND direct_owner = $2`,
		endpointID, owner)
	if err != nil {
		return queryError("release direct "+endpointID, err)
	}
	return nil
}
