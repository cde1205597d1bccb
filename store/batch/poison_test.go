package batch_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/batch"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// longHex returns n random hex characters (incompressible enough that
// PostgreSQL's index size limit applies to them).
func longHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// poisoned returns a write PostgreSQL can never store, of kind k (0–3).
func poisoned(k int, tag string) store.Write {
	switch k % 4 {
	case 0: // 54000: index row size exceeds the btree maximum
		return storetest.StateWrite("evt_"+longHex(3000), "cus_p_"+tag, 0)
	case 1: // 22021: NUL byte
		return storetest.StateWrite("evt_pnul_"+tag, "cus_\x00"+tag, 0)
	case 2: // 22021: invalid UTF-8
		w := storetest.StateWrite("evt_putf8_"+tag, "cus_putf8_"+tag, 0)
		w.Event.Reason = "\xc3\x28"
		return w
	default: // 54000 on a route's object ID (a long dedup key is stored since migration 0006 indexes its digest)
		w := storetest.StateWrite("evt_proute_"+tag, "cus_proute_"+tag, 0)
		w.Routes = []string{"sub_" + longHex(3000)}
		return w
	}
}

func isInvalid(err error) bool {
	return errors.Is(err, store.ErrInvalidArgument) && !errors.Is(err, store.ErrUnavailable)
}

