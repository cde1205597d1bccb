// Package batch puts group commit in front of a [store.Store] backend:
// many callers' Commit calls, each with one write (or a few, chained by
// [store.Write.AfterPrevious]), are gathered into one call of the
// backend's Commit, that is one transaction.
//
// It exists because each customer actor commits its own events one at a
// time and waits for each to be durable (actors/customer), while many
// actors run at once. Committed one transaction per event, PostgreSQL
// spends its time on round trips, commit records and fsyncs, and tops out
// at about 2,000 events/s on a 2-core machine; with tens of events per
// transaction it does many times that. The flow is
//
//	customer actors ──Commit([]Write{w})──▶ batch.Store ──Commit(batch)──▶ store/postgres (or store/sqlite)
//
// A [Store] wraps a backend and implements [store.Store] itself: every
// method but Commit (and Close) goes straight to the backend. Commit
// queues the caller's writes and waits; one committer goroutine takes what
// is queued, hands it to the backend in one Commit, and gives each caller
// its own writes' results. The backend already guarantees that each write
// of a batch succeeds or fails on its own (a savepoint per write, and a
// split of the transaction when a failure cannot be pinned on one write;
// see [store.Store]), so one caller's duplicate, fence conflict or
// poisoned data never fails another caller. A caller's writes are never
// split across backend Commit calls, and its first
// write is never chained to the previous caller's last: the batch clears
// AfterPrevious on it, which the caller's own Commit would have ignored.
//
// Batches form by themselves under load: while one transaction commits,
// the next callers queue, and the committer takes them all as soon as it
// is free. At low load a lone write is committed at once. See
// [Config.MaxWait] for the short linger in between.
//
// store/sqlite already gathers concurrent commits internally (it has a
// single writer), so wrapping it gains little; the package is meant for
// PostgreSQL, where it also keeps one transaction in flight instead of one
// per pooled connection.
package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/internal/startstop"
	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/store"
)

// Defaults for the zero fields of [Config].
const (
	// DefaultMaxBatch matches the 64 subtransactions PostgreSQL caches per
	// transaction: store/postgres uses one savepoint per write, and beyond
	// 64 every other session's snapshots get slower.
	DefaultMaxBatch = 64
	// DefaultMaxWait is short next to a PostgreSQL commit (about 1–3 ms
	// with its fsync), so it costs little latency, and long enough for
	// callers answered by the previous batch to come back with their next
	// write. See Config.MaxWait and the package benchmarks.
	DefaultMaxWait = 500 * time.Microsecond
	// DefaultCommitTimeout bounds one backend Commit.
	DefaultCommitTimeout = 10 * time.Second
)

// ErrClosed is wrapped (together with [store.ErrUnavailable]) in the
// results of a Commit called after [Store.Close].
var ErrClosed = errors.New("batch store closed")

// ErrNotStarted is wrapped (together with [store.ErrUnavailable]) in the
// results of a Commit called before [Store.Start].
var ErrNotStarted = errors.New("batch store not started")

// Config configures a [Store]. The zero value is usable: zero fields take
// the defaults above.
type Config struct {
	// MaxBatch is the most writes given to the backend in one Commit;
	// 0 means DefaultMaxBatch. 1 turns batching off: Commit passes
	// straight through to the backend with the caller's context (the
	// `--commit-batch 1` comparison mode). A single call with more writes
	// than MaxBatch is committed on its own, not split.
	MaxBatch int
	// MaxWait is how long the committer, once free, may linger for more
	// writes before it commits a batch that is not full. It lingers only
	// while the batch has fewer writes than the previous one had, and
	// stops as soon as it has as many: a lone caller at low load never
	// waits, and under steady load the callers just answered by the
	// previous batch are given a moment to come back, so batches stay
	// full instead of alternating between large and tiny (which is what
	// happens without it: the stragglers of one batch make a tiny
	// transaction while everyone else queues behind it). 0 means
	// DefaultMaxWait; a negative value never lingers (commit whatever is
	// queued as soon as the previous commit returns).
	MaxWait time.Duration
	// CommitTimeout bounds each backend Commit, which runs under a
	// context of its own, not any caller's, so that one caller's
	// cancellation cannot abort the others' writes. 0 means
	// DefaultCommitTimeout. Not used when MaxBatch is 1.
	CommitTimeout time.Duration
	// Logger receives a warning when a whole batch fails. Nil discards.
	Logger *slog.Logger
	// Committed, if set, is called once after each backend Commit that
	// committed at least one write carrying notifications, before the
	// callers get their results; it runs on the committer's goroutine
	// and must not block. It is how a process wakes its notification
	// readers once per group commit rather than once per caller (every
	// customer actor of a batch of 64 used to wake them, and each
	// wake-up that found the readers mid-read made them read again).
	Committed func()
}

