-- 0008_deliveries_status_partial: deliveries_status_seq_idx holds only
-- the undelivered statuses.
--
-- Nearly every delivery ends delivered, and each Complete wrote an entry
-- for the delivered row version in deliveries_status_seq_idx, which is
-- only read by ListDeliveries filtered by status. A listing by status
-- "delivered" is served as well by a scan of deliveries_pkey or
-- deliveries_endpoint_seq_idx (most rows match); the other statuses
-- (queued, pending, failed) are the ones worth an index, and
-- ListDeliveries adds status <> 'delivered' to its query for them, so
-- that the planner can use this partial index.
--
-- Building the index reads the whole deliveries table and blocks writes
-- to it meanwhile: on a large table, upgrade at a quiet time, or make the
-- index first by hand with CREATE INDEX CONCURRENTLY
-- deliveries_status_seq_partial_idx ON deliveries (status, seq) WHERE
-- status <> 'delivered'; this migration then skips it.
DROP INDEX IF EXISTS deliveries_status_seq_idx;
CREATE INDEX IF NOT EXISTS deliveries_status_seq_partial_idx ON deliveries (status, seq) WHERE status <> 'delivered';
