package actors

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hookd/hookd/internal/grainpb"
	"github.com/hookd/hookd/internal/startstop"
)

// maxApplyBatch bounds the events one ApplyBatch carries. The grain
// commits them in one store call, and store/postgres takes a savepoint per
// write, of which PostgreSQL caches 64 per transaction.
const maxApplyBatch = 64

// applyQueues keeps at most one request per customer in flight from this
// process. A customer's grain handles one request at a time anyway, and
// each request ends in at least one commit; so while a request is in
// flight, later events for the same customer wait here, and the next
// request carries all of them, to be committed together. A hot customer
// then costs one commit per batch instead of one per event, and a quiet
// one is sent at once, as before.
//
// Order is kept: a customer's events leave in the order Apply was called.
// A caller whose context ends while its event waits is answered with the
// context's error, and the event is not sent.
//
// The first caller for a customer with nothing in flight sends itself;
// the queues own the drain goroutines that send what queued behind it
// (one per customer with events waiting): Start before apply; Stop ends
// the drains and the callers' sends, and every event waiting or in flight
// then is answered with ErrNotStarted.
type applyQueues struct {
	life startstop.Group // the drain goroutines

	mu     sync.Mutex
	byCust map[string][]*queuedApply // present while the customer has a request in flight
}

// Start lets apply start drains; their context ends with ctx or Stop.
func (q *applyQueues) Start(ctx context.Context) error { return q.life.Start(ctx) }

// Stop ends the drains, answering what they hold with ErrNotStarted, and
// waits for them. Safe twice and before Start.
func (q *applyQueues) Stop() { q.life.Stop() }

type queuedApply struct {
	ctx  context.Context
	req  *grainpb.ApplyRequest
	done chan queuedAnswer // buffered: the sender never blocks on it
}

type queuedAnswer struct {
	resp *grainpb.ApplyResponse
	err  error
}

// sendFunc delivers events to a customer's grain and returns one answer
// per event, in order. It gives up when ctx ends (the queues stop) or at
// deadline (when not zero), whichever comes first: the deadline is passed
// beside ctx rather than in it, which would cost a timer per request.
type sendFunc func(ctx context.Context, deadline time.Time, customerID string, reqs []*grainpb.ApplyRequest) ([]*grainpb.ApplyResponse, error)

// apply sends req for customerID, or queues it behind the customer's
// request in flight, and returns its answer.
//
// A customer with nothing in flight is sent to by the caller itself, on
// its own goroutine (a drain goroutine per event, and the hand-offs to it
// and back, were about 5% of hookd's CPU when most customers have one
// event at a time). Such a caller waits for its answer even if its ctx
// ends meanwhile (its deadline bounds the request, as in a drain); a
// caller that queued gets its ctx's error at once. Whatever queued behind
// the caller's request goes on in a drain goroutine.
func (q *applyQueues) apply(ctx context.Context, customerID string, req *grainpb.ApplyRequest, send sendFunc) (*grainpb.ApplyResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	if q.byCust == nil {
		q.byCust = map[string][]*queuedApply{}
	}
	if waiting, busy := q.byCust[customerID]; busy {
		a := &queuedApply{ctx: ctx, req: req, done: make(chan queuedAnswer, 1)}
		q.byCust[customerID] = append(waiting, a)
		q.mu.Unlock()
		select {
		case ans := <-a.done:
			return ans.resp, ans.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	q.byCust[customerID] = nil // in flight, nothing waiting
	q.mu.Unlock()

	var (
		resp *grainpb.ApplyResponse
		err  error
	)
	deadline, _ := ctx.Deadline() // none: the request has none either
	if derr := q.life.Do(func(stop context.Context) {
		var resps []*grainpb.ApplyResponse
		resps, err = send(stop, deadline, customerID, []*grainpb.ApplyRequest{req})
		switch {
		case err != nil && stop.Err() != nil:
			err = fmt.Errorf("request customer %s: %w", customerID, ErrNotStarted)
		case err == nil && len(resps) != 1:
			err = fmt.Errorf("request customer %s: %d answers to 1 event", customerID, len(resps))
		case err == nil:
			resp = resps[0]
		}
	}); derr != nil {
		err = fmt.Errorf("%w (%w)", ErrNotStarted, derr)
	}
	q.mu.Lock()
	if len(q.byCust[customerID]) == 0 {
		delete(q.byCust, customerID)
		q.mu.Unlock()
		return resp, err
	}
	q.mu.Unlock()
	if gerr := q.life.Go(func(ctx context.Context) { q.drain(ctx, customerID, send) }); gerr != nil {
		// Stopped: no drain will come for the customer, so answer
		// everything queued for it.
		q.failAll(customerID, fmt.Errorf("%w (%w)", ErrNotStarted, gerr))
	}
	return resp, err
}

// failAll answers every event queued for the customer with err and
// leaves the customer without a sender.
func (q *applyQueues) failAll(customerID string, err error) {
	q.mu.Lock()
	waiting := q.byCust[customerID]
	delete(q.byCust, customerID)
	q.mu.Unlock()
	for _, a := range waiting {
		a.done <- queuedAnswer{err: err}
	}
}

// drain sends the customer's waiting events, up to maxApplyBatch per
// request, until none are left; then the customer has no sender. When
// stop (the queues' context) ends, what is left is answered with
// ErrNotStarted.
func (q *applyQueues) drain(stop context.Context, customerID string, send sendFunc) {
	for {
		if stop.Err() != nil {
			q.failAll(customerID, fmt.Errorf("request customer %s: %w", customerID, ErrNotStarted))
			return
		}
		q.mu.Lock()
		waiting := q.byCust[customerID]
		if len(waiting) == 0 {
			delete(q.byCust, customerID)
			q.mu.Unlock()
			return
		}
		n := min(len(waiting), maxApplyBatch)
		batch := waiting[:n:n]
		q.byCust[customerID] = waiting[n:]
		q.mu.Unlock()

		// Callers that gave up are not sent; the request lasts as long
		// as the most patient of the others.
		live := batch[:0:0]
		reqs := make([]*grainpb.ApplyRequest, 0, n)
		var deadline time.Time
		forever := false
		for _, a := range batch {
			if a.ctx.Err() != nil {
				a.done <- queuedAnswer{err: a.ctx.Err()}
				continue
			}
			live = append(live, a)
			reqs = append(reqs, a.req)
			if dl, ok := a.ctx.Deadline(); !ok {
				forever = true
			} else if dl.After(deadline) {
				deadline = dl
			}
		}
		if len(live) == 0 {
			continue
		}
		if forever {
			deadline = time.Time{}
		}
		resps, err := send(stop, deadline, customerID, reqs)
		if err != nil && stop.Err() != nil {
			err = fmt.Errorf("request customer %s: %w", customerID, ErrNotStarted)
		}
		for i, a := range live {
			if err != nil {
				a.done <- queuedAnswer{err: err}
			} else {
				a.done <- queuedAnswer{resp: resps[i]}
			}
		}
	}
}
