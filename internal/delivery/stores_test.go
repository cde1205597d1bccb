package delivery

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/storetest/backends"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
)

// The engine's tests run against the real stores: PostgreSQL (a fresh
// database per test, on the server pgtest names) and the embedded SQLite
// store (a fresh directory per test).

// backend is a real store: the event store that commits notifications and
// the delivery store the engine works on.
type backend = storetest.DeliveryBackend

// eachStore runs fn as a parallel subtest per backend, on a fresh store.
func eachStore(t *testing.T, fn func(t *testing.T, st backend)) {
	t.Helper()
	backends.Each(t, func(t *testing.T, st backends.Store) { fn(t, st) })
}

// waker is the engine's Waker in tests: commit wakes it, as the services'
// Wakeup is woken after the ingest commits.
type waker struct {
	mu sync.Mutex
	ch chan struct{}
}

func newWaker() *waker { return &waker{ch: make(chan struct{})} }

func (w *waker) C() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *waker) notify() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.ch)
	w.ch = make(chan struct{})
}

// commit puts the notifications into the store's outbox the way the ingest
// does: one Store.Commit write per notification, applying an event of the
// notification's customer at its version (so n.Version must follow the
// customer's previous write: 1, 2, …). The writes go in order, in Commit
// calls where a customer's consecutive writes are chained
// (AfterPrevious), so commit in one transaction. It wakes w, when set.
func commit(t *testing.T, st store.Store, w *waker, notes ...store.Notification) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var writes []store.Write
	seen := map[string]bool{}
	flush := func() {
		if len(writes) == 0 {
			return
		}
		for i, err := range st.Commit(ctx, writes) {
			if err != nil {
				t.Fatalf("Commit(%s): %v", writes[i].Event.EventID, err)
			}
		}
		writes, seen = writes[:0], map[string]bool{}
	}
	for _, n := range notes {
		// A customer's consecutive writes chain, as one actor commits
		// several events; otherwise a customer appears once per call.
		chain := len(writes) > 0 && writes[len(writes)-1].Event.CustomerID == n.CustomerID
		if (seen[n.CustomerID] && !chain) || len(writes) == 250 {
			flush()
			chain = false
		}
		seen[n.CustomerID] = true
		ev := storetest.Event(n.EventID, n.CustomerID)
		ev.Type, ev.Version = n.Kind, n.Version
		writes = append(writes, store.Write{
			Event:         ev,
			ReadVersion:   n.Version - 1,
			State:         n.Customer, // the actor's state is opaque to the store
			Notifications: []store.Notification{n},
			AfterPrevious: chain,
		})
	}
	flush()
	if w != nil {
		w.notify()
	}
}

// deliveries returns every delivery of the endpoint, oldest first.
func deliveries(t *testing.T, st store.DeliveryStore, endpointID string) []store.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all []store.Delivery
	f := store.DeliveryFilter{EndpointID: endpointID, PageSize: 1000}
	for {
		ds, next, err := st.ListDeliveries(ctx, f)
		if err != nil {
			t.Fatalf("ListDeliveries: %v", err)
		}
		all = append(all, ds...)
		if next == "" {
			break
		}
		f.PageToken = next
	}
	slices.Reverse(all)
	return all
}

// attempts returns every recorded attempt of a delivery, oldest first.
func attempts(t *testing.T, st store.DeliveryStore, deliveryID string) []store.Attempt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all []store.Attempt
	token := ""
	for {
		as, next, err := st.ListAttempts(ctx, deliveryID, 1000, token)
		if err != nil {
			t.Fatalf("ListAttempts(%s): %v", deliveryID, err)
		}
		all = append(all, as...)
		if next == "" {
			break
		}
		token = next
	}
	slices.Reverse(all)
	return all
}

// getEndpoint returns the endpoint as stored.
func getEndpoint(t *testing.T, st store.DeliveryStore, id string) store.Endpoint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep, err := st.GetEndpoint(ctx, id)
	if err != nil {
		t.Fatalf("GetEndpoint(%s): %v", id, err)
	}
	return ep
}

// waitFor polls cond until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ended reports whether the endpoint has n deliveries, all ended.
func ended(t *testing.T, st store.DeliveryStore, endpointID string, n int) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The backlog is one cheap query: skip the listing while work is left.
	bl, err := st.Backlog(ctx)
	if err != nil {
		t.Fatalf("Backlog: %v", err)
	}
	for _, b := range bl {
		if b.EndpointID == endpointID && b.Undelivered > 0 {
			return false
		}
	}
	ds := deliveries(t, st, endpointID)
	if len(ds) != n {
		return false
	}
	for _, d := range ds {
		if d.Status != store.DeliveryDelivered && d.Status != store.DeliveryFailed {
			return false
		}
	}
	return true
}

// errInjected is what failingComplete's Complete returns.
var errInjected = fmt.Errorf("test: Complete refused on purpose: %w", store.ErrUnavailable)

// failingComplete is a real store whose next Complete calls fail, as when
// the database is unreachable; every other call goes to the store.
type failingComplete struct {
	backend
	fails atomic.Int32 // Complete calls left to fail
	calls atomic.Int32 // Complete calls that failed
}

func (s *failingComplete) Complete(ctx context.Context, rs []store.Result) error {
	if s.fails.Add(-1) >= 0 {
		s.calls.Add(1)
		return errInjected
	}
	return s.backend.Complete(ctx, rs)
}
