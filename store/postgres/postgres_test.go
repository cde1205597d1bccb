package postgres_test

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestContract runs the backend-independent store contract tests.
func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return pgtest.NewStore(t) })
}

// TestDeliveryContract runs the backend-independent delivery contract tests.
func TestDeliveryContract(t *testing.T) {
	t.Parallel()
	storetest.RunDelivery(t, func(t *testing.T) store.Store { return pgtest.NewStore(t) })
}

// TestBackfillContract runs the backend-independent backfill contract
// tests; the shared ones open a second store on the same database.
func TestBackfillContract(t *testing.T) {
	t.Parallel()
	storetest.RunBackfill(t, func(t *testing.T) store.Store { return pgtest.NewStore(t) })
	storetest.RunBackfillShared(t, func(t *testing.T) (store.Store, func() store.Store) {
		s, url := setup(t)
		return s, func() store.Store {
			another, err := postgres.Open(t.Context(), url, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(another.Close)
			return another
		}
	})
}

// TestDeliveryEnqueueTwoStores calls Enqueue for one endpoint from two
// stores on one database, as two members would: nothing is enqueued twice.
func TestDeliveryEnqueueTwoStores(t *testing.T) {
	t.Parallel()
	a, url := setup(t)
	b, err := postgres.Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	storetest.CheckConcurrentEnqueue(t, a, a, b)
}

// setup opens a migrated store on a fresh database and returns it with the
// database's URL, for tests that also need a connection of their own.
// params are added to the URL the store opens (pool_max_conns=1, say).
func setup(t *testing.T, params ...string) (*postgres.Store, string) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	for _, p := range params {
		sep := "&"
		if !strings.Contains(url, "?") {
			sep = "?"
		}
		url += sep + p
	}
	s, err := postgres.Open(t.Context(), url, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s, url
}

// connect opens a connection of the test's own to url.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// appliedMigrations returns the versions recorded in schema_migrations.
func appliedMigrations(t *testing.T, url string) []int {
	t.Helper()
	rows, _ := connect(t, url).Query(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return vs
}

// migrationFiles counts the migrations in the source tree.
func migrationFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	t.Parallel()
	s, url := setup(t)
	before := appliedMigrations(t, url)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: got %v, want nil", err)
	}
	after := appliedMigrations(t, url)
	if !slices.Equal(before, after) || len(after) != migrationFiles(t) {
		t.Errorf("schema_migrations: got %v after %v, want %d versions, unchanged", after, before, migrationFiles(t))
	}
}

func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	const starters = 4
	var wg sync.WaitGroup
	errs := make([]error, starters)
	for i := range starters {
		wg.Go(func() {
			// A store each, as separate processes would have.
			s, err := postgres.Open(t.Context(), url, nil)
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			errs[i] = s.Migrate(t.Context())
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: got %v, want nil", i, err)
		}
	}
	if got := appliedMigrations(t, url); len(got) != migrationFiles(t) {
		t.Errorf("schema_migrations: got %v, want %d versions", got, migrationFiles(t))
	}
}

// TestOutboxGap holds open a transaction A that wrote an outbox row, then
// commits a later write B: B's row has a larger sequence but must not be
// read before A's, which would be skipped by a reader resuming after B.
func TestOutboxGap(t *testing.T) {
	t.Parallel()
	s, url := setup(t)
	conn := connect(t, url)

	txA, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback(context.Background())
	if _, err := txA.Exec(t.Context(), `INSERT INTO outbox (customer_id, version, kind, event_id, occurred_at)
		VALUES ('cus_a', 1, 'customer.created', 'evt_a', now())`); err != nil {
		t.Fatalf("insert A: %v", err)
	}
	if err := s.Commit(t.Context(), []store.Write{storetest.StateWrite("evt_b", "cus_b", 0)})[0]; err != nil {
		t.Fatalf("Commit(B): %v", err)
	}

	for _, customer := range []string{"", "cus_b"} {
		ns, err := s.ReadNotifications(t.Context(), "", customer, 10)
		if err != nil {
			t.Fatalf("ReadNotifications: %v", err)
		}
		if len(ns) != 0 {
			t.Errorf("ReadNotifications(customer %q) while A is open: got %v, want nothing", customer, ns)
		}
	}

	if err := txA.Commit(t.Context()); err != nil {
		t.Fatalf("commit A: %v", err)
	}
	ns := storetest.WaitNotifications(t, s, "", 2)
	var got []string
	for _, n := range ns {
		got = append(got, n.EventID)
	}
	if want := []string{"evt_a", "evt_b"}; !slices.Equal(got, want) {
		t.Fatalf("notifications after A committed: got %v, want %v", got, want)
	}
	rest, err := s.ReadNotifications(t.Context(), ns[0].Cursor, "", 10)
	if err != nil || len(rest) != 1 || rest[0].EventID != "evt_b" {
		t.Errorf("ReadNotifications after A's cursor: got %v, %v; want [evt_b]", rest, err)
	}
}

