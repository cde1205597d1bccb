package delivery

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd/hookd/internal/startstop"
	"github.com/hookd/hookd/store"
)

// Defaults of Config.
const (
	DefaultPollInterval = time.Second
	DefaultConcurrency  = 32
	DefaultTimeout      = 15 * time.Second
	DefaultJitter       = 0.2
	DefaultDisableAfter = 5 * 24 * time.Hour
)

// DefaultSchedule is the retry schedule of Config: the waits after the
// first, second, … failed attempt; eight attempts over about 28 hours.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

const (
	// enqueueBatch is how many notifications one Enqueue reads, and
	// enqueueRounds how many Enqueues one pass makes per endpoint before
	// it claims (the next pass goes on at once).
	enqueueBatch  = 500
	enqueueRounds = 20
	// completeBatch is the most results one Complete records.
	completeBatch = 256
	// followUps is how many passes the loop makes after a wake-up, the
	// first followUpDelay after it, each next one 4 times later.
	followUps     = 3
	followUpDelay = 50 * time.Millisecond
	// drainGrace is how long Stop keeps retrying Complete for the last
	// results once the attempts have finished.
	drainGrace = 10 * time.Second
	// storeTimeout bounds the store calls that must not hang a stop.
	storeTimeout = 5 * time.Second
)

// Waker tells the engine that notifications were committed: C returns a
// channel that is closed at the next commit. services.Wakeup is one.
type Waker interface {
	C() <-chan struct{}
}

// Config configures an Engine. Zero fields take the defaults noted.
type Config struct {
	// Store keeps endpoints, deliveries and attempts; required.
	Store store.DeliveryStore
	// Owner is this member's lease owner ID, unique among the members
	// sharing Store; default hostname, pid and a random suffix.
	Owner string
	// Wake, when set, wakes the engine at commits; without it the engine
	// finds new notifications at its next poll.
	Wake Waker
	// PollInterval is how often the engine looks for work without being
	// woken (due retries, other members' releases), and how often it
	// reloads the endpoint list; default 1 s.
	PollInterval time.Duration
	// Concurrency is the most attempts in flight per endpoint on this
	// member; default 32.
	Concurrency int
	// Timeout bounds one attempt, from dialing to reading the answer;
	// default 15 s.
	Timeout time.Duration
	// Lease is how long a claimed delivery stays this member's before
	// another may take it over; default Timeout + 30 s. It must exceed
	// Timeout.
	Lease time.Duration
	// Schedule is the retry schedule: Schedule[i] is the wait after the
	// (i+1)th failed attempt; once it is exhausted a delivery fails
	// (dead letter). Default DefaultSchedule.
	Schedule []time.Duration
	// Jitter spreads each wait of Schedule by ±Jitter (a fraction);
	// default 0.2, negative for none.
	Jitter float64
	// DisableAfter disables an endpoint whose every attempt failed for this
	// long (Endpoint.FailingSince); default 5 days, negative for never.
	DisableAfter time.Duration
	// AllowPrivate lets deliveries reach loopback, private, link-local
	// and other internal addresses (--allow-private-endpoints); refused
	// at connect time otherwise.
	AllowPrivate bool
	// TLS is the TLS configuration for https endpoints (cloned per
	// connection; its ServerName defaults to the endpoint's host and
	// NextProtos is set to HTTP/1.1); nil verifies them against the
	// system's roots.
	TLS *tls.Config
	// Version is hookd's version for the User-Agent; default the build's
	// module version, or "dev".
	Version string
	// Logger receives the engine's logs; nil: none.
	Logger *slog.Logger
	// Registerer, when set, registers the engine's metrics at Start
	// (unregistered at Stop).
	Registerer prometheus.Registerer
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	if c.Owner == "" {
		c.Owner = defaultOwner()
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Lease <= 0 {
		c.Lease = c.Timeout + 30*time.Second
	}
	if c.Schedule == nil {
		c.Schedule = DefaultSchedule
	}
	switch {
	case c.Jitter == 0:
		c.Jitter = DefaultJitter
	case c.Jitter < 0:
		c.Jitter = 0
	}
	if c.DisableAfter == 0 {
		c.DisableAfter = DefaultDisableAfter
	}
	if c.Version == "" {
		c.Version = buildVersion()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports a Config that cannot work.
func (c Config) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("delivery config: no Store")
	case c.Lease <= c.Timeout:
		return fmt.Errorf("delivery config: Lease %v must exceed Timeout %v, or another member takes over attempts in flight", c.Lease, c.Timeout)
	case c.Jitter >= 1:
		return fmt.Errorf("delivery config: Jitter %v must be below 1", c.Jitter)
	}
	for i, d := range c.Schedule {
		if d < 0 {
			return fmt.Errorf("delivery config: Schedule[%d] is negative (%v)", i, d)
		}
	}
	return nil
}

// defaultOwner names this process: hostname, pid and a random suffix, so
// that a restarted process does not hold its predecessor's leases.
func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "hookd"
	}
	var b [4]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// buildVersion is the main module's version, or "dev".
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Engine delivers the outbox to the endpoints of its store. Build it with
// New, run it with Start, and end it with Stop.
//
// Its loop, on every wake-up and poll, moves each active endpoint's place
// in the outbox forward (Enqueue, until it caught up), then claims due
// deliveries up to Config.Concurrency in flight for the endpoint and
// makes one attempt per claim on its own goroutine. A completer records
// the results in batches (Complete, retried with back-off while the store
// is unavailable) and wakes the loop after each batch to claim again
// (without enqueueing), since a delivered or failed delivery makes its
// customer's next one pending and frees a slot.
type Engine struct {
	cfg  Config
	err  error // from validate, returned by Start
	pol  policy
	snd  *sender
	met  *metrics // nil without a Registerer
	grp  startstop.Group
	kick chan struct{} // wakes the loop; buffered 1
	// ready signals the completer that results were queued or an attempt
	// finished; buffered 1.
	ready    chan struct{}
	loopDone chan struct{} // closed when the loop returned

	stopOnce sync.Once

	mu        sync.Mutex // guards the fields below
	endpoints map[string]store.Endpoint
	order     []string       // endpoint IDs in list order
	inflight  map[string]int // attempts in flight per endpoint
	running   int            // attempts in flight in all
	queue     []store.Result // results not yet completed, in finishing order
	failing   map[string]bool
	direct    map[string]*directRun // the running direct runners, by endpoint
	held      map[string]bool       // endpoints whose direct lease this engine took
}

