package postgres

import (
	"cmp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/store"
)

// A batch's writes, set-based: each table written by one statement over
// arrays instead of one statement per write. With one statement per write
// PostgreSQL starts an executor (four ModifyTable nodes, expression
// contexts, memory contexts) for every event; here it starts five per
// batch. The statements either all succeed or fail the transaction, like
// commitOptimistic's, and the caller falls back the same way.

// sqlSetJoinPlans keeps the set-based statements' generic plans on index
// lookups: they join a batch's arrays to customers, and a plan cached
// while the table was small (a hash join over a sequential scan, cheap
// then) would scan the whole table for every batch later. The plan cache
// does not track these settings, so they must be set in every
// transaction that runs the statements, their first planning included.
const sqlSetJoinPlans = `SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true), set_config('enable_seqscan', 'off', true)`

// sqlSetEvents inserts the batch's events in batch order (so that seq
// follows it).
const sqlSetEvents = `
INSERT INTO events (source, event_id, type, customer_id, status, reason, routing,
                    created, api_version, object_id, dedup_key, version, payload, account)
SELECT e.source, e.event_id, e.type, e.customer_id, e.status, e.reason, e.routing,
       e.created, e.api_version, e.object_id, NULLIF(e.dedup_key, ''), e.version, e.payload, e.account
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::bytea[], $14::text[])
     WITH ORDINALITY AS e(source, event_id, type, customer_id, status, reason, routing,
                          created, api_version, object_id, dedup_key, version, payload, account, ord)
ORDER BY e.ord`

// sqlSetCreate creates customers, each at the version its chain of
// writes reaches; it fails (HK409) unless every one was created.
const sqlSetCreate = `
WITH ins AS (
    INSERT INTO customers (customer_id, version, state, updated_at)
    SELECT c.customer_id, c.version, c.state, now()
    FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS c(customer_id, version, state)
    ON CONFLICT (customer_id) DO NOTHING
    RETURNING 1
)
SELECT hookd_fence((SELECT count(*) FROM ins) = $4::bigint)`

// sqlSetUpdate replaces customers' states, each fenced on the version its
// chain read first and moved on by the chain's length; it fails (HK409)
// unless every fence held.
const sqlSetUpdate = `
WITH up AS (
    UPDATE customers c SET state = u.state, version = c.version + u.n, updated_at = now()
    FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[]) AS u(customer_id, read_version, state, n)
    WHERE c.customer_id = u.customer_id AND c.version = u.read_version
    RETURNING 1
)
SELECT hookd_fence((SELECT count(*) FROM up) = $5::bigint)`

// sqlSetOutbox appends the batch's notifications in batch order.
const sqlSetOutbox = `
INSERT INTO outbox (customer_id, kind, event_id, occurred_at, customer, version)
SELECT n.customer_id, n.kind, n.event_id, n.occurred_at, n.customer, n.version
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bytea[], $6::bigint[])
     WITH ORDINALITY AS n(customer_id, kind, event_id, occurred_at, customer, version, ord)
ORDER BY n.ord`

// sqlSetRoutes records the batch's routes; the first mapping of an object
// wins, within the batch (in its order) as against earlier ones.
const sqlSetRoutes = `
INSERT INTO object_routes (object_id, customer_id)
SELECT r.object_id, r.customer_id
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(object_id, customer_id, ord)
WHERE r.customer_id <> ''
ORDER BY r.ord
ON CONFLICT (object_id) DO NOTHING`

// minSetBased is the fewest writes a batch is written set-based with:
// the set-based statements are five against one per write, and with
// --commit-batch 1 (one write a transaction) they cost PostgreSQL a
// quarter more CPU per event (445 -> 588 µs in one pair of runs).
const minSetBased = 4

// customerChain is what the state writes of one customer in a batch come
// to: the version the first read, the last state, how many there are.
type customerChain struct {
	id          string
	readVersion int64
	state       []byte
	n           int64
}

