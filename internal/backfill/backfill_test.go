package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookd/hookd/internal/stripefake"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is an Ingest that dedups by event ID as hookd does: the first
// time an ID comes it is "applied", afterwards "duplicate".
type recorder struct {
	mu    sync.Mutex
	calls []string // event IDs in the order ingested
	seen  map[string]bool
	// after, when set, is called after each ingest with its number (from
	// 1), outside the lock.
	after func(n int)
}

func newRecorder() *recorder { return &recorder{seen: map[string]bool{}} }

func (r *recorder) ingest(_ context.Context, payload []byte) (string, error) {
	var ev struct{ ID string }
	if err := json.Unmarshal(payload, &ev); err != nil {
		return "", err
	}
	r.mu.Lock()
	r.calls = append(r.calls, ev.ID)
	n := len(r.calls)
	dup := r.seen[ev.ID]
	r.seen[ev.ID] = true
	after := r.after
	r.mu.Unlock()
	if after != nil {
		after(n)
	}
	if dup {
		return "duplicate", nil
	}
	return "applied", nil
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// addEvents adds n events to the fake, evt_0000 oldest; three share each
// second, from base on.
func addEvents(f *stripefake.Server, n int, base time.Time) []string {
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("evt_%04d", i)
		f.AddEvent(fmt.Appendf(nil, `{"id":%q,"object":"event","type":"customer.updated","created":%d,"data":{"object":{"id":"cus_%d","object":"customer"}}}`,
			ids[i], base.Unix()+int64(i/3), i%7))
	}
	return ids
}

func newRunner(t *testing.T, f *stripefake.Server, st store.BackfillStore, rec *recorder) *Runner {
	t.Helper()
	return &Runner{
		Store:  st,
		Source: stripe.NewClient("sk_test_backfill", f.URL(), slog.New(slog.DiscardHandler)),
		Ingest: rec.ingest,
		Logger: slog.New(slog.DiscardHandler),
		Config: Config{RetryDelay: time.Millisecond},
	}
}

// pagesFetched counts the requests for each starting_after (429s left
// out: the fake counts them, but they fetched nothing).
func pagesFetched(t *testing.T, reqs []string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, r := range reqs {
		after := "-"
		if _, a, ok := strings.Cut(r, "starting_after="); ok {
			after, _, _ = strings.Cut(a, "&")
		}
		n[after]++
	}
	return n
}

// 500 events, listed in 5 pages of 100 newest first, are applied oldest
// first; within one second in the order they were added (the reverse of
// listing order). Progress reports each page and batch, the last done.
func TestEventsBackfill(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		f := stripefake.New()
		t.Cleanup(f.Close)
		ids := addEvents(f, 500, time.Now().Add(-2*time.Hour))
		rec := newRecorder()
		r := newRunner(t, f, st, rec)

		var progress []Progress
		sum, err := r.Run(t.Context(), Request{Since: 3 * time.Hour}, func(p Progress) { progress = append(progress, p) })
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.ids(); !slices.Equal(got, ids) {
			t.Fatalf("ingested %d events, first %v; want the 500 oldest first, first %v", len(got), got[:min(5, len(got))], ids[:5])
		}
		if sum.Counts[CountFetched] != 500 || sum.Counts["applied"] != 500 || sum.Resumed || sum.Kind != KindEvents {
			t.Errorf("summary: got %+v, want 500 fetched and applied, not resumed", sum)
		}
		if reqs := f.Requests(); len(reqs) != 5 {
			t.Errorf("requests: got %d %q, want 5 pages", len(reqs), reqs)
		}
		// 5 pages, 3 batches of 200 (the last of 100 ends the run), done.
		var phases []string
		for _, p := range progress {
			phases = append(phases, fmt.Sprintf("%s:%d/%d", p.Phase, p.Processed, p.Total))
		}
		want := []string{"listing:0/0", "listing:0/0", "listing:0/0", "listing:0/0", "applying:0/500",
			"applying:200/500", "applying:400/500", "done:500/500"}
		if !slices.Equal(phases, want) {
			t.Errorf("progress: got %v, want %v", phases, want)
		}
		if last := progress[len(progress)-1]; !last.Done || last.Counts[CountFetched] != 500 || last.Counts["applied"] != 500 {
			t.Errorf("last progress: got %+v, want done with the counts", last)
		}
		if progress[0].Counts[CountFetched] != 100 {
			t.Errorf("first page: fetched %d, want 100", progress[0].Counts[CountFetched])
		}
	})
}

