-- 0006_fewer_index_entries: fewer index entries written per event.
--
-- events_status_seq_idx indexed every event, though nearly all are
-- applied and a listing by status "applied" finds them fastest through
-- events_seq_key (most rows match). Now it holds only the other statuses
-- (parked, ignored, duplicate, superseded), which are the ones looked up
-- by status: the parked sweep, the console, ListEvents.
--
-- customers is updated once per applied event. With fillfactor 80 a page
-- keeps room for the new row version, so the update is a HOT update (no
-- new index entry, and the old version pruned in place) far more often.
-- It applies to pages written from now on.
--
-- events_dedup_key_key held each dedup key whole: about 120 bytes
-- ("stripe|customer.updated|cus_...|1700000000|<SHA-256 of the data>"),
-- and keys of one object share a long prefix, so every insert's descent
-- compared long strings (_bt_compare and memcmp led PostgreSQL's
-- profile). It now holds the key's MD5 (32 hex digits, differing from the
-- first), compared bytewise (COLLATE "C"). A false duplicate would need
-- two keys with one MD5: by chance about 1 in 10^21 after a billion
-- events, and on purpose out of reach, as the key ends in a SHA-256 of
-- the event's data. (sha256() would do too but needs a SQL wrapper to be
-- indexable, and calling it per insert cost more than it saved.) A
-- violation still names events_dedup_key_key, which is how Commit tells
-- a duplicate change from a duplicate event ID.
--
-- Building the indexes reads the whole events table and blocks writes to
-- it meanwhile (not measured on a large table here): on a large
-- table, upgrade at a quiet time. The partial index may be made first by
-- hand, with CREATE INDEX CONCURRENTLY events_status_seq_partial_idx ON
-- events (status, seq) WHERE status <> 'applied'; this migration then
-- skips it (see docs/performance.md#cpu-per-event-stop-21-issue-18).
DROP INDEX events_dedup_key_key;
CREATE UNIQUE INDEX events_dedup_key_key ON events (source, (md5(dedup_key)) COLLATE "C")
    WHERE dedup_key IS NOT NULL;
DROP INDEX IF EXISTS events_status_seq_idx;
CREATE INDEX IF NOT EXISTS events_status_seq_partial_idx ON events (status, seq) WHERE status <> 'applied';
ALTER TABLE customers SET (fillfactor = 80);
