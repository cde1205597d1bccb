-- 0001_init: the inbox (events), customer state, the outbox and the
-- object-to-customer routing table.

-- events is the inbox: every webhook event hookd stored, whatever it did
-- with it. payload is the sender's raw bytes, kept verbatim (bytea, not
-- jsonb, which would normalize them).
CREATE TABLE events (
    source      text        NOT NULL,
    event_id    text        NOT NULL,
    -- seq orders events by insertion for newest-first keyset paging.
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    type        text        NOT NULL,
    customer_id text        NOT NULL DEFAULT '', -- '' when not routed
    status      text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    routing     text        NOT NULL DEFAULT '',
    created     timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    api_version text        NOT NULL DEFAULT '',
    object_id   text        NOT NULL DEFAULT '',
    -- dedup_key names the change an event describes (type, object ID,
    -- created); NULL for events without effect. See events_dedup_key_key.
    dedup_key   text,
    version     bigint      NOT NULL DEFAULT 0,
    payload     bytea       NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (source, event_id),
    CONSTRAINT events_seq_key UNIQUE (seq)
);

-- Stripe sometimes emits two Event objects for one change (DESIGN.md,
-- invariant 2): the second must not take effect. The store tells this
-- violation apart from events_pkey by its name.
CREATE UNIQUE INDEX events_dedup_key_key ON events (source, dedup_key)
    WHERE dedup_key IS NOT NULL;
CREATE INDEX events_customer_id_seq_idx ON events (customer_id, seq);
CREATE INDEX events_status_seq_idx ON events (status, seq);

-- customers holds each customer's projected state. version counts the
-- events applied; writers fence on it.
CREATE TABLE customers (
    customer_id text        PRIMARY KEY,
    version     bigint      NOT NULL CHECK (version > 0),
    state       bytea       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- outbox holds notifications, written in the transaction that produced
-- them. Readers order by (txid, seq) and read only rows whose transaction
-- is older than every running one, an order that is final at commit
-- (seq alone is not: a smaller seq can commit after a larger one).
CREATE TABLE outbox (
    seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    customer_id text        NOT NULL,
    version     bigint      NOT NULL,
    kind        text        NOT NULL,
    event_id    text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    customer    bytea
);
CREATE INDEX outbox_txid_seq_idx ON outbox (txid, seq);
CREATE INDEX outbox_customer_id_txid_seq_idx ON outbox (customer_id, txid, seq);

-- object_routes maps object IDs (subscriptions, invoices, charges) to the
-- customer they were first seen with, for events that name only the
-- object. The first mapping wins.
CREATE TABLE object_routes (
    object_id   text PRIMARY KEY,
    customer_id text NOT NULL
);

-- hookd_fence raises SQLSTATE HK409 unless ok. A commit statement calls it
-- when its version-fenced state write matched no row, so that the whole
-- statement (event row included) fails and the write's savepoint is
-- rolled back, as for a unique violation.
CREATE FUNCTION hookd_fence(ok boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION 'customer version changed since it was read'
            USING ERRCODE = 'HK409';
    END IF;
    RETURN ok;
END
$$;
