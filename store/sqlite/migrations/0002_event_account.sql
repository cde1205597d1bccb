-- 0002_event_account: the Stripe Connect account (acct_...) an event came
-- from; the same change as the PostgreSQL backend's 0002. Additive: rows
-- stored before this migration read as '' (the platform's own events), so
-- databases of earlier releases keep working. (SQLite allows ADD COLUMN
-- NOT NULL with a constant default, STRICT tables included.)
ALTER TABLE events ADD COLUMN account TEXT NOT NULL DEFAULT '';
