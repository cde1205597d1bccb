package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/store"
)

// The set-based commit. A batch of writes from many customers is
// committed with a handful of statements whatever its size, each taking
// arrays (unnest), instead of three statements and a subtransaction per
// write:
//
//  1. BEGIN, then one SELECT finds the writes whose event ID or dedup key
//     is already stored: they are duplicates, and their chained followers
//     are skipped.
//  2. One statement fences and writes every customer's state: for each
//     customer, the chain of its writes in the batch collapses into one
//     update from the version the chain read to that version plus the
//     number of state writes (or one insert, for a new customer). A
//     customer it did not match was changed by someone else: its first
//     state write is fenced and the rest of its chain skipped.
//  3. One pipeline inserts the event rows of the writes that go ahead and
//     the duplicates' records, the outbox rows and the routes; then
//     releases parked events (a separate statement, so that it sees
//     events parked earlier in the same batch), notifies, and commits.
//
// Outcomes are the same as the savepoint path's (commit), which remains
// for what this path does not handle: a batch of one write (one round
// trip there, three here), replays (Write.Replace), a customer with state
// writes in two chains of one batch (two activations at once), two writes
// of one batch with the same event ID or dedup key, and anything that
// fails in step 3 — an event row that another transaction inserted after
// step 1, or a value PostgreSQL rejects. Then the transaction is rolled
// back and the batch committed again by the savepoint path, which finds
// each write's own outcome.

// sqlSetDuplicates returns the writes ($1 source, $2 event ID, $3 dedup
// key, as arrays) whose event ID is stored (pk) or whose dedup key another
// event holds (holder names it).
const sqlSetDuplicates = `
SELECT u.ord,
       EXISTS (SELECT 1 FROM events e WHERE e.source = u.source AND e.event_id = u.event_id) AS pk,
       coalesce((SELECT e.event_id FROM events e
                 WHERE u.dedup_key <> '' AND e.source = u.source AND e.dedup_key = u.dedup_key), '') AS holder
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(source, event_id, dedup_key, ord)
WHERE EXISTS (SELECT 1 FROM events e WHERE e.source = u.source AND e.event_id = u.event_id)
   OR (u.dedup_key <> '' AND EXISTS (SELECT 1 FROM events e WHERE e.source = u.source AND e.dedup_key = u.dedup_key))`

// sqlSetState fences and writes customers' states: $1 customer IDs, $2
// the version each chain read (0: create), $3 the version it ends at, $4
// the final state. It returns the customers written. Each customer appears
// once (the caller guarantees it).
const sqlSetState = `
WITH u AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bytea[]) AS u(customer_id, read_version, new_version, state)
), up AS (
    UPDATE customers c SET state = u.state, version = u.new_version, updated_at = now()
    FROM u
    WHERE u.read_version > 0 AND c.customer_id = u.customer_id AND c.version = u.read_version
    RETURNING c.customer_id
), ins AS (
    INSERT INTO customers (customer_id, version, state, updated_at)
    SELECT u.customer_id, u.new_version, u.state, now() FROM u WHERE u.read_version = 0
    ON CONFLICT (customer_id) DO NOTHING
    RETURNING customer_id
)
SELECT customer_id FROM up UNION ALL SELECT customer_id FROM ins`