// withDefaults returns c with every zero field set to its default. It is
// the one place defaults are applied.
func (c Config) withDefaults() Config {
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = DefaultCommitTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports a field no default can fix: a negative MaxBatch or
// CommitTimeout. Zero fields are valid (they take defaults). Call it to
// turn flag values into an error before [New], which panics instead.
func (c Config) Validate() error {
	switch {
	case c.MaxBatch < 0:
		return fmt.Errorf("batch config: %w: MaxBatch %d is negative", store.ErrInvalidArgument, c.MaxBatch)
	case c.CommitTimeout < 0:
		return fmt.Errorf("batch config: %w: CommitTimeout %s is negative", store.ErrInvalidArgument, c.CommitTimeout)
	}
	return nil
}

// Stats counts what a [Store] handed to its backend. Writes/Commits is the
// mean number of writes per transaction.
type Stats struct {
	Commits      int64 // backend Commit calls
	Writes       int64 // writes in them
	MaxBatchSeen int64 // the most writes in one backend Commit
	// Busy is the time spent in backend Commit calls, summed. With one
	// committer its rate is the committer's utilization: near 1, writes
	// queue behind it and latency grows (with MaxBatch 1 the calls
	// overlap, and it can exceed the elapsed time).
	Busy time.Duration
}

// Request states. A request is queued until the committer takes it (just
// before the backend Commit) or its caller withdraws it (context done);
// whichever swaps the state first decides.
const (
	queued int32 = iota
	taken
	withdrawn
)

// request is one Commit call waiting in the queue.
type request struct {
	ctx    context.Context
	writes []store.Write
	state  atomic.Int32
	// result receives the call's results once; buffered, so that the
	// committer never waits for a caller that has gone.
	result chan []error
}

// Store is a [store.Store] that gathers concurrent Commit calls into
// shared backend transactions. It is safe for concurrent use. Create it
// with [New] and start it with [Store.Start]; [Store.Close] stops it and
// closes the backend.
type Store struct {
	inner store.Store
	cfg   Config

	mu      sync.Mutex // guards the fields below
	queue   []*request // Commit calls not yet taken, in arrival order
	started bool
	closed  bool

	// inflight counts pass-through commits (MaxBatch 1) in progress; Add
	// is called only under mu while !closed, so Close can Wait for them.
	inflight sync.WaitGroup

	wake chan struct{} // capacity 1: the queue grew

	// life owns the committer and the loaders (load.go); its context is
	// canceled by Close.
	life startstop.Group

	closeOnce sync.Once

	commits, writes, maxBatchSeen atomic.Int64
	busy                          atomic.Int64 // nanoseconds in backend Commit calls

	loads loads // GetCustomer calls gathered into one query (load.go)
}

var _ store.Store = (*Store)(nil)

// New returns a Store in front of inner, not yet started: call
// [Store.Start] before Commit. The Store owns inner from then on: Close
// closes it. New panics if cfg.Validate fails. It starts no goroutine.
func New(inner store.Store, cfg Config) *Store {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Store{
		inner: inner,
		cfg:   cfg.withDefaults(),
		wake:  make(chan struct{}, 1),
	}
}

// Start starts the committer goroutine (unless MaxBatch is 1), which runs
// until [Store.Close] — not until ctx ends: writes queued while the
// process shuts down still commit. Until Start, Commit fails with
// [ErrNotStarted]. A second Start, or a Start after Close, is an error.
func (s *Store) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.life.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("batch store: %w", err)
	}
	s.started = true
	if s.cfg.MaxBatch > 1 {
		if err := s.life.Go(s.run); err != nil {
			return fmt.Errorf("batch store: %w", err)
		}
	}
	return nil
}

