package postgres

import (
	"fmt"
	"strings"

	"github.com/hookd/hookd/store"
)

// This file holds every SQL statement the store runs outside migrations.

// sqlCreateSchemaMigrations creates the table that records applied
// migrations; Migrate runs it under its advisory lock.
const sqlCreateSchemaMigrations = `
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

// Constraint names that Commit tells apart on a unique violation.
const (
	constraintEventsPK       = "events_pkey"
	constraintEventsDedupKey = "events_dedup_key_key"
)

// sqlCodeFenced is the SQLSTATE hookd_fence raises (0001_init.sql).
const sqlCodeFenced = "HK409"

// sqlGenericPlans makes the rest of a commit transaction run its prepared
// statements with their generic plans. Under PostgreSQL's default (auto),
// a statement is re-planned on every execution as long as its custom plans
// look cheaper, which they always do for the write statements below (they
// know the arrays' lengths): planning was a quarter of PostgreSQL's CPU
// under load, and throughput rose by a third without it. Their generic
// plans find every row through the primary key or a unique index, even
// when they were made while the tables were empty. The reads keep the
// default: a generic ListEvents plan made on an empty table may pick the
// status index for a customer's events.
const sqlGenericPlans = `SET LOCAL plan_cache_mode = force_generic_plan`

// Commit's per-write statements. Each is one statement built from data-
// modifying CTEs, so that a write costs one round trip and fails or
// succeeds as a whole. writeSQL builds one per shape of write (see
// writeShape); the event's parameters come first, in every shape:
//
//	$1 source  $2 event_id  $3 type  $4 customer_id  $5 status  $6 reason
//	$7 routing  $8 created  $9 api_version  $10 object_id  $11 dedup_key
//	$12 event version  $13 payload  $14 account
//
// then, numbered on from $15 and only where the shape has them: the state
// (create and update) and the read version (update); the notification's
// customer_id, kind, event_id, occurred_at, customer and version (scalars
// for one notification, parallel arrays for more); the routes (one object
// ID, or an array for more).
//
// The event row is inserted first and everything else reads from it (or
// from the state write that reads from it), so a duplicate event ID is
// reported as a unique violation even when the fence would also fail. The
// state write is fenced: when it matches no row, hookd_fence raises
// SQLSTATE HK409 and the event row goes with the failed statement.
//
// Why shapes, not one statement with arrays for everything: each unnest
// and each CTE costs PostgreSQL's executor a 16 KiB tuplestore array,
// freed when the statement ends. With arrays everywhere a write's executor
// memory passed glibc's 128 KiB trim threshold, so a backend often gave
// it back to the kernel (brk) after every write and took it again for the
// next: each return is a TLB shootdown across CPUs, and under load that
// was up to half of the committing backend's CPU, varying from run to
// run with the heap's layout. Most writes have one notification and no
// route, and their shape has no unnest at all.
const sqlWriteEventCTE = `
WITH ev AS (
    INSERT INTO events (source, event_id, type, customer_id, status, reason, routing,
                        created, api_version, object_id, dedup_key, version, payload, account)
    VALUES ($1, $2, $3, $4::text, $5, $6, $7, $8, $9, $10, NULLIF($11, ''), $12, $13, $14)
    RETURNING 1
)`

// writeKind says what a write does to the customer's state.
type writeKind int

const (
	writeEventOnly writeKind = iota // records the event, no state
	writeCreate                     // creates the customer at version 1
	writeUpdate                     // replaces the state at the read version
	writeKinds
)

// writeShape is what a write statement has to carry: its kind, and how
// many notifications and routes (0, 1, or many; see countShape).
type writeShape struct {
	kind          writeKind
	notes, routes int
}

// countShape maps a count to a shape's 0, 1 or 2 (many).
func countShape(n int) int { return min(n, 2) }

// writeSQLs holds writeSQL's statement for every shape.
var writeSQLs = func() (t [writeKinds][3][3]string) {
	for k := range writeKinds {
		for n := range 3 {
			for r := range 3 {
				t[k][n][r] = writeSQL(writeShape{k, n, r})
			}
		}
	}
	return t
}()

// writeSQL builds the write statement of a shape. writeStatement passes
// the arguments in the order the parameters are numbered here.
func writeSQL(sh writeShape) string {
	n := 14 // the event's parameters
	p := func() int { n++; return n }
	var b strings.Builder
	b.WriteString(sqlWriteEventCTE)
	switch sh.kind {
	case writeEventOnly:
		b.WriteString(`,
done AS (SELECT 1 FROM ev)`)
	case writeCreate:
		// A row that already exists means another writer created it first.
		fmt.Fprintf(&b, `,
