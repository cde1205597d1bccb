package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
)

// poisonLimit is the longest string or blob the poison tests let SQLite
// store (SQLITE_LIMIT_LENGTH), so that an over-long value does not take a
// gigabyte.
const poisonLimit = 64 << 10

// openPoisoned opens a store whose writer refuses values longer than
// poisonLimit (SQLITE_TOOBIG) and fails the write of any event whose ID
// starts with evt_odd with an error SQLite does not classify (a malformed
// JSON argument in a trigger: SQLITE_ERROR), and the COMMIT of any
// transaction that wrote an event whose ID starts with evt_defer (a
// deferred foreign key).
func openPoisoned(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	conn, err := s.wdb.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := sqlitedriver.Limit(conn, sqlite3.SQLITE_LIMIT_LENGTH, poisonLimit); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), `
CREATE TRIGGER poison_odd BEFORE INSERT ON events WHEN NEW.event_id LIKE 'evt_odd%'
BEGIN SELECT json_extract('not json', '$'); END`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), `
CREATE TABLE poison_parent (id TEXT PRIMARY KEY);
CREATE TABLE poison_ref (id TEXT REFERENCES poison_parent (id) DEFERRABLE INITIALLY DEFERRED);
CREATE TRIGGER poison_defer AFTER INSERT ON events WHEN NEW.event_id LIKE 'evt_defer%'
BEGIN INSERT INTO poison_ref VALUES (NEW.event_id); END`); err != nil {
		t.Fatal(err)
	}
	return s
}

// Concurrent callers share the writer's transactions while some send
// writes SQLite can never store (an over-long payload, event ID or
// customer ID), some a write whose statement fails for an unknown
// reason, and some a write that makes the COMMIT fail (which no savepoint
// pins on it, so the transaction is split): each good write commits exactly once (NUL bytes and invalid
// UTF-8, which SQLite stores, are good writes here), each over-long one
// is answered ErrInvalidArgument, the odd and deferred ones
// ErrUnavailable, and nothing
// else fails.
func TestCommitPoisonIsolated(t *testing.T) {
	t.Parallel()
	s := openPoisoned(t)
	long := strings.Repeat("x", poisonLimit+1)
	const callers, rounds = 24, 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		good     int
	)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				tag := fmt.Sprintf("%d_%d", c, r)
				var w store.Write
				want := "nil"
				switch c % 8 {
				case 0:
					w = storetest.StateWrite("evt_big_"+tag, "cus_big_"+tag, 0)
					w.Event.Payload = []byte(long)
					want = "invalid"
				case 1:
					w = storetest.StateWrite("evt_"+long+tag, "cus_longid_"+tag, 0)
					want = "invalid"
				case 2:
					w = storetest.StateWrite("evt_longcus_"+tag, "cus_"+long+tag, 0)
					want = "invalid"
				case 3:
					w = storetest.StateWrite("evt_odd_"+tag, "cus_odd_"+tag, 0)
					want = "unavailable"
				case 6:
					w = storetest.StateWrite("evt_defer_"+tag, "cus_defer_"+tag, 0)
					want = "unavailable"
				case 4:
					w = storetest.StateWrite("evt_nul_"+tag, "cus_\x00"+tag, 0)
					w.Event.Type = "customer.\xff"
				default:
					w = storetest.StateWrite("evt_good_"+tag, "cus_good_"+tag, 0)
				}
				chain := []store.Write{w}
				if want == "nil" {
					chain = storetest.Chain(w.Event.CustomerID, 0, w.Event.EventID, w.Event.EventID+"_2")
				}
				errs := s.Commit(context.Background(), chain)
				mu.Lock()
				for i, err := range errs {
					ok := false
					switch want {
					case "nil":
						ok = err == nil
						good++
					case "invalid":
						ok = errors.Is(err, store.ErrInvalidArgument) && !errors.Is(err, store.ErrUnavailable)
					case "unavailable":
						ok = errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrInvalidArgument)
					}
					if !ok {
						failures = append(failures, fmt.Sprintf("caller %d round %d write %d (%.40q): got %.200v, want %s", c, r, i, chain[i].Event.EventID, err, want))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	var n int
	if err := s.rdb.QueryRowContext(t.Context(), "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != good {
		t.Errorf("events stored: got %d, want %d", n, good)
	}
	// Nothing half-written: no state or notification without its event.
	var orphans int
	if err := s.rdb.QueryRowContext(t.Context(), `
SELECT (SELECT count(*) FROM customers WHERE customer_id NOT IN (SELECT customer_id FROM events))
     + (SELECT count(*) FROM outbox WHERE event_id NOT IN (SELECT event_id FROM events))`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("state or notifications without their event: %d", orphans)
	}
}
