package batch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/batch"
	"github.com/hookd/hookd/store/postgres/pgtest"
	"github.com/hookd/hookd/store/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newBatch wraps inner and closes the batch store (and so inner) when the
// test finishes.
func newBatch(t testing.TB, inner store.Store, cfg batch.Config) *batch.Store {
	t.Helper()
	s := batch.New(inner, cfg)
	t.Cleanup(s.Close)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// openSQLite returns a migrated embedded store in a temporary directory.
func openSQLite(t testing.TB) *sqlite.Store {
	t.Helper()
	lite, err := sqlite.Open(t.Context(), t.TempDir(), nil)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(lite.Close)
	if err := lite.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return lite
}

func TestContract(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		inner func(t *testing.T) store.Store
		cfg   batch.Config
	}{
		{"Postgres", func(t *testing.T) store.Store { return pgtest.NewStore(t) }, batch.Config{}},
		{"PostgresNoLinger", func(t *testing.T) store.Store { return pgtest.NewStore(t) }, batch.Config{MaxWait: -1}},
		{"PostgresPassThrough", func(t *testing.T) store.Store { return pgtest.NewStore(t) }, batch.Config{MaxBatch: 1}},
		{"SQLite", func(t *testing.T) store.Store { return openSQLite(t) }, batch.Config{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) store.Store { return newBatch(t, tt.inner(t), tt.cfg) })
		})
	}
}

// countingStore wraps a backend, counting and recording its Commit calls.
// If gate is non-nil, the first Commit waits until gate is closed before
// going on, which holds the committer so that callers pile up behind it.
type countingStore struct {
	store.Store
	gate     chan struct{}
	gateOnce sync.Once

	commits atomic.Int64
	closes  atomic.Int64

	mu      sync.Mutex // guards batches
	batches [][]string // event IDs of each Commit, in call order
}

func (c *countingStore) Commit(ctx context.Context, writes []store.Write) []error {
	c.commits.Add(1)
	ids := make([]string, len(writes))
	for i, w := range writes {
		ids[i] = w.Event.EventID
	}
	c.mu.Lock()
	c.batches = append(c.batches, ids)
	c.mu.Unlock()
	if c.gate != nil {
		first := false
		c.gateOnce.Do(func() { first = true })
		if first {
			<-c.gate
		}
	}
	return c.Store.Commit(ctx, writes)
}

func (c *countingStore) Close() {
	c.closes.Add(1)
	c.Store.Close()
}