// 429s (every third request, Retry-After: 1) are waited out and the run
// completes with every event.
func TestEventsBackfillRateLimited(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		f := stripefake.New()
		t.Cleanup(f.Close)
		ids := addEvents(f, 500, time.Now().Add(-2*time.Hour))
		f.Fail429Every(3)
		rec := newRecorder()
		sum, err := newRunner(t, f, st, rec).Run(t.Context(), Request{Since: 3 * time.Hour}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.ids(); !slices.Equal(got, ids) || sum.Counts["applied"] != 500 {
			t.Fatalf("ingested %d, summary %+v; want all 500 applied", len(got), sum)
		}
		if reqs := f.Requests(); len(reqs) != 7 {
			t.Errorf("requests: got %d, want 7 (5 pages, 2 answered 429): %q", len(reqs), reqs)
		}
		for after, n := range pagesFetched(t, f.Requests()) {
			if n > 2 {
				t.Errorf("page after %s requested %d times", after, n)
			}
		}
	})
}

// cancelSource ends the run's context when ListEvents is asked for the
// page after the one numbered at (from 1): an interruption between pages.
type cancelSource struct {
	Source
	mu     sync.Mutex
	n, at  int
	cancel context.CancelFunc
}

func (s *cancelSource) ListEvents(ctx context.Context, since, until time.Time, cursor string) (stripe.ListPage, error) {
	s.mu.Lock()
	s.n++
	if s.n == s.at+1 {
		s.cancel()
	}
	s.mu.Unlock()
	return s.Source.ListEvents(ctx, since, until, cursor)
}

// A run interrupted while listing (after two pages) and again while
// applying (after 250 of 500) resumes each time where it was: no page is
// fetched twice, no event ingested twice, and the counts add up.
func TestEventsBackfillResumes(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		f := stripefake.New()
		t.Cleanup(f.Close)
		ids := addEvents(f, 500, time.Now().Add(-2*time.Hour))
		rec := newRecorder()
		r := newRunner(t, f, st, rec)
		client := r.Source

		// 1. Interrupted after staging two pages.
		ctx, cancel := context.WithCancel(t.Context())
		r.Source = &cancelSource{Source: client, at: 2, cancel: cancel}
		if _, err := r.Run(ctx, Request{Since: 3 * time.Hour}, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted listing: got %v, want context.Canceled", err)
		}
		cancel()
		if n := len(f.Requests()); n != 2 {
			t.Fatalf("interrupted listing fetched %d pages, want 2", n)
		}
		run, err := st.UnfinishedBackfillRun(t.Context(), KindEvents)
		if err != nil || run.Phase != store.BackfillListing || run.Listed != 200 {
			t.Fatalf("after the interrupted listing: %+v, %v; want listing with 200 staged", run, err)
		}

		// 2. Resumed, interrupted after 250 ingests.
		ctx, cancel = context.WithCancel(t.Context())
		r.Source = client
		rec.after = func(n int) {
			if n == 250 {
				cancel()
			}
		}
		var msgs []string
		if _, err := r.Run(ctx, Request{Since: 3 * time.Hour}, func(p Progress) { msgs = append(msgs, p.Message) }); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted apply: got %v, want context.Canceled", err)
		}
		cancel()
		if len(msgs) == 0 || !strings.Contains(msgs[0], fmt.Sprintf("resuming run %d", run.ID)) {
			t.Errorf("resumed progress messages: got %q, want resuming run %d", msgs, run.ID)
		}
		rec.after = nil

		// 3. Resumed to the end.
		sum, err := r.Run(t.Context(), Request{Since: 3 * time.Hour}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sum.RunID != run.ID || !sum.Resumed {
			t.Errorf("summary: got run %d resumed=%v, want run %d resumed", sum.RunID, sum.Resumed, run.ID)
		}
		got := rec.ids()
		if !slices.Equal(got, ids) {
			// Dedup makes a repeat harmless, but the run records each batch and
			// an interrupted one as far as it got: nothing is ingested twice.
			t.Errorf("ingested %d events (want each of 500 once, oldest first)", len(got))
		}
		if sum.Counts["applied"] != 500 || sum.Counts["duplicate"] != 0 || sum.Counts[CountFetched] != 500 {
			t.Errorf("counts: got %v, want 500 fetched and applied over the three parts", sum.Counts)
		}
		for after, n := range pagesFetched(t, f.Requests()) {
			if n != 1 {
				t.Errorf("page after %s fetched %d times, want once", after, n)
			}
		}
		if n := len(f.Requests()); n != 5 {
			t.Errorf("requests: got %d, want 5 pages in all", n)
		}
	})
}

