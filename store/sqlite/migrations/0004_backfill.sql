-- 0004_backfill: resumable backfills and imports (store.BackfillStore),
-- the same shape as the PostgreSQL backend's 0004. Additive: databases of
-- earlier releases gain empty tables. Timestamps are INTEGER unix
-- microseconds, NULL when unset; counts is a JSON object.

CREATE TABLE backfill_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    origin      TEXT    NOT NULL DEFAULT '',
    since       INTEGER,
    until       INTEGER,
    phase       TEXT    NOT NULL DEFAULT 'listing'
                        CHECK (phase IN ('listing', 'applying', 'done')),
    cursor      TEXT    NOT NULL DEFAULT '',
    listed      INTEGER NOT NULL DEFAULT 0,
    applied     INTEGER NOT NULL DEFAULT 0,
    counts      TEXT    NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER
) STRICT;
CREATE INDEX backfill_runs_unfinished_idx ON backfill_runs (kind, id) WHERE phase <> 'done';

-- backfill_events: seq (AUTOINCREMENT, never reused) is listing order;
-- ord, the place in the apply order, is set when listing ends.
CREATE TABLE backfill_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id   INTEGER NOT NULL REFERENCES backfill_runs (id) ON DELETE CASCADE,
    event_id TEXT    NOT NULL,
    created  INTEGER NOT NULL,
    payload  BLOB    NOT NULL DEFAULT x'',
    ord      INTEGER,
    UNIQUE (run_id, event_id)
) STRICT;
CREATE INDEX backfill_events_ord_idx ON backfill_events (run_id, ord);

CREATE TABLE checkpoints (
    name       TEXT    PRIMARY KEY,
    at         INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE leases (
    name  TEXT    PRIMARY KEY,
    owner TEXT    NOT NULL,
    until INTEGER NOT NULL
) STRICT;