done AS (
    INSERT INTO customers (customer_id, version, state, updated_at)
    SELECT $4::text, 1, $%d::bytea, now() FROM ev
    ON CONFLICT (customer_id) DO NOTHING
    RETURNING 1
)`, p())
	case writeUpdate:
		// Under READ COMMITTED a concurrent writer of the same row makes
		// this wait and then re-check the version, so of two writers from
		// one version exactly one matches.
		fmt.Fprintf(&b, `,
done AS (
    UPDATE customers SET state = $%d::bytea, version = version + 1, updated_at = now()
    WHERE customer_id = $4::text AND version = $%d::bigint AND EXISTS (SELECT 1 FROM ev)
    RETURNING 1
)`, p(), p())
	}
	switch sh.notes {
	case 1:
		fmt.Fprintf(&b, `,
ob AS (
    INSERT INTO outbox (customer_id, kind, event_id, occurred_at, customer, version)
    SELECT $%d::text, $%d::text, $%d::text, $%d::timestamptz, $%d::bytea, $%d::bigint FROM done
)`, p(), p(), p(), p(), p(), p())
	case 2:
		// In array order.
		fmt.Fprintf(&b, `,
ob AS (
    INSERT INTO outbox (customer_id, kind, event_id, occurred_at, customer, version)
    SELECT n.customer_id, n.kind, n.event_id, n.occurred_at, n.customer, n.version
    FROM done, unnest($%d::text[], $%d::text[], $%d::text[], $%d::timestamptz[], $%d::bytea[], $%d::bigint[])
         WITH ORDINALITY AS n(customer_id, kind, event_id, occurred_at, customer, version, ord)
    ORDER BY n.ord
)`, p(), p(), p(), p(), p(), p())
	}
	switch sh.routes {
	case 1:
		fmt.Fprintf(&b, `,
rt AS (
    INSERT INTO object_routes (object_id, customer_id)
    SELECT $%d::text, $4::text FROM done
    WHERE $4::text <> ''
    ON CONFLICT (object_id) DO NOTHING
)`, p())
	case 2:
		fmt.Fprintf(&b, `,
rt AS (
    INSERT INTO object_routes (object_id, customer_id)
    SELECT r.object_id, $4::text
    FROM done, unnest($%d::text[]) AS r(object_id)
    WHERE $4::text <> ''
    ON CONFLICT (object_id) DO NOTHING
)`, p())
	}
	if sh.kind == writeEventOnly {
		b.WriteString("\nSELECT true")
	} else {
		b.WriteString("\nSELECT hookd_fence(EXISTS (SELECT 1 FROM done))")
	}
	return b.String()
}

const (
	// sqlWriteDuplicate records an event whose dedup key another event
	// already holds: status duplicate, no dedup key, and a reason naming
	// the original. Parameters: $1 source  $2 event_id  $3 type
	// $4 customer_id  $5 routing  $6 created  $7 api_version  $8 object_id
	// $9 dedup_key  $10 payload  $11 account.
	sqlWriteDuplicate = `
INSERT INTO events (source, event_id, type, customer_id, status, reason, routing,
                    created, api_version, object_id, dedup_key, version, payload, account)
