-- 0003_delivery: outbound delivery (store.DeliveryStore), the same shape
-- as the PostgreSQL backend's 0003. Additive: databases of earlier
-- releases gain empty tables. Timestamps are INTEGER unix microseconds,
-- NULL when unset; kinds, customer_ids and secrets are JSON arrays.

CREATE TABLE endpoints (
    id              TEXT    PRIMARY KEY,
    url             TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    kinds           TEXT    NOT NULL DEFAULT '[]',
    customer_ids    TEXT    NOT NULL DEFAULT '[]',
    secrets         TEXT    NOT NULL DEFAULT '[]',
    paused          INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT    NOT NULL DEFAULT '',
    disabled_at     INTEGER,
    failing_since   INTEGER,
    cursor          TEXT    NOT NULL DEFAULT '',
    origin          TEXT    NOT NULL DEFAULT 'api',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

-- deliveries: one notification (the outbox row outbox_seq, not copied) to
-- one endpoint. seq is commit order and the ListDeliveries keyset;
-- AUTOINCREMENT never reuses one, so page tokens stay valid.
CREATE TABLE deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    endpoint_id     TEXT    NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    customer_id     TEXT    NOT NULL,
    outbox_seq      INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    step            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    ended_at        INTEGER
) STRICT;
CREATE INDEX deliveries_claim_idx ON deliveries (endpoint_id, next_attempt_at, seq)
    WHERE status = 'pending';
CREATE INDEX deliveries_queue_idx ON deliveries (endpoint_id, customer_id, seq)
    WHERE status IN ('queued', 'pending');
CREATE UNIQUE INDEX deliveries_one_pending_key ON deliveries (endpoint_id, customer_id)
    WHERE status = 'pending';
CREATE INDEX deliveries_endpoint_seq_idx ON deliveries (endpoint_id, seq);
CREATE INDEX deliveries_customer_seq_idx ON deliveries (customer_id, seq);
CREATE INDEX deliveries_status_seq_idx ON deliveries (status, seq);

CREATE TABLE delivery_attempts (
    delivery_seq INTEGER NOT NULL REFERENCES deliveries (seq) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    latency_us   INTEGER NOT NULL DEFAULT 0,
    status_code  INTEGER NOT NULL DEFAULT 0,
    error        TEXT    NOT NULL DEFAULT '',
    body         BLOB    NOT NULL DEFAULT x'',
    PRIMARY KEY (delivery_seq, attempt)
) STRICT, WITHOUT ROWID;
