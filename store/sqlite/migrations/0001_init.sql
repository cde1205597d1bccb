-- 0001_init: the inbox (events), customer state, the outbox and the
-- object-to-customer routing table; the same shape as the PostgreSQL
-- backend's 0001_init.sql. Timestamps are INTEGER unix microseconds (UTC),
-- the precision PostgreSQL keeps, so that values round-trip exactly.
-- Tables are STRICT: a value of the wrong type is an error, not a silent
-- conversion.

-- events is the inbox: every webhook event hookd stored, whatever it did
-- with it. payload is the sender's raw bytes, kept verbatim.
CREATE TABLE events (
    source      TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    -- seq orders events by insertion for newest-first keyset paging. The
    -- store assigns max(seq)+1 under the write lock; rows are never
    -- deleted, so it only grows.
    seq         INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    customer_id TEXT    NOT NULL DEFAULT '', -- '' when not routed
    status      TEXT    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    routing     TEXT    NOT NULL DEFAULT '',
    created     INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    api_version TEXT    NOT NULL DEFAULT '',
    object_id   TEXT    NOT NULL DEFAULT '',
    -- dedup_key names the change an event describes (type, object ID,
    -- created); NULL for events without effect. See events_dedup_key_key.
    dedup_key   TEXT,
    version     INTEGER NOT NULL DEFAULT 0,
    payload     BLOB    NOT NULL,
    PRIMARY KEY (source, event_id)
) STRICT;

CREATE UNIQUE INDEX events_seq_key ON events (seq);
-- Stripe sometimes emits two Event objects for one change (DESIGN.md,
-- invariant 2): the second must not take effect. The store tells this
-- violation apart from the primary key by the columns SQLite names.
CREATE UNIQUE INDEX events_dedup_key_key ON events (source, dedup_key)
    WHERE dedup_key IS NOT NULL;
CREATE INDEX events_customer_id_seq_idx ON events (customer_id, seq);
CREATE INDEX events_status_seq_idx ON events (status, seq);

-- customers holds each customer's projected state. version counts the
-- events applied; writers fence on it.
CREATE TABLE customers (
    customer_id TEXT    PRIMARY KEY,
    version     INTEGER NOT NULL CHECK (version > 0),
    state       BLOB    NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- outbox holds notifications, written in the transaction that produced
-- them. SQLite has one writer at a time, so seq order is commit order and
-- a reader can follow seq alone (PostgreSQL needs the transaction ID too).
-- AUTOINCREMENT keeps seq from ever being reused, even if old rows are
-- pruned, so a subscriber's cursor stays valid.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL,
    customer    BLOB
) STRICT;
CREATE INDEX outbox_customer_id_seq_idx ON outbox (customer_id, seq);

-- object_routes maps object IDs (subscriptions, invoices, charges) to the
-- customer they were first seen with, for events that name only the
-- object. The first mapping wins.
CREATE TABLE object_routes (
    object_id   TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL
) STRICT, WITHOUT ROWID;
