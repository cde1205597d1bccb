package backfill

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hookd/hookd/internal/stripefake"
)

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The reconciler runs once at Start over the initial window, on the member
// holding the lease: the events webhooks had brought count as duplicates,
// the others as missing; the checkpoint moves to the run's end less the
// settle delay. A second reconciler (another owner, same store) skips.
func TestReconciler(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		f := stripefake.New()
		t.Cleanup(f.Close)
		ids := addEvents(f, 10, time.Now().Add(-30*time.Minute))
		// An event before the initial window (1 h) is not listed.
		f.AddEvent(fmt.Appendf(nil, `{"id":"evt_early","object":"event","type":"x","created":%d}`, time.Now().Add(-2*time.Hour).Unix()))
		rec := newRecorder()
		for _, id := range ids[:4] {
			rec.seen[id] = true // webhooks brought these
		}
		reg := prometheus.NewRegistry()
		a := NewReconciler(ReconcilerConfig{Runner: newRunner(t, f, st, rec), Owner: "member-a", Interval: time.Hour, Registerer: reg})
		start := time.Now()
		if err := a.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Stop)
		waitFor(t, "the first reconciliation", func() bool { return value(a.runs.WithLabelValues("ok")) == 1 })
		if got := value(a.missing); got != 6 {
			t.Errorf("hookd_reconcile_events_missing_total: got %v, want 6", got)
		}
		if got := rec.ids(); len(got) != 10 || strings.Contains(strings.Join(got, ","), "evt_early") {
			t.Errorf("ingested %v, want the 10 events of the last hour", got)
		}
		cp, err := st.GetCheckpoint(t.Context(), ReconcileName)
		if err != nil {
			t.Fatal(err)
		}
		if lo, hi := start.Add(-DefaultSettle-time.Second), time.Now().Add(-DefaultSettle); cp.Before(lo) || cp.After(hi) {
			t.Errorf("checkpoint: got %v, want about the run's start less %v (%v..%v)", cp, DefaultSettle, lo, hi)
		}
		if age := value(a.age); age < DefaultSettle.Seconds()-1 || age > DefaultSettle.Seconds()+5 {
			t.Errorf("hookd_reconcile_checkpoint_age_seconds: got %v, want about %v", age, DefaultSettle.Seconds())
		}
		if n, err := series(reg); err != nil || n != 6 {
			t.Errorf("registered series: got %d, %v; want 6 (runs by 3 results and 3 others)", n, err)
		}

		// Another member, with its own Store on the same database: the
		// lease is held, it skips.
		b := NewReconciler(ReconcilerConfig{Runner: newRunner(t, f, st.member(t), rec), Owner: "member-b", Interval: time.Hour, Registerer: prometheus.NewRegistry()})
		if err := b.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the second member to skip", func() bool { return value(b.runs.WithLabelValues("skipped")) == 1 })
		b.Stop()
		if got := value(b.runs.WithLabelValues("ok")); got != 0 || len(rec.ids()) != 10 {
			t.Errorf("the second member ran (ok=%v, %d ingests)", got, len(rec.ids()))
		}
		// Stop gives the lease up: another member can take it at once.
		a.Stop()
		if ok, err := st.member(t).TryLease(t.Context(), ReconcileName, "member-c", time.Minute); err != nil || !ok {
			t.Errorf("lease after Stop: got %v, %v; want it free", ok, err)
		}
	})
}

// A checkpoint older than Stripe's retention is counted and logged; the
// window is clamped to the retention and the checkpoint advances. A
// second reconciliation starts at the checkpoint less the margin.
func TestReconcilerGapBeyondRetention(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		f := stripefake.New()
		t.Cleanup(f.Close)
		addEvents(f, 3, time.Now().Add(-29*24*time.Hour))
		if err := st.SetCheckpoint(t.Context(), ReconcileName, time.Now().Add(-40*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		r := NewReconciler(ReconcilerConfig{Runner: newRunner(t, f, st, rec), Owner: "a", Interval: time.Hour})
		if err := r.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the reconciliation", func() bool { return value(r.runs.WithLabelValues("ok")) == 1 })
		r.Stop()
		if got := value(r.gap); got != 1 {
			t.Errorf("hookd_reconcile_gap_beyond_retention_total: got %v, want 1", got)
		}
		if got := value(r.missing); got != 3 {
			t.Errorf("missing: got %v, want 3", got)
		}
		cp, err := st.GetCheckpoint(t.Context(), ReconcileName)
		if err != nil || time.Since(cp) > time.Minute {
			t.Errorf("checkpoint: got %v, %v; want advanced to about now", cp, err)
		}
		reqs := f.Requests()
		if len(reqs) != 1 {
			t.Fatalf("requests: %q", reqs)
		}
		var gte int64
		if _, after, ok := strings.Cut(reqs[0], "created[gte]="); ok {
			fmt.Sscan(strings.SplitN(after, "&", 2)[0], &gte)
		}
		if floor := time.Now().Add(-Retention).Unix(); gte < floor {
			t.Errorf("listed from %d, before the retention floor %d", gte, floor)
		}

		// The next reconciliation lists from the checkpoint less the margin.
		// Its clock stands still: the reconciler reads the time, then the
		// lease and the checkpoint, and the run reads it again to put the
		// start of its window, which a moving clock would shift by those
		// round trips (within the margin, but across a second now and then).
		runner := newRunner(t, f, st, rec)
		now := time.Now()
		runner.Now = func() time.Time { return now }
		r2 := NewReconciler(ReconcilerConfig{Runner: runner, Owner: "a", Interval: time.Hour})
		if err := r2.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the second reconciliation", func() bool { return value(r2.runs.WithLabelValues("ok")) == 1 })
		r2.Stop()
		reqs = f.Requests()
		if want := fmt.Sprintf("created[gte]=%d", cp.Add(-DefaultMargin).Unix()); len(reqs) != 2 || !strings.Contains(reqs[1], want) {
			t.Errorf("second listing: got %q, want %s", reqs[len(reqs)-1], want)
		}
		if got := value(r2.gap); got != 0 {
			t.Errorf("second reconciliation counted a gap")
		}
	})
}

// Start reports a config that cannot work.
func TestReconcilerConfig(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		if err := NewReconciler(ReconcilerConfig{Owner: "a"}).Start(t.Context()); err == nil {
			t.Error("Start without a Runner: want an error")
		}
		r := NewReconciler(ReconcilerConfig{Runner: &Runner{Store: st}, Owner: "a"})
		if err := r.Start(t.Context()); err == nil {
			t.Error("Start with a Runner lacking Source and Ingest: want an error")
		}
		r.Stop()
	})
}

// value reads a counter's or gauge's value.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// series counts the hookd_reconcile_ series reg gathers.
func series(reg *prometheus.Registry) (int, error) {
	mfs, err := reg.Gather()
	n := 0
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "hookd_reconcile_") {
			n += len(mf.GetMetric())
		}
	}
	return n, err
}
