package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/sqlite"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envCrashDir); dir != "" {
		if err := crashWriter(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// open opens and migrates the store in dir, and closes it when the test
// finishes (closing twice is fine).
func open(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), dir, nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// setup returns a migrated store in a fresh directory, and the directory.
func setup(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	dir := t.TempDir()
	return open(t, dir), dir
}

// TestContract runs the backend-independent store contract tests.
func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := setup(t)
		return s
	})
}

// TestDeliveryContract runs the backend-independent delivery contract tests.
func TestDeliveryContract(t *testing.T) {
	t.Parallel()
	storetest.RunDelivery(t, func(t *testing.T) store.Store {
		s, _ := setup(t)
		return s
	})
}

// TestBackfillContract runs the backend-independent backfill contract
// tests; the shared ones open a second store in the same directory.
func TestBackfillContract(t *testing.T) {
	t.Parallel()
	storetest.RunBackfill(t, func(t *testing.T) store.Store {
		s, _ := setup(t)
		return s
	})
	storetest.RunBackfillShared(t, func(t *testing.T) (store.Store, func() store.Store) {
		s, dir := setup(t)
		return s, func() store.Store { return open(t, dir) }
	})
}

// appliedMigrations returns the versions recorded in schema_migrations,
// read through a connection of the test's own.
func appliedMigrations(t *testing.T, dir string) []int {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	t.Parallel()
	s, dir := setup(t)
	before := appliedMigrations(t, dir)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: got %v, want nil", err)
	}
	after := appliedMigrations(t, dir)
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) || len(after) != len(entries) {
		t.Errorf("schema_migrations: got %v after %v, want %d versions, unchanged", after, before, len(entries))
	}
}

func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const starters = 4
	var wg sync.WaitGroup
	errs := make([]error, starters)
	for i := range starters {
		wg.Go(func() {
			// A store each, as separate processes would have.
			s, err := sqlite.Open(t.Context(), dir, nil)
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
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if got := appliedMigrations(t, dir); len(got) != len(entries) {
		t.Errorf("schema_migrations: got %v, want %d versions, each once", got, len(entries))
	}
}

func TestOpenCreatesPrivateDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "hookd-data")
	s := open(t, dir)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("data dir mode: got %v, want no access for group and others", perm)
	}
	if want := filepath.Join(dir, sqlite.FileName); !strings.HasSuffix(s.Path(), want) {
		t.Errorf("Path: got %q, want it to end in %q", s.Path(), want)
	}
}

// TestOpenOddPath opens a store in a directory whose name would break a
// carelessly built URI.
func TestOpenOddPath(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "we?ird #dir %41")
	s := open(t, dir)
	mustCommit(t, s, storetest.StateWrite("evt_1", "cus_1", 0))
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func mustCommit(t testing.TB, s store.Store, ws ...store.Write) {
	t.Helper()
	for i, err := range s.Commit(t.Context(), ws) {
		if err != nil {
			t.Fatalf("Commit(%s): got %v, want nil", ws[i].Event.EventID, err)
		}
	}
}

// TestReopenKeepsData closes a store and opens it again: everything
// committed is there, and a notification cursor read before resumes where
// it left off.
func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	s, dir := setup(t)
	for v := range int64(3) {
		w := storetest.StateWrite(fmt.Sprintf("evt_%d", v), "cus_1", v)
		w.Routes = []string{"sub_1"}
		w.Event.DedupKey = fmt.Sprintf("k%d", v)
		mustCommit(t, s, w)
	}
	ns, err := s.ReadNotifications(t.Context(), "", "", 100)
	if err != nil || len(ns) != 3 {
		t.Fatalf("ReadNotifications: got %d, %v; want 3", len(ns), err)
	}
	cursor := ns[len(ns)-1].Cursor
	before, err := s.GetEvent(t.Context(), "stripe", "evt_1")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()

	s = open(t, dir)
	c, err := s.GetCustomer(t.Context(), "cus_1")
	if err != nil || c.Version != 3 || string(c.State) != "state after evt_2" {
		t.Errorf("GetCustomer after reopen: got %+v, %v; want version 3 with evt_2's state", c, err)
	}
	after, err := s.GetEvent(t.Context(), "stripe", "evt_1")
	if err != nil || fmt.Sprintf("%+v", after) != fmt.Sprintf("%+v", before) {
		t.Errorf("GetEvent after reopen: got %+v, %v\nwant %+v", after, err, before)
	}
	if got, err := s.LookupRoute(t.Context(), "sub_1"); err != nil || got != "cus_1" {
		t.Errorf("LookupRoute after reopen: got %q, %v; want cus_1", got, err)
	}
	// The dedup key survives too.
	dup := storetest.StateWrite("evt_dup", "cus_1", 3)
	dup.Event.DedupKey = "k0"
	if err := s.Commit(t.Context(), []store.Write{dup})[0]; !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Commit with a dedup key stored before reopen: got %v, want ErrDuplicate", err)
	}

	if more, err := s.ReadNotifications(t.Context(), cursor, "", 100); err != nil || len(more) != 0 {
		t.Errorf("ReadNotifications after the old cursor, nothing new: got %v, %v; want none", more, err)
	}
	mustCommit(t, s, storetest.StateWrite("evt_3", "cus_1", 3))
	more, err := s.ReadNotifications(t.Context(), cursor, "", 100)
	if err != nil || len(more) != 1 || more[0].EventID != "evt_3" || more[0].Version != 4 {
		t.Errorf("ReadNotifications after the old cursor: got %+v, %v; want evt_3 at version 4", more, err)
	}
	if len(more) == 1 {
		before, _ := strconv.ParseInt(cursor, 10, 64)
		after, _ := strconv.ParseInt(more[0].Cursor, 10, 64)
		if after <= before {
			t.Errorf("cursor after reopen: got %q, want one after %q", more[0].Cursor, cursor)
		}
	}
}

