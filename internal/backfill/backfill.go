// Package backfill lists what hookd may have missed from Stripe's API and
// feeds it through the same path as a webhook (store/backfill.go says how
// a run is staged and resumed). A Runner runs one backfill: the events of
// a window from the Events API, or an import of current objects wrapped as
// synthesized events. A Reconciler runs an events backfill periodically
// over the time since its checkpoint, on one member at a time (a lease).
package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
)

const (
	// Retention is how long Stripe's Events API keeps events.
	Retention = 30 * 24 * time.Hour
	// DefaultSince is the window of an events backfill that gives none.
	DefaultSince = 72 * time.Hour
	// DefaultBatchSize is how many staged events are applied between two
	// records of progress.
	DefaultBatchSize = 200
	// DefaultRetries is how often a failed Ingest is retried.
	DefaultRetries = 3
	// DefaultRetryDelay is the first wait before retrying an Ingest (it
	// doubles with each retry).
	DefaultRetryDelay = 100 * time.Millisecond

	// KindEvents is the kind of a run over the Events API; an import's is
	// KindObjectsPrefix plus its sorted object kinds joined by ",".
	KindEvents        = "events"
	KindObjectsPrefix = "objects:"

	// OriginManual and OriginReconcile say who asked for a run.
	OriginManual    = "manual"
	OriginReconcile = "reconcile"

	// CountFetched is the key of Progress.Counts and Summary.Counts that
	// counts the events listed (staged); the other keys are Ingest's
	// statuses and CountFailed.
	CountFetched = "fetched"
	// CountFailed counts events Ingest could not apply (after retries).
	CountFailed = "failed"

	// retentionSlack keeps a clamped window inside Stripe's retention.
	retentionSlack = time.Minute
)

// ObjectKinds are the kinds of objects an import lists, in the order it
// lists them.
var ObjectKinds = []string{"customers", "subscriptions"}

// importTypes is the event type an imported object is wrapped in.
var importTypes = map[string]string{
	"customers":     "customer.updated",
	"subscriptions": "customer.subscription.updated",
}

// Source lists events and objects; *stripe.Client implements it.
type Source interface {
	// ListEvents returns one page of the events created in [since, until],
	// newest first, after cursor ("" for the first page).
	ListEvents(ctx context.Context, since, until time.Time, cursor string) (stripe.ListPage, error)
	// ListObjects returns one page of the current objects of kind after
	// cursor.
	ListObjects(ctx context.Context, kind, cursor string) (stripe.ListPage, error)
}

// Ingest feeds one event's bytes through the same path as a webhook and
// returns its status: "applied", "duplicate", "parked", "superseded" or
// "ignored". A non-nil error means the event could not be applied.
type Ingest func(ctx context.Context, payload []byte) (status string, err error)

// Config tunes a Runner; the zero value takes the defaults.
type Config struct {
	// BatchSize is how many staged events are applied between two records
	// of progress (DefaultBatchSize).
	BatchSize int
	// Retries is how often a failed Ingest is retried (DefaultRetries; a
	// negative value: never).
	Retries int
	// RetryDelay is the first wait before a retry, doubling after each
	// (DefaultRetryDelay).
	RetryDelay time.Duration
	// Retryable tells a transient Ingest error from one not worth a retry;
	// nil retries every error.
	Retryable func(err error) bool
}

// Runner runs backfills. Store, Source and Ingest are required.
type Runner struct {
	Store  store.BackfillStore
	Source Source
	Ingest Ingest
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now    func() time.Time
	Config Config
}

// Request asks for one backfill.
type Request struct {
	// Since is the window of an events backfill: the events created in
	// the last Since (DefaultSince when 0), clamped to Stripe's retention.
	Since time.Duration
	// Objects, when not empty, asks for an import of the current objects
	// of these kinds (ObjectKinds) instead of events.
	Objects []string
	// Restart starts a new run even if one of the kind is unfinished.
	Restart bool
	// Origin is OriginManual (the default) or OriginReconcile. Only a run
	// of the same origin is resumed.
	Origin string
}

