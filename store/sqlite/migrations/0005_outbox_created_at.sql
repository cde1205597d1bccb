-- 0005_outbox_created_at: the PostgreSQL backend's 0005 gives its outbox
-- rows their write time, for its stall detector. The embedded store has
-- one writer at a time, so a committed row never waits behind an open
-- transaction there: this migration only keeps the backends' version
-- numbers in step.
SELECT 1;