// queueSetBased queues the live writes (nil results) set-based on b, and
// reports false, queueing nothing, when they cannot go that way: a write
// replaces or releases events (rare: each has its own statements), or one
// customer's state writes do not read consecutive versions in batch order
// (then one of them is bound to be fenced, which the per-write path
// answers for the right write).
func queueSetBased(b *pgx.Batch, writes []store.Write, errs []error) bool {
	var (
		chains = map[string]*customerChain{}
		order  []*customerChain
		live   int
	)
	for i, w := range writes {
		if errs[i] != nil {
			continue
		}
		live++
		if w.Replace || len(w.Released) > 0 {
			return false
		}
		if w.State == nil {
			continue
		}
		c := chains[w.Event.CustomerID]
		switch {
		case c == nil:
			c = &customerChain{id: w.Event.CustomerID, readVersion: w.ReadVersion}
			chains[c.id] = c
			order = append(order, c)
		case w.ReadVersion != c.readVersion+c.n:
			return false
		}
		c.state, c.n = w.State, c.n+1
	}
	if live < minSetBased {
		return false
	}

	var (
		eSource, eID, eType, eCustomer, eStatus, eReason, eRouting = make([]string, 0, live), make([]string, 0, live), make([]string, 0, live), make([]string, 0, live), make([]string, 0, live), make([]string, 0, live), make([]string, 0, live)
		eCreated                                                   = make([]time.Time, 0, live)
		eAPI, eObject, eDedup, eAccount                            = make([]string, 0, live), make([]string, 0, live), make([]string, 0, live), make([]string, 0, live)
		eVersion                                                   = make([]int64, 0, live)
		ePayload                                                   = make([][]byte, 0, live)
		nCustomer, nKind, nEvent                                   []string
		nAt                                                        []time.Time
		nSnapshot                                                  [][]byte
		nVersion                                                   []int64
		rObject, rCustomer                                         []string
	)
	for i, w := range writes {
		if errs[i] != nil {
			continue
		}
		e := w.Event
		eSource, eID, eType, eCustomer = append(eSource, e.Source), append(eID, e.EventID), append(eType, e.Type), append(eCustomer, e.CustomerID)
		eStatus, eReason, eRouting = append(eStatus, string(e.Status)), append(eReason, e.Reason), append(eRouting, e.Routing)
		eCreated, eAPI, eObject, eDedup = append(eCreated, e.Created), append(eAPI, e.APIVersion), append(eObject, e.ObjectID), append(eDedup, e.DedupKey)
		eVersion, ePayload, eAccount = append(eVersion, e.Version), append(ePayload, payload(e.Payload)), append(eAccount, e.Account)
		for _, no := range w.Notifications {
			nCustomer, nKind, nEvent = append(nCustomer, cmp.Or(no.CustomerID, e.CustomerID)), append(nKind, no.Kind), append(nEvent, cmp.Or(no.EventID, e.EventID))
			nAt, nSnapshot, nVersion = append(nAt, no.OccurredAt), append(nSnapshot, no.Customer), append(nVersion, no.Version)
		}
		for _, r := range w.Routes {
			rObject, rCustomer = append(rObject, r), append(rCustomer, e.CustomerID)
		}
	}
	b.Queue(sqlSetJoinPlans)
	b.Queue(sqlSetEvents, eSource, eID, eType, eCustomer, eStatus, eReason, eRouting,
		eCreated, eAPI, eObject, eDedup, eVersion, ePayload, eAccount)
	var (
		cID, uID       []string
		cVer, uRead, n []int64
		cState, uState [][]byte
	)
	for _, c := range order {
		if c.readVersion == 0 {
			cID, cVer, cState = append(cID, c.id), append(cVer, c.n), append(cState, c.state)
		} else {
			uID, uRead, uState, n = append(uID, c.id), append(uRead, c.readVersion), append(uState, c.state), append(n, c.n)
		}
	}
	if len(cID) > 0 {
		b.Queue(sqlSetCreate, cID, cVer, cState, int64(len(cID)))
	}
	if len(uID) > 0 {
		b.Queue(sqlSetUpdate, uID, uRead, uState, n, int64(len(uID)))
	}
	if len(nKind) > 0 {
		b.Queue(sqlSetOutbox, nCustomer, nKind, nEvent, nAt, nSnapshot, nVersion)
	}
	if len(rObject) > 0 {
		b.Queue(sqlSetRoutes, rObject, rCustomer)
	}
	return true
}