// Commit queues writes for the next backend transaction and waits for
// their results: one per write, in order, exactly as the backend gave
// them (nil only once the write is durable). The writes go to the backend
// together, in one Commit, however many they are; AfterPrevious chains
// among them keep their meaning, and none reaches into another caller's
// writes.
//
// If ctx is done before the writes are handed to the backend, Commit
// returns errors wrapping [store.ErrUnavailable] and ctx's error, and the
// writes are never committed. Once handed over they commit or fail
// regardless of ctx, and Commit waits for the outcome (bounded by
// Config.CommitTimeout). After Close every result wraps
// store.ErrUnavailable and [ErrClosed].
func (s *Store) Commit(ctx context.Context, writes []store.Write) []error {
	if len(writes) == 0 {
		return []error{}
	}
	if s.cfg.MaxBatch == 1 {
		return s.commitDirect(ctx, writes)
	}
	if err := ctx.Err(); err != nil {
		return failAll(writes, err)
	}
	req := &request{ctx: ctx, writes: writes, result: make(chan []error, 1)}
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return failAll(writes, err)
	}
	s.queue = append(s.queue, req)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // the committer has a wake-up pending already
	}

	select {
	case errs := <-req.result:
		return errs
	case <-ctx.Done():
		if req.state.CompareAndSwap(queued, withdrawn) {
			return failAll(writes, ctx.Err()) // the committer will skip it
		}
		// Already handed to the backend: its answer is the true one.
		return <-req.result
	}
}

// commitDirect is Commit without batching (MaxBatch 1).
func (s *Store) commitDirect(ctx context.Context, writes []store.Write) []error {
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return failAll(writes, err)
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()
	s.count(len(writes))
	var span trace.Span
	if tracing.Enabled() {
		ctx, span = tracing.Start(ctx, commitSpanName, trace.WithAttributes(
			attribute.Int("hookd.store.writes", len(writes)), attribute.Int("hookd.store.callers", 1)))
	}
	start := time.Now()
	errs := s.inner.Commit(ctx, writes)
	s.busy.Add(int64(time.Since(start)))
	if span != nil {
		endCommitSpan(span, errs)
	}
	s.committed(writes, errs)
	return errs
}

// committed calls Config.Committed if a write with notifications is among
// those errs says were committed.
func (s *Store) committed(writes []store.Write, errs []error) {
	if s.cfg.Committed == nil || len(errs) != len(writes) {
		return
	}
	for i, w := range writes {
		if errs[i] == nil && len(w.Notifications) > 0 {
			s.cfg.Committed()
			return
		}
	}
}

// usable returns ErrClosed after Close and ErrNotStarted before Start.
// s.mu must be held.
func (s *Store) usable() error {
	switch {
	case s.closed:
		return ErrClosed
	case !s.started:
		return ErrNotStarted
	}
	return nil
}

// Stats returns what the Store has handed to its backend so far.
func (s *Store) Stats() Stats {
	return Stats{
		Commits:      s.commits.Load(),
		Writes:       s.writes.Load(),
		MaxBatchSeen: s.maxBatchSeen.Load(),
		Busy:         time.Duration(s.busy.Load()),
	}
}

// Close stops accepting writes, commits those already queued, waits for
// the committer (and pass-through commits) to finish, then closes the
// backend. It is safe to call before Start, more than once and
// concurrently; every call returns after the first has finished.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.life.Stop() // wakes the committer, which commits what is queued; waits for it and the loaders
		s.inflight.Wait()
		s.inner.Close()
	})
}

