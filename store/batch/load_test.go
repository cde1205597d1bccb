package batch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/batch"
	"github.com/hookd/hookd/store/postgres"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// loadCounting counts the backend's batched reads; the first waits for
// gate, so that the reads behind it queue.
type loadCounting struct {
	*postgres.Store
	calls    atomic.Int64
	gate     chan struct{}
	gateOnce sync.Once
}

func (l *loadCounting) GetCustomers(ctx context.Context, ids []string) (map[string]store.Customer, error) {
	l.calls.Add(1)
	l.gateOnce.Do(func() { <-l.gate })
	return l.Store.GetCustomers(ctx, ids)
}

// Many actors loading at once share queries, and each gets its own
// customer, or ErrNotFound for one never written.
func TestLoadsShareQueries(t *testing.T) {
	t.Parallel()
	inner := &loadCounting{Store: pgtest.NewStore(t), gate: make(chan struct{})}
	s := newBatch(t, inner, batch.Config{})
	const n = 200
	for i := range n / 2 {
		id := fmt.Sprintf("cus_load_%d", i)
		if err := s.Commit(t.Context(), []store.Write{storetest.StateWrite("evt_"+id, id, 0)})[0]; err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var started atomic.Int64
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("cus_load_%d", i) // the second half was never written
			started.Add(1)
			c, err := s.GetCustomer(t.Context(), id)
			switch {
			case i < n/2 && (err != nil || c.CustomerID != id || c.Version != 1 || string(c.State) != "state after evt_"+id):
				errs <- fmt.Errorf("%s: got %+v, %v", id, c, err)
			case i >= n/2 && !errors.Is(err, store.ErrNotFound):
				errs <- fmt.Errorf("%s (never written): got %v, want ErrNotFound", id, err)
			}
		}()
	}
	waitFor(t, "every reader to start and the first query to begin", func() bool { return started.Load() == n && inner.calls.Load() == 1 })
	time.Sleep(50 * time.Millisecond) // let the readers queue behind the held query
	close(inner.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if calls := inner.calls.Load(); calls > 3 {
		t.Errorf("%d reads took %d queries; want them to share (at most 3)", n, calls)
	}
}

// A reader that gives up gets its context's error at once; the others
// are still served.
func TestLoadCanceled(t *testing.T) {
	t.Parallel()
	inner := &loadCounting{Store: pgtest.NewStore(t), gate: make(chan struct{})}
	s := newBatch(t, inner, batch.Config{})
	first := make(chan error, 1)
	go func() { _, err := s.GetCustomer(t.Context(), "cus_a"); first <- err }()
	waitFor(t, "the first query", func() bool { return inner.calls.Load() == 1 })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.GetCustomer(ctx, "cus_b"); !errors.Is(err, context.Canceled) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("canceled reader got %v, want context.Canceled and ErrUnavailable", err)
	}
	close(inner.gate)
	if err := <-first; !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("first reader got %v, want ErrNotFound", err)
	}
}

// With batching off (MaxBatch 1) reads go straight to the backend's
// GetCustomer.
func TestLoadPassThrough(t *testing.T) {
	t.Parallel()
	inner := &loadCounting{Store: pgtest.NewStore(t), gate: make(chan struct{})}
	close(inner.gate)
	s := newBatch(t, inner, batch.Config{MaxBatch: 1})
	if _, err := s.GetCustomer(t.Context(), "cus_x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if inner.calls.Load() != 0 {
		t.Fatal("batched read with batching off")
	}
}