// sqlSetEffects inserts the event rows ($1..$13, one array per column) of
// the writes that go ahead, the records of dedup-key duplicates ($14..$23),
// the outbox rows ($24..$29) and the routes ($30 object, $31 customer).
// If an event row conflicts (another transaction stored the event after
// sqlSetDuplicates looked), hookd_fence fails the statement, and with it
// the transaction: the caller falls back to the savepoint path.
const sqlSetEffects = `
WITH ev AS (
    INSERT INTO events (source, event_id, type, customer_id, status, reason, routing,
                        created, api_version, object_id, dedup_key, version, payload)
    SELECT u.source, u.event_id, u.type, u.customer_id, u.status, u.reason, u.routing,
           u.created, u.api_version, u.object_id, NULLIF(u.dedup_key, ''), u.version, u.payload
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::bytea[])
         WITH ORDINALITY AS u(source, event_id, type, customer_id, status, reason, routing,
                              created, api_version, object_id, dedup_key, version, payload, ord)
    ORDER BY u.ord
    ON CONFLICT DO NOTHING
    RETURNING 1
), dup AS (
    INSERT INTO events (source, event_id, type, customer_id, status, reason, routing,
                        created, api_version, object_id, dedup_key, version, payload)
    SELECT d.source, d.event_id, d.type, d.customer_id, 'duplicate', 'duplicate of ' || d.holder, d.routing,
           d.created, d.api_version, d.object_id, NULL, 0, d.payload
    FROM unnest($14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::timestamptz[],
                $20::text[], $21::text[], $22::text[], $23::bytea[])
         WITH ORDINALITY AS d(source, event_id, type, customer_id, routing, created, api_version, object_id, holder, payload, ord)
    ORDER BY d.ord
), ob AS (
    INSERT INTO outbox (customer_id, version, kind, event_id, occurred_at, customer)
    SELECT n.customer_id, n.version, n.kind, n.event_id, n.occurred_at, n.customer
    FROM unnest($24::text[], $25::bigint[], $26::text[], $27::text[], $28::timestamptz[], $29::bytea[])
         WITH ORDINALITY AS n(customer_id, version, kind, event_id, occurred_at, customer, ord)
    ORDER BY n.ord
), rt AS (
    INSERT INTO object_routes (object_id, customer_id)
    SELECT r.object_id, r.customer_id
    FROM unnest($30::text[], $31::text[]) WITH ORDINALITY AS r(object_id, customer_id, ord)
    ORDER BY r.ord
    ON CONFLICT (object_id) DO NOTHING
)
SELECT hookd_fence((SELECT count(*) FROM ev) = cardinality($1::text[]))`

// sqlSetRelease settles parked events that writes of the batch released:
// $1 source, $2 event ID, $3 version (0: superseded), $4 reason.
const sqlSetRelease = `
UPDATE events SET status = CASE WHEN r.version = 0 THEN 'superseded' ELSE 'applied' END,
                  version = r.version, reason = r.reason
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) AS r(source, event_id, version, reason)
WHERE events.source = r.source AND events.event_id = r.event_id AND events.status = 'parked'`

// setPlan reports whether the set-based path takes the batch (see above).
func setPlan(writes []store.Write, errs []error) bool {
	live := 0
	stateChain := map[string]int{} // customer → the chain (index of its first write) writing its state
	type key struct{ source, id string }
	ids := map[key]bool{}
	dedup := map[key]bool{}
	chain := 0
	for i, w := range writes {
		if i == 0 || !w.AfterPrevious {
			chain = i
		}
		if errs[i] != nil {
			continue
		}
		live++
		if w.Replace {
			return false
		}
		k := key{w.Event.Source, w.Event.EventID}
		if ids[k] {
			return false
		}
		ids[k] = true
		if w.Event.DedupKey != "" {
			d := key{w.Event.Source, w.Event.DedupKey}
			if dedup[d] {
				return false
			}
			dedup[d] = true
		}
		if w.State != nil {
			if c, ok := stateChain[w.Event.CustomerID]; ok && c != chain {
				return false
			}
			stateChain[w.Event.CustomerID] = chain
		}
	}
	return live > 1
}