// run is the committer: it takes batches off the queue and commits them,
// one backend transaction at a time, until Close has been called and the
// queue is empty. ctx ends with Close.
func (s *Store) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	last := 1 // writes in the previous batch: the linger target
	var writes []store.Write
	for {
		reqs := s.gather(ctx, last, timer)
		if reqs == nil {
			return
		}
		var n int
		writes, n = s.commitBatch(reqs, writes[:0])
		if n > 0 {
			last = n
		}
	}
}

// gather waits for queued requests and takes them off the queue, in
// arrival order, up to MaxBatch writes (a single larger request is taken
// alone). It returns once the batch is full, or once it holds at least
// target writes, or MaxWait after it began to linger. When the
// Store is closed it returns what is queued without lingering, and nil
// when nothing is.
func (s *Store) gather(ctx context.Context, target int, timer *time.Timer) []*request {
	var (
		reqs     []*request
		n        int // writes in reqs
		deadline time.Time
	)
	for {
		s.mu.Lock()
		for len(s.queue) > 0 {
			req := s.queue[0]
			if req.state.Load() == withdrawn {
				s.pop()
				continue
			}
			if n > 0 && n+len(req.writes) > s.cfg.MaxBatch {
				break
			}
			s.pop()
			reqs = append(reqs, req)
			n += len(req.writes)
			if n >= s.cfg.MaxBatch {
				break
			}
		}
		// Full, or the next request does not fit: commit now.
		full := n >= s.cfg.MaxBatch || (n > 0 && len(s.queue) > 0)
		closed := s.closed
		s.mu.Unlock()

		switch {
		case full || (closed && n > 0):
			return reqs
		case closed:
			return nil
		case n == 0:
			select {
			case <-s.wake:
			case <-ctx.Done():
			}
			continue
		case s.cfg.MaxWait < 0 || n >= min(target, s.cfg.MaxBatch):
			return reqs
		}

		// Linger: fewer writes than last time are here, and the rest are
		// probably on their way. Counted from now, not from the first
		// write's arrival: that write may have queued during the whole
		// previous commit, while the callers answered by it have only
		// just been given the chance to come back.
		if deadline.IsZero() {
			deadline = time.Now().Add(s.cfg.MaxWait)
		}
		d := time.Until(deadline)
		if d <= 0 {
			return reqs
		}
		timer.Reset(d)
		select {
		case <-s.wake:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
			return reqs
		}
	}
}

// pop removes the head of the queue. s.mu must be held.
func (s *Store) pop() {
	s.queue[0] = nil // let the request be collected once answered
	s.queue = s.queue[1:]
	if len(s.queue) == 0 {
		s.queue = s.queue[:0:0] // drop the consumed backing array too
	}
}

// commitBatch hands the writes of reqs that are still wanted to the
// backend in one Commit and answers every request. Requests whose callers
// have withdrawn are skipped; those whose context is done but that were
// not withdrawn yet are withdrawn and answered here. buf is reused for the
// writes and returned, with the number of writes committed.
//
// The writes are concatenated, so a caller's first write follows the
// previous caller's last. Its AfterPrevious, which the caller's own call
// ignores, would chain it to that other caller's write (and skip it when
// that write failed); commitBatch clears it in buf, a copy, leaving the
// caller's slice as it was.
func (s *Store) commitBatch(reqs []*request, buf []store.Write) ([]store.Write, int) {
	live := reqs[:0]
	for _, req := range reqs {
		if err := req.ctx.Err(); err != nil && req.state.CompareAndSwap(queued, withdrawn) {
			req.result <- failAll(req.writes, err)
			continue
		}
		if !req.state.CompareAndSwap(queued, taken) {
			continue // withdrawn by its caller, who has its answer
		}
		live = append(live, req)
		first := len(buf)
		buf = append(buf, req.writes...)
		buf[first].AfterPrevious = false // see above
	}
	if len(buf) == 0 {
		return buf, 0
	}

	s.count(len(buf))
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CommitTimeout)
	var span trace.Span
	if tracing.Enabled() {
		ctx, span = startCommitSpan(ctx, live, len(buf))
	}
	start := time.Now()
	errs := s.inner.Commit(ctx, buf)
	s.busy.Add(int64(time.Since(start)))
	cancel()
	if span != nil {
		endCommitSpan(span, errs)
	}
	if len(errs) != len(buf) {
		err := fmt.Errorf("backend returned %d results for %d writes", len(errs), len(buf))
		s.cfg.Logger.Error("group commit failed", "writes", len(buf), "err", err)
		errs = failAll(buf, err)
	} else if !slices.ContainsFunc(errs, func(err error) bool { return !errors.Is(err, store.ErrUnavailable) }) {
		s.cfg.Logger.Warn("group commit failed", "writes", len(buf), "callers", len(live), "err", errs[0])
	}
	s.committed(buf, errs)

	off := 0
	for _, req := range live {
		end := off + len(req.writes)
		req.result <- slices.Clone(errs[off:end])
		off = end
	}
	// Drop references to the callers' writes before buf is reused.
	clear(buf)
	return buf, len(errs)
}

