package customer_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hookd/hookd/actors/customer"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// countingStore counts Commit calls.
type countingStore struct {
	store.Store
	calls atomic.Int32
}

func (c *countingStore) Commit(ctx context.Context, ws []store.Write) []error {
	c.calls.Add(1)
	return c.Store.Commit(ctx, ws)
}

func versions(answers []customer.Answer) []int64 {
	var v []int64
	for _, a := range answers {
		v = append(v, a.Result.Version)
	}
	return v
}

func statuses(answers []customer.Answer) []store.Status {
	var s []store.Status
	for _, a := range answers {
		s = append(s, a.Result.Status)
	}
	return s
}

// A batch with a repeat inside it and an event committed before answers
// each event as Apply would, with one Commit call when nothing conflicts,
// and versions that count the applied events.
func TestApplyBatchAnswersEachEventInOneCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &countingStore{Store: pgtest.NewStore(t)}
	p := customer.NewProcessor("cus_batch", st, quiet, nil)
	e0 := envelope("evt_b0", "customer.created", "cus_batch", 100, "a@example.com")
	if _, err := p.Apply(ctx, e0, "object.id"); err != nil {
		t.Fatal(err)
	}
	e1 := envelope("evt_b1", "customer.updated", "cus_batch", 101, "b@example.com")
	e2 := envelope("evt_b2", "customer.updated", "cus_batch", 102, "c@example.com")
	old := envelope("evt_b_old", "customer.updated", "cus_batch", 99, "old@example.com")
	st.calls.Store(0)
	answers := p.ApplyBatch(ctx, []customer.Item{{Envelope: e1}, {Envelope: e1}, {Envelope: e0}, {Envelope: old}, {Envelope: e2}})
	for i, a := range answers {
		if a.Err != nil {
			t.Fatalf("item %d: %v", i, a.Err)
		}
	}
	// The repeats are answered for what their event did: e1 (v2) in this
	// batch, e0 (v1) before it.
	want := []store.Status{store.StatusApplied, store.StatusApplied, store.StatusApplied, store.StatusSuperseded, store.StatusApplied}
	if got := statuses(answers); !equalStatuses(got, want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	if got := versions(answers); !slices.Equal(got, []int64{2, 2, 1, 2, 3}) {
		t.Errorf("versions %v, want [2 2 1 2 3]", got)
	}
	for _, i := range []int{1, 2} {
		if !strings.HasPrefix(answers[i].Result.Reason, "already received") {
			t.Errorf("item %d: reason %q, want already received", i, answers[i].Result.Reason)
		}
	}
	if n := st.calls.Load(); n != 1 {
		t.Errorf("%d Commit calls, want 1", n)
	}
	c, err := st.GetCustomer(ctx, "cus_batch")
	if err != nil || c.Version != 3 {
		t.Fatalf("stored customer version %d (%v), want 3 (create + two updates)", c.Version, err)
	}
	if notes := waitNotifications(t, st, "cus_batch", 3); len(notes) != 3 || notes[2].EventID != "evt_b2" {
		t.Fatalf("notifications %+v, want customer.created, then evt_b1 and evt_b2", notes)
	}
}

// A batch whose state another activation changed meanwhile is fenced,
// reloads, and applies every event on top; an event the other activation
// already committed is answered as what it did there (applied, v2).
func TestApplyBatchAfterAnotherActivationCommitted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := pgtest.NewStore(t)
	a := customer.NewProcessor("cus_two", pg, quiet, nil)
	b := customer.NewProcessor("cus_two", pg, quiet, nil)
	created := envelope("evt_t0", "customer.created", "cus_two", 100, "a@example.com")
	if _, err := a.Apply(ctx, created, "object.id"); err != nil {
		t.Fatal(err)
	}
	if err := b.Load(ctx); err != nil { // b reads version 1
		t.Fatal(err)
	}
	mid := envelope("evt_t1", "customer.updated", "cus_two", 101, "b@example.com")
	if _, err := a.Apply(ctx, mid, "object.id"); err != nil {
		t.Fatal(err)
	}
	late := envelope("evt_t2", "customer.updated", "cus_two", 102, "c@example.com")
	answers := b.ApplyBatch(ctx, []customer.Item{{Envelope: late}, {Envelope: mid}})
	want := []store.Status{store.StatusApplied, store.StatusApplied}
	if got := statuses(answers); !equalStatuses(got, want) || answers[0].Err != nil || answers[1].Err != nil {
		t.Fatalf("answers %+v, want %v", answers, want)
	}
	if got := versions(answers); !slices.Equal(got, []int64{3, 2}) {
		t.Errorf("versions %v, want [3 2]", got)
	}
}

// When the store fails, every event of the batch gets an error and none
// takes effect; the retry applies each once.
func TestApplyBatchStoreFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &faultyStore{Store: pgtest.NewStore(t)}
	p := customer.NewProcessor("cus_fail", st, quiet, nil)
	items := []customer.Item{
		{Envelope: envelope("evt_f0", "customer.created", "cus_fail", 100, "a@example.com")},
		{Envelope: subscriptionEnvelope("evt_f1", "cus_fail", "sub_f", 101)},
	}
	st.failNext.Store(1)
	for i, a := range p.ApplyBatch(ctx, items) {
		if a.Err == nil {
			t.Fatalf("item %d: no error from a failed commit", i)
		}
	}
	if _, err := st.GetCustomer(ctx, "cus_fail"); err == nil {
		t.Fatal("customer stored by a failed commit")
	}
	answers := p.ApplyBatch(ctx, items)
	if got := statuses(answers); !equalStatuses(got, []store.Status{store.StatusApplied, store.StatusApplied}) {
		t.Fatalf("retry: %+v", answers)
	}
	// A second retry is answered as the first one that got through.
	again := p.ApplyBatch(ctx, items)
	if !equalStatuses(statuses(again), statuses(answers)) || !slices.Equal(versions(again), versions(answers)) {
		t.Fatalf("second retry: %+v, want the answers of the first %+v", again, answers)
	}
	if c, err := st.GetCustomer(ctx, "cus_fail"); err != nil || c.Version != 2 {
		t.Fatalf("customer version %d (%v) after the retries, want 2", c.Version, err)
	}
}

func equalStatuses(a, b []store.Status) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
