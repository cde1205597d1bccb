package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hookd/hookd/store"
)

// memStore is an in-memory store.DeliveryStore for the engine's tests,
// keeping the contract that matters to the engine: one pending delivery
// per (endpoint, customer), the others queued in commit order and promoted
// when the head ends; leases; results recorded only under their lease;
// endpoint health. It is not a model of the SQL backends' paging.
type memStore struct {
	mu         sync.Mutex // guards the fields below
	endpoints  map[string]*store.Endpoint
	outbox     []store.Notification // Cursor is the index + 1, zero-padded
	deliveries map[string]*memDelivery
	order      []string // delivery IDs in enqueue order
	attempts   map[string][]store.Attempt
	nextID     int
	failNext   int           // Complete calls that fail before one works
	completes  int           // Complete calls that worked
	changed    chan struct{} // closed and replaced on every change
	commits    chan struct{} // closed and replaced by append (the Waker)
}

type memDelivery struct {
	store.Delivery
	owner string
	until time.Time
}

// errUnavailable is what a failing memStore call returns.
var errUnavailable = errors.New("memstore: unavailable (injected)")

func newMemStore() *memStore {
	return &memStore{
		endpoints:  map[string]*store.Endpoint{},
		deliveries: map[string]*memDelivery{},
		attempts:   map[string][]store.Attempt{},
		changed:    make(chan struct{}),
		commits:    make(chan struct{}),
	}
}

// notify wakes the waiters; s.mu must be held.
func (s *memStore) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// watch returns a channel closed at the next change.
func (s *memStore) watch() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// append adds notifications to the outbox, as a commit does.
func (s *memStore) append(notes ...store.Notification) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range notes {
		n.Cursor = fmt.Sprintf("%012d", len(s.outbox)+1)
		s.outbox = append(s.outbox, n)
	}
	s.notify()
	close(s.commits)
	s.commits = make(chan struct{})
}

// C returns a channel closed at the next append: memStore is the
// engine's Waker in tests.
func (s *memStore) C() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commits
}

// failCompletes makes the next n Complete calls fail.
func (s *memStore) failCompletes(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// deliveriesOf returns every delivery of an endpoint, in enqueue order.
func (s *memStore) deliveriesOf(endpointID string) []store.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Delivery
	for _, id := range s.order {
		if d := s.deliveries[id]; d.EndpointID == endpointID {
			out = append(out, d.Delivery)
		}
	}
	return out
}

// leased reports whether the delivery is leased and the lease not expired.
func (s *memStore) leased(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deliveries[id]
	return ok && d.owner != "" && time.Now().Before(d.until)
}

func (s *memStore) CreateEndpoint(_ context.Context, e store.Endpoint) (store.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.endpoints[e.ID]; ok {
		return store.Endpoint{}, store.ErrDuplicate
	}
	if e.Cursor == "" && len(s.outbox) > 0 {
		e.Cursor = s.outbox[len(s.outbox)-1].Cursor
	}
	if e.Origin == "" {
		e.Origin = "api"
	}
	e.CreatedAt, e.UpdatedAt = time.Now(), time.Now()
	s.endpoints[e.ID] = &e
	s.notify()
	return e, nil
}

func (s *memStore) UpsertEndpoint(ctx context.Context, e store.Endpoint) (store.Endpoint, error) {
	s.mu.Lock()
	old, ok := s.endpoints[e.ID]
	if !ok {
		s.mu.Unlock()
		return s.CreateEndpoint(ctx, e)
	}
	defer s.mu.Unlock()
	old.URL, old.Description, old.Kinds, old.CustomerIDs, old.Secrets, old.Origin = e.URL, e.Description, e.Kinds, e.CustomerIDs, e.Secrets, e.Origin
	old.UpdatedAt = time.Now()
	s.notify()
	return *old, nil
}

func (s *memStore) GetEndpoint(_ context.Context, id string) (store.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.endpoints[id]
	if !ok {
		return store.Endpoint{}, store.ErrNotFound
	}
	return *e, nil
}