// committed returns the event IDs of every write handed to the backend.
func (c *countingStore) committed() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.batches)
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// commitAll starts one goroutine per write, released together, each
// committing its write alone, and returns their results.
func commitAll(t *testing.T, s store.Store, writes []store.Write) []error {
	t.Helper()
	errs := make([]error, len(writes))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writes {
		wg.Go(func() {
			<-start
			errs[i] = s.Commit(t.Context(), writes[i:i+1])[0]
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// distinctWrites returns n first writes, each for a customer of its own.
func distinctWrites(prefix string, n int) []store.Write {
	writes := make([]store.Write, n)
	for i := range writes {
		cus := fmt.Sprintf("cus_%s_%d", prefix, i)
		writes[i] = storetest.StateWrite("evt_"+cus, cus, 0)
	}
	return writes
}

// TestBatching checks that concurrent single-write commits share backend
// transactions, and that MaxBatch 1 turns that off. It asserts counts,
// never durations.
func TestBatching(t *testing.T) {
	t.Parallel()
	const callers = 64

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		inner := &countingStore{Store: pgtest.NewStore(t)}
		s := newBatch(t, inner, batch.Config{})
		for i, err := range commitAll(t, s, distinctWrites("c", callers)) {
			if err != nil {
				t.Errorf("Commit %d: got %v, want nil", i, err)
			}
		}
		if got := inner.commits.Load(); got >= callers {
			t.Errorf("backend Commit calls: got %d, want fewer than %d", got, callers)
		}
		st := s.Stats()
		if st.Writes != callers || st.Commits != inner.commits.Load() {
			t.Errorf("Stats: got %+v, want %d writes in %d commits", st, callers, inner.commits.Load())
		}
		t.Logf("%d writes in %d transactions (largest %d)", st.Writes, st.Commits, st.MaxBatchSeen)
	})

	// With the committer held inside its first transaction, the other
	// callers all queue, and the next transaction takes every one of them.
	t.Run("Gated", func(t *testing.T) {
		t.Parallel()
		inner := &countingStore{Store: pgtest.NewStore(t), gate: make(chan struct{})}
		s := newBatch(t, inner, batch.Config{})
		writes := distinctWrites("g", callers)
		errs := make(chan error, callers)
		go func() { errs <- s.Commit(t.Context(), writes[:1])[0] }()
		waitFor(t, "the first commit", func() bool { return inner.commits.Load() == 1 })
		for i := 1; i < callers; i++ {
			go func() { errs <- s.Commit(t.Context(), writes[i:i+1])[0] }()
		}
		waitFor(t, "the other callers to queue", func() bool { return s.Queued() == callers-1 })
		const held = 50 * time.Millisecond
		time.Sleep(held) // the first transaction stays in the backend at least this long
		close(inner.gate)
		for range callers {
			if err := <-errs; err != nil {
				t.Errorf("Commit: got %v, want nil", err)
			}
		}
		if got := inner.commits.Load(); got != 2 {
			t.Errorf("backend Commit calls: got %d, want 2 (1 write, then %d)", got, callers-1)
		}
		if st := s.Stats(); st.MaxBatchSeen != callers-1 {
			t.Errorf("Stats.MaxBatchSeen: got %d, want %d", st.MaxBatchSeen, callers-1)
		}
		if st := s.Stats(); st.Busy < held {
			t.Errorf("Stats.Busy: got %v, want at least %v (the first transaction was held that long)", st.Busy, held)
		}
	})

	t.Run("MaxBatch1", func(t *testing.T) {
		t.Parallel()
		inner := &countingStore{Store: pgtest.NewStore(t)}
		s := newBatch(t, inner, batch.Config{MaxBatch: 1})
		for i, err := range commitAll(t, s, distinctWrites("p", callers)) {
			if err != nil {
				t.Errorf("Commit %d: got %v, want nil", i, err)
			}
		}
		if got := inner.commits.Load(); got != callers {
			t.Errorf("backend Commit calls: got %d, want %d", got, callers)
		}
		if st := s.Stats(); st.Commits != callers || st.MaxBatchSeen != 1 {
			t.Errorf("Stats: got %+v, want %d commits of 1 write", st, callers)
		}
	})

	// More writes queued than fit in one transaction are split across
	// transactions of at most MaxBatch writes.
	t.Run("MaxBatchBound", func(t *testing.T) {
		t.Parallel()
		inner := &countingStore{Store: pgtest.NewStore(t), gate: make(chan struct{})}
		s := newBatch(t, inner, batch.Config{MaxBatch: 8})
		writes := distinctWrites("b", 21)
		errs := make(chan error, len(writes))
		go func() { errs <- s.Commit(t.Context(), writes[:1])[0] }()
		waitFor(t, "the first commit", func() bool { return inner.commits.Load() == 1 })
		for i := 1; i < len(writes); i++ {
			go func() { errs <- s.Commit(t.Context(), writes[i:i+1])[0] }()
		}
		waitFor(t, "the other callers to queue", func() bool { return s.Queued() == len(writes)-1 })
		close(inner.gate)
		for range writes {
			if err := <-errs; err != nil {
				t.Errorf("Commit: got %v, want nil", err)
			}
		}
		var sizes []int
		for _, b := range inner.committed() {
			sizes = append(sizes, len(b))
		}
		if want := []int{1, 8, 8, 4}; !slices.Equal(sizes, want) {
			t.Errorf("batch sizes: got %v, want %v", sizes, want)
		}
	})
}

// TestIndependence puts a duplicate, a fenced write, two callers' writes
// for one customer and good writes into one transaction: each caller gets
// its own result, and only the good writes take effect.
func TestIndependence(t *testing.T) {
	t.Parallel()
	inner := &countingStore{Store: pgtest.NewStore(t), gate: make(chan struct{})}
	s := newBatch(t, inner, batch.Config{})
	ctx := t.Context()
	for _, w := range []store.Write{
		storetest.StateWrite("evt_old", "cus_old", 0),
		storetest.StateWrite("evt_fence", "cus_fence", 0),
	} {
		if err := inner.Store.Commit(ctx, []store.Write{w})[0]; err != nil {
			t.Fatalf("setup Commit(%s): %v", w.Event.EventID, err)
		}
	}

	// Hold the committer on a write of its own, then queue the callers one
	// by one so that their arrival order is known.
	held := make(chan error, 1)
	go func() { held <- s.Commit(ctx, []store.Write{storetest.StateWrite("evt_held", "cus_held", 0)})[0] }()
	waitFor(t, "the held commit", func() bool { return inner.commits.Load() == 1 })
	writes := []store.Write{
		storetest.StateWrite("evt_1", "cus_1", 0),
		storetest.StateWrite("evt_old", "cus_2", 0),   // duplicate event ID
		storetest.StateWrite("evt_3", "cus_3", 0),     //
		storetest.StateWrite("evt_4", "cus_fence", 0), // cus_fence is at version 1
		storetest.StateWrite("evt_5a", "cus_5", 0),    // first for cus_5: applied
		storetest.StateWrite("evt_5b", "cus_5", 0),    // second, same read version: fenced
		storetest.StateWrite("evt_6", "cus_6", 0),
	}
	want := []error{nil, store.ErrDuplicate, nil, store.ErrFenced, nil, store.ErrFenced, nil}
	results := make([]chan error, len(writes))
	for i := range writes {
		results[i] = make(chan error, 1)
		go func() { results[i] <- s.Commit(ctx, writes[i:i+1])[0] }()
		waitFor(t, fmt.Sprintf("caller %d to queue", i), func() bool { return s.Queued() == i+1 })
	}
	close(inner.gate)
	if err := <-held; err != nil {
		t.Fatalf("held Commit: %v", err)
	}
	for i := range writes {
		err := <-results[i]
		if (want[i] == nil && err != nil) || !errors.Is(err, want[i]) {
			t.Errorf("Commit(%s): got %v, want %v", writes[i].Event.EventID, err, want[i])
		}
	}

	var wantIDs []string
	for _, w := range writes {
		wantIDs = append(wantIDs, w.Event.EventID)
	}
	if got := inner.committed(); len(got) != 2 || !slices.Equal(got[1], wantIDs) {
		t.Fatalf("backend batches: got %v, want [[evt_held] %v] (one batch, arrival order)", got, wantIDs)
	}
	for cus, wantState := range map[string]string{
		"cus_1":     "state after evt_1",
		"cus_3":     "state after evt_3",
		"cus_5":     "state after evt_5a",
		"cus_6":     "state after evt_6",
		"cus_fence": "state after evt_fence",
	} {
		if c, err := s.GetCustomer(ctx, cus); err != nil || string(c.State) != wantState || c.Version != 1 {
			t.Errorf("GetCustomer(%s): got %+v, %v; want version 1, state %q", cus, c, err, wantState)
		}
	}
	if _, err := s.GetCustomer(ctx, "cus_2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCustomer(cus_2) of the duplicate: got %v, want ErrNotFound", err)
	}
	for _, id := range []string{"evt_4", "evt_5b"} {
		if _, err := s.GetEvent(ctx, "stripe", id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetEvent(%s) of a fenced write: got %v, want ErrNotFound", id, err)
		}
	}
}

// TestChains puts two callers' chains (store.Write.AfterPrevious) into
// one backend transaction: the first caller's chain fails at its first
// write and is skipped, and the second caller's chain, queued right behind
// it, still commits, although its first write has AfterPrevious set (which
// a call's first write ignores).
func TestChains(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		inner func(t *testing.T) store.Store
	}{
		{"Postgres", func(t *testing.T) store.Store { return pgtest.NewStore(t) }},
		{"SQLite", func(t *testing.T) store.Store { return openSQLite(t) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inner := &countingStore{Store: tt.inner(t), gate: make(chan struct{})}
			s := newBatch(t, inner, batch.Config{})
			ctx := t.Context()
			if err := inner.Store.Commit(ctx, []store.Write{storetest.StateWrite("evt_old", "cus_old", 0)})[0]; err != nil {
				t.Fatalf("setup Commit: %v", err)
			}

			held := make(chan error, 1)
			go func() { held <- s.Commit(ctx, []store.Write{storetest.StateWrite("evt_held", "cus_held", 0)})[0] }()
			waitFor(t, "the held commit", func() bool { return inner.commits.Load() == 1 })

			calls := [][]store.Write{
				storetest.Chain("cus_a", 0, "evt_old", "evt_a2", "evt_a3"), // a duplicate, then skipped
				storetest.Chain("cus_b", 0, "evt_b1", "evt_b2", "evt_b3"),
				storetest.Chain("cus_c", 0, "evt_c1"),
			}
			calls[1][0].AfterPrevious = true
			calls[2][0].AfterPrevious = true
			want := [][]error{
				{store.ErrDuplicate, store.ErrSkipped, store.ErrSkipped},
				{nil, nil, nil},
				{nil},
			}
			results := make([]chan []error, len(calls))
			var wantIDs []string
			for i := range calls {
				results[i] = make(chan []error, 1)
				go func() { results[i] <- s.Commit(ctx, calls[i]) }()
				waitFor(t, fmt.Sprintf("caller %d to queue", i), func() bool { return s.Queued() == i+1 })
				for _, w := range calls[i] {
					wantIDs = append(wantIDs, w.Event.EventID)
				}
			}
			close(inner.gate)
			if err := <-held; err != nil {
				t.Fatalf("held Commit: %v", err)
			}
			for i := range calls {
				errs := <-results[i]
				if len(errs) != len(want[i]) {
					t.Fatalf("caller %d: got %d results, want %d", i, len(errs), len(want[i]))
				}
				for k := range want[i] {
					if (want[i][k] == nil && errs[k] != nil) || !errors.Is(errs[k], want[i][k]) {
						t.Errorf("caller %d, Commit(%s): got %v, want %v", i, calls[i][k].Event.EventID, errs[k], want[i][k])
					}
				}
			}
			if got := inner.committed(); len(got) != 2 || !slices.Equal(got[1], wantIDs) {
				t.Fatalf("backend batches: got %v, want [[evt_held] %v] (one batch)", got, wantIDs)
			}
			if !calls[1][0].AfterPrevious || !calls[2][0].AfterPrevious {
				t.Errorf("the batch changed a caller's writes (AfterPrevious cleared)")
			}
			if c, err := s.GetCustomer(ctx, "cus_b"); err != nil || c.Version != 3 || string(c.State) != "state after evt_b3" {
				t.Errorf("GetCustomer(cus_b): got %+v, %v; want version 3 with evt_b3's state", c, err)
			}
			if c, err := s.GetCustomer(ctx, "cus_c"); err != nil || c.Version != 1 {
				t.Errorf("GetCustomer(cus_c): got %+v, %v; want version 1", c, err)
			}
			if _, err := s.GetCustomer(ctx, "cus_a"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetCustomer(cus_a): got %v, want ErrNotFound", err)
			}
		})
	}

	// A call with more writes than MaxBatch goes to the backend whole, in
	// one Commit: a chain is never split across transactions.
	t.Run("NotSplit", func(t *testing.T) {
		t.Parallel()
		inner := &countingStore{Store: openSQLite(t)}
		s := newBatch(t, inner, batch.Config{MaxBatch: 2})
		writes := storetest.Chain("cus_n", 0, "evt_n1", "evt_n2", "evt_n3", "evt_n4", "evt_n5")
		for i, err := range s.Commit(t.Context(), writes) {
			if err != nil {
				t.Errorf("Commit result %d: got %v, want nil", i, err)
			}
		}
		if got := inner.committed(); len(got) != 1 || len(got[0]) != len(writes) {
			t.Errorf("backend batches: got %v, want one of %d writes", got, len(writes))
		}
	})
}