// Restart ends an unfinished run, interrupted while listing (after one
// page) or while applying (after 150 of 300), and starts anew from the
// first page; a later Run finds nothing to resume (the stores end only a
// run in the applying phase: the engine ends the listing first).
func TestEventsBackfillRestart(t *testing.T) {
	t.Parallel()
	for _, phase := range []string{store.BackfillListing, store.BackfillApplying} {
		t.Run(phase, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st backend) {
				f := stripefake.New()
				t.Cleanup(f.Close)
				addEvents(f, 300, time.Now().Add(-2*time.Hour))
				rec := newRecorder()
				r := newRunner(t, f, st, rec)
				client := r.Source
				ctx, cancel := context.WithCancel(t.Context())
				wantReqs := 4 // 1 page, then 3 from the first
				if phase == store.BackfillListing {
					r.Source = &cancelSource{Source: client, at: 1, cancel: cancel}
				} else {
					wantReqs = 6 // 3 pages, then 3 from the first
					rec.after = func(n int) {
						if n == 150 {
							cancel()
						}
					}
				}
				if _, err := r.Run(ctx, Request{Since: 3 * time.Hour}, nil); !errors.Is(err, context.Canceled) {
					t.Fatalf("interrupted: got %v", err)
				}
				cancel()
				rec.after = nil
				old, ok := unfinished(t, st, KindEvents)
				if !ok || old.Phase != phase {
					t.Fatalf("after the interruption: got %+v (found %v), want a run %s", old, ok, phase)
				}
				r.Source = client
				var first Progress
				sum, err := r.Run(t.Context(), Request{Since: 3 * time.Hour, Restart: true}, func(p Progress) {
					if first.RunID == 0 {
						first = p
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				if sum.RunID == old.ID || sum.Resumed || sum.Counts[CountFetched] != 300 || sum.Counts["applied"]+sum.Counts["duplicate"] != 300 {
					t.Errorf("summary: got %+v, want a new run (not %d) with all 300", sum, old.ID)
				}
				if !strings.Contains(first.Message, fmt.Sprintf("unfinished run %d abandoned", old.ID)) {
					t.Errorf("message: got %q, want the abandoned run said", first.Message)
				}
				if reqs := f.Requests(); len(reqs) != wantReqs || strings.Contains(reqs[wantReqs-3], "starting_after") {
					t.Errorf("requests: got %q, want %d, the last 3 pages from the first", reqs, wantReqs)
				}
				if run, ok := unfinished(t, st, KindEvents); ok {
					t.Errorf("an unfinished run is left after the restart: %+v", run)
				}
				got, err := st.GetBackfillRun(t.Context(), old.ID)
				if err != nil || got.Phase != store.BackfillDone || got.Applied != old.Applied {
					t.Errorf("the abandoned run: got %+v, %v; want done where it was (%d applied)", got, err, old.Applied)
				}

				// A later Run starts anew: the abandoned run is not resumed.
				sum2, err := r.Run(t.Context(), Request{Since: 3 * time.Hour}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if sum2.Resumed || sum2.RunID == old.ID || sum2.RunID == sum.RunID || sum2.Counts[CountFetched] != 300 {
					t.Errorf("the run after the restart: got %+v, want a new one (not %d or %d) with all 300", sum2, old.ID, sum.RunID)
				}
			})
		})
	}
}

// failingEnd is a real store whose AdvanceBackfillRun fails once when
// asked to end a run, as when the process dies there; every other call
// goes to the store.
type failingEnd struct {
	store.BackfillStore
	fail atomic.Bool // the next ending call fails
}

var errEnd = errors.New("test: ending the run refused on purpose")

func (s *failingEnd) AdvanceBackfillRun(ctx context.Context, runID, applied int64, counts map[string]int64, done bool) error {
	if done && s.fail.CompareAndSwap(true, false) {
		return errEnd
	}
	return s.BackfillStore.AdvanceBackfillRun(ctx, runID, applied, counts, done)
}

// A restart that cannot end the unfinished run fails, starting no new
// run (which would hide the old one only until it ended). The run, its
// listing ended but not the run, is then ended by the next Run, not
// resumed: what it had staged is not applied.
func TestEventsBackfillRestartInterrupted(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, real backend) {
		f := stripefake.New()
		t.Cleanup(f.Close)
		ids := addEvents(f, 300, time.Now().Add(-2*time.Hour))
		st := &failingEnd{BackfillStore: real}
		rec := newRecorder()
		r := newRunner(t, f, st, rec)
		client := r.Source
		ctx, cancel := context.WithCancel(t.Context())
		r.Source = &cancelSource{Source: client, at: 1, cancel: cancel}
		if _, err := r.Run(ctx, Request{Since: 3 * time.Hour}, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted: got %v", err)
		}
		cancel()
		old, ok := unfinished(t, st, KindEvents)
		if !ok {
			t.Fatal("no unfinished run after the interruption")
		}
		r.Source = client

		st.fail.Store(true)
		if _, err := r.Run(t.Context(), Request{Since: 3 * time.Hour, Restart: true}, nil); !errors.Is(err, errEnd) {
			t.Fatalf("restart that cannot end the run: got %v, want %v", err, errEnd)
		}
		if run, ok := unfinished(t, st, KindEvents); !ok || run.ID != old.ID || run.Phase != store.BackfillApplying {
			t.Fatalf("after the failed restart: got %+v (found %v), want run %d, its listing ended", run, ok, old.ID)
		}

		sum, err := r.Run(t.Context(), Request{Since: 3 * time.Hour}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Resumed || sum.RunID == old.ID || sum.Counts[CountFetched] != 300 || sum.Counts["applied"] != 300 {
			t.Errorf("summary: got %+v, want a new run (not %d) with all 300", sum, old.ID)
		}
		if got := rec.ids(); !slices.Equal(got, ids) {
			t.Errorf("ingested %d events, want each of 300 once, oldest first", len(got))
		}
		if got, err := st.GetBackfillRun(t.Context(), old.ID); err != nil || got.Phase != store.BackfillDone || got.Applied != 0 {
			t.Errorf("the abandoned run: got %+v, %v; want done with nothing applied", got, err)
		}
	})
}

