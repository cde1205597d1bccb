-- 0004_backfill: resumable backfills and imports (store.BackfillStore):
-- runs, the events each run staged while listing, named checkpoints and
-- leases. Additive: databases of earlier releases gain empty tables.

-- backfill_runs: one backfill or import. since and until are NULL when
-- unbounded; counts is a JSON object of outcome -> number of events;
-- finished_at is NULL until the run is done.
CREATE TABLE backfill_runs (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text        NOT NULL,
    origin      text        NOT NULL DEFAULT '',
    since       timestamptz,
    until       timestamptz,
    phase       text        NOT NULL DEFAULT 'listing'
                            CHECK (phase IN ('listing', 'applying', 'done')),
    cursor      text        NOT NULL DEFAULT '',
    listed      bigint      NOT NULL DEFAULT 0,
    applied     bigint      NOT NULL DEFAULT 0,
    counts      jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
-- UnfinishedBackfillRun: the newest run of a kind that is not done.
CREATE INDEX backfill_runs_unfinished_idx ON backfill_runs (kind, id) WHERE phase <> 'done';

-- backfill_events: the events a run listed, staged until applied. seq is
-- listing order; ord, the place in the apply order, is set when listing
-- ends. The rows are dropped when the run is done.
CREATE TABLE backfill_events (
    seq      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id   bigint      NOT NULL REFERENCES backfill_runs (id) ON DELETE CASCADE,
    event_id text        NOT NULL,
    created  timestamptz NOT NULL,
    payload  bytea       NOT NULL DEFAULT '',
    ord      bigint,
    CONSTRAINT backfill_events_event_key UNIQUE (run_id, event_id)
);
-- StagedEvents: a run's events in apply order.
CREATE INDEX backfill_events_ord_idx ON backfill_events (run_id, ord);

-- checkpoints: a time stored under a name (how far reconciliation got).
CREATE TABLE checkpoints (
    name       text        PRIMARY KEY,
    at         timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- leases: who runs a named job until when (the database's clock).
CREATE TABLE leases (
    name  text        PRIMARY KEY,
    owner text        NOT NULL,
    until timestamptz NOT NULL
);
