package postgres_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres"
)

// TestDeliveryRaceTwoStores runs the delivery cycle for one endpoint over
// many customers from two stores on one database, as two members would:
// each enqueues, claims and completes concurrently with the other, its
// results shuffled, some released or retried, some completed a second
// time (from either store) after they took effect. Every notification
// ends as exactly one delivered delivery, each customer's deliveries are
// delivered in commit order, and no committed state has two pending
// deliveries of one customer, or queued ones and none pending.
func TestDeliveryRaceTwoStores(t *testing.T) {
	t.Parallel()
	const (
		customers = 60
		total     = 1500
		endpoint  = "ep_race2"
	)
	a, url := setup(t)
	b, err := postgres.Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	stores := []*postgres.Store{a, b}
	if _, err := a.CreateEndpoint(t.Context(), store.Endpoint{ID: endpoint, URL: "https://example.com"}); err != nil {
		t.Fatal(err)
	}

	var (
		wg        sync.WaitGroup
		errs      = make(chan error, 64)
		produced  atomic.Bool
		delivered atomic.Int64
		mu        sync.Mutex
		committed = map[string][]string{} // customer → event IDs in commit order
		order     = map[string][]string{} // customer → event IDs in delivery order
		eventOf   = map[string]string{}   // event ID → customer
	)
	deadline := time.Now().Add(90 * time.Second)
	over := func() bool { return delivered.Load() >= total || time.Now().After(deadline) }
	wg.Go(func() { // producer, in small random batches over random customers
		defer produced.Store(true)
		for left := total; left > 0; {
			k := min(left, 1+rand.IntN(8))
			var ns []storetest.Note
			for range k {
				ns = append(ns, storetest.Note{CustomerID: fmt.Sprintf("cus_%d", rand.IntN(customers)), Kind: "k"})
			}
			ids := storetest.CommitNotes(t, a, ns...)
			mu.Lock()
			for i, id := range ids {
				committed[ns[i].CustomerID] = append(committed[ns[i].CustomerID], id)
				eventOf[id] = ns[i].CustomerID
			}
			mu.Unlock()
			left -= k
			time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
		}
	})
	for i, s := range stores {
		wg.Go(func() { // enqueuer
			for !over() {
				r, _, err := s.Enqueue(t.Context(), endpoint, 1+rand.IntN(50))
				if err != nil {
					errs <- fmt.Errorf("store %d: Enqueue: %w", i, err)
					return
				}
				if r == 0 {
					time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				}
			}
		})
		for w := range 2 {
			wg.Go(func() { // worker
				owner := fmt.Sprintf("s%d-w%d", i, w)
				for !over() {
					cs, err := s.Claim(t.Context(), endpoint, owner, 1+rand.IntN(16), time.Minute)
					if err != nil {
						errs <- fmt.Errorf("%s: Claim: %w", owner, err)
						return
					}
					if len(cs) == 0 {
						time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
						continue
					}
					var rs, ok []store.Result
					for _, c := range cs {
						r := store.Result{Lease: c.Lease, Outcome: store.OutcomeDelivered, Attempt: store.Attempt{
							DeliveryID: c.ID, Attempt: c.Lease.Attempt, StartedAt: time.Now(), StatusCode: 200}}
						switch x := rand.IntN(100); {
						case x < 10:
							r.Outcome, r.NextAttemptAt = store.OutcomeReleased, time.Now()
						case x < 15:
							r.Outcome, r.NextAttemptAt = store.OutcomeRetry, time.Now()
							r.Attempt.StatusCode, r.Attempt.Error = 503, "HTTP 503"
						default:
							ok = append(ok, r)
						}
						rs = append(rs, r)
					}
					rand.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
					mu.Lock()
					for _, r := range ok {
						for _, c := range cs {
							if c.ID == r.Lease.DeliveryID {
								order[c.CustomerID] = append(order[c.CustomerID], c.Notification.EventID)
							}
						}
					}
					mu.Unlock()
					if err := s.Complete(t.Context(), rs); err != nil {
						errs <- fmt.Errorf("%s: Complete: %w", owner, err)
						return
					}
					delivered.Add(int64(len(ok)))
					if rand.IntN(4) == 0 { // again, from either store: the leases are gone, nothing changes
						if err := stores[rand.IntN(2)].Complete(t.Context(), rs); err != nil {
							errs <- fmt.Errorf("%s: second Complete: %w", owner, err)
							return
						}
					}
				}
			})
		}
	}
	var violations atomic.Int64
	wg.Go(func() { // checker: every committed state, one statement each
		conn := connect(t, url)
		for !over() {
			var bad int64
			err := conn.QueryRow(t.Context(), `
SELECT count(*) FROM (
    SELECT customer_id FROM deliveries WHERE endpoint_id = $1 AND status IN ('queued', 'pending')
    GROUP BY customer_id
    HAVING count(*) FILTER (WHERE status = 'pending') <> 1
) x`, endpoint).Scan(&bad)
			if err != nil {
				if !errors.Is(err, t.Context().Err()) {
					errs <- fmt.Errorf("checker: %w", err)
				}
				return
			}
			violations.Add(bad)
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := violations.Load(); n > 0 {
		t.Errorf("%d times a customer had queued deliveries and none pending, or two pending", n)
	}
	if !produced.Load() || delivered.Load() != total {
		t.Fatalf("delivered %d of %d", delivered.Load(), total)
	}

	ds := listDeliveries(t, a, store.DeliveryFilter{EndpointID: endpoint, PageSize: 1000})
	seen := map[string]int{}
	for _, d := range ds {
		seen[d.Notification.EventID]++
		if d.Status != store.DeliveryDelivered {
			t.Errorf("delivery %s of %s: %s, want delivered", d.ID, d.Notification.EventID, d.Status)
		}
		if eventOf[d.Notification.EventID] != d.CustomerID {
			t.Errorf("delivery %s: customer %s, notification of %s", d.ID, d.CustomerID, eventOf[d.Notification.EventID])
		}
	}
	if len(ds) != total || len(seen) != total {
		t.Errorf("%d deliveries of %d notifications, want %d of %d", len(ds), len(seen), total, total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("notification %s: %d deliveries, want 1", id, n)
		}
	}
	for c, want := range committed {
		if got := order[c]; !slices.Equal(got, want) {
			t.Errorf("%s: delivered in the order %v, committed %v", c, got, want)
		}
	}
}