// A batch larger than the stores return at once (StagedEvents caps its
// limit at 1000) still applies every staged event.
func TestEventsBackfillLargeBatch(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		f := stripefake.New()
		t.Cleanup(f.Close)
		ids := addEvents(f, 1200, time.Now().Add(-2*time.Hour))
		rec := newRecorder()
		r := newRunner(t, f, st, rec)
		r.Config.BatchSize = 1500
		sum, err := r.Run(t.Context(), Request{Since: 3 * time.Hour}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.ids(); !slices.Equal(got, ids) || sum.Counts["applied"] != 1200 || sum.Counts[CountFetched] != 1200 {
			t.Errorf("ingested %d, summary %+v; want all 1200 applied, oldest first", len(got), sum)
		}
		if run, ok := unfinished(t, st, KindEvents); ok {
			t.Errorf("an unfinished run is left: %+v", run)
		}
	})
}

// An import lists customers (two pages: the cursor goes
// "customers:<id>" and then "subscriptions:") and subscriptions of every
// status, and wraps each into a synthesized event created when fetched.
func TestImportObjects(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		f := stripefake.New()
		t.Cleanup(f.Close)
		objects := map[string]string{}
		for i := range 150 {
			raw := fmt.Sprintf(`{"id":"cus_%03d","object":"customer","created":%d,"livemode":%t,"email":"c%d@example.com"}`, i, 1_600_000_000+i, i == 7, i)
			f.AddObject("customers", []byte(raw))
			objects[fmt.Sprintf("cus_%03d", i)] = raw
		}
		for i, status := range []string{"active", "canceled"} {
			raw := fmt.Sprintf(`{"id":"sub_%d","object":"subscription","created":1600000000,"customer":"cus_00%d","status":%q}`, i, i, status)
			f.AddObject("subscriptions", []byte(raw))
			objects[fmt.Sprintf("sub_%d", i)] = raw
		}
		var payloads [][]byte
		var mu sync.Mutex
		r := newRunner(t, f, st, newRecorder())
		r.Ingest = func(_ context.Context, p []byte) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			payloads = append(payloads, p)
			return "applied", nil
		}
		start := time.Now()
		sum, err := r.Run(t.Context(), Request{Objects: []string{"subscriptions", "customers"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		end := time.Now()
		if sum.Kind != "objects:customers,subscriptions" || sum.Counts[CountFetched] != 152 || sum.Counts["applied"] != 152 {
			t.Errorf("summary: got %+v, want kind objects:customers,subscriptions, 152 fetched and applied", sum)
		}
		reqs := f.Requests()
		if len(reqs) != 3 || !strings.HasPrefix(reqs[0], "/v1/customers?") || !strings.Contains(reqs[1], "starting_after=cus_050") ||
			!strings.HasPrefix(reqs[2], "/v1/subscriptions?") || !strings.Contains(reqs[2], "status=all") {
			t.Errorf("requests: got %q, want two pages of customers then subscriptions with status=all", reqs)
		}
		if len(payloads) != 152 {
			t.Fatalf("ingested %d, want 152", len(payloads))
		}
		for _, p := range payloads {
			var ev struct {
				ID          string  `json:"id"`
				Object      string  `json:"object"`
				Type        string  `json:"type"`
				Created     int64   `json:"created"`
				APIVersion  *string `json:"api_version"`
				Livemode    bool    `json:"livemode"`
				HookdImport bool    `json:"hookd_import"`
				Data        struct {
					Object json.RawMessage `json:"object"`
				} `json:"data"`
				Request map[string]any `json:"request"`
			}
			if err := json.Unmarshal(p, &ev); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			var obj struct{ ID, Object string }
			if err := json.Unmarshal(ev.Data.Object, &obj); err != nil {
				t.Fatal(err)
			}
			wantType := map[string]string{"customer": "customer.updated", "subscription": "customer.subscription.updated"}[obj.Object]
			if ev.ID != fmt.Sprintf("imp_%s_%d", obj.ID, ev.Created) || ev.Object != "event" || ev.Type != wantType || !ev.HookdImport ||
				ev.APIVersion == nil || *ev.APIVersion != "" || ev.Livemode != (obj.ID == "cus_007") {
				t.Errorf("synthesized event: got %s", p)
			}
			if ev.Created < start.Unix() || ev.Created > end.Unix() {
				t.Errorf("%s: created %d, want the fetch time (%d..%d)", ev.ID, ev.Created, start.Unix(), end.Unix())
			}
			if string(ev.Data.Object) != objects[obj.ID] {
				t.Errorf("%s: data.object got %s, want %s", ev.ID, ev.Data.Object, objects[obj.ID])
			}
			if v, ok := ev.Request["id"]; !ok || v != nil {
				t.Errorf("%s: request got %v, want id and idempotency_key null", ev.ID, ev.Request)
			}
		}
		if _, err := Kind([]string{"invoices"}); err == nil {
			t.Error("Kind(invoices): want an error")
		}
	})
}

