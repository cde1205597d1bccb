package delivery

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hookd/hookd/store"
)

// Direct delivery: on a store.DirectStore the engine sends new
// notifications before they have delivery rows, in batches, and stores
// each batch's deliveries once, with their outcomes (see
// store.DirectStore). A delivery that fails its first attempt is stored
// pending and retried from there through Claim and Complete, as are the
// notifications queued behind it; so are those whose customer already
// had something queued or pending when the batch was taken.
//
// One runner per endpoint takes batch after batch until it caught up. It
// sends a batch with the endpoint's free slots (Config.Concurrency less
// the claimed attempts in flight), one customer's notifications after
// another in commit order, and stops starting attempts once the batch has
// run for directBudget: what was not attempted by then is stored queued,
// or pending for its customer's head, so that one slow receiver does not
// hold a batch for long.
const (
	// directBatch is how many notifications one batch reads.
	directBatch = 500
	// directBudget is how long a batch starts attempts.
	directBudget = time.Second
)

// directRun is the state of an endpoint's runner, guarded by Engine.mu.
type directRun struct {
	// again: a pass found the runner busy; it takes another batch before
	// it ends, since a commit it has not read may have woken that pass.
	again bool
}

// directStore returns the engine's store as a DirectStore.
func (e *Engine) directStore() (store.DirectStore, bool) {
	ds, ok := e.cfg.Store.(store.DirectStore)
	return ds, ok
}

// startDirect starts the endpoint's runner unless it runs; a running one
// is told to take another batch.
func (e *Engine) startDirect(ctx context.Context, ds store.DirectStore, id string) {
	e.mu.Lock()
	if r, ok := e.direct[id]; ok {
		r.again = true
		e.mu.Unlock()
		return
	}
	r := &directRun{}
	e.direct[id] = r
	e.mu.Unlock()
	if err := e.grp.Go(func(ctx context.Context) { e.runDirect(ctx, ds, id, r) }); err != nil {
		e.mu.Lock()
		delete(e.direct, id)
		e.mu.Unlock()
	}
}

// runDirect takes, sends and stores the endpoint's batches until it
// caught up, its lease is another owner's, or the engine stops.
func (e *Engine) runDirect(ctx context.Context, ds store.DirectStore, id string, r *directRun) {
	for {
		if ctx.Err() != nil {
			e.endDirect(id)
			return
		}
		b, err := ds.TakeDirect(ctx, id, e.cfg.Owner, directBatch, e.cfg.Lease)
		if e.storeErr(ctx, "take_direct", id, err) || !b.Taken {
			e.endDirect(id)
			return
		}
		e.mu.Lock()
		e.held[id] = true
		e.mu.Unlock()
		if len(b.Items) > 0 || b.To != b.From {
			results := e.sendBatch(ctx, b)
			if !e.commitDirect(ctx, ds, b, results) {
				e.endDirect(id)
				return
			}
			e.poke() // heads stored pending are claimed
		}
		if b.Read < directBatch && !e.again(id) {
			return
		}
	}
}

// again reports (and clears) whether the runner was asked for another
// batch; when it was not, the runner ends, under the same lock.
func (e *Engine) again(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.direct[id]
	if r != nil && r.again {
		r.again = false
		return true
	}
	delete(e.direct, id)
	return false
}

// releaseDirect gives up the leases the engine took (at Stop, once the
// runners ended), so that another member need not wait for them to
// expire.
func (e *Engine) releaseDirect() {
	ds, ok := e.directStore()
	if !ok {
		return
	}
	e.mu.Lock()
	held := e.held
	e.held = map[string]bool{}
	e.mu.Unlock()
	for id := range held {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		if err := ds.ReleaseDirect(ctx, id, e.cfg.Owner); err != nil {
			e.cfg.Logger.Warn("cannot release the direct delivery lease; it expires", "endpoint_id", id, "err", err)
		}
		cancel()
	}
}

// endDirect forgets the endpoint's runner.
func (e *Engine) endDirect(id string) {
	e.mu.Lock()
	delete(e.direct, id)
	e.mu.Unlock()
}

