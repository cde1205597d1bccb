package actors

import (
	"context"
	"sync"
	"time"

	"github.com/hookd/hookd/internal/grainpb"
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
type applyQueues struct {
	mu     sync.Mutex
	byCust map[string][]*queuedApply // present while the customer has a request in flight
}

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
// per event, in order.
type sendFunc func(ctx context.Context, customerID string, reqs []*grainpb.ApplyRequest) ([]*grainpb.ApplyResponse, error)

// apply queues req for customerID, starts a sender for the customer if
// none is running, and waits for the answer or for ctx.
func (q *applyQueues) apply(ctx context.Context, customerID string, req *grainpb.ApplyRequest, send sendFunc) (*grainpb.ApplyResponse, error) {
	a := &queuedApply{ctx: ctx, req: req, done: make(chan queuedAnswer, 1)}
	q.mu.Lock()
	if q.byCust == nil {
		q.byCust = map[string][]*queuedApply{}
	}
	waiting, busy := q.byCust[customerID]
	q.byCust[customerID] = append(waiting, a)
	q.mu.Unlock()
	if !busy {
		go q.drain(customerID, send)
	}
	select {
	case ans := <-a.done:
		return ans.resp, ans.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// drain sends the customer's waiting events, up to maxApplyBatch per
// request, until none are left; then the customer has no sender.
func (q *applyQueues) drain(customerID string, send sendFunc) {
	for {
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
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if !forever {
			ctx, cancel = context.WithDeadline(ctx, deadline)
		}
		resps, err := send(ctx, customerID, reqs)
		cancel()
		for i, a := range live {
			if err != nil {
				a.done <- queuedAnswer{err: err}
			} else {
				a.done <- queuedAnswer{resp: resps[i]}
			}
		}
	}
}