// TestCommitConcurrent commits from many goroutines at once, some to
// customers of their own and some racing for one shared customer (reload
// and retry when fenced), and checks that the writer serialized them: every
// version appears once, in order, in the notifications.
func TestCommitConcurrent(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	const own, perOwn = 16, 30
	const racers, perRacer = 4, 15
	var wg sync.WaitGroup
	errc := make(chan error, own+racers)
	for g := range own {
		wg.Go(func() {
			cus := fmt.Sprintf("cus_%02d", g)
			for v := range int64(perOwn) {
				w := storetest.StateWrite(fmt.Sprintf("evt_%02d_%02d", g, v), cus, v)
				if err := s.Commit(t.Context(), []store.Write{w})[0]; err != nil {
					errc <- fmt.Errorf("Commit(%s): %w", w.Event.EventID, err)
					return
				}
			}
		})
	}
	for g := range racers {
		wg.Go(func() {
			for i := range perRacer {
				id := fmt.Sprintf("evt_shared_%d_%02d", g, i)
				for attempt := 0; ; attempt++ {
					var rv int64
					c, err := s.GetCustomer(t.Context(), "cus_shared")
					switch {
					case err == nil:
						rv = c.Version
					case !errors.Is(err, store.ErrNotFound):
						errc <- err
						return
					}
					err = s.Commit(t.Context(), []store.Write{storetest.StateWrite(id, "cus_shared", rv)})[0]
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrFenced) || attempt > 1000 {
						errc <- fmt.Errorf("Commit(%s) from version %d: %w", id, rv, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	if c, err := s.GetCustomer(t.Context(), "cus_shared"); err != nil || c.Version != racers*perRacer {
		t.Errorf("GetCustomer(cus_shared): got %+v, %v; want version %d", c, err, racers*perRacer)
	}
	ns := storetest.WaitNotifications(t, s, "", own*perOwn+racers*perRacer)
	last := make(map[string]int64)
	for _, n := range ns {
		if n.Version != last[n.CustomerID]+1 {
			t.Fatalf("%s: notification version %d after %d", n.CustomerID, n.Version, last[n.CustomerID])
		}
		last[n.CustomerID] = n.Version
	}
	if len(ns) != own*perOwn+racers*perRacer {
		t.Errorf("notifications: got %d, want %d", len(ns), own*perOwn+racers*perRacer)
	}
}

// TestCommitCanceledWhileQueued cancels contexts of calls that may be
// waiting behind others: each call either commits or fails with
// ErrUnavailable having written nothing.
func TestCommitCanceledWhileQueued(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	const callers = 32
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		ctx, cancel := context.WithCancel(t.Context())
		wg.Go(func() {
			errs[i] = s.Commit(ctx, []store.Write{storetest.StateWrite(fmt.Sprintf("evt_%02d", i), fmt.Sprintf("cus_%02d", i), 0)})[0]
		})
		if i%2 == 1 {
			cancel()
		} else {
			defer cancel()
		}
	}
	wg.Wait()
	for i, err := range errs {
		_, getErr := s.GetEvent(t.Context(), "stripe", fmt.Sprintf("evt_%02d", i))
		switch {
		case err == nil && getErr != nil:
			t.Errorf("call %d committed but GetEvent: %v", i, getErr)
		case err != nil && !errors.Is(err, store.ErrUnavailable):
			t.Errorf("call %d: got %v, want nil or ErrUnavailable", i, err)
		case err != nil && !errors.Is(getErr, store.ErrNotFound):
			t.Errorf("call %d failed (%v) but GetEvent: got %v, want ErrNotFound", i, err, getErr)
		case i%2 == 0 && err != nil:
			t.Errorf("call %d with a live context: got %v, want nil", i, err)
		}
	}
}

// TestCommitInvalidWrite checks that a write the store cannot take fails
// alone and permanently, rather than failing its batch as unavailable.
func TestCommitInvalidWrite(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	noID := storetest.StateWrite("", "cus_bad", 0)
	noCustomer := storetest.StateWrite("evt_nocus", "", 0)
	negative := storetest.StateWrite("evt_neg", "cus_neg", -1)
	good := storetest.StateWrite("evt_good", "cus_good", 0)
	errs := s.Commit(t.Context(), []store.Write{noID, noCustomer, negative, good})
	for i, err := range errs[:3] {
		if !errors.Is(err, store.ErrInvalidArgument) || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Commit result %d: got %v, want ErrInvalidArgument", i, err)
		}
	}
	if errs[3] != nil {
		t.Errorf("Commit result 3: got %v, want nil", errs[3])
	}
	// SQLite stores what PostgreSQL cannot, such as NUL bytes in text.
	nul := storetest.StateWrite("evt_\x00nul", "cus_\x00", 0)
	mustCommit(t, s, nul)
	if e, err := s.GetEvent(t.Context(), "stripe", "evt_\x00nul"); err != nil || e.CustomerID != "cus_\x00" {
		t.Errorf("GetEvent of an ID with a NUL byte: got %+v, %v", e, err)
	}
}

func TestInvalidArguments(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := t.Context()
	for _, c := range []string{"0", "1", "42", "9223372036854775807"} {
		if err := s.ValidateCursor(c); err != nil {
			t.Errorf("ValidateCursor(%q): got %v, want nil", c, err)
		}
	}
	for _, c := range []string{"x", "-1", "01", "+1", "1-2", " 1", "1 ", "9223372036854775808", "0x10", "1.0"} {
		if err := s.ValidateCursor(c); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("ValidateCursor(%q): got %v, want ErrInvalidArgument", c, err)
		}
		if _, err := s.ReadNotifications(ctx, c, "", 10); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("ReadNotifications(%q): got %v, want ErrInvalidArgument", c, err)
		}
	}
	for _, limit := range []int{0, -1} {
		if _, err := s.ReadNotifications(ctx, "", "", limit); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("ReadNotifications with limit %d: got %v, want ErrInvalidArgument", limit, err)
		}
	}
	for _, tok := range []string{"garbage!", "c2VxOg", "c2VxOjA", "c2VxOng", "bm9wZToxMg"} { // "seq:", "seq:0", "seq:x", "nope:12"
		_, _, err := s.ListEvents(ctx, store.ListEventsFilter{PageSize: 2, PageToken: tok})
		if !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("ListEvents with page token %q: got %v, want ErrInvalidArgument", tok, err)
		}
	}
	if _, _, err := s.ListEvents(ctx, store.ListEventsFilter{PageSize: 0}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("ListEvents with page size 0: got %v, want ErrInvalidArgument", err)
	}
}