// Progress reports a run's progress.
type Progress struct {
	RunID int64
	// Phase is store.BackfillListing, BackfillApplying or BackfillDone.
	Phase string
	// Total is the number of staged events to apply, once listing ended.
	Total int64
	// Processed counts the events applied so far (any outcome).
	Processed int64
	// Counts by outcome, and CountFetched.
	Counts map[string]int64
	// Since is the start of the run's window (zero for an import).
	Since time.Time
	Done  bool
	// Message says that the run was resumed, or warns (a window clamped
	// to Stripe's retention).
	Message string
}

// Summary is what a finished run did.
type Summary struct {
	RunID int64
	Kind  string
	// Since and Until bound the run's window (an import: zero and the
	// time it started).
	Since, Until time.Time
	// Resumed reports that the run continued an unfinished one.
	Resumed bool
	// Counts by outcome, and CountFetched: over the whole run, resumed
	// parts included.
	Counts map[string]int64
}

// Kind returns the run kind of a request's objects: KindEvents for none,
// else KindObjectsPrefix and the sorted, deduplicated kinds. It returns an
// error for a kind hookd does not import.
func Kind(objects []string) (string, error) {
	if len(objects) == 0 {
		return KindEvents, nil
	}
	ks := make([]string, 0, len(objects))
	for _, o := range objects {
		o = strings.TrimSpace(o)
		if !slices.Contains(ObjectKinds, o) {
			return "", fmt.Errorf("backfill: cannot import objects of kind %q (known: %s)", o, strings.Join(ObjectKinds, ", "))
		}
		ks = append(ks, o)
	}
	slices.Sort(ks)
	return KindObjectsPrefix + strings.Join(slices.Compact(ks), ","), nil
}