func (s *memStore) ListEndpoints(context.Context) ([]store.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Endpoint
	for _, e := range s.endpoints {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b store.Endpoint) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (s *memStore) UpdateEndpoint(_ context.Context, id string, u store.EndpointUpdate) (store.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.endpoints[id]
	if !ok {
		return store.Endpoint{}, store.ErrNotFound
	}
	if u.URL != nil {
		e.URL = *u.URL
	}
	if u.Secrets != nil {
		e.Secrets = *u.Secrets
	}
	if u.Paused != nil {
		e.Paused = *u.Paused
	}
	if u.ClearDisabled {
		e.DisabledReason, e.DisabledAt, e.FailingSince = "", time.Time{}, time.Time{}
	}
	e.UpdatedAt = time.Now()
	s.notify()
	return *e, nil
}

func (s *memStore) DeleteEndpoint(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.endpoints[id]; !ok {
		return store.ErrNotFound
	}
	delete(s.endpoints, id)
	s.order = slices.DeleteFunc(s.order, func(did string) bool {
		if s.deliveries[did].EndpointID == id {
			delete(s.deliveries, did)
			delete(s.attempts, did)
			return true
		}
		return false
	})
	s.notify()
	return nil
}

func (s *memStore) DisableEndpoint(_ context.Context, id, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.endpoints[id]
	if !ok {
		return store.ErrNotFound
	}
	if e.DisabledReason == "" {
		e.DisabledReason, e.DisabledAt = reason, time.Now()
	}
	s.notify()
	return nil
}

// selects reports whether e's filter selects n.
func selects(e *store.Endpoint, n store.Notification) bool {
	return (len(e.Kinds) == 0 || slices.Contains(e.Kinds, n.Kind)) &&
		(len(e.CustomerIDs) == 0 || slices.Contains(e.CustomerIDs, n.CustomerID))
}

// headOf returns the pending delivery of (endpoint, customer), if any;
// s.mu must be held.
func (s *memStore) headOf(endpointID, customerID string) *memDelivery {
	for _, id := range s.order {
		d := s.deliveries[id]
		if d.EndpointID == endpointID && d.CustomerID == customerID && (d.Status == store.DeliveryPending || d.Status == store.DeliveryQueued) {
			return d
		}
	}
	return nil
}

func (s *memStore) Enqueue(_ context.Context, endpointID string, limit int) (int, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.endpoints[endpointID]
	if !ok {
		return 0, 0, store.ErrNotFound
	}
	if !e.Active() {
		return 0, 0, nil
	}
	start := 0
	if e.Cursor != "" {
		start, _ = slices.BinarySearchFunc(s.outbox, e.Cursor, func(n store.Notification, c string) int { return cmp.Compare(n.Cursor, c) })
		start++
	}
	read, created := 0, 0
	now := time.Now()
	for i := start; i < len(s.outbox) && read < limit; i++ {
		n := s.outbox[i]
		read++
		e.Cursor = n.Cursor
		if !selects(e, n) {
			continue
		}
		status := store.DeliveryPending
		if s.headOf(endpointID, n.CustomerID) != nil {
			status = store.DeliveryQueued
		}
		s.nextID++
		d := &memDelivery{Delivery: store.Delivery{
			ID: fmt.Sprintf("msg_%06d", s.nextID), EndpointID: endpointID, CustomerID: n.CustomerID,
			Notification: n, Status: status, NextAttemptAt: now, CreatedAt: now,
		}}
		s.deliveries[d.ID] = d
		s.order = append(s.order, d.ID)
		created++
	}
	if read > 0 {
		s.notify()
	}
	return read, created, nil
}

func (s *memStore) Claim(_ context.Context, endpointID, owner string, limit int, lease time.Duration) ([]store.Claimed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.endpoints[endpointID]
	if !ok || !e.Active() {
		return nil, nil
	}
	now := time.Now()
	var due []*memDelivery
	for _, id := range s.order {
		d := s.deliveries[id]
		if d.EndpointID == endpointID && d.Status == store.DeliveryPending && !d.NextAttemptAt.After(now) &&
			(d.owner == "" || !now.Before(d.until)) {
			due = append(due, d)
		}
	}
	slices.SortStableFunc(due, func(a, b *memDelivery) int { return a.NextAttemptAt.Compare(b.NextAttemptAt) })
	var out []store.Claimed
	for _, d := range due[:min(limit, len(due))] {
		d.Attempts++
		d.owner, d.until = owner, now.Add(lease)
		out = append(out, store.Claimed{Delivery: d.Delivery, Lease: store.Lease{DeliveryID: d.ID, Owner: owner, Attempt: d.Attempts}})
	}
	if len(out) > 0 {
		s.notify()
	}
	return out, nil
}

func (s *memStore) Complete(_ context.Context, results []store.Result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		return errUnavailable
	}
	now := time.Now()
	for _, r := range results {
		d, ok := s.deliveries[r.Lease.DeliveryID]
		if !ok {
			continue // deleted
		}
		if r.Outcome != store.OutcomeReleased {
			s.attempts[d.ID] = append(s.attempts[d.ID], r.Attempt)
		}
		if d.owner != r.Lease.Owner || d.Attempts != r.Lease.Attempt || d.Status != store.DeliveryPending {
			continue // the lease was lost
		}
		d.owner, d.until = "", time.Time{}
		e := s.endpoints[d.EndpointID]
		if r.Outcome != store.OutcomeReleased {
			d.Step++
			d.LastStatus, d.LastError = r.Attempt.StatusCode, r.Attempt.Error
			if r.Outcome == store.OutcomeDelivered {
				e.FailingSince = time.Time{}
			} else if e.FailingSince.IsZero() {
				e.FailingSince = now
			}
		}
		switch r.Outcome {
		case store.OutcomeDelivered, store.OutcomeFailed:
			d.Status, d.EndedAt = store.DeliveryDelivered, now
			if r.Outcome == store.OutcomeFailed {
				d.Status = store.DeliveryFailed
			}
			if next := s.headOf(d.EndpointID, d.CustomerID); next != nil {
				next.Status, next.NextAttemptAt = store.DeliveryPending, now
			}
		case store.OutcomeRetry, store.OutcomeReleased:
			d.NextAttemptAt = r.NextAttemptAt
		}
	}
	s.completes++
	s.notify()
	return nil
}

