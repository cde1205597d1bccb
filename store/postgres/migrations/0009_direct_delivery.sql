-- 0009_direct_delivery: the lease of an endpoint's direct delivery
-- (store.DirectStore): the owner that delivers its notifications straight
-- from the outbox, and until when. NULL when nobody holds it. Additive:
-- existing endpoints start with no lease.
ALTER TABLE endpoints ADD COLUMN direct_owner text, ADD COLUMN direct_until timestamptz;
