-- 0002_event_account: the Stripe Connect account (acct_...) an event came
-- from. Additive: rows stored before this migration read as '' (the
-- platform's own events), so databases of earlier releases keep working.
ALTER TABLE events ADD COLUMN account text NOT NULL DEFAULT '';
