-- 0005_outbox_created_at: when each outbox row was written, for the stall
-- detector (Store.OutboxStall: how long committed notifications have
-- waited behind an older transaction still open). Additive and cheap:
-- the column is added without a default, so existing rows are not
-- rewritten (they keep NULL), and only then given clock_timestamp() (the
-- time of the INSERT, not of the transaction's start as now() would be).
ALTER TABLE outbox ADD COLUMN created_at timestamptz;
ALTER TABLE outbox ALTER COLUMN created_at SET DEFAULT clock_timestamp();
