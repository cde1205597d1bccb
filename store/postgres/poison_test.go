package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
)

// incompressible returns n random hex characters: PostgreSQL compresses
// index entries before it checks their size, so a repeated character
// would fit the btree limit.
func incompressible(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// poisonWrites returns one write of each kind PostgreSQL can never store,
// their event IDs unique to tag: a 3 KB event ID (54000: index row too
// large), a NUL byte in the customer ID and
// invalid UTF-8 in the type (22021), a 3 KB customer ID (54000 on the
// customers key), a 3 KB route object ID (54000).
func poisonWrites(tag string) map[string]store.Write {
	p := map[string]store.Write{}
	p["long event ID"] = storetest.StateWrite("evt_"+incompressible(3000), "cus_p1_"+tag, 0)
	// (A 3 KB dedup key was one too, until 0006 indexed the key's digest:
	// see TestLongDedupKeyIsStoredAndDeduplicates.)
	p["NUL in customer ID"] = storetest.StateWrite("evt_pnul_"+tag, "cus_\x00_"+tag, 0)
	w := storetest.StateWrite("evt_putf8_"+tag, "cus_p4_"+tag, 0)
	w.Event.Type = "customer.\xff\xfe"
	p["invalid UTF-8"] = w
	p["long customer ID"] = storetest.StateWrite("evt_plongcus_"+tag, "cus_"+incompressible(3000), 0)
	w = storetest.StateWrite("evt_proute_"+tag, "cus_p6_"+tag, 0)
	w.Routes = []string{"sub_" + incompressible(3000)}
	p["long route"] = w
	return p
}

// count returns the result of a count(*) query.
func count(t *testing.T, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// isInvalid reports whether err is a permanent invalid-argument result.
func isInvalid(err error) bool {
	return errors.Is(err, store.ErrInvalidArgument) && !errors.Is(err, store.ErrUnavailable)
}

// TestCommitPoisonIsolated commits batches that mix every kind of write
// PostgreSQL refuses with many good writes of other customers (and good
// chains), shuffled, over several rounds: each good write commits exactly
// once, each poisoned one is answered ErrInvalidArgument, nothing else
// fails.
func TestCommitPoisonIsolated(t *testing.T) {
	t.Parallel()
	s, url := setup(t)
	conn := connect(t, url)
	const rounds, goods = 4, 40
	var allGood []store.Write
	for r := range rounds {
		var writes []store.Write
		kinds := map[int]string{}
		var good []int
		for i := range goods {
			good = append(good, len(writes))
			writes = append(writes, storetest.StateWrite(fmt.Sprintf("evt_g%d_%d", r, i), fmt.Sprintf("cus_g%d_%d", r, i), 0))
		}
		for kind, w := range poisonWrites(fmt.Sprint(r)) {
			kinds[len(writes)] = kind
			writes = append(writes, w)
		}
		perm := mrand.Perm(len(writes))
		shuffled := make([]store.Write, len(writes))
		for i, j := range perm {
			shuffled[j] = writes[i]
		}
		// A good chain behind them.
		chain := storetest.Chain(fmt.Sprintf("cus_chain%d", r), 0, fmt.Sprintf("evt_c%d_1", r), fmt.Sprintf("evt_c%d_2", r))
		shuffled = append(shuffled, chain...)
		errs := s.Commit(t.Context(), shuffled)
		for i, j := range perm {
			switch kind, poisoned := kinds[i]; {
			case poisoned && !isInvalid(errs[j]):
				t.Errorf("round %d: %s: got %v, want ErrInvalidArgument", r, kind, errs[j])
			case !poisoned && errs[j] != nil:
				t.Errorf("round %d: good write %s: got %v, want nil", r, writes[i].Event.EventID, errs[j])
			}
		}
		for k, err := range errs[len(perm):] {
			if err != nil {
				t.Errorf("round %d: chain write %d: got %v, want nil", r, k, err)
			}
		}
		for _, i := range good {
			allGood = append(allGood, writes[i])
		}
		allGood = append(allGood, chain...)
	}
	if got, want := count(t, conn, "SELECT count(*) FROM events"), len(allGood); got != want {
		t.Errorf("events stored: got %d, want %d", got, want)
	}
	if got, want := count(t, conn, "SELECT count(*) FROM outbox"), len(allGood); got != want {
		t.Errorf("notifications stored: got %d, want %d", got, want)
	}
	// Exactly once: every good write is a duplicate now.
	for i, err := range s.Commit(t.Context(), allGood) {
		if !errors.Is(err, store.ErrDuplicate) && !errors.Is(err, store.ErrSkipped) {
			t.Errorf("recommit %s: got %v, want ErrDuplicate", allGood[i].Event.EventID, err)
		}
	}
}

// installPoisonTriggers makes the test database refuse writes by event ID
// in ways Commit cannot pin on a savepoint, or does not know:
//   - evt_commitdata…: a deferred constraint fails at COMMIT (23514);
//   - evt_commitodd…: a deferred trigger fails at COMMIT (P0001);
//   - evt_stepodd…: the write's own statement fails (P0001).
func installPoisonTriggers(t testing.TB, conn *pgx.Conn) {
	t.Helper()
	_, err := conn.Exec(t.Context(), `
CREATE FUNCTION poison_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_id LIKE 'evt_commitdata%' THEN
        RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.event_id LIKE 'evt_commitodd%' THEN
        RAISE EXCEPTION 'odd at commit' USING ERRCODE = 'P0001';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER poison_at_commit AFTER INSERT ON events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION poison_at_commit();
CREATE FUNCTION poison_at_step() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_id LIKE 'evt_stepodd%' THEN
        RAISE EXCEPTION 'odd write' USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER poison_at_step BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION poison_at_step();`)
	if err != nil {
		t.Fatalf("install triggers: %v", err)
	}
}

// TestCommitSplitsUnattributableFailure checks that a transaction that
// fails at COMMIT, where no savepoint tells whose write it was, is split
// so that the others commit: the guilty write gets ErrInvalidArgument for
// data it can never store (a constraint), ErrUnavailable for an unknown
// error, and a chain is never split. A write whose own statement fails
// with an unknown error is unavailable alone.
func TestCommitSplitsUnattributableFailure(t *testing.T) {
	t.Parallel()
	s, url := setup(t)
	conn := connect(t, url)
	installPoisonTriggers(t, conn)

	for r := range 3 {
		var writes []store.Write
		want := map[string]string{} // event ID → "nil", "invalid", "unavailable"
		for i := range 30 {
			id := fmt.Sprintf("evt_g%d_%d", r, i)
			writes = append(writes, storetest.StateWrite(id, fmt.Sprintf("cus_g%d_%d", r, i), 0))
			want[id] = "nil"
		}
		for _, p := range []struct{ id, want string }{
			{fmt.Sprintf("evt_commitdata_%d", r), "invalid"},
			{fmt.Sprintf("evt_commitodd_%d", r), "unavailable"},
			{fmt.Sprintf("evt_stepodd_%d", r), "unavailable"},
		} {
			writes = append(writes, storetest.StateWrite(p.id, "cus_"+p.id, 0))
			want[p.id] = p.want
		}
		mrand.Shuffle(len(writes), func(i, j int) { writes[i], writes[j] = writes[j], writes[i] })
		// A chain whose second write fails at commit: the chain fails as
		// a whole, unavailable (it is not one write's data for sure).
		chain := storetest.Chain(fmt.Sprintf("cus_chain%d", r), 0, fmt.Sprintf("evt_chain%d", r), fmt.Sprintf("evt_commitdata_chain%d", r))
		want[chain[0].Event.EventID], want[chain[1].Event.EventID] = "unavailable", "unavailable"
		writes = append(writes[:10], append(chain, writes[10:]...)...)

		errs := s.Commit(t.Context(), writes)
		for i, err := range errs {
			id := writes[i].Event.EventID
			ok := false
			switch want[id] {
			case "nil":
				ok = err == nil
			case "invalid":
				ok = isInvalid(err)
			case "unavailable":
				ok = errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrInvalidArgument)
			}
			if !ok {
				t.Errorf("round %d: %s: got %v, want %s", r, id, err, want[id])
			}
		}
	}
	if got, want := count(t, conn, "SELECT count(*) FROM events"), 3*30; got != want {
		t.Errorf("events stored: got %d, want %d", got, want)
	}
	if got := count(t, conn, "SELECT count(*) FROM events WHERE event_id NOT LIKE 'evt_g%'"); got != 0 {
		t.Errorf("poisoned or chained events stored: got %d, want 0", got)
	}
}

// TestCommitLockTimeoutUnavailable checks that a transient failure (a lock
// timeout while another session holds the customers table) is still
// ErrUnavailable for every good write, with nothing written, and that
// the batch commits once the lock is gone.
func TestCommitLockTimeoutUnavailable(t *testing.T) {
	t.Parallel()
	s, url := setup(t, "lock_timeout=200")
	locker := connect(t, url)
	conn := connect(t, url)
	writes := []store.Write{}
	for i := range 20 {
		writes = append(writes, storetest.StateWrite(fmt.Sprintf("evt_l%d", i), fmt.Sprintf("cus_l%d", i), 0))
	}
	for _, w := range poisonWrites("lock") {
		writes = append(writes, w)
	}
	mrand.Shuffle(len(writes), func(i, j int) { writes[i], writes[j] = writes[j], writes[i] })

	tx, err := locker.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "LOCK TABLE customers IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	for i, err := range s.Commit(t.Context(), writes) {
		if !errors.Is(err, store.ErrUnavailable) && !isInvalid(err) {
			t.Errorf("under lock: %s: got %v, want ErrUnavailable", writes[i].Event.EventID, err)
		}
		if strings.HasPrefix(writes[i].Event.EventID, "evt_l") && !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("under lock: good write %s: got %v, want ErrUnavailable", writes[i].Event.EventID, err)
		}
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := count(t, conn, "SELECT count(*) FROM events"); got != 0 {
		t.Errorf("events stored by the failed batch: got %d, want 0", got)
	}
	for i, err := range s.Commit(t.Context(), writes) {
		if good := strings.HasPrefix(writes[i].Event.EventID, "evt_l"); (good && err != nil) || (!good && !isInvalid(err)) {
			t.Errorf("after lock: %s: got %v", writes[i].Event.EventID, err)
		}
	}
}

