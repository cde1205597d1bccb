package batch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/hookd/hookd/internal/startstop"
	"github.com/hookd/hookd/store"
)

// maxLoad bounds the customers read by one query.
const maxLoad = 256

// loads gathers concurrent GetCustomer calls into one query of the
// backend (store.CustomersGetter), as Commit gathers writes. Every actor
// that activates reads its customer's state once; when thousands activate
// at once — after a deploy, or when traffic reaches many customers for the
// first time — one query and one pooled connection per read made the
// loads cost twice what the commits did. While one query runs, the next
// callers queue, and the query after it reads them all. One ID the
// backend cannot read fails its query; the query is then split so that
// the others still load (see loadIsolated).
type loads struct {
	mu      sync.Mutex
	queue   []*loadRequest
	running bool // a goroutine is serving the queue
}

type loadRequest struct {
	ctx    context.Context
	id     string
	result chan loadResult // buffered: the loader never waits for a caller that has gone
}

type loadResult struct {
	c   store.Customer
	err error
}

// GetCustomer reads a customer from the backend, in one query with other
// callers' reads when the backend can (store.CustomersGetter) and
// batching is on; otherwise it calls the backend's GetCustomer.
func (s *Store) GetCustomer(ctx context.Context, customerID string) (store.Customer, error) {
	getter, ok := s.inner.(store.CustomersGetter)
	if !ok || s.cfg.MaxBatch == 1 {
		return s.inner.GetCustomer(ctx, customerID)
	}
	if err := ctx.Err(); err != nil {
		return store.Customer{}, fmt.Errorf("get customer %s: %w: %w", customerID, store.ErrUnavailable, err)
	}
	req := &loadRequest{ctx: ctx, id: customerID, result: make(chan loadResult, 1)}
	s.loads.mu.Lock()
	s.loads.queue = append(s.loads.queue, req)
	start := !s.loads.running
	s.loads.running = true
	s.loads.mu.Unlock()
	if start {
		s.mu.Lock()
		err := s.usable()
		if err == nil {
			// Close waits for the loader: it is the Store's (s.life).
			err = s.life.Go(func(context.Context) { s.serveLoads(getter) })
			if errors.Is(err, startstop.ErrStopped) {
				err = ErrClosed
			}
		}
		s.mu.Unlock()
		if err != nil {
			s.failLoads(err)
		}
	}
	select {
	case r := <-req.result:
		return r.c, r.err
	case <-ctx.Done():
		return store.Customer{}, fmt.Errorf("get customer %s: %w: %w", customerID, store.ErrUnavailable, ctx.Err())
	}
}

// serveLoads answers queued reads, up to maxLoad per query, until the
// queue is empty.
func (s *Store) serveLoads(getter store.CustomersGetter) {
	for {
		s.loads.mu.Lock()
		n := min(len(s.loads.queue), maxLoad)
		if n == 0 {
			s.loads.running = false
			s.loads.mu.Unlock()
			return
		}
		batch := s.loads.queue[:n:n]
		s.loads.queue = s.loads.queue[n:]
		s.loads.mu.Unlock()

		var ids []string
		for _, req := range batch {
			if req.ctx.Err() == nil {
				ids = append(ids, req.id)
			}
		}
		if len(ids) == 0 {
			continue
		}
		// The query runs under a context of its own: one caller giving up
		// must not fail the others' reads.
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CommitTimeout)
		found, failed := loadIsolated(ctx, getter, ids)
		cancel()
		for _, req := range batch {
			if err, ok := failed[req.id]; ok {
				req.result <- loadResult{err: fmt.Errorf("get customer %s: %w", req.id, err)}
				continue
			}
			if c, ok := found[req.id]; ok {
				req.result <- loadResult{c: c}
				continue
			}
			req.result <- loadResult{err: fmt.Errorf("customer %s: %w", req.id, store.ErrNotFound)}
		}
	}
}

// loadIsolated reads ids in one query, and when that query fails for a
// reason that is not known to be transient (it wraps
// store.ErrInvalidArgument, or not store.ErrUnavailable), reads each half
// of them apart, recursively, so that one ID the backend cannot read (a
// NUL byte in it, say) fails alone and the others load. It returns the
// customers found and an error for each ID that could not be read: an ID
// that fails alone keeps its error if it wraps store.ErrInvalidArgument
// (never readable) and gets one wrapping store.ErrUnavailable otherwise,
// so that no unexpected failure becomes a permanent answer. A transient
// failure fails every ID of the query, without splitting: splitting an
// outage only multiplies the queries.
func loadIsolated(ctx context.Context, getter store.CustomersGetter, ids []string) (map[string]store.Customer, map[string]error) {
	found, err := getter.GetCustomers(ctx, ids)
	if err == nil {
		return found, nil
	}
	permanent := errors.Is(err, store.ErrInvalidArgument)
	transient := !permanent && errors.Is(err, store.ErrUnavailable)
	if transient || len(ids) == 1 || ctx.Err() != nil {
		if !transient && !(permanent && len(ids) == 1) {
			// Not known to be this one ID's fault: retry it. (%v, so
			// that an ErrInvalidArgument of the whole query is not
			// taken for this ID's.)
			err = fmt.Errorf("%w: %v", store.ErrUnavailable, err)
		}
		failed := make(map[string]error, len(ids))
		for _, id := range ids {
			failed[id] = err
		}
		return nil, failed
	}
	h := len(ids) / 2
	found, failed := loadIsolated(ctx, getter, ids[:h])
	found2, failed2 := loadIsolated(ctx, getter, ids[h:])
	if found == nil {
		found = found2
	} else {
		maps.Copy(found, found2)
	}
	if failed == nil {
		failed = failed2
	} else {
		maps.Copy(failed, failed2)
	}
	return found, failed
}

// failLoads answers every queued read with cause (the Store is closed).
func (s *Store) failLoads(cause error) {
	s.loads.mu.Lock()
	queue := s.loads.queue
	s.loads.queue, s.loads.running = nil, false
	s.loads.mu.Unlock()
	for _, req := range queue {
		req.result <- loadResult{err: fmt.Errorf("get customer %s: %w: %w", req.id, store.ErrUnavailable, cause)}
	}
}
