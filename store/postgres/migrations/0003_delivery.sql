-- 0003_delivery: outbound delivery (store.DeliveryStore): endpoints with a
-- place in the outbox, their deliveries and each delivery's attempts.
-- Additive: databases of earlier releases gain empty tables.

-- endpoints are the HTTP endpoints notifications are delivered to. cursor
-- is the outbox position ("<txid>-<seq>", see cursor.go) up to which
-- notifications were enqueued. secrets is a JSON array of
-- {"value", "expires_at"}; disabled_at and failing_since are NULL when
-- unset.
CREATE TABLE endpoints (
    id              text        PRIMARY KEY,
    url             text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    kinds           text[]      NOT NULL DEFAULT '{}',
    customer_ids    text[]      NOT NULL DEFAULT '{}',
    secrets         jsonb       NOT NULL DEFAULT '[]',
    paused          boolean     NOT NULL DEFAULT false,
    disabled_reason text        NOT NULL DEFAULT '',
    disabled_at     timestamptz,
    failing_since   timestamptz,
    cursor          text        NOT NULL DEFAULT '',
    origin          text        NOT NULL DEFAULT 'api',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- deliveries: one notification to one endpoint. seq is commit order
-- within an endpoint (Enqueue inserts in outbox order under the
-- endpoint's advisory lock) and the ListDeliveries keyset. The
-- notification is read from the outbox row outbox_seq, not copied.
CREATE TABLE deliveries (
    seq             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text        NOT NULL DEFAULT 'msg_' || replace(gen_random_uuid()::text, '-', ''),
    endpoint_id     text        NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    customer_id     text        NOT NULL,
    outbox_seq      bigint      NOT NULL,
    status          text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    step            integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_owner     text,
    lease_until     timestamptz,
    last_status     integer     NOT NULL DEFAULT 0,
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    CONSTRAINT deliveries_id_key UNIQUE (id)
);
-- Claim: the due pending deliveries of an endpoint.
CREATE INDEX deliveries_claim_idx ON deliveries (endpoint_id, next_attempt_at, seq)
    WHERE status = 'pending';
-- Promotion: the head and the queue of each (endpoint, customer).
CREATE INDEX deliveries_queue_idx ON deliveries (endpoint_id, customer_id, seq)
    WHERE status IN ('queued', 'pending');
-- At most one pending delivery per (endpoint, customer): a safety net
-- under the advisory locks that keep it so.
CREATE UNIQUE INDEX deliveries_one_pending_key ON deliveries (endpoint_id, customer_id)
    WHERE status = 'pending';
-- ListDeliveries, newest first, by endpoint, customer or status.
CREATE INDEX deliveries_endpoint_seq_idx ON deliveries (endpoint_id, seq);
CREATE INDEX deliveries_customer_seq_idx ON deliveries (customer_id, seq);
CREATE INDEX deliveries_status_seq_idx ON deliveries (status, seq);

-- delivery_attempts: every HTTP attempt of a delivery. Claim increments
-- the delivery's attempts, so each claim has its own attempt number.
CREATE TABLE delivery_attempts (
    delivery_seq bigint      NOT NULL REFERENCES deliveries (seq) ON DELETE CASCADE,
    attempt      integer     NOT NULL,
    started_at   timestamptz NOT NULL,
    latency_us   bigint      NOT NULL DEFAULT 0,
    status_code  integer     NOT NULL DEFAULT 0,
    error        text        NOT NULL DEFAULT '',
    body         bytea       NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_seq, attempt)
);