// New returns an Engine for cfg, at rest: nothing runs until Start. A cfg
// that cannot work is reported by Start.
func New(cfg Config) *Engine {
	cfg = cfg.withDefaults()
	e := &Engine{
		cfg: cfg,
		err: cfg.validate(),
		pol: policy{schedule: cfg.Schedule, jitter: cfg.Jitter, rand: mrand.Float64},
		snd: newSender(cfg.Timeout, cfg.Concurrency, cfg.AllowPrivate,
			"hookd/"+cfg.Version+" (+https://github.com/hookd/hookd)", cfg.TLS),
		kick:      make(chan struct{}, 1),
		ready:     make(chan struct{}, 1),
		loopDone:  make(chan struct{}),
		endpoints: map[string]store.Endpoint{},
		inflight:  map[string]int{},
		failing:   map[string]bool{},
		direct:    map[string]*directRun{},
		held:      map[string]bool{},
	}
	if cfg.Registerer != nil {
		e.met = newMetrics(cfg.Store)
	}
	return e
}

// Start registers the metrics and starts the loop and the completer. They
// run until Stop or until ctx ends, which stops the engine as Stop does
// (Stop must still be called to wait for it). Start returns the Config's
// error, a registration error, or startstop.ErrStarted /
// startstop.ErrStopped when called twice or after Stop.
func (e *Engine) Start(ctx context.Context) error {
	if e.err != nil {
		return e.err
	}
	if e.grp.Running() {
		return startstop.ErrStarted
	}
	if e.met != nil {
		if err := e.met.register(e.cfg.Registerer); err != nil {
			return fmt.Errorf("register delivery metrics: %w", err)
		}
	}
	if err := e.grp.Start(ctx); err != nil {
		if e.met != nil {
			e.met.unregister(e.cfg.Registerer)
		}
		return err
	}
	if err := e.grp.Go(e.complete); err != nil {
		close(e.loopDone)
		return err
	}
	if err := e.grp.Go(e.loop); err != nil {
		close(e.loopDone)
		return err
	}
	e.cfg.Logger.InfoContext(ctx, "delivery engine started", "owner", e.cfg.Owner,
		"concurrency", e.cfg.Concurrency, "timeout", e.cfg.Timeout, "allow_private", e.cfg.AllowPrivate)
	return nil
}

// Stop stops claiming, lets the attempts in flight finish (each within
// Timeout), records their results, and returns once every goroutine of
// the engine has. Claims whose attempt had not started are released.
// Safe before Start, twice and concurrently.
func (e *Engine) Stop() {
	e.grp.Stop()
	e.stopOnce.Do(func() {
		e.releaseDirect()
		e.snd.close()
		if e.met != nil {
			e.met.unregister(e.cfg.Registerer)
		}
	})
}