// TestCommitTerminatedBackendUnavailable checks that a batch whose
// connection is terminated mid-transaction (pg_terminate_backend from
// another session) is ErrUnavailable for every good write, with nothing
// written, and is not split into commits of its parts.
func TestCommitTerminatedBackendUnavailable(t *testing.T) {
	t.Parallel()
	s, url := setup(t)
	locker := connect(t, url)
	admin := connect(t, url)
	var writes []store.Write
	for i := range 20 {
		writes = append(writes, storetest.StateWrite(fmt.Sprintf("evt_k%d", i), fmt.Sprintf("cus_k%d", i), 0))
	}
	writes = append(writes, poisonWrites("kill")["NUL in customer ID"])

	tx, err := locker.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "LOCK TABLE customers IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan []error, 1)
	go func() { done <- s.Commit(context.Background(), writes) }()
	// Wait for the store's backend to block on the lock, then kill it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		err := admin.QueryRow(t.Context(), `
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the commit never waited for the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	errs := <-done
	for i, err := range errs[:20] {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("terminated: %s: got %v, want ErrUnavailable", writes[i].Event.EventID, err)
		}
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := count(t, admin, "SELECT count(*) FROM events"); got != 0 {
		t.Errorf("events stored by the terminated batch: got %d, want 0", got)
	}
	for i, err := range s.Commit(t.Context(), writes) {
		if (i < 20 && err != nil) || (i == 20 && !isInvalid(err)) {
			t.Errorf("after restart: %s: got %v", writes[i].Event.EventID, err)
		}
	}
}

