package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/hookd/hookd/store"
)

// This file holds every SQL statement the store runs outside migrations.
// Timestamps are bound and read as unix microseconds (see micros).

// sqlCreateSchemaMigrations creates the table that records applied
// migrations.
const sqlCreateSchemaMigrations = `
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT`

// Commit's per-write statements. Each write runs, under its own
// savepoint: sqlInsertEvent, then (for a state write) sqlCreateCustomer or
// sqlUpdateCustomer, then sqlInsertOutbox per notification and
// sqlInsertRoute per route. The event row goes first, so that a duplicate
// event ID is reported as such even when the fence would also fail.
const (
	// sqlInsertEvent parameters: source, event_id, type, customer_id,
	// status, reason, routing, created, received_at, api_version,
	// object_id, dedup_key ('' for none), version (as given), payload
	// (nil for empty), account. seq is the next one: the writer holds the database's write
	// lock, so no other transaction can take it.
	sqlInsertEvent = `
INSERT INTO events (source, event_id, seq, type, customer_id, status, reason, routing,
                    created, received_at, api_version, object_id, dedup_key, version, payload, account)
VALUES (?1, ?2, (SELECT coalesce(max(seq), 0) + 1 FROM events), ?3, ?4, ?5, ?6, ?7,
        ?8, ?9, ?10, ?11, nullif(?12, ''), ?13, coalesce(?14, x''), ?15)`

	// sqlInsertDuplicate records an event whose dedup key another event
	// already holds: status duplicate, no dedup key, version 0, and a
	// reason naming the original. Parameters: source, event_id, type,
	// customer_id, routing, created, received_at, api_version, object_id,
	// dedup_key (to find the original), payload, account.
	sqlInsertDuplicate = `
INSERT INTO events (source, event_id, seq, type, customer_id, status, reason, routing,
                    created, received_at, api_version, object_id, dedup_key, version, payload, account)
VALUES (?1, ?2, (SELECT coalesce(max(seq), 0) + 1 FROM events), ?3, ?4, 'duplicate',
        'duplicate of ' || coalesce(
            (SELECT e.event_id FROM events e WHERE e.source = ?1 AND e.dedup_key = ?10),
            'an event with the same dedup key'),
        ?5, ?6, ?7, ?8, ?9, NULL, 0, coalesce(?11, x''), ?12)`

	// sqlCreateCustomer creates the customer at version 1. It affects no
	// row when the customer exists: another writer created it first, and
	// the write is fenced. Parameters: customer_id, state, updated_at.
	sqlCreateCustomer = `
INSERT INTO customers (customer_id, version, state, updated_at)
VALUES (?1, 1, coalesce(?2, x''), ?3)
ON CONFLICT (customer_id) DO NOTHING`

	// sqlUpdateCustomer replaces the state if the version is still the one
	// read; it affects no row otherwise, and the write is fenced.
	// Parameters: customer_id, read version, state, updated_at.
	sqlUpdateCustomer = `
UPDATE customers SET state = coalesce(?3, x''), version = version + 1, updated_at = ?4
WHERE customer_id = ?1 AND version = ?2`

	// sqlInsertOutbox appends one notification. Parameters: customer_id,
	// version, kind, event_id, occurred_at, customer.
	sqlInsertOutbox = `
INSERT INTO outbox (customer_id, version, kind, event_id, occurred_at, customer)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)`

	// sqlReleaseEvent marks a parked event applied, with the version and
	// reason given; it leaves an event that is not parked alone.
	// Parameters: source, event_id, version, reason.
	sqlReleaseEvent = `
UPDATE events SET status = CASE WHEN ?3 = 0 THEN 'superseded' ELSE 'applied' END, version = ?3, reason = ?4
WHERE source = ?1 AND event_id = ?2 AND status = 'parked'`

	// sqlDeleteIgnored removes an ignored event's row before a replay of it.
	// Parameters: source, event_id.
	sqlDeleteIgnored = `
DELETE FROM events WHERE source = ?1 AND event_id = ?2 AND status = 'ignored'`

	// sqlInsertRoute maps an object ID to a customer; the first mapping
	// wins. Parameters: object_id, customer_id.
	sqlInsertRoute = `
INSERT INTO object_routes (object_id, customer_id) VALUES (?1, ?2)
ON CONFLICT (object_id) DO NOTHING`

	sqlSavepoint         = `SAVEPOINT w`
	sqlRollbackSavepoint = `ROLLBACK TO SAVEPOINT w`
	sqlReleaseSavepoint  = `RELEASE SAVEPOINT w`
)

// Messages SQLite gives for the two unique violations Commit tells apart
// on the events table (both come with an SQLITE_CONSTRAINT_* code; see
// writeOutcome). SQLite names the columns of the violated key.
const (
	msgEventsPK       = "events.source, events.event_id"
	msgEventsDedupKey = "events.source, events.dedup_key"
)

// eventColumns are the events columns that scanEvent reads, in order.
const eventColumns = `source, event_id, type, customer_id, status, reason, routing, created,
    received_at, api_version, object_id, coalesce(dedup_key, ''), version, payload, account`

const sqlGetEvent = `SELECT ` + eventColumns + ` FROM events WHERE source = ?1 AND event_id = ?2`

// sqlListEvents returns the ListEvents query: events with seq < ?1, newest
// first, at most ?2 rows, filtered as listEventsSQL says.
func sqlListEvents(f store.ListEventsFilter) (string, []any) {
	return listEventsSQL(`seq, `+eventColumns, ` ORDER BY seq DESC LIMIT ?2`, f)
}