// poke wakes the loop.
func (e *Engine) poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// loop finds and claims work until ctx ends.
func (e *Engine) loop(ctx context.Context) {
	defer close(e.loopDone)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var listed, enqueued time.Time
	// woken: whether the loop was woken by a commit or its poll (or has
	// more to enqueue), so that the pass enqueues. A kick (results
	// recorded) only claims: Complete makes the next queued deliveries
	// pending itself, and what was committed meanwhile comes with a
	// wake-up, so enqueueing after every Complete read the outbox only to
	// find nothing, under the endpoint's exclusive lock. It still
	// enqueues once a poll interval while kicks keep it busy, as the poll
	// timer then never fires.
	woken := true
	// followUp counts the passes still to make after the last wake-up. A
	// commit's notifications are read once their position is final: once
	// no transaction that began before it is still open, in any database
	// of the server. A pass right after the wake-up can find them not yet
	// final, and no other wake-up may come; the follow-ups look again
	// after 50 ms, 200 ms and 800 ms (never later than the poll).
	followUp := 0
	for {
		// Take the wake-up channel before the pass, so that a commit
		// during it still wakes the loop.
		var wake <-chan struct{}
		if e.cfg.Wake != nil {
			wake = e.cfg.Wake.C()
		}
		if time.Since(listed) >= e.cfg.PollInterval {
			if e.refresh(ctx) {
				listed = time.Now()
			}
		}
		enqueue := woken || time.Since(enqueued) >= e.cfg.PollInterval
		if enqueue {
			enqueued = time.Now()
		}
		more := e.pass(ctx, enqueue)
		if ctx.Err() != nil {
			return
		}
		if more {
			woken = true
			continue
		}
		delay := e.cfg.PollInterval
		if followUp > 0 {
			delay = min(delay, followUpDelay<<(2*(followUps-followUp)))
		}
		timer.Reset(delay)
		select {
		case <-ctx.Done():
			return
		case <-wake:
			woken, followUp = true, followUps
		case <-e.kick:
			woken = false
			select { // a commit at the same time
			case <-wake:
				woken, followUp = true, followUps
			default:
			}
		case <-timer.C:
			woken = true
			if followUp > 0 {
				followUp--
			}
		}
		timer.Stop() // since Go 1.23, Stop leaves no stale tick to drain
	}
}