// TestPageSizeCap checks that limits above 1000 are taken as 1000.
func TestPageSizeCap(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	const n = 1005
	ws := make([]store.Write, n)
	for i := range ws {
		ws[i] = storetest.StateWrite(fmt.Sprintf("evt_%04d", i), fmt.Sprintf("cus_%04d", i), 0)
	}
	mustCommit(t, s, ws...)
	ns, err := s.ReadNotifications(t.Context(), "", "", 5000)
	if err != nil || len(ns) != 1000 {
		t.Errorf("ReadNotifications with limit 5000: got %d, %v; want 1000", len(ns), err)
	}
	es, next, err := s.ListEvents(t.Context(), store.ListEventsFilter{PageSize: 5000})
	if err != nil || len(es) != 1000 || next == "" {
		t.Errorf("ListEvents with page size 5000: got %d, next %q, %v; want 1000 and a next page", len(es), next, err)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	s.Close()
	s.Close()
	if err := s.Commit(t.Context(), []store.Write{storetest.StateWrite("evt_1", "cus_1", 0)})[0]; !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Commit after Close: got %v, want ErrUnavailable", err)
	}
	if _, err := s.GetCustomer(t.Context(), "cus_1"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("GetCustomer after Close: got %v, want ErrUnavailable", err)
	}
	if _, err := s.ReadNotifications(t.Context(), "", "", 1); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("ReadNotifications after Close: got %v, want ErrUnavailable", err)
	}
	if err := s.Migrate(t.Context()); err == nil {
		t.Errorf("Migrate after Close: got nil, want an error")
	}
}