// TestGetCustomersPoisonedID checks what store/batch relies on to isolate
// a poisoned load: a query for a NUL-byte ID fails with
// ErrInvalidArgument, not ErrUnavailable, and so does GetCustomer of it.
func TestGetCustomersPoisonedID(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	if _, err := s.GetCustomers(t.Context(), []string{"cus_a", "cus_\x00", "cus_b"}); !isInvalid(err) {
		t.Errorf("GetCustomers with a NUL byte: got %v, want ErrInvalidArgument", err)
	}
	if _, err := s.GetCustomer(t.Context(), "cus_\xff"); !isInvalid(err) {
		t.Errorf("GetCustomer with invalid UTF-8: got %v, want ErrInvalidArgument", err)
	}
	if _, err := s.GetCustomers(t.Context(), []string{"cus_a"}); err != nil {
		t.Errorf("GetCustomers: got %v, want nil", err)
	}
}

// TestLongDedupKeyIsStoredAndDeduplicates: the dedup index holds the key's
// MD5 (migration 0006), so a key longer than a btree entry may be is
// stored, and a second event with the same key is still a duplicate
// while one differing in its last byte is not.
func TestLongDedupKeyIsStoredAndDeduplicates(t *testing.T) {
	t.Parallel()
	s, url := setup(t)
	conn := connect(t, url)
	key := incompressible(3000)
	for i, tt := range []struct {
		key  string
		want error
	}{{key, nil}, {key, store.ErrDuplicate}, {key[:2999] + "x", nil}} {
		w := storetest.StateWrite(fmt.Sprintf("evt_longkey_%d", i), fmt.Sprintf("cus_longkey_%d", i), 0)
		w.Event.DedupKey = tt.key
		if tt.key[2999] == 'x' && key[2999] == 'x' {
			w.Event.DedupKey = tt.key[:2999] + "y"
		}
		if err := s.Commit(t.Context(), []store.Write{w})[0]; !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("event %d: %v, want %v", i, err, tt.want)
		}
	}
	var reason string
	if err := conn.QueryRow(t.Context(), `SELECT reason FROM events WHERE event_id = 'evt_longkey_1'`).Scan(&reason); err != nil || reason != "duplicate of evt_longkey_0" {
		t.Errorf("the duplicate's reason: %q (%v), want \"duplicate of evt_longkey_0\"", reason, err)
	}
}