// commitSet commits the batch by the set-based path. It returns false,
// with errs as they were, when the batch must go the savepoint path
// instead; true when it is done, with err the failure of the transaction
// as a whole (see commit).
func (s *Store) commitSet(ctx context.Context, writes []store.Write, errs []error) (done bool, err error) {
	before := slices.Clone(errs)
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return true, err
	}
	defer pc.Release()
	conn := pc.Conn()
	fallback := func(cause error) (bool, error) {
		_, rerr := conn.Exec(ctx, "ROLLBACK")
		if rerr != nil || ctx.Err() != nil {
			// The connection or the caller is gone: so is the batch.
			return true, cmp.Or(rerr, cause)
		}
		copy(errs, before)
		s.setFallbacks.Add(1)
		s.log.DebugContext(ctx, "set-based commit fell back to savepoints", "writes", len(writes), "err", cause)
		return false, nil
	}

	// 1. Duplicates.
	n := len(writes)
	sources, ids, keys := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	var live []int // write index of each array element
	for i, w := range writes {
		if errs[i] == nil {
			live = append(live, i)
			sources, ids, keys = append(sources, w.Event.Source), append(ids, w.Event.EventID), append(keys, w.Event.DedupKey)
		}
	}
	holders := map[int]string{} // dedup-key duplicates → the event holding the key
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(sqlSetDuplicates, sources, ids, keys)
	br := conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return true, err
	}
	rows, err := br.Query()
	if err == nil {
		var ord int
		var pk bool
		var holder string
		_, err = pgx.ForEachRow(rows, []any{&ord, &pk, &holder}, func() error {
			i := live[ord-1]
			errs[i] = store.ErrDuplicate
			if !pk {
				holders[i] = holder // recorded as a duplicate in step 3
			}
			return nil
		})
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fallback(err)
	}
	// Followers of a write that does not go ahead are skipped, whatever
	// else they are (as on the savepoint path, which never sends them).
	for i := 1; i < len(writes); i++ {
		if before[i] == nil && writes[i].AfterPrevious && errs[i-1] != nil {
			errs[i] = store.ErrSkipped
			delete(holders, i)
		}
	}

	// 2. States, one row per customer, fenced on the version its chain read.
	type chainState struct {
		first   int // the chain's first state write
		read    int64
		count   int64
		state   []byte
		members []int // the chain's state writes
	}
	var chains []*chainState
	byCustomer := map[string]*chainState{}
	for i, w := range writes {
		if errs[i] != nil || w.State == nil {
			continue
		}
		c := byCustomer[w.Event.CustomerID]
		if c == nil {
			c = &chainState{first: i, read: w.ReadVersion}
			byCustomer[w.Event.CustomerID] = c
			chains = append(chains, c)
		}
		if w.ReadVersion != c.read+c.count {
			return fallback(fmt.Errorf("write %d read version %d, chain expects %d", i, w.ReadVersion, c.read+c.count))
		}
		c.count++
		c.state = w.State
		c.members = append(c.members, i)
	}
	if len(chains) > 0 {
		customers := make([]string, len(chains))
		reads, news := make([]int64, len(chains)), make([]int64, len(chains))
		states := make([][]byte, len(chains))
		for k, c := range chains {
			customers[k], reads[k], news[k], states[k] = writes[c.first].Event.CustomerID, c.read, c.read+c.count, c.state
		}
		rows, err := conn.Query(ctx, sqlSetState, customers, reads, news, states)
		if err != nil {
			return fallback(err)
		}
		written := map[string]bool{}
		var id string
		if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { written[id] = true; return nil }); err != nil {
			return fallback(err)
		}
		for _, c := range chains {
			if !written[writes[c.first].Event.CustomerID] {
				errs[c.first] = store.ErrFenced
				skipFollowers(writes, errs, c.first)
			}
		}
	}

	// 3. Event rows, duplicates' records, outbox, routes; releases; commit.
	var ev eventArrays
	var dup duplicateArrays
	var ob outboxArrays
	var routeObjects, routeCustomers []string
	var rel releaseArrays
	notify := false
	for i, w := range writes {
		if h, ok := holders[i]; ok && errs[i] == store.ErrDuplicate {
			dup.add(w.Event, h)
		}
		if errs[i] != nil {
			continue
		}
		ev.add(w.Event)
		for _, no := range w.Notifications {
			ob.add(w.Event, no)
			notify = true
		}
		if w.Event.CustomerID != "" {
			for _, r := range w.Routes {
				routeObjects, routeCustomers = append(routeObjects, r), append(routeCustomers, w.Event.CustomerID)
			}
		}
		for _, r := range w.Released {
			rel.add(r)
		}
	}
	b = &pgx.Batch{}
	args := append(append(append(ev.args(), dup.args()...), ob.args()...), nonNil(routeObjects), nonNil(routeCustomers))
	b.Queue(sqlSetEffects, args...)
	if len(rel.sources) > 0 {
		b.Queue(sqlSetRelease, rel.sources, rel.ids, rel.versions, rel.reasons)
	}
	if notify {
		b.Queue(sqlNotifyOutbox)
	}
	b.Queue("COMMIT")
	failed, err := runPipeline(ctx, conn, b)
	switch {
	case failed < 0:
		s.setCommits.Add(1)
		return true, nil
	case failed == b.Len()-1:
		// COMMIT itself failed: whether it took effect is unknown.
		return true, err
	}
	return fallback(err)
}