func (r *Runner) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Runner) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// Run runs one backfill to its end: it resumes the unfinished run of the
// request's kind and origin, or with Restart ends that run where it is
// and starts a new one, as it does when there is none; lists page
// by page, staging each; then applies the staged events in batches,
// oldest first. progress (may be nil) is called after each page and batch
// and at the end. An interrupted Run (ctx ended, an error) leaves the run
// to be resumed by the next Run of its kind.
func (r *Runner) Run(ctx context.Context, req Request, progress func(Progress)) (Summary, error) {
	if r.Store == nil || r.Source == nil || r.Ingest == nil {
		return Summary{}, errors.New("backfill: Runner needs a Store, a Source and an Ingest")
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	kind, err := Kind(req.Objects)
	if err != nil {
		return Summary{}, err
	}
	origin := req.Origin
	if origin == "" {
		origin = OriginManual
	}
	log := r.log().With("kind", kind, "origin", origin)

	var (
		run     store.BackfillRun
		resumed bool
		msgs    []string
	)
	run, err = r.Store.UnfinishedBackfillRun(ctx, kind)
	for err == nil && run.Cursor == abandonedCursor {
		// A restart was interrupted while it abandoned this run: end it
		// rather than apply what it had listed so far.
		log.Info("backfill: ending a run a restart abandoned", "run", run.ID)
		if err = r.abandon(ctx, run); err != nil {
			return Summary{}, fmt.Errorf("backfill: end abandoned run %d: %w", run.ID, err)
		}
		run, err = r.Store.UnfinishedBackfillRun(ctx, kind)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return Summary{}, fmt.Errorf("backfill: find an unfinished %s run: %w", kind, err)
	case run.Origin != origin:
		log.Info("backfill: an unfinished run of another origin is left for it", "run", run.ID, "its_origin", run.Origin)
	case req.Restart:
		// Ended as it is, so that a later Run does not resume it: if it
		// cannot be, a new run would hide it only until it ended.
		if err := r.abandon(ctx, run); err != nil {
			return Summary{}, fmt.Errorf("backfill: restart: end unfinished run %d: %w", run.ID, err)
		}
		msgs = append(msgs, fmt.Sprintf("restarted: unfinished run %d abandoned", run.ID))
		log.Info("backfill: restart: abandoned the unfinished run", "run", run.ID, "phase", run.Phase)
	default:
		resumed = true
		msgs = append(msgs, fmt.Sprintf("resuming run %d (%s, %d listed, %d applied)", run.ID, run.Phase, run.Listed, run.Applied))
		log.Info("backfill: resuming", "run", run.ID, "phase", run.Phase, "cursor", run.Cursor, "listed", run.Listed, "applied", run.Applied)
	}
	if !resumed {
		now := r.now()
		nr := store.BackfillRun{Kind: kind, Origin: origin, Until: now}
		if kind == KindEvents {
			since := req.Since
			if since <= 0 {
				since = DefaultSince
			}
			nr.Since = now.Add(-since)
			if floor := now.Add(-Retention + retentionSlack); nr.Since.Before(floor) {
				msg := fmt.Sprintf("the window starts %s ago, past Stripe's %d-day retention of events: clamped to %s; events older than that are gone from Stripe (import current objects with `hookd backfill --objects customers,subscriptions`)",
					since, int(Retention/(24*time.Hour)), floor.UTC().Format(time.RFC3339))
				log.Error("backfill: "+msg, "since", nr.Since, "clamped", floor)
				msgs = append(msgs, msg)
				nr.Since = floor
			}
		}
		run, err = r.Store.CreateBackfillRun(ctx, nr)
		if err != nil {
			return Summary{}, fmt.Errorf("backfill: create a %s run: %w", kind, err)
		}
		log.Info("backfill: started", "run", run.ID, "since", run.Since, "until", run.Until)
	}
	log = log.With("run", run.ID)
	msg := strings.Join(msgs, "; ")
	report := func(done bool) {
		p := Progress{RunID: run.ID, Phase: run.Phase, Processed: run.Applied, Counts: counts(run),
			Since: run.Since, Done: done, Message: msg}
		if run.Phase != store.BackfillListing {
			p.Total = run.Listed
		}
		progress(p)
	}

	if run.Phase == store.BackfillListing {
		if err := r.list(ctx, log, &run, report); err != nil {
			return Summary{}, err
		}
	}
	if run.Phase == store.BackfillApplying {
		if err := r.apply(ctx, log, &run, report); err != nil {
			return Summary{}, err
		}
	}
	report(true)
	log.Info("backfill: done", "counts", run.Counts, "listed", run.Listed)
	return Summary{RunID: run.ID, Kind: run.Kind, Since: run.Since, Until: run.Until, Resumed: resumed, Counts: counts(run)}, nil
}

// abandonedCursor is the cursor of a run that a restart abandoned while
// it was listing (a Stripe cursor or an import's "<kind>:..." cannot be
// it).
const abandonedCursor = "hookd:abandoned"

// abandon ends an unfinished run where it is. The store ends only a run
// in the applying phase, so a run still listing first ends its listing,
// with abandonedCursor: a Run that finds it so (interrupted between the
// two) ends it too, rather than apply a partial listing.
func (r *Runner) abandon(ctx context.Context, run store.BackfillRun) error {
	if run.Phase == store.BackfillListing {
		if err := r.Store.StageBackfillPage(ctx, run.ID, nil, abandonedCursor, true); err != nil {
			return err
		}
	}
	return r.Store.AdvanceBackfillRun(ctx, run.ID, run.Applied, nil, true)
}

// counts is a run's Counts with CountFetched.
func counts(run store.BackfillRun) map[string]int64 {
	c := make(map[string]int64, len(run.Counts)+1)
	for k, v := range run.Counts {
		c[k] = v
	}
	c[CountFetched] = run.Listed
	return c
}

// list stages every page from the run's cursor on, and reloads the run
// after each.
func (r *Runner) list(ctx context.Context, log *slog.Logger, run *store.BackfillRun, report func(bool)) error {
	for run.Phase == store.BackfillListing {
		events, next, last, err := r.page(ctx, *run)
		if err != nil {
			return fmt.Errorf("backfill: run %d: list after %q: %w", run.ID, run.Cursor, err)
		}
		if err := r.Store.StageBackfillPage(ctx, run.ID, events, next, last); err != nil {
			return fmt.Errorf("backfill: run %d: stage a page of %d: %w", run.ID, len(events), err)
		}
		got, err := r.Store.GetBackfillRun(ctx, run.ID)
		if err != nil {
			return fmt.Errorf("backfill: run %d: reload: %w", run.ID, err)
		}
		*run = got
		log.Debug("backfill: staged a page", "events", len(events), "next", next, "last", last, "listed", run.Listed)
		report(false)
	}
	return nil
}

// page lists the page at the run's cursor and returns it staged, with the
// cursor of the next page and whether it was the last.
func (r *Runner) page(ctx context.Context, run store.BackfillRun) ([]store.StagedEvent, string, bool, error) {
	if run.Kind == KindEvents {
		p, err := r.Source.ListEvents(ctx, run.Since, run.Until, run.Cursor)
		if err != nil {
			return nil, "", false, err
		}
		events := make([]store.StagedEvent, len(p.Items))
		for i, it := range p.Items {
			events[i] = store.StagedEvent{EventID: it.ID, Created: it.Created, Payload: it.JSON}
		}
		return events, p.Next, !p.HasMore, nil
	}
	// An import's cursor is "<kind>:<starting_after>".
	kinds := strings.Split(strings.TrimPrefix(run.Kind, KindObjectsPrefix), ",")
	kind, after := kinds[0], ""
	if run.Cursor != "" {
		var ok bool
		if kind, after, ok = strings.Cut(run.Cursor, ":"); !ok || !slices.Contains(kinds, kind) {
			return nil, "", false, fmt.Errorf("bad import cursor %q", run.Cursor)
		}
	}
	p, err := r.Source.ListObjects(ctx, kind, after)
	if err != nil {
		return nil, "", false, err
	}
	events := make([]store.StagedEvent, len(p.Items))
	for i, it := range p.Items {
		ev, err := WrapObject(kind, it.JSON, p.FetchedAt)
		if err != nil {
			return nil, "", false, fmt.Errorf("%s %s: %w", kind, it.ID, err)
		}
		events[i] = store.StagedEvent{EventID: importID(it.ID, p.FetchedAt), Created: time.Unix(p.FetchedAt.Unix(), 0), Payload: ev}
	}
	if p.HasMore {
		return events, kind + ":" + p.Next, false, nil
	}
	if i := slices.Index(kinds, kind); i+1 < len(kinds) {
		return events, kinds[i+1] + ":", false, nil
	}
	return events, "", true, nil
}

func importID(objectID string, fetchedAt time.Time) string {
	return fmt.Sprintf("imp_%s_%d", objectID, fetchedAt.Unix())
}

// WrapObject wraps an object of kind ("customers", "subscriptions") as
// Stripe listed it into a synthesized event, "customer.updated" or
// "customer.subscription.updated", created when the object was fetched
// (so that a webhook newer than the import still wins, and an older one
// is superseded), with the marker "hookd_import": true.
func WrapObject(kind string, object []byte, fetchedAt time.Time) ([]byte, error) {
	typ, ok := importTypes[kind]
	if !ok {
		return nil, fmt.Errorf("cannot import objects of kind %q", kind)
	}
	var head struct {
		ID       string `json:"id"`
		Livemode bool   `json:"livemode"`
	}
	if err := json.Unmarshal(object, &head); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	if head.ID == "" {
		return nil, errors.New("object has no id")
	}
	type data struct {
		Object json.RawMessage `json:"object"`
	}
	type request struct {
		ID             *string `json:"id"`
		IdempotencyKey *string `json:"idempotency_key"`
	}
	ev, err := json.Marshal(struct {
		ID          string  `json:"id"`
		Object      string  `json:"object"`
		Type        string  `json:"type"`
		Created     int64   `json:"created"`
		APIVersion  string  `json:"api_version"`
		Livemode    bool    `json:"livemode"`
		Data        data    `json:"data"`
		Request     request `json:"request"`
		HookdImport bool    `json:"hookd_import"`
	}{
		ID: importID(head.ID, fetchedAt), Object: "event", Type: typ, Created: fetchedAt.Unix(),
		Livemode: head.Livemode, Data: data{Object: object}, HookdImport: true,
	})
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return ev, nil
}

// apply ingests the staged events after run.Applied in batches, recording
// each batch; the last record ends the run.
func (r *Runner) apply(ctx context.Context, log *slog.Logger, run *store.BackfillRun, report func(bool)) error {
	size := r.Config.BatchSize
	if size <= 0 {
		size = DefaultBatchSize
	}
	for {
		batch, err := r.Store.StagedEvents(ctx, run.ID, run.Applied, size)
		if err != nil {
			return fmt.Errorf("backfill: run %d: read staged events after %d: %w", run.ID, run.Applied, err)
		}
		// Ended when the last staged event (Ord Listed) is in the batch:
		// a short batch does not say so, as a store caps the limit.
		done := len(batch) == 0 || batch[len(batch)-1].Ord >= run.Listed
		c := make(map[string]int64)
		applied := run.Applied
		var stop error
		for _, ev := range batch {
			status, err := r.ingest(ctx, log, ev)
			if err != nil { // ctx ended
				stop = err
				break
			}
			c[status]++
			applied = ev.Ord
		}
		if stop != nil {
			// Record what this batch did so far, so that a resumed run
			// ingests again only the event in flight.
			if applied > run.Applied {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				if err := r.Store.AdvanceBackfillRun(rctx, run.ID, applied, c, false); err != nil {
					log.Warn("backfill: could not record the interrupted batch", "applied", applied, "err", err)
				}
				cancel()
			}
			return fmt.Errorf("backfill: run %d: interrupted after %d applied: %w", run.ID, applied, stop)
		}
		if err := r.Store.AdvanceBackfillRun(ctx, run.ID, applied, c, done); err != nil {
			return fmt.Errorf("backfill: run %d: record applied up to %d: %w", run.ID, applied, err)
		}
		got, err := r.Store.GetBackfillRun(ctx, run.ID)
		if err != nil {
			return fmt.Errorf("backfill: run %d: reload: %w", run.ID, err)
		}
		*run = got
		if done {
			return nil
		}
		report(false)
	}
}

// ingest applies one event, retrying a retryable error; it returns an
// error only when ctx ended, and CountFailed when the event failed.
func (r *Runner) ingest(ctx context.Context, log *slog.Logger, ev store.StagedEvent) (string, error) {
	retries := r.Config.Retries
	switch {
	case retries == 0:
		retries = DefaultRetries
	case retries < 0:
		retries = 0
	}
	delay := r.Config.RetryDelay
	if delay <= 0 {
		delay = DefaultRetryDelay
	}
	for try := 0; ; try++ {
		if err := ctx.Err(); err != nil {
			return "", context.Cause(ctx)
		}
		status, err := r.Ingest(ctx, ev.Payload)
		if err == nil {
			if status == "" {
				status = "applied"
			}
			return status, nil
		}
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		if try >= retries || (r.Config.Retryable != nil && !r.Config.Retryable(err)) {
			log.Warn("backfill: event failed", "event", ev.EventID, "tries", try+1, "err", err)
			return CountFailed, nil
		}
		t := time.NewTimer(delay << try)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", context.Cause(ctx)
		case <-t.C:
		}
	}
}