// Many callers commit at once through group commit, some with poisoned
// writes: every good write commits exactly once, every poisoned one is
// answered ErrInvalidArgument, and nothing else fails.
func TestGroupCommitPoisonIsolated(t *testing.T) {
	t.Parallel()
	inner := pgtest.NewStore(t)
	s := newBatch(t, inner, batch.Config{})
	const callers, rounds = 32, 6
	var (
		wg      sync.WaitGroup
		goodOK  atomic.Int64
		mu      sync.Mutex
		failure []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failure = append(failure, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				tag := fmt.Sprintf("%d_%d", c, r)
				if c%8 == 0 { // a quarter of the callers send poison
					if err := s.Commit(context.Background(), []store.Write{poisoned(c/8+r, tag)})[0]; !isInvalid(err) {
						fail("poisoned %s: got %v, want ErrInvalidArgument", tag, err)
					}
					continue
				}
				// The others commit a chain of two for their customer.
				chain := storetest.Chain("cus_"+tag, 0, "evt_a_"+tag, "evt_b_"+tag)
				for i, err := range s.Commit(context.Background(), chain) {
					if err != nil {
						fail("good %s write %d: got %v, want nil", tag, i, err)
						continue
					}
					goodOK.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for _, f := range failure {
		t.Error(f)
	}
	want := int64((callers - callers/8) * rounds * 2)
	if got := goodOK.Load(); got != want {
		t.Errorf("good writes committed: got %d, want %d", got, want)
	}
	events, _, err := inner.ListEvents(t.Context(), store.ListEventsFilter{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(events)) != want {
		t.Errorf("events stored: got %d, want %d", len(events), want)
	}
	if st := s.Stats(); st.MaxBatchSeen < 2 {
		t.Logf("no batch had more than one write (max %d): the test did not exercise group commit", st.MaxBatchSeen)
	}
}

// A batched load that includes a customer ID PostgreSQL cannot read (a
// NUL byte, invalid UTF-8) still loads the others; the poisoned one gets
// ErrInvalidArgument.
func TestLoadPoisonIsolated(t *testing.T) {
	t.Parallel()
	inner := &loadCounting{Store: pgtest.NewStore(t), gate: make(chan struct{})}
	s := newBatch(t, inner, batch.Config{})
	const n = 40
	for i := range n / 2 {
		id := fmt.Sprintf("cus_pl_%d", i)
		if err := s.Commit(t.Context(), []store.Write{storetest.StateWrite("evt_"+id, id, 0)})[0]; err != nil {
			t.Fatal(err)
		}
	}
	first := make(chan error, 1)
	go func() { _, err := s.GetCustomer(t.Context(), "cus_first"); first <- err }()
	waitFor(t, "the first query", func() bool { return inner.calls.Load() == 1 })

	ids := []string{"cus_\x00nul", "cus_\xffbad"}
	for i := range n {
		ids = append(ids, fmt.Sprintf("cus_pl_%d", i)) // the second half never written
	}
	slices.Reverse(ids[:n/2+1]) // the poisoned ones not first
	results := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.GetCustomer(t.Context(), id)
			if err == nil && c.CustomerID != id {
				err = fmt.Errorf("got customer %q", c.CustomerID)
			}
			results[i] = err
		}()
	}
	waitFor(t, "every reader to queue", func() bool { return s.QueuedLoads() == len(ids) })
	close(inner.gate)
	wg.Wait()
	if err := <-first; !errors.Is(err, store.ErrNotFound) {
		t.Errorf("first reader: got %v, want ErrNotFound", err)
	}
	for i, id := range ids {
		err := results[i]
		var n int
		_, _ = fmt.Sscanf(id, "cus_pl_%d", &n)
		switch {
		case !strings.HasPrefix(id, "cus_pl_"):
			if !isInvalid(err) {
				t.Errorf("GetCustomer(%q): got %v, want ErrInvalidArgument", id, err)
			}
		case n < 20 && err != nil:
			t.Errorf("GetCustomer(%q): got %v, want the customer", id, err)
		case n >= 20 && !errors.Is(err, store.ErrNotFound):
			t.Errorf("GetCustomer(%q) (never written): got %v, want ErrNotFound", id, err)
		}
	}
}

// failingGetter fails any query that includes a poisoned ID with an
// error of the given kind, and every query with down set.
type failingGetter struct {
	store.Store
	poison string
	err    error
	down   atomic.Bool
	calls  atomic.Int64
	gate   chan struct{} // a query with the ID "hold" waits for it
}

func (f *failingGetter) GetCustomers(_ context.Context, ids []string) (map[string]store.Customer, error) {
	f.calls.Add(1)
	if slices.Contains(ids, "hold") {
		<-f.gate
	}
	if f.down.Load() {
		return nil, fmt.Errorf("get customers: %w: connection refused", store.ErrUnavailable)
	}
	if slices.Contains(ids, f.poison) {
		return nil, f.err
	}
	found := map[string]store.Customer{}
	for _, id := range ids {
		found[id] = store.Customer{CustomerID: id, Version: 1}
	}
	return found, nil
}

// A batched load failing with an error that is not known to be transient
// is split; the ID that fails alone gets ErrUnavailable (not permanent:
// the error is not known to follow from its data), the others load. A
// transient failure is not split, and everyone gets ErrUnavailable.
func TestLoadSplitsUnknownFailure(t *testing.T) {
	t.Parallel()
	inner := &failingGetter{Store: openSQLite(t), poison: "cus_odd", err: errors.New("something odd")}
	s := newBatch(t, inner, batch.Config{})
	ids := []string{"cus_a", "cus_b", "cus_odd", "cus_c", "cus_d", "cus_e"}
	got := loadAll(t, s, inner, ids)
	for i, id := range ids {
		switch err := got[i]; {
		case id == "cus_odd" && (!errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrInvalidArgument)):
			t.Errorf("GetCustomer(%s): got %v, want ErrUnavailable", id, err)
		case id != "cus_odd" && err != nil:
			t.Errorf("GetCustomer(%s): got %v, want nil", id, err)
		}
	}

	inner.down.Store(true)
	before := inner.calls.Load()
	for i, err := range loadAll(t, s, inner, ids) {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("down: GetCustomer(%s): got %v, want ErrUnavailable", ids[i], err)
		}
	}
	// The held query and the one that read them all.
	if calls := inner.calls.Load() - before; calls != 2 {
		t.Errorf("an outage took %d queries for one batch of loads; want no split", calls)
	}
}

// loadAll reads ids concurrently, in one query: it holds a first query
// until they are all queued behind it. It returns each one's error.
func loadAll(t *testing.T, s *batch.Store, inner *failingGetter, ids []string) []error {
	t.Helper()
	inner.gate = make(chan struct{})
	calls := inner.calls.Load()
	held := make(chan struct{})
	go func() { _, _ = s.GetCustomer(t.Context(), "hold"); close(held) }()
	waitFor(t, "the held query", func() bool { return inner.calls.Load() == calls+1 })
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	defer func() { <-held }()
	defer wg.Wait()
	defer close(inner.gate)
	defer waitFor(t, "every reader to queue", func() bool { return s.QueuedLoads() == len(ids) })
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.GetCustomer(t.Context(), id)
		}()
	}
	return errs
}
