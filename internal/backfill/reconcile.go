package backfill

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd/hookd/internal/startstop"
	"github.com/hookd/hookd/store"
)

const (
	// ReconcileName names the reconciler's lease and checkpoint.
	ReconcileName = "reconcile"
	// DefaultReconcileInterval is how often a Reconciler runs.
	DefaultReconcileInterval = 10 * time.Minute
	// DefaultInitialWindow is the window of the first reconciliation
	// (no checkpoint yet).
	DefaultInitialWindow = time.Hour
	// DefaultMargin is how far before its checkpoint a reconciliation
	// starts listing (events that became visible late).
	DefaultMargin = 5 * time.Minute
	// DefaultSettle is how far before the end of a run's window its
	// checkpoint is put (events Stripe had not listed yet).
	DefaultSettle = 10 * time.Second
	// minLease bounds the reconciler's lease from below.
	minLease = time.Minute
)

// ReconcilerConfig configures a Reconciler. Runner and Owner are
// required.
type ReconcilerConfig struct {
	// Runner runs the reconciliations (its Store holds the lease and the
	// checkpoint, its Now is the clock, its Logger the log).
	Runner *Runner
	// Owner names this member for the lease.
	Owner string
	// Interval between reconciliations (DefaultReconcileInterval); the
	// lease lasts 2*Interval, at least a minute.
	Interval time.Duration
	// InitialWindow is the window of the first reconciliation
	// (DefaultInitialWindow).
	InitialWindow time.Duration
	// Margin is how far before the checkpoint listing starts
	// (DefaultMargin).
	Margin time.Duration
	// Settle is how far before the end of a run's window the checkpoint
	// is put (DefaultSettle).
	Settle time.Duration
	// Registerer, when set, gets the metrics: hookd_reconcile_runs_total
	// {result="ok|failed|skipped"}, hookd_reconcile_events_missing_total,
	// hookd_reconcile_checkpoint_age_seconds and
	// hookd_reconcile_gap_beyond_retention_total.
	Registerer prometheus.Registerer
}

// Reconciler runs an events backfill (origin "reconcile") at Start and
// then every Interval, over the time since its checkpoint, on the one
// member that holds its lease: webhooks Stripe did not deliver, or hookd
// lost, are found and applied; those that came are duplicates.
type Reconciler struct {
	cfg ReconcilerConfig
	err error
	grp startstop.Group

	runs      *prometheus.CounterVec
	missing   prometheus.Counter
	age       prometheus.Gauge
	gap       prometheus.Counter
	lastCheck time.Time // the last checkpoint seen; only the loop uses it
}

// NewReconciler returns a Reconciler at rest; a config that cannot work
// is reported by Start.
func NewReconciler(cfg ReconcilerConfig) *Reconciler {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultReconcileInterval
	}
	if cfg.InitialWindow <= 0 {
		cfg.InitialWindow = DefaultInitialWindow
	}
	if cfg.Margin < 0 {
		cfg.Margin = 0
	} else if cfg.Margin == 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	r := &Reconciler{
		cfg: cfg,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookd_reconcile_runs_total",
			Help: "Reconciliations by result: ok, failed, skipped (another member holds the lease).",
		}, []string{"result"}),
		missing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookd_reconcile_events_missing_total",
			Help: "Events a reconciliation found missing (ingested and not a duplicate).",
		}),
		age: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookd_reconcile_checkpoint_age_seconds",
			Help: "Time since the reconciliation checkpoint (up to which every event was listed).",
		}),
		gap: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookd_reconcile_gap_beyond_retention_total",
			Help: "Reconciliations whose checkpoint was older than Stripe's 30-day retention of events.",
		}),
	}
	for _, res := range []string{"ok", "failed", "skipped"} {
		r.runs.WithLabelValues(res)
	}
	switch {
	case cfg.Runner == nil:
		r.err = errors.New("backfill: Reconciler needs a Runner")
	case cfg.Runner.Store == nil || cfg.Runner.Source == nil || cfg.Runner.Ingest == nil:
		r.err = errors.New("backfill: Reconciler's Runner needs a Store, a Source and an Ingest")
	case cfg.Owner == "":
		r.err = errors.New("backfill: Reconciler needs an Owner")
	}
	return r
}

func (r *Reconciler) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.runs, r.missing, r.age, r.gap}
}

// Start registers the metrics and starts the loop, which reconciles once
// at once and then every Interval until Stop.
func (r *Reconciler) Start(ctx context.Context) error {
	if r.err != nil {
		return r.err
	}
	if reg := r.cfg.Registerer; reg != nil {
		cs := r.collectors()
		for i, c := range cs {
			if err := reg.Register(c); err != nil {
				for _, done := range cs[:i] {
					reg.Unregister(done)
				}
				return fmt.Errorf("backfill: register reconcile metrics: %w", err)
			}
		}
	}
	if err := r.grp.Start(ctx); err != nil {
		r.unregister()
		return err
	}
	if err := r.grp.Go(r.loop); err != nil {
		return err
	}
	return nil
}