// A window past Stripe's 30-day retention is clamped, with a warning.
func TestRetentionClamp(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		f := stripefake.New()
		t.Cleanup(f.Close)
		// The stores keep times to the microsecond.
		now := time.Now().Truncate(time.Microsecond)
		f.AddEvent(fmt.Appendf(nil, `{"id":"evt_old","object":"event","type":"x","created":%d}`, now.Add(-31*24*time.Hour).Unix()))
		f.AddEvent(fmt.Appendf(nil, `{"id":"evt_new","object":"event","type":"x","created":%d}`, now.Add(-29*24*time.Hour).Unix()))
		rec := newRecorder()
		r := newRunner(t, f, st, rec)
		r.Now = func() time.Time { return now }
		var msgs []string
		sum, err := r.Run(t.Context(), Request{Since: 40 * 24 * time.Hour}, func(p Progress) { msgs = append(msgs, p.Message) })
		if err != nil {
			t.Fatal(err)
		}
		if want := now.Add(-Retention + time.Minute); !sum.Since.Equal(want) {
			t.Errorf("since: got %v, want %v", sum.Since, want)
		}
		if len(msgs) == 0 || !strings.Contains(msgs[0], "retention") {
			t.Errorf("messages: got %q, want a retention warning", msgs)
		}
		if got := rec.ids(); !slices.Equal(got, []string{"evt_new"}) {
			t.Errorf("ingested %v, want [evt_new]", got)
		}
	})
}