// commitDirect stores a batch's results, retrying a store that is
// unavailable for as long as the lease lasts. It reports whether the
// runner goes on.
func (e *Engine) commitDirect(ctx context.Context, ds store.DirectStore, b store.DirectBatch, results []store.DirectResult) bool {
	// The attempts were made: store them even when the engine stops.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Lease)
	defer cancel()
	backoff := 50 * time.Millisecond
	for {
		err := ds.CommitDirect(cctx, b, results)
		switch {
		case err == nil:
			e.storeErr(ctx, "commit_direct", b.EndpointID, nil)
			return true
		case errors.Is(err, store.ErrLeaseLost):
			// Another owner takes the batch again; the receiver gets
			// these deliveries twice, with the same webhook-ids.
			e.cfg.Logger.WarnContext(ctx, "direct delivery batch taken over; its notifications are sent again",
				"endpoint_id", b.EndpointID, "notifications", len(b.Items))
			return true
		case errors.Is(err, store.ErrNotFound):
			return false // deleted
		}
		e.storeErr(ctx, "commit_direct", b.EndpointID, err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-cctx.Done():
			t.Stop()
			e.cfg.Logger.ErrorContext(ctx, "direct delivery results lost; the batch is sent again once its lease expires",
				"endpoint_id", b.EndpointID, "notifications", len(b.Items), "err", err)
			return false
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// sendBatch attempts the batch's items that may go now and returns every
// item's result: each customer's items in order, stopping at the first
// that does not end delivered; Busy items, and those left when the batch
// ran out of time, the endpoint became inactive or the engine stops, are
// not attempted.
func (e *Engine) sendBatch(ctx context.Context, b store.DirectBatch) []store.DirectResult {
	results := make([]store.DirectResult, len(b.Items))
	var order []string
	chains := map[string][]int{}
	for i, it := range b.Items {
		if it.Busy {
			continue
		}
		c := it.Notification.CustomerID
		if _, ok := chains[c]; !ok {
			order = append(order, c)
		}
		chains[c] = append(chains[c], i)
	}
	if len(order) == 0 {
		return results
	}
	e.mu.Lock()
	slots := min(max(e.cfg.Concurrency-e.inflight[b.EndpointID], 1), len(order))
	e.inflight[b.EndpointID] += slots
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.inflight[b.EndpointID] -= slots
		if e.inflight[b.EndpointID] <= 0 {
			delete(e.inflight, b.EndpointID)
		}
		e.mu.Unlock()
	}()

	taken := time.Now()
	deadline := taken.Add(directBudget)
	next := make(chan string, len(order))
	for _, c := range order {
		next <- c
	}
	close(next)
	var wg sync.WaitGroup
	for range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				for _, i := range chains[c] {
					if ctx.Err() != nil || time.Now().After(deadline) {
						break
					}
					if !e.attemptDirect(ctx, b.EndpointID, taken, b.Items[i], &results[i]) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	return results
}

// attemptDirect makes the first attempt of an item, into res, and reports
// whether it ended delivered (so that its customer's next may go). The
// delivery lag of a direct delivery counts from when its batch was taken
// (its enqueueing, on the other path).
func (e *Engine) attemptDirect(ctx context.Context, endpointID string, taken time.Time, it store.DirectItem, res *store.DirectResult) bool {
	ep, ok := e.activeEndpoint(endpointID)
	if !ok {
		return false // paused, disabled or deleted meanwhile
	}
	started := time.Now()
	rec := store.Attempt{DeliveryID: it.ID, Attempt: 1, StartedAt: started}
	body, err := payload(it.Notification)
	if err != nil {
		// No attempt can ever succeed: dead-letter it, visibly.
		rec.Error = err.Error()
		e.cfg.Logger.ErrorContext(ctx, "delivery failed: notification does not encode",
			"delivery_id", it.ID, "endpoint_id", ep.ID, "err", err)
		*res = store.DirectResult{Attempted: true, Outcome: store.OutcomeFailed, Attempt: rec}
		e.observe(store.OutcomeFailed, "", 0)
		return false
	}
	class, d := e.post(ctx, ep, 0, body, &rec)
	now := rec.StartedAt.Add(rec.Latency)
	if d.disable != "" {
		e.disable(ctx, ep.ID, d.disable)
	}
	if d.outcome == store.OutcomeFailed {
		e.cfg.Logger.WarnContext(ctx, "delivery failed: retry schedule exhausted", "delivery_id", it.ID,
			"endpoint_id", ep.ID, "customer_id", it.Notification.CustomerID, "attempts", 1, "last_error", rec.Error)
	}
	*res = store.DirectResult{Attempted: true, Outcome: d.outcome, Attempt: rec, NextAttemptAt: d.next}
	e.observe(d.outcome, class, rec.Latency)
	if e.met != nil && d.outcome == store.OutcomeDelivered {
		e.met.lag.Observe(now.Sub(taken).Seconds())
	}
	return d.outcome == store.OutcomeDelivered
}

// observe counts an outcome, and an attempt's answer class and latency
// (class "" when no request was made), in the metrics.
func (e *Engine) observe(o store.Outcome, class string, latency time.Duration) {
	if e.met == nil {
		return
	}
	e.met.outcome(o)
	if class != "" && latency > 0 {
		e.met.attempt.WithLabelValues(class).Observe(latency.Seconds())
	}
}