// TestCommitInvalidWrite checks that a write PostgreSQL rejects fails
// alone and permanently, rather than failing its batch as unavailable.
func TestCommitInvalidWrite(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	bad := storetest.StateWrite("evt_\x00", "cus_bad", 0)
	noCustomer := storetest.StateWrite("evt_nocus", "", 0)
	good := storetest.StateWrite("evt_good", "cus_good", 0)
	errs := s.Commit(t.Context(), []store.Write{bad, noCustomer, good})
	for i, err := range errs[:2] {
		if !errors.Is(err, postgres.ErrInvalidArgument) || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Commit result %d: got %v, want ErrInvalidArgument", i, err)
		}
	}
	if errs[2] != nil {
		t.Errorf("Commit result 2: got %v, want nil", errs[2])
	}
}

func TestInvalidArguments(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := t.Context()
	for _, c := range []string{"0-0", "1-2", "18446744073709551615-9223372036854775807"} {
		if err := s.ValidateCursor(c); err != nil {
			t.Errorf("ValidateCursor(%q): got %v, want nil", c, err)
		}
	}
	for _, c := range []string{"x", "1", "1-", "-1", "01-2", "1-02", "+1-2", "1--2", "1-2-3", "a-b", " 1-2", "18446744073709551616-1"} {
		if err := s.ValidateCursor(c); !errors.Is(err, postgres.ErrInvalidArgument) {
			t.Errorf("ValidateCursor(%q): got %v, want ErrInvalidArgument", c, err)
		}
		if _, err := s.ReadNotifications(ctx, c, "", 10); !errors.Is(err, postgres.ErrInvalidArgument) {
			t.Errorf("ReadNotifications(%q): got %v, want ErrInvalidArgument", c, err)
		}
	}
	if _, err := s.ReadNotifications(ctx, "", "", 0); !errors.Is(err, postgres.ErrInvalidArgument) {
		t.Errorf("ReadNotifications with limit 0: got %v, want ErrInvalidArgument", err)
	}
	for _, tok := range []string{"garbage!", "c2VxOg", "c2VxOjA", "c2VxOng", "bm9wZToxMg"} { // "seq:", "seq:0", "seq:x", "nope:12"
		_, _, err := s.ListEvents(ctx, store.ListEventsFilter{PageSize: 2, PageToken: tok})
		if !errors.Is(err, postgres.ErrInvalidArgument) {
			t.Errorf("ListEvents with page token %q: got %v, want ErrInvalidArgument", tok, err)
		}
	}
	if _, _, err := s.ListEvents(ctx, store.ListEventsFilter{PageSize: 0}); !errors.Is(err, postgres.ErrInvalidArgument) {
		t.Errorf("ListEvents with page size 0: got %v, want ErrInvalidArgument", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres://postgres:secret@127.0.0.1:1/postgres?connect_timeout=2", nil)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open of an unreachable server: got %v, want ErrUnavailable", err)
	}
	if err != nil && strings.Contains(err.Error(), "secret") {
		t.Errorf("Open error %q contains the password", err)
	}
}

func TestCloseTwice(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	s.Close()
	s.Close()
}

// Listen wakes on commits that wrote notifications, from any connection.
func TestListenWakesOnCommit(t *testing.T) {
	t.Parallel()
	writer := pgtest.NewStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	wakes := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() { done <- writer.Listen(ctx, func() { wakes <- struct{}{} }) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Listen returned %v, want context.Canceled", err)
		}
	}()
	select { // the wake-up after LISTEN
	case <-wakes:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up after LISTEN")
	}
	if errs := writer.Commit(ctx, []store.Write{storetest.StateWrite("evt_l", "cus_l", 0)}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	select {
	case <-wakes:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up after a commit with notifications")
	}

	// A batch whose notifications all come before a failed write: the
	// pipeline that held the pg_notify was cut short by the failure, and
	// the one that resumes after it must send it.
	dup := storetest.StateWrite("evt_l", "cus_l", 1)
	dup.Notifications = nil
	quiet := storetest.StateWrite("evt_q", "cus_q", 0)
	quiet.Notifications = nil
	errs := writer.Commit(ctx, []store.Write{storetest.StateWrite("evt_m", "cus_m", 0), dup, quiet})
	if errs[0] != nil || !errors.Is(errs[1], store.ErrDuplicate) || errs[2] != nil {
		t.Fatalf("Commit: got %v, want [nil ErrDuplicate nil]", errs)
	}
	select {
	case <-wakes:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up after a commit whose notifications came before a duplicate")
	}
}

// TestCommitChainAfterInvalidData checks that a write PostgreSQL rejects
// only once it is sent (a NUL byte in text) skips its AfterPrevious
// followers like any other failed write, and that the other writes of the
// call still commit.
func TestCommitChainAfterInvalidData(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	writes := storetest.Chain("cus_bad", 0, "evt_\x00", "evt_b2", "evt_b3")
	writes = append(writes, storetest.Chain("cus_good", 0, "evt_g1", "evt_g2")...)
	errs := s.Commit(t.Context(), writes)
	if !errors.Is(errs[0], postgres.ErrInvalidArgument) || errors.Is(errs[0], store.ErrUnavailable) {
		t.Errorf("Commit result 0: got %v, want ErrInvalidArgument", errs[0])
	}
	for i, want := range []error{store.ErrSkipped, store.ErrSkipped, nil, nil} {
		if err := errs[i+1]; (want == nil && err != nil) || !errors.Is(err, want) {
			t.Errorf("Commit result %d: got %v, want %v", i+1, err, want)
		}
	}
	if c, err := s.GetCustomer(t.Context(), "cus_good"); err != nil || c.Version != 2 {
		t.Errorf("GetCustomer(cus_good): got version %d, %v; want 2", c.Version, err)
	}
	if _, err := s.GetCustomer(t.Context(), "cus_bad"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCustomer(cus_bad): got %v, want ErrNotFound", err)
	}
}

// TestCommitUsesGenericPlans checks that Commit's statements are not
// re-planned on every execution: under PostgreSQL's default plan cache
// mode the write statements always got custom plans, and planning them
// was a quarter of PostgreSQL's CPU under load.
func TestCommitUsesGenericPlans(t *testing.T) {
	t.Parallel()
	// One connection: pg_prepared_statements shows its own session only.
	s, _ := setup(t, "pool_max_conns=1")
	const rounds = 12
	for v := range int64(rounds) {
		w := storetest.StateWrite(fmt.Sprintf("evt_plan_%d", v), "cus_plan", v)
		if err := s.Commit(t.Context(), []store.Write{w})[0]; err != nil {
			t.Fatalf("Commit %d: %v", v, err)
		}
	}
	generic, custom, err := s.PlanCounts(t.Context(), "INSERT INTO events")
	if err != nil {
		t.Fatalf("PlanCounts: %v", err)
	}
	if custom != 0 || generic < rounds {
		t.Errorf("write statements ran with %d generic and %d custom plans, want >= %d generic and no custom", generic, custom, rounds)
	}
}

// TestWriteStatementsPrepare prepares the write statement of every shape
// (kind × notifications × routes) on a migrated database: most shapes
// are rare in the contract tests, and a typo in one would only show when
// a write of that shape came along.
func TestWriteStatementsPrepare(t *testing.T) {
	t.Parallel()
	_, url := setup(t)
	conn := connect(t, url)
	stmts := postgres.WriteStatements()
	if len(stmts) != 27 {
		t.Fatalf("%d write statements, want 27 (3 kinds × 3 × 3)", len(stmts))
	}
	for i, sql := range stmts {
		if _, err := conn.Prepare(t.Context(), fmt.Sprintf("w%d", i), sql); err != nil {
			t.Errorf("shape %d does not prepare: %v\n%s", i, err, sql)
		}
	}
}

// TestCommitWithoutSavepointsUnlessAWriteFails: a batch in which every
// write succeeds commits with no savepoint, so all its rows carry the
// transaction's own XID; a batch with a failing write is committed again
// with a savepoint per write (each row then has its subtransaction's
// XID), with the same answers as ever; and after optimisticBackoff
// commits the optimistic path is taken again.
func TestCommitWithoutSavepointsUnlessAWriteFails(t *testing.T) {
	t.Parallel()
	s, url := setup(t)
	conn := connect(t, url)
	xids := func(prefix string) (rows, distinct int) {
		t.Helper()
		err := conn.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT xmin::text) FROM events WHERE event_id LIKE $1 || '%'`, prefix).Scan(&rows, &distinct)
		if err != nil {
			t.Fatal(err)
		}
		return rows, distinct
	}
	batch := func(prefix string, n int) []store.Write {
		var ws []store.Write
		for i := range n {
			ws = append(ws, storetest.StateWrite(fmt.Sprintf("%s_%d", prefix, i), fmt.Sprintf("cus_%s_%d", prefix, i), 0))
		}
		return ws
	}

	// Nothing conflicts: one XID for the batch.
	for _, err := range s.Commit(t.Context(), batch("evt_fast", 10)) {
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	if rows, distinct := xids("evt_fast"); rows != 10 || distinct != 1 {
		t.Errorf("conflict-free batch: %d rows with %d distinct XIDs, want 10 rows with 1 (no savepoints)", rows, distinct)
	}

	// One duplicate among ten: the others commit, each under a savepoint.
	ws := batch("evt_mixed", 10)
	ws[4] = storetest.StateWrite("evt_fast_3", "cus_fast_3", 1) // the event ID is stored already
	errs := s.Commit(t.Context(), ws)
	for i, err := range errs {
		want := error(nil)
		if i == 4 {
			want = store.ErrDuplicate
		}
		if !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("write %d: %v, want %v", i, err, want)
		}
	}
	if rows, distinct := xids("evt_mixed"); rows != 9 || distinct != 9 {
		t.Errorf("batch with a duplicate: %d rows with %d distinct XIDs, want 9 rows under 9 savepoints", rows, distinct)
	}

	// The next commits take savepoints from the start, then the fast path
	// is back.
	for k := range postgres.OptimisticBackoff + 1 {
		if err := s.Commit(t.Context(), batch(fmt.Sprintf("evt_after%02d", k), 2))[0]; err != nil {
			t.Fatal(err)
		}
	}
	if _, distinct := xids("evt_after00"); distinct != 2 {
		t.Errorf("first commit after a failed optimistic attempt: %d XIDs, want 2 (savepoints)", distinct)
	}
	last := fmt.Sprintf("evt_after%02d", postgres.OptimisticBackoff)
	if _, distinct := xids(last); distinct != 1 {
		t.Errorf("%s: %d XIDs, want 1 (optimistic again)", last, distinct)
	}
}

// TestSetBasedBatchesWriteWhatPerWriteStatementsWrite commits the same
// shuffled batches — new customers and known ones, chains of several
// writes of one customer, event-only writes, notifications (none, one,
// several), routes (the first mapping of an object wins, within a batch
// too), dedup keys — through a store writing set-based and one writing a
// statement per write, and compares every table, rows in order. A batch
// with a fenced write, and one with a replayed event, must come out the
// same both ways too (they leave the set-based path).
func TestSetBasedBatchesWriteWhatPerWriteStatementsWrite(t *testing.T) {
	t.Parallel()
	setBased, urlA := setup(t)
	perWrite, urlB := setup(t)
	perWrite.SetBased(false)
	connA, connB := connect(t, urlA), connect(t, urlB)
	rng := mrand.New(mrand.NewPCG(7, 11))

	versions := map[string]int64{}
	for round := range 12 {
		var writes []store.Write
		customers := rng.Perm(40)[:15]
		for _, c := range customers {
			cus := fmt.Sprintf("cus_sb_%d", c)
			chain := 1 + rng.IntN(3)
			for k := range chain {
				id := fmt.Sprintf("evt_sb_%d_%d_%d", round, c, k)
				var w store.Write
				switch rng.IntN(6) {
				case 0: // event only, with or without a notification
					w = store.Write{Event: storetest.Event(id, cus)}
					w.Event.Status = store.StatusIgnored
					if rng.IntN(2) == 0 {
						w.Notifications = []store.Notification{{CustomerID: cus, Kind: "customer.noted", EventID: id, OccurredAt: time.Unix(1700000000, 0).UTC()}}
					}
				default:
					w = storetest.StateWrite(id, cus, versions[cus])
					versions[cus]++
					for range rng.IntN(3) {
						w.Notifications = append(w.Notifications, store.Notification{CustomerID: cus, Kind: "invoice.paid", EventID: id,
							OccurredAt: time.Unix(1700000000+int64(round), 0).UTC(), Customer: []byte("x"), Version: versions[cus]})
					}
				}
				w.Event.DedupKey = "stripe|k|" + id
				for range rng.IntN(3) {
					w.Routes = append(w.Routes, fmt.Sprintf("sub_sb_%d", rng.IntN(30)))
				}
				w.AfterPrevious = k > 0
				writes = append(writes, w)
			}
		}
		switch round {
		case 5: // a fence that fails: the customer was read at an old version
			w := storetest.StateWrite(fmt.Sprintf("evt_sb_fenced_%d", round), "cus_sb_fenced", 0)
			if versions["cus_sb_fenced"] == 0 {
				versions["cus_sb_fenced"] = 1
				first := storetest.StateWrite("evt_sb_fenced_first", "cus_sb_fenced", 0)
				for _, s := range []*postgres.Store{setBased, perWrite} {
					if err := s.Commit(t.Context(), []store.Write{first})[0]; err != nil {
						t.Fatal(err)
					}
				}
			}
			writes = append(writes, w)
		case 8: // a replay of an ignored event
			w := storetest.StateWrite("evt_sb_0_"+strconv.Itoa(customers[0])+"_0", "cus_sb_replayed", 0)
			w.Replace = true
			writes = append(writes, w)
		}
		a, b := setBased.Commit(t.Context(), writes), perWrite.Commit(t.Context(), writes)
		for i := range writes {
			if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
				t.Fatalf("round %d write %d (%s): set-based %v, per write %v", round, i, writes[i].Event.EventID, a[i], b[i])
			}
		}
		for i, err := range a {
			if err != nil && round != 5 && round != 8 {
				t.Fatalf("round %d write %d: %v", round, i, err)
			}
		}
	}
	for _, q := range []string{
		`SELECT source, event_id, type, customer_id, status, reason, routing, created, coalesce(dedup_key, ''), version, payload FROM events ORDER BY seq`,
		`SELECT customer_id, version, state FROM customers ORDER BY customer_id`,
		`SELECT customer_id, version, kind, event_id, occurred_at, coalesce(customer, '') FROM outbox ORDER BY seq`,
		`SELECT object_id, customer_id FROM object_routes ORDER BY object_id`,
	} {
		ra, rb := dumpRows(t, connA, q), dumpRows(t, connB, q)
		if len(ra) == 0 || !slices.Equal(ra, rb) {
			t.Errorf("%s:\nset-based %d rows, per write %d rows, or they differ; first difference: %s", q, len(ra), len(rb), firstDiff(ra, rb))
		}
	}
	// The set-based store wrote a conflict-free batch in one transaction
	// with no savepoint: every event of round 0 has one XID.
	var distinct int
	if err := connA.QueryRow(t.Context(), `SELECT count(DISTINCT xmin::text) FROM events WHERE event_id LIKE 'evt\_sb\_0\_%'`).Scan(&distinct); err != nil || distinct != 1 {
		t.Errorf("round 0 on the set-based store: %d XIDs (%v), want 1", distinct, err)
	}
}

func dumpRows(t *testing.T, conn *pgx.Conn, q string) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(v))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("row %d: %s vs %s", i, a[i], b[i])
		}
	}
	return "(lengths)"
}