// TestCancelWhileQueued cancels a caller whose write waits behind a slow
// transaction: it gets ErrUnavailable at once, and its write never reaches
// the backend.
func TestCancelWhileQueued(t *testing.T) {
	t.Parallel()
	inner := &countingStore{Store: pgtest.NewStore(t), gate: make(chan struct{})}
	s := newBatch(t, inner, batch.Config{})

	held := make(chan error, 1)
	go func() {
		held <- s.Commit(t.Context(), []store.Write{storetest.StateWrite("evt_held", "cus_held", 0)})[0]
	}()
	waitFor(t, "the held commit", func() bool { return inner.commits.Load() == 1 })

	ctx, cancel := context.WithCancel(t.Context())
	canceled := make(chan error, 1)
	go func() { canceled <- s.Commit(ctx, []store.Write{storetest.StateWrite("evt_gone", "cus_gone", 0)})[0] }()
	waitFor(t, "the caller to queue", func() bool { return s.Queued() == 1 })
	cancel()
	// Answered while the committer is still held.
	if err := <-canceled; !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Commit: got %v, want ErrUnavailable wrapping context.Canceled", err)
	}

	close(inner.gate)
	if err := <-held; err != nil {
		t.Errorf("held Commit: got %v, want nil", err)
	}
	// A later write goes through, after the withdrawn one was dropped.
	after := storetest.StateWrite("evt_after", "cus_after", 0)
	if err := s.Commit(t.Context(), []store.Write{after})[0]; err != nil {
		t.Errorf("Commit(evt_after): got %v, want nil", err)
	}
	for _, b := range inner.committed() {
		if slices.Contains(b, "evt_gone") {
			t.Errorf("backend got the canceled write: batches %v", inner.committed())
		}
	}
	if _, err := s.GetEvent(t.Context(), "stripe", "evt_gone"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetEvent(evt_gone): got %v, want ErrNotFound", err)
	}
}

