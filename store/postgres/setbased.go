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
            $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::bigint[], $14::bytea[], $13::text[])
     WITH ORDINALITY AS e(source, event_id, type, customer_id, status, reason, routing,
                          created, api_version, object_id, dedup_key, version, payload, account, ord)
ORDER BY e.ord`

// sqlSetCreate creates customers, each at the version its chain of
// writes reaches; it fails (HK409) unless every one was created.
const sqlSetCreate = `
WITH ins AS (
    INSERT INTO customers (customer_id, version, state, updated_at)
    SELECT c.customer_id, c.version, c.state, now()
    FROM unnest($1::text[], $2::bigint[], $4::bytea[]) AS c(customer_id, version, state)
    ON CONFLICT (customer_id) DO NOTHING
    RETURNING 1
)
SELECT hookd_fence((SELECT count(*) FROM ins) = $3::bigint)`

// sqlSetUpdate replaces customers' states, each fenced on the version its
// chain read first and moved on by the chain's length; it fails (HK409)
// unless every fence held.
const sqlSetUpdate = `
WITH up AS (
    UPDATE customers c SET state = u.state, version = c.version + u.n, updated_at = now()
    FROM unnest($1::text[], $2::bigint[], $5::bytea[], $3::bigint[]) AS u(customer_id, read_version, state, n)
    WHERE c.customer_id = u.customer_id AND c.version = u.read_version
    RETURNING 1
)
SELECT hookd_fence((SELECT count(*) FROM up) = $4::bigint)`

// sqlSetOutbox appends the batch's notifications in batch order.
const sqlSetOutbox = `
INSERT INTO outbox (customer_id, kind, event_id, occurred_at, customer, version)
SELECT n.customer_id, n.kind, n.event_id, n.occurred_at, n.customer, n.version
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $6::bytea[], $5::bigint[])
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
		ev     = newEventArrays(live)
		notes  noteColumns
		routes struct{ objects, customers []string }
	)
	for i, w := range writes {
		if errs[i] != nil {
			continue
		}
		ev.add(w.Event)
		for _, no := range w.Notifications {
			notes.add(no, w.Event)
		}
		for _, r := range w.Routes {
			routes.objects, routes.customers = append(routes.objects, r), append(routes.customers, w.Event.CustomerID)
		}
	}
	b.Queue(sqlSetJoinPlans)
	b.Queue(sqlSetEvents, ev.args()...)
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
		b.Queue(sqlSetCreate, cID, cVer, int64(len(cID)), cState)
	}
	if len(uID) > 0 {
		b.Queue(sqlSetUpdate, uID, uRead, n, int64(len(uID)), uState)
	}
	if len(notes.kinds) > 0 {
		b.Queue(sqlSetOutbox, notes.setArgs()...)
	}
	if len(routes.objects) > 0 {
		b.Queue(sqlSetRoutes, routes.objects, routes.customers)
	}
	return true
}

// eventArrays are events rows as parallel arrays, in sqlSetEvents'
// parameter order (the payloads last, see arrays.go).
type eventArrays struct {
	source, eventID, typ, customerID, status, reason, routing []string
	created                                                   []time.Time
	apiVersion, objectID, dedupKey                            []string
	version                                                   []int64
	payload                                                   [][]byte
	account                                                   []string
}

func newEventArrays(n int) *eventArrays {
	strs := func() []string { return make([]string, 0, n) }
	return &eventArrays{
		source: strs(), eventID: strs(), typ: strs(), customerID: strs(), status: strs(), reason: strs(), routing: strs(),
		created: make([]time.Time, 0, n), apiVersion: strs(), objectID: strs(), dedupKey: strs(),
		version: make([]int64, 0, n), payload: make([][]byte, 0, n), account: strs(),
	}
}

func (c *eventArrays) add(e store.Event) {
	c.source, c.eventID, c.typ = append(c.source, e.Source), append(c.eventID, e.EventID), append(c.typ, e.Type)
	c.customerID, c.status = append(c.customerID, e.CustomerID), append(c.status, string(e.Status))
	c.reason, c.routing, c.created = append(c.reason, e.Reason), append(c.routing, e.Routing), append(c.created, e.Created)
	c.apiVersion, c.objectID, c.dedupKey = append(c.apiVersion, e.APIVersion), append(c.objectID, e.ObjectID), append(c.dedupKey, e.DedupKey)
	c.version, c.payload, c.account = append(c.version, e.Version), append(c.payload, payload(e.Payload)), append(c.account, e.Account)
}

func (c *eventArrays) args() []any {
	return []any{c.source, c.eventID, c.typ, c.customerID, c.status, c.reason, c.routing,
		c.created, c.apiVersion, c.objectID, c.dedupKey, c.version, c.account, c.payload}
}

// noteColumns are outbox rows as parallel arrays, in the order of the
// outbox statements' unnest (sqlSetOutbox, and writeSQL's shape with
// several notifications). A notification's customer and event default to
// its event's.
type noteColumns struct {
	customerIDs, kinds, eventIDs []string
	occurredAt                   []time.Time
	customers                    [][]byte
	versions                     []int64
}

func (c *noteColumns) add(no store.Notification, e store.Event) {
	c.customerIDs, c.kinds = append(c.customerIDs, cmp.Or(no.CustomerID, e.CustomerID)), append(c.kinds, no.Kind)
	c.eventIDs, c.occurredAt = append(c.eventIDs, cmp.Or(no.EventID, e.EventID)), append(c.occurredAt, no.OccurredAt)
	c.customers, c.versions = append(c.customers, no.Customer), append(c.versions, no.Version)
}

func (c *noteColumns) args() []any {
	return []any{c.customerIDs, c.kinds, c.eventIDs, c.occurredAt, c.customers, c.versions}
}

// setArgs returns the columns in sqlSetOutbox's parameter order: the
// snapshots last (see arrays.go).
func (c *noteColumns) setArgs() []any {
	return []any{c.customerIDs, c.kinds, c.eventIDs, c.occurredAt, c.versions, c.customers}
}