// eventArrays are the event columns of sqlSetEffects, one array each.
type eventArrays struct {
	sources, ids, types, customers, statuses, reasons, routings []string
	created                                                     []time.Time
	apiVersions, objects, dedupKeys                             []string
	versions                                                    []int64
	payloads                                                    [][]byte
}

func (a *eventArrays) add(e store.Event) {
	a.sources, a.ids, a.types = append(a.sources, e.Source), append(a.ids, e.EventID), append(a.types, e.Type)
	a.customers, a.statuses = append(a.customers, e.CustomerID), append(a.statuses, string(e.Status))
	a.reasons, a.routings = append(a.reasons, e.Reason), append(a.routings, e.Routing)
	a.created, a.apiVersions = append(a.created, e.Created), append(a.apiVersions, e.APIVersion)
	a.objects, a.dedupKeys = append(a.objects, e.ObjectID), append(a.dedupKeys, e.DedupKey)
	a.versions, a.payloads = append(a.versions, e.Version), append(a.payloads, payload(e.Payload))
}

func (a *eventArrays) args() []any {
	return []any{nonNil(a.sources), nonNil(a.ids), nonNil(a.types), nonNil(a.customers), nonNil(a.statuses),
		nonNil(a.reasons), nonNil(a.routings), nonNil(a.created), nonNil(a.apiVersions), nonNil(a.objects),
		nonNil(a.dedupKeys), nonNil(a.versions), nonNil(a.payloads)}
}

// duplicateArrays are the dedup-key duplicates' columns of sqlSetEffects.
type duplicateArrays struct {
	sources, ids, types, customers, routings []string
	created                                  []time.Time
	apiVersions, objects, holders            []string
	payloads                                 [][]byte
}

func (a *duplicateArrays) add(e store.Event, holder string) {
	a.sources, a.ids, a.types = append(a.sources, e.Source), append(a.ids, e.EventID), append(a.types, e.Type)
	a.customers, a.routings = append(a.customers, e.CustomerID), append(a.routings, e.Routing)
	a.created, a.apiVersions = append(a.created, e.Created), append(a.apiVersions, e.APIVersion)
	a.objects, a.holders = append(a.objects, e.ObjectID), append(a.holders, holder)
	a.payloads = append(a.payloads, payload(e.Payload))
}

func (a *duplicateArrays) args() []any {
	return []any{nonNil(a.sources), nonNil(a.ids), nonNil(a.types), nonNil(a.customers), nonNil(a.routings),
		nonNil(a.created), nonNil(a.apiVersions), nonNil(a.objects), nonNil(a.holders), nonNil(a.payloads)}
}

// outboxArrays are the outbox columns of sqlSetEffects.
type outboxArrays struct {
	customers  []string
	versions   []int64
	kinds, ids []string
	occurred   []time.Time
	snapshots  [][]byte
}

func (a *outboxArrays) add(e store.Event, n store.Notification) {
	a.customers, a.versions = append(a.customers, cmp.Or(n.CustomerID, e.CustomerID)), append(a.versions, n.Version)
	a.kinds, a.ids = append(a.kinds, n.Kind), append(a.ids, cmp.Or(n.EventID, e.EventID))
	a.occurred, a.snapshots = append(a.occurred, n.OccurredAt), append(a.snapshots, n.Customer)
}

func (a *outboxArrays) args() []any {
	return []any{nonNil(a.customers), nonNil(a.versions), nonNil(a.kinds), nonNil(a.ids), nonNil(a.occurred), nonNil(a.snapshots)}
}

// releaseArrays are sqlSetRelease's parameters.
type releaseArrays struct {
	sources, ids []string
	versions     []int64
	reasons      []string
}

func (a *releaseArrays) add(r store.Release) {
	a.sources, a.ids = append(a.sources, r.Source), append(a.ids, r.EventID)
	a.versions, a.reasons = append(a.versions, r.Version), append(a.reasons, r.Reason)
}

// nonNil returns s, or an empty slice for nil: pgx encodes a nil slice as
// NULL, which unnest would turn into no rows, but cardinality into NULL.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