// Stop stops the loop (cancelling a reconciliation in flight, which the
// next one resumes), waits for it, gives the lease up and unregisters the
// metrics.
func (r *Reconciler) Stop() {
	r.grp.Stop()
	if _, started := r.grp.Context(); started {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.cfg.Runner.Store.ReleaseLease(ctx, ReconcileName, r.cfg.Owner); err != nil {
			r.cfg.Runner.log().Warn("reconcile: release the lease", "err", err)
		}
	}
	r.unregister()
}

func (r *Reconciler) unregister() {
	if reg := r.cfg.Registerer; reg != nil {
		for _, c := range r.collectors() {
			reg.Unregister(c)
		}
	}
}

func (r *Reconciler) loop(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		r.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcile runs one reconciliation if this member holds the lease.
func (r *Reconciler) reconcile(ctx context.Context) {
	run := r.cfg.Runner
	log := run.log().With("component", "reconcile", "owner", r.cfg.Owner)
	st := run.Store
	ttl := max(2*r.cfg.Interval, minLease)
	held, err := st.TryLease(ctx, ReconcileName, r.cfg.Owner, ttl)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("reconcile: take the lease", "err", err)
			r.runs.WithLabelValues("failed").Inc()
		}
		return
	}
	if !held {
		log.Debug("reconcile: another member holds the lease")
		r.runs.WithLabelValues("skipped").Inc()
		r.observeAge(ctx, st, run.now())
		return
	}
	now := run.now()
	since := now.Add(-r.cfg.InitialWindow)
	cp, err := st.GetCheckpoint(ctx, ReconcileName)
	switch {
	case errors.Is(err, store.ErrNotFound):
		log.Info("reconcile: no checkpoint yet", "window", r.cfg.InitialWindow)
	case err != nil:
		if ctx.Err() == nil {
			log.Error("reconcile: read the checkpoint", "err", err)
			r.runs.WithLabelValues("failed").Inc()
		}
		return
	default:
		r.lastCheck = cp
		r.age.Set(max(now.Sub(cp).Seconds(), 0))
		since = cp.Add(-r.cfg.Margin)
		if gap := now.Sub(cp); gap > Retention {
			log.Error("reconcile: the checkpoint is older than Stripe's 30-day retention of events: events older than 30 days are gone from Stripe; run `hookd backfill --objects customers,subscriptions` to import current state",
				"checkpoint", cp, "gap", gap.Round(time.Second))
			r.gap.Inc()
		}
	}
	sum, err := run.Run(ctx, Request{Since: now.Sub(since), Origin: OriginReconcile}, nil)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("reconcile: backfill failed", "err", err)
			r.runs.WithLabelValues("failed").Inc()
		} else {
			log.Info("reconcile: interrupted; the next one resumes", "err", err)
		}
		return
	}
	var missing int64
	for k, v := range sum.Counts {
		switch k {
		case CountFetched, CountFailed, "duplicate":
		default:
			missing += v
		}
	}
	r.missing.Add(float64(missing))
	next := sum.Until.Add(-r.cfg.Settle)
	if !r.lastCheck.IsZero() && next.Before(r.lastCheck) {
		next = r.lastCheck // a resumed older run does not move it back
	}
	if err := st.SetCheckpoint(ctx, ReconcileName, next); err != nil {
		if ctx.Err() == nil {
			log.Error("reconcile: store the checkpoint", "err", err)
			r.runs.WithLabelValues("failed").Inc()
		}
		return
	}
	r.lastCheck = next
	r.age.Set(max(run.now().Sub(next).Seconds(), 0))
	if missing > 0 || sum.Counts[CountFailed] > 0 {
		log.Warn("reconcile: found missing events", "run", sum.RunID, "missing", missing, "failed", sum.Counts[CountFailed], "fetched", sum.Counts[CountFetched])
	} else {
		log.Info("reconcile: nothing missing", "run", sum.RunID, "fetched", sum.Counts[CountFetched])
	}
	r.runs.WithLabelValues("ok").Inc()
}

// observeAge sets the checkpoint age gauge on a member that does not hold
// the lease, from the shared checkpoint.
func (r *Reconciler) observeAge(ctx context.Context, st store.BackfillStore, now time.Time) {
	if cp, err := st.GetCheckpoint(ctx, ReconcileName); err == nil {
		r.age.Set(max(now.Sub(cp).Seconds(), 0))
	}
}