// An Ingest error is retried (3 times by default) and, when it persists
// or is not retryable, counted as failed; the run goes on.
func TestIngestRetries(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		f := stripefake.New()
		t.Cleanup(f.Close)
		addEvents(f, 3, time.Now().Add(-time.Hour)) // evt_0000..evt_0002
		errPermanent := errors.New("rejected")
		var mu sync.Mutex
		tries := map[string]int{}
		r := newRunner(t, f, st, newRecorder())
		r.Config.Retryable = func(err error) bool { return !errors.Is(err, errPermanent) }
		r.Ingest = func(_ context.Context, p []byte) (string, error) {
			var ev struct{ ID string }
			_ = json.Unmarshal(p, &ev)
			mu.Lock()
			defer mu.Unlock()
			tries[ev.ID]++
			switch ev.ID {
			case "evt_0000": // transient twice, then applied
				if tries[ev.ID] <= 2 {
					return "", errors.New("store busy")
				}
			case "evt_0001": // always transient
				return "", errors.New("store down")
			case "evt_0002":
				return "", fmt.Errorf("bad event: %w", errPermanent)
			}
			return "applied", nil
		}
		sum, err := r.Run(t.Context(), Request{Since: 2 * time.Hour}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Counts["applied"] != 1 || sum.Counts[CountFailed] != 2 {
			t.Errorf("counts: got %v, want 1 applied, 2 failed", sum.Counts)
		}
		if want := map[string]int{"evt_0000": 3, "evt_0001": 4, "evt_0002": 1}; !equalMaps(tries, want) {
			t.Errorf("tries: got %v, want %v", tries, want)
		}
	})
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