VALUES ($1, $2, $3, $4, 'duplicate',
        'duplicate of ' || coalesce(
            (SELECT e.event_id FROM events e WHERE e.source = $1 AND md5(e.dedup_key) COLLATE "C" = md5($9::text) AND e.dedup_key = $9),
            'an event with the same dedup key'),
        $5, $6, $7, $8, NULL, 0, $10, $11)`
)

// eventColumns are the events columns that scanEvent reads, in order.
const eventColumns = `source, event_id, type, customer_id, status, reason, routing, created,
    received_at, api_version, object_id, coalesce(dedup_key, ''), version, payload, account`

const sqlGetEvent = `SELECT ` + eventColumns + ` FROM events WHERE source = $1 AND event_id = $2`

// sqlListEvents returns the ListEvents query: events with seq < $1, newest
// first, at most $2 rows, filtered as listEventsWhere says. Each filter
// combination is its own statement, so that each gets its own plan (the
// customer's or the status's index, or events_seq_key).
func sqlListEvents(f store.ListEventsFilter) (string, []any) {
	return listEventsSQL(`seq, `+eventColumns, ` ORDER BY seq DESC LIMIT $2`, f)
}

// sqlListEventSizes is sqlListEvents reading only each event's seq and its
// payload's size, which PostgreSQL knows without reading (or detoasting)
// the payload: ListEvents decides with it where a page bounded by bytes
// ends before it reads the page's payloads.
func sqlListEventSizes(f store.ListEventsFilter) (string, []any) {
	return listEventsSQL(`seq, octet_length(payload)`, ` ORDER BY seq DESC LIMIT $2`, f)
}

// sqlListEventRange is sqlListEvents for the events with $2 <= seq < $1,
// however many: the page that sqlListEventSizes measured.
func sqlListEventRange(f store.ListEventsFilter) (string, []any) {
	return listEventsSQL(`seq, `+eventColumns, ` AND seq >= $2 ORDER BY seq DESC`, f)
}

// listEventsSQL builds a listing statement and the arguments of its
// filters, numbered from $3 on in a fixed order (customer, status, type,
// received from, received before), each present only when set; the
// caller puts $1 and $2 first.
func listEventsSQL(columns, tail string, f store.ListEventsFilter) (string, []any) {
	var b strings.Builder
	b.WriteString(`SELECT ` + columns + ` FROM events WHERE seq < $1`)
	var args []any
	cond := func(sql string, v any) {
		args = append(args, v)
		fmt.Fprintf(&b, sql, len(args)+2)
	}
	if f.CustomerID != "" {
		cond(` AND customer_id = $%d`, f.CustomerID)
	}
	if f.Status != "" {
		cond(` AND status = $%d`, string(f.Status))
	}
	if f.Type != "" {
		cond(` AND type = $%d`, f.Type)
	}
	if !f.ReceivedFrom.IsZero() {
		cond(` AND received_at >= $%d`, f.ReceivedFrom)
	}
	if !f.ReceivedBefore.IsZero() {
		cond(` AND received_at < $%d`, f.ReceivedBefore)
	}
	b.WriteString(tail)
	return b.String(), args
}

// sqlCountEvents counts events by status: an index-only scan of
// events_status_seq_idx where the visibility map allows.
const sqlCountEvents = `SELECT status, count(*) FROM events GROUP BY status`

const sqlGetCustomer = `SELECT customer_id, version, state, updated_at FROM customers WHERE customer_id = $1`

// sqlGetCustomers reads the customers whose IDs are in $1, each by its
// own index lookup: the LATERAL subquery with LIMIT cannot be turned into
// a join, so a plan cached while the table was small (a sequential scan
// or hash join, cheap then) cannot scan the whole table later.
const sqlGetCustomers = `
SELECT c.customer_id, c.version, c.state, c.updated_at
FROM unnest($1::text[]) AS u(id)
CROSS JOIN LATERAL (SELECT customer_id, version, state, updated_at
                    FROM customers WHERE customer_id = u.id LIMIT 1) AS c`

const sqlLookupRoute = `SELECT customer_id FROM object_routes WHERE object_id = $1`

// sqlReadNotifications reads outbox rows after the cursor ($1 txid as
// text, $2 seq), at most $3. Only rows whose transaction ID is below the
// snapshot's xmin are read: every transaction that could still commit a
// row has a txid at or above it, so nothing can later appear before the
// rows returned. Both xmin and the rows come from the statement's one
// snapshot. The text form of txid is named txid_text, and ORDER BY names
// the table: a bare "txid" would sort by the text output column, so that
// "10000" came before "9999".
const sqlReadNotifications = `
SELECT txid::text AS txid_text, seq, customer_id, version, kind, event_id, occurred_at, customer
FROM outbox
WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
  AND (txid, seq) > ($1::text::xid8, $2::bigint)
ORDER BY outbox.txid, outbox.seq
LIMIT $3`

// sqlReadCustomerNotifications is sqlReadNotifications for one customer ($4).
const sqlReadCustomerNotifications = `
SELECT txid::text AS txid_text, seq, customer_id, version, kind, event_id, occurred_at, customer
FROM outbox
WHERE customer_id = $4
  AND txid < pg_snapshot_xmin(pg_current_snapshot())
  AND (txid, seq) > ($1::text::xid8, $2::bigint)
ORDER BY outbox.txid, outbox.seq
LIMIT $3`

// sqlLatestCursor finds the newest outbox row whose position is final
// (see sqlReadNotifications).
const sqlLatestCursor = `
SELECT txid::text AS txid_text, seq
FROM outbox
WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY outbox.txid DESC, outbox.seq DESC
LIMIT 1`

// sqlReleaseParked settles a parked event that a write releases, in the
// write's savepoint: applied at the version it took, or superseded when
// the version is 0. Parameters: $1 source  $2 event_id  $3 version
// $4 reason. It matches by primary key, so it reads one row.
const sqlReleaseParked = `
UPDATE events SET status = CASE WHEN $3::bigint = 0 THEN 'superseded' ELSE 'applied' END,
                  version = $3::bigint, reason = $4::text
WHERE source = $1 AND event_id = $2 AND status = 'parked'`

// sqlDeleteIgnored removes an ignored event's row before a replay of it
// (Write.Replace), in the replay's savepoint.
const sqlDeleteIgnored = `DELETE FROM events WHERE source = $1 AND event_id = $2 AND status = 'ignored'`

// outboxChannel is the LISTEN/NOTIFY channel that tells members new
// notifications were committed.
const outboxChannel = "hookd_outbox"

// sqlNotifyOutbox signals outboxChannel; PostgreSQL delivers it at commit,
// and not at all if the transaction rolls back.
const sqlNotifyOutbox = `SELECT pg_notify('` + outboxChannel + `', '')`