// refresh reloads the endpoint list and disables the endpoints that have
// been failing for DisableAfter. It reports whether the list was loaded.
func (e *Engine) refresh(ctx context.Context) bool {
	eps, err := e.cfg.Store.ListEndpoints(ctx)
	if e.storeErr(ctx, "list_endpoints", "", err) {
		return false
	}
	now := time.Now()
	for i, ep := range eps {
		if ep.Active() && e.cfg.DisableAfter > 0 && !ep.FailingSince.IsZero() && now.Sub(ep.FailingSince) >= e.cfg.DisableAfter {
			reason := reasonFailing + formatPeriod(e.cfg.DisableAfter)
			if err := e.cfg.Store.DisableEndpoint(ctx, ep.ID, reason); err != nil && !errors.Is(err, store.ErrNotFound) {
				e.storeErr(ctx, "disable_endpoint", ep.ID, err)
				continue
			}
			e.cfg.Logger.WarnContext(ctx, "endpoint disabled", "endpoint_id", ep.ID,
				"reason", reason, "failing_since", ep.FailingSince)
			eps[i].DisabledReason = reason
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.endpoints = make(map[string]store.Endpoint, len(eps))
	e.order = e.order[:0]
	for _, ep := range eps {
		e.endpoints[ep.ID] = ep
		e.order = append(e.order, ep.ID)
	}
	return true
}

// formatPeriod says d in days when it is whole days ("5 days").
func formatPeriod(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + " days"
	}
	return d.String()
}

// pass enqueues (when enqueue is set) and claims for every active
// endpoint. It reports whether an endpoint has more to enqueue than one
// pass takes.
func (e *Engine) pass(ctx context.Context, enqueue bool) (more bool) {
	e.mu.Lock()
	ids := append([]string(nil), e.order...)
	e.mu.Unlock()
	for _, id := range ids {
		if ctx.Err() != nil {
			return false
		}
		if _, ok := e.activeEndpoint(id); !ok {
			continue
		}
		if ds, ok := e.directStore(); ok {
			if enqueue {
				e.startDirect(ctx, ds, id)
			}
		} else if enqueue && !e.enqueue(ctx, id) {
			more = true
		}
		e.claim(ctx, id)
	}
	return more
}

// activeEndpoint returns the endpoint as last known, if it is active.
func (e *Engine) activeEndpoint(id string) (store.Endpoint, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ep, ok := e.endpoints[id]
	return ep, ok && ep.Active()
}

// enqueue moves the endpoint's place in the outbox forward, and reports
// whether it caught up (or failed: the next poll retries).
func (e *Engine) enqueue(ctx context.Context, id string) bool {
	for range enqueueRounds {
		read, _, err := e.cfg.Store.Enqueue(ctx, id, enqueueBatch)
		if e.storeErr(ctx, "enqueue", id, err) {
			return true
		}
		if read < enqueueBatch {
			return true
		}
	}
	return false
}

// claim leases the endpoint's due deliveries up to its free slots and
// starts an attempt for each.
func (e *Engine) claim(ctx context.Context, id string) {
	e.mu.Lock()
	free := e.cfg.Concurrency - e.inflight[id]
	e.mu.Unlock()
	if free <= 0 {
		return
	}
	claimed, err := e.cfg.Store.Claim(ctx, id, e.cfg.Owner, free, e.cfg.Lease)
	if e.storeErr(ctx, "claim", id, err) {
		return
	}
	for _, c := range claimed {
		e.mu.Lock()
		e.inflight[c.EndpointID]++
		e.running++
		e.mu.Unlock()
		if err := e.grp.Go(func(ctx context.Context) { e.attempt(ctx, c) }); err != nil {
			e.finish(c, release(c), "")
		}
	}
}

// storeErr logs a failed store call once per streak of failures of the
// same call for the same endpoint (and the recovery), and reports whether
// err is set. An error because ctx ended is not logged.
func (e *Engine) storeErr(ctx context.Context, op, endpointID string, err error) bool {
	key := op + "\x00" + endpointID
	e.mu.Lock()
	was := e.failing[key]
	if err != nil {
		e.failing[key] = true
	} else {
		delete(e.failing, key)
	}
	e.mu.Unlock()
	switch {
	case err != nil && ctx.Err() != nil:
	case err != nil && !was:
		e.cfg.Logger.WarnContext(ctx, "delivery store call failed; retrying", "op", op, "endpoint_id", endpointID, "err", err)
	case err == nil && was:
		e.cfg.Logger.InfoContext(ctx, "delivery store call works again", "op", op, "endpoint_id", endpointID)
	}
	return err != nil
}

// release is the result that gives a claim back unattempted.
func release(c store.Claimed) store.Result {
	return store.Result{Lease: c.Lease, Outcome: store.OutcomeReleased, NextAttemptAt: c.NextAttemptAt}
}

// attempt makes the one attempt of a claim and hands its result to the
// completer.
func (e *Engine) attempt(ctx context.Context, c store.Claimed) {
	ep, ok := e.activeEndpoint(c.EndpointID)
	if !ok || ctx.Err() != nil {
		// Paused, disabled or deleted since the claim, or stopping.
		e.finish(c, release(c), "")
		return
	}
	started := time.Now()
	rec := store.Attempt{DeliveryID: c.ID, Attempt: c.Lease.Attempt, StartedAt: started}
	body, err := payload(c.Notification)
	if err != nil {
		// No attempt can ever succeed: dead-letter it, visibly.
		rec.Error = err.Error()
		e.cfg.Logger.ErrorContext(ctx, "delivery failed: notification does not encode",
			"delivery_id", c.ID, "endpoint_id", c.EndpointID, "err", err)
		e.finish(c, store.Result{Lease: c.Lease, Outcome: store.OutcomeFailed, Attempt: rec}, "error")
		return
	}
	class, d := e.post(ctx, ep, c.Step, body, &rec)
	now := rec.StartedAt.Add(rec.Latency)
	res := store.Result{Lease: c.Lease, Outcome: d.outcome, Attempt: rec, NextAttemptAt: d.next}
	if d.disable != "" {
		e.disable(ctx, c.EndpointID, d.disable)
	}
	if d.outcome == store.OutcomeFailed {
		e.cfg.Logger.WarnContext(ctx, "delivery failed: retry schedule exhausted", "delivery_id", c.ID,
			"endpoint_id", c.EndpointID, "customer_id", c.CustomerID, "attempts", c.Lease.Attempt, "last_error", rec.Error)
	}
	if e.met != nil && d.outcome == store.OutcomeDelivered && !c.CreatedAt.IsZero() {
		e.met.lag.Observe(now.Sub(c.CreatedAt).Seconds())
	}
	e.finish(c, res, class)
}

// post makes the attempt rec of a delivery (rec.DeliveryID, Attempt and
// StartedAt set) at step of the schedule, records its answer in rec
// (Latency, StatusCode, Body, Error), and returns the answer's class for
// the metrics and the policy's decision. The attempt runs to its end even
// when the engine stops (bounded by the client's Timeout): cutting it off
// would only send it again.
func (e *Engine) post(ctx context.Context, ep store.Endpoint, step int, body []byte, rec *store.Attempt) (string, decision) {
	resp, start, err := e.snd.send(context.WithoutCancel(ctx), ep, rec.DeliveryID, rec.Attempt, rec.StartedAt, body)
	now := time.Now()
	rec.Latency, rec.StatusCode, rec.Body = now.Sub(rec.StartedAt), resp.status, start
	class := "error"
	switch {
	case err != nil:
		rec.Error = err.Error()
	case resp.status >= 200 && resp.status < 300:
		class = "2xx"
	default:
		rec.Error = "HTTP " + strconv.Itoa(resp.status)
		class = strconv.Itoa(resp.status/100) + "xx"
	}
	return class, e.pol.next(step, resp, err, now)
}

// disable disables an endpoint in the store, and at once here so that the
// attempts claimed for it that have not started are released.
func (e *Engine) disable(ctx context.Context, id, reason string) {
	e.mu.Lock()
	if ep, ok := e.endpoints[id]; ok && ep.DisabledReason == "" {
		ep.DisabledReason = reason
		e.endpoints[id] = ep
	}
	e.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := e.cfg.Store.DisableEndpoint(sctx, id, reason); err != nil && !errors.Is(err, store.ErrNotFound) {
		// The next 410 disables it again.
		e.cfg.Logger.WarnContext(ctx, "cannot disable endpoint", "endpoint_id", id, "reason", reason, "err", err)
		return
	}
	e.cfg.Logger.WarnContext(ctx, "endpoint disabled", "endpoint_id", id, "reason", reason)
}

// finish queues a claim's result for the completer; class is the attempt's
// answer class for the metrics ("" when no attempt was made).
func (e *Engine) finish(c store.Claimed, r store.Result, class string) {
	e.observe(r.Outcome, class, r.Attempt.Latency)
	e.mu.Lock()
	e.queue = append(e.queue, r)
	e.inflight[c.EndpointID]--
	if e.inflight[c.EndpointID] <= 0 {
		delete(e.inflight, c.EndpointID)
	}
	e.running--
	e.mu.Unlock()
	select {
	case e.ready <- struct{}{}:
	default:
	}
}

// complete records queued results in batches until the engine stops, then
// records the last ones once the loop and every attempt have finished.
func (e *Engine) complete(ctx context.Context) {
	done := ctx.Done()
	loopDone := e.loopDone
	cctx := ctx // the context of Complete calls
	var cancel context.CancelFunc = func() {}
	defer func() { cancel() }()
	stopping, loopOver := false, false
	// stop switches to stopping: from here on, store calls run on a
	// context of their own, for as long as the attempts take and a grace
	// after.
	stop := func() {
		done, stopping = nil, true
		cctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Timeout+drainGrace)
	}
	backoff := 50 * time.Millisecond
	for {
		e.mu.Lock()
		n := min(len(e.queue), completeBatch)
		batch := e.queue[:n:n]
		idle := n == 0 && e.running == 0
		e.mu.Unlock()
		if n == 0 {
			if loopOver && idle {
				return
			}
			select {
			case <-e.ready:
			case <-done:
				stop()
			case <-loopDone:
				loopDone, loopOver = nil, true
			}
			continue
		}
		err := e.cfg.Store.Complete(cctx, batch)
		if err != nil {
			if stopping && cctx.Err() != nil {
				e.cfg.Logger.ErrorContext(ctx, "delivery results lost at stop; their deliveries are attempted again once their leases expire",
					"results", len(batch), "err", err)
				return
			}
			e.storeErr(ctx, "complete", "", err)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-cctx.Done():
			case <-done:
				stop()
			}
			t.Stop()
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		e.storeErr(ctx, "complete", "", nil)
		backoff = 50 * time.Millisecond
		e.mu.Lock()
		e.queue = e.queue[n:]
		if len(e.queue) == 0 {
			e.queue = nil // let the array go
		}
		e.mu.Unlock()
		e.poke()
	}
}