// TestCancelAfterHandover cancels a caller whose write the backend is
// already committing: the write still commits and the caller is told so.
func TestCancelAfterHandover(t *testing.T) {
	t.Parallel()
	inner := &countingStore{Store: pgtest.NewStore(t), gate: make(chan struct{})}
	s := newBatch(t, inner, batch.Config{})

	ctx, cancel := context.WithCancel(t.Context())
	res := make(chan error, 1)
	go func() { res <- s.Commit(ctx, []store.Write{storetest.StateWrite("evt_1", "cus_1", 0)})[0] }()
	waitFor(t, "the commit", func() bool { return inner.commits.Load() == 1 })
	cancel()
	close(inner.gate)
	if err := <-res; err != nil {
		t.Errorf("Commit canceled after handover: got %v, want nil (the write committed)", err)
	}
	if c, err := s.GetCustomer(t.Context(), "cus_1"); err != nil || c.Version != 1 {
		t.Errorf("GetCustomer(cus_1): got %+v, %v; want version 1", c, err)
	}
}

// fakeStore is an in-memory backend whose Commit succeeds for every write.
type fakeStore struct {
	store.Store // nil: only Commit and Close are used
	closes      atomic.Int64
}

func (f *fakeStore) Commit(_ context.Context, writes []store.Write) []error {
	return make([]error, len(writes))
}