func (s *memStore) GetDelivery(_ context.Context, id string) (store.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deliveries[id]
	if !ok {
		return store.Delivery{}, store.ErrNotFound
	}
	return d.Delivery, nil
}

func (s *memStore) ListDeliveries(_ context.Context, f store.DeliveryFilter) ([]store.Delivery, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Delivery
	for i := len(s.order) - 1; i >= 0; i-- {
		d := s.deliveries[s.order[i]]
		if (f.EndpointID == "" || d.EndpointID == f.EndpointID) && (f.CustomerID == "" || d.CustomerID == f.CustomerID) &&
			(f.Status == "" || d.Status == f.Status) {
			out = append(out, d.Delivery)
		}
	}
	return out, "", nil // one page
}

func (s *memStore) ListAttempts(_ context.Context, id string, _ int, _ string) ([]store.Attempt, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.deliveries[id]; !ok {
		return nil, "", store.ErrNotFound
	}
	out := slices.Clone(s.attempts[id])
	slices.Reverse(out)
	return out, "", nil
}

func (s *memStore) Redeliver(_ context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deliveries[id]
	if !ok {
		return false, store.ErrNotFound
	}
	if d.Status != store.DeliveryFailed {
		return false, nil
	}
	// Pending if nothing else of its customer is, else queued (this
	// double does not reorder by commit position).
	d.Step, d.NextAttemptAt, d.EndedAt = 0, time.Now(), time.Time{}
	d.Status = store.DeliveryQueued
	if s.headOf(d.EndpointID, d.CustomerID) == d {
		d.Status = store.DeliveryPending
	}
	s.notify()
	return true, nil
}

func (s *memStore) RedeliverFailed(ctx context.Context, endpointID string, since time.Time) (int64, error) {
	var ids []string
	s.mu.Lock()
	for _, id := range s.order {
		d := s.deliveries[id]
		if d.EndpointID == endpointID && d.Status == store.DeliveryFailed && !d.EndedAt.Before(since) {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	var n int64
	for _, id := range ids {
		if ok, err := s.Redeliver(ctx, id); err != nil {
			return n, err
		} else if ok {
			n++
		}
	}
	return n, nil
}

func (s *memStore) Backlog(context.Context) ([]store.EndpointBacklog, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	by := map[string]*store.EndpointBacklog{}
	for id := range s.endpoints {
		by[id] = &store.EndpointBacklog{EndpointID: id}
	}
	for _, id := range s.order {
		d := s.deliveries[id]
		if d.Status != store.DeliveryPending && d.Status != store.DeliveryQueued {
			continue
		}
		b := by[d.EndpointID]
		b.Undelivered++
		if b.OldestCreatedAt.IsZero() || d.CreatedAt.Before(b.OldestCreatedAt) {
			b.OldestCreatedAt = d.CreatedAt
		}
	}
	var out []store.EndpointBacklog
	for _, b := range by {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b store.EndpointBacklog) int { return cmp.Compare(a.EndpointID, b.EndpointID) })
	return out, nil
}

var _ store.DeliveryStore = (*memStore)(nil)