// count records one backend Commit of n writes.
func (s *Store) count(n int) {
	s.commits.Add(1)
	s.writes.Add(int64(n))
	for {
		seen := s.maxBatchSeen.Load()
		if int64(n) <= seen || s.maxBatchSeen.CompareAndSwap(seen, int64(n)) {
			return
		}
	}
}

// failAll returns the results of writes none of which was committed, as
// a backend gives them for a transaction that failed as a whole
// (store.FailWrites): unavailable, wrapping cause, except invalid writes
// and those skipped after them.
func failAll(writes []store.Write, cause error) []error {
	errs := store.ValidateWrites(writes)
	store.FailWrites(writes, errs, cause)
	return errs
}

// The methods below go straight to the backend. They are written out
// rather than promoted from an embedded store.Store so that a method
// added to the interface is a compile error here, and someone decides
// whether it needs batching.

// RecordEvent calls the backend's RecordEvent.
func (s *Store) RecordEvent(ctx context.Context, e store.Event) error {
	return s.inner.RecordEvent(ctx, e)
}

// GetEvent calls the backend's GetEvent.
func (s *Store) GetEvent(ctx context.Context, source, eventID string) (store.Event, error) {
	return s.inner.GetEvent(ctx, source, eventID)
}

// ListEvents calls the backend's ListEvents.
func (s *Store) ListEvents(ctx context.Context, f store.ListEventsFilter) ([]store.Event, string, error) {
	return s.inner.ListEvents(ctx, f)
}

// LookupRoute calls the backend's LookupRoute.
func (s *Store) LookupRoute(ctx context.Context, objectID string) (string, error) {
	return s.inner.LookupRoute(ctx, objectID)
}

// ReadNotifications calls the backend's ReadNotifications.
func (s *Store) ReadNotifications(ctx context.Context, afterCursor, customerID string, limit int) ([]store.Notification, error) {
	return s.inner.ReadNotifications(ctx, afterCursor, customerID, limit)
}

// LatestCursor calls the backend's LatestCursor.
func (s *Store) LatestCursor(ctx context.Context) (string, error) {
	return s.inner.LatestCursor(ctx)
}

// ValidateCursor calls the backend's ValidateCursor.
func (s *Store) ValidateCursor(cursor string) error {
	return s.inner.ValidateCursor(cursor)
}

// Listen passes through to the inner store's [store.Notifier], so that
// batching does not hide cross-process wake-ups. With an inner store that
// has none, it waits for ctx and returns its error.
func (s *Store) Listen(ctx context.Context, wake func()) error {
	if n, ok := s.inner.(store.Notifier); ok {
		return n.Listen(ctx, wake)
	}
	<-ctx.Done()
	return ctx.Err()
}

// Inner returns the store that s batches commits for, so that its other
// interfaces (store.DeliveryStore) can be found (store.Deliveries).
func (s *Store) Inner() store.Store { return s.inner }
