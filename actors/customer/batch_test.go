package customer_test

import (
	"context"
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
	want := []store.Status{store.StatusApplied, store.StatusDuplicate, store.StatusDuplicate, store.StatusSuperseded, store.StatusApplied}
	if got := statuses(answers); !equalStatuses(got, want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	if answers[0].Result.Version != 2 || answers[4].Result.Version != 3 {
		t.Errorf("versions %d and %d, want 2 and 3", answers[0].Result.Version, answers[4].Result.Version)
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
// already committed is a duplicate.
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
	want := []store.Status{store.StatusApplied, store.StatusDuplicate}
	if got := statuses(answers); !equalStatuses(got, want) || answers[0].Err != nil || answers[1].Err != nil {
		t.Fatalf("answers %+v, want %v", answers, want)
	}
	if answers[0].Result.Version != 3 {
		t.Errorf("version %d, want 3", answers[0].Result.Version)
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
	if again := p.ApplyBatch(ctx, items); !equalStatuses(statuses(again), []store.Status{store.StatusDuplicate, store.StatusDuplicate}) {
		t.Fatalf("second retry: %+v", again)
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