// sqlListEventSizes is sqlListEvents reading only each event's seq and its
// payload's size, which SQLite knows without reading the payload:
// ListEvents decides with it where a page bounded by bytes ends before it
// reads the page's payloads.
func sqlListEventSizes(f store.ListEventsFilter) (string, []any) {
	return listEventsSQL(`seq, length(payload)`, ` ORDER BY seq DESC LIMIT ?2`, f)
}

// sqlListEventRange is sqlListEvents for the events with ?2 <= seq < ?1,
// however many: the page that sqlListEventSizes measured.
func sqlListEventRange(f store.ListEventsFilter) (string, []any) {
	return listEventsSQL(`seq, `+eventColumns, ` AND seq >= ?2 ORDER BY seq DESC`, f)
}

// listEventsSQL builds a listing statement and the arguments of its
// filters, numbered from ?3 on in a fixed order (customer, status, type,
// received from, received before), each present only when set; the
// caller puts ?1 and ?2 first.
func listEventsSQL(columns, tail string, f store.ListEventsFilter) (string, []any) {
	var b strings.Builder
	b.WriteString(`SELECT ` + columns + ` FROM events WHERE seq < ?1`)
	var args []any
	cond := func(sql string, v any) {
		args = append(args, v)
		fmt.Fprintf(&b, sql, len(args)+2)
	}
	if f.CustomerID != "" {
		cond(` AND customer_id = ?%d`, f.CustomerID)
	}
	if f.Status != "" {
		cond(` AND status = ?%d`, string(f.Status))
	}
	if f.Type != "" {
		cond(` AND type = ?%d`, f.Type)
	}
	if !f.ReceivedFrom.IsZero() {
		cond(` AND received_at >= ?%d`, micros(f.ReceivedFrom))
	}
	if !f.ReceivedBefore.IsZero() {
		cond(` AND received_at < ?%d`, micros(f.ReceivedBefore))
	}
	b.WriteString(tail)
	return b.String(), args
}

const sqlCountEvents = `SELECT status, count(*) FROM events GROUP BY status`

const sqlGetCustomer = `SELECT customer_id, version, state, updated_at FROM customers WHERE customer_id = ?1`

const sqlLookupRoute = `SELECT customer_id FROM object_routes WHERE object_id = ?1`

// sqlReadNotifications reads outbox rows with seq > ?1, at most ?2, in seq
// order, which is commit order: there is only ever one writer, and a
// reader's snapshot holds whole transactions.
const sqlReadNotifications = `
SELECT seq, customer_id, version, kind, event_id, occurred_at, customer
FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2`

// sqlReadCustomerNotifications is sqlReadNotifications for one customer (?3).
const sqlReadCustomerNotifications = `
SELECT seq, customer_id, version, kind, event_id, occurred_at, customer
FROM outbox WHERE customer_id = ?3 AND seq > ?1 ORDER BY seq LIMIT ?2`

// statements are Commit's statements, prepared once on the writer
// database; database/sql keeps them prepared on its one connection (and
// prepares them again should that connection be replaced).
type statements struct {
	insertEvent, insertDuplicate, createCustomer, updateCustomer *sql.Stmt
	insertOutbox, releaseEvent, insertRoute, deleteIgnored       *sql.Stmt
	savepoint, rollbackSavepoint, releaseSavepoint               *sql.Stmt
}

// prepareStatements prepares Commit's statements on db. The schema must
// exist.
func prepareStatements(ctx context.Context, db *sql.DB) (*statements, error) {
	st := &statements{}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&st.insertEvent, sqlInsertEvent},
		{&st.insertDuplicate, sqlInsertDuplicate},
		{&st.createCustomer, sqlCreateCustomer},
		{&st.updateCustomer, sqlUpdateCustomer},
		{&st.insertOutbox, sqlInsertOutbox},
		{&st.releaseEvent, sqlReleaseEvent},
		{&st.insertRoute, sqlInsertRoute},
		{&st.deleteIgnored, sqlDeleteIgnored},
		{&st.savepoint, sqlSavepoint},
		{&st.rollbackSavepoint, sqlRollbackSavepoint},
		{&st.releaseSavepoint, sqlReleaseSavepoint},
	} {
		s, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("prepare statements: %w", err)
		}
		*p.stmt = s
	}
	return st, nil
}

// close closes every statement that was prepared.
func (st *statements) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{
		st.insertEvent, st.insertDuplicate, st.createCustomer, st.updateCustomer,
		st.insertOutbox, st.releaseEvent, st.insertRoute, st.deleteIgnored,
		st.savepoint, st.rollbackSavepoint, st.releaseSavepoint,
	} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// txStatements are statements bound to one transaction.
type txStatements statements

// bind returns st's statements bound to tx.
func (st *statements) bind(ctx context.Context, tx *sql.Tx) *txStatements {
	return &txStatements{
		insertEvent:       tx.StmtContext(ctx, st.insertEvent),
		insertDuplicate:   tx.StmtContext(ctx, st.insertDuplicate),
		createCustomer:    tx.StmtContext(ctx, st.createCustomer),
		updateCustomer:    tx.StmtContext(ctx, st.updateCustomer),
		insertOutbox:      tx.StmtContext(ctx, st.insertOutbox),
		releaseEvent:      tx.StmtContext(ctx, st.releaseEvent),
		insertRoute:       tx.StmtContext(ctx, st.insertRoute),
		deleteIgnored:     tx.StmtContext(ctx, st.deleteIgnored),
		savepoint:         tx.StmtContext(ctx, st.savepoint),
		rollbackSavepoint: tx.StmtContext(ctx, st.rollbackSavepoint),
		releaseSavepoint:  tx.StmtContext(ctx, st.releaseSavepoint),
	}
}