func (f *fakeStore) Close() { f.closes.Add(1) }

func TestClose(t *testing.T) {
	t.Parallel()
	for _, maxBatch := range []int{0, 1} {
		t.Run(fmt.Sprintf("MaxBatch%d", maxBatch), func(t *testing.T) {
			t.Parallel()
			inner := &fakeStore{}
			s := batch.New(inner, batch.Config{MaxBatch: maxBatch})
			if err := s.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			w := storetest.StateWrite("evt_1", "cus_1", 0)
			if err := s.Commit(t.Context(), []store.Write{w})[0]; err != nil {
				t.Fatalf("Commit before Close: got %v, want nil", err)
			}
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(s.Close)
			}
			wg.Wait()
			s.Close()
			if got := inner.closes.Load(); got != 1 {
				t.Errorf("backend Close calls: got %d, want 1", got)
			}
			err := s.Commit(t.Context(), []store.Write{w})[0]
			if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, batch.ErrClosed) {
				t.Errorf("Commit after Close: got %v, want ErrUnavailable and ErrClosed", err)
			}
		})
	}

	// Writes queued when Close is called are committed before it returns.
	t.Run("DrainsQueue", func(t *testing.T) {
		t.Parallel()
		inner := &countingStore{Store: &fakeStore{}, gate: make(chan struct{})}
		s := batch.New(inner, batch.Config{})
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		res := make(chan error, 2)
		go func() { res <- s.Commit(t.Context(), distinctWrites("d1", 1))[0] }()
		waitFor(t, "the held commit", func() bool { return inner.commits.Load() == 1 })
		go func() { res <- s.Commit(t.Context(), distinctWrites("d2", 1))[0] }()
		waitFor(t, "the caller to queue", func() bool { return s.Queued() == 1 })
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		select {
		case <-closed:
			t.Fatal("Close returned while a commit was in progress")
		case <-time.After(10 * time.Millisecond):
		}
		close(inner.gate)
		<-closed
		for range 2 {
			if err := <-res; err != nil {
				t.Errorf("Commit queued at Close: got %v, want nil", err)
			}
		}
		if got := inner.commits.Load(); got != 2 {
			t.Errorf("backend Commit calls: got %d, want 2", got)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, cfg := range []batch.Config{{MaxBatch: -1}, {CommitTimeout: -time.Second}} {
		if err := cfg.Validate(); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("Validate(%+v): got %v, want ErrInvalidArgument", cfg, err)
		}
	}
	if err := (batch.Config{}).Validate(); err != nil {
		t.Errorf("Validate of the zero Config: got %v, want nil", err)
	}
}

// TestLifecycle checks Start and Close: New starts nothing, Commit before
// Start fails as unavailable, Start twice is an error, and Close is safe
// before Start and after it.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	for _, maxBatch := range []int{1, 0} {
		t.Run(fmt.Sprintf("MaxBatch%d", maxBatch), func(t *testing.T) {
			t.Parallel()
			s := batch.New(&fakeStore{}, batch.Config{MaxBatch: maxBatch})
			w := storetest.StateWrite("evt_1", "cus_1", 0)
			err := s.Commit(t.Context(), []store.Write{w})[0]
			if !errors.Is(err, batch.ErrNotStarted) || !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("Commit before Start: got %v, want ErrNotStarted and ErrUnavailable", err)
			}
			if err := s.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := s.Start(t.Context()); err == nil {
				t.Fatal("second Start: got nil, want an error")
			}
			if err := s.Commit(t.Context(), []store.Write{w})[0]; err != nil {
				t.Fatalf("Commit after Start: %v", err)
			}
			s.Close()
			s.Close()
			if err := s.Start(t.Context()); err == nil {
				t.Fatal("Start after Close: got nil, want an error")
			}
		})
	}
	t.Run("CloseBeforeStart", func(t *testing.T) {
		t.Parallel()
		s := batch.New(&fakeStore{}, batch.Config{})
		s.Close()
		if err := s.Start(t.Context()); err == nil {
			t.Fatal("Start after Close: got nil, want an error")
		}
	})
}

// A batch over a backend that cannot list customers says so.
func TestListCustomerIDsUnsupported(t *testing.T) {
	s := newBatch(t, &fakeStore{}, batch.Config{})
	if _, err := s.ListCustomerIDs(t.Context(), "", 10); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("ListCustomerIDs over a backend without it: %v, want ErrUnsupported", err)
	}
}
