package customer

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/hookd/hookd/provider/stripe"
)

func custEvent(id, typ string, created int64, email string) Event {
	return Event{ID: id, Type: typ, Created: created, ObjectID: "cus_1", ObjectType: "customer",
		Customer: &stripe.Customer{ID: "cus_1", Email: email}}
}

func subEvent(id, typ string, created int64, subID, status string) Event {
	return Event{ID: id, Type: typ, Created: created, ObjectID: subID, ObjectType: "subscription",
		Subscription: &stripe.Subscription{ID: subID, Status: status}}
}

func invEvent(id, typ string, created int64, invID, subID string) Event {
	return Event{ID: id, Type: typ, Created: created, ObjectID: invID, ObjectType: "invoice",
		Invoice: &stripe.Invoice{ID: invID, Subscription: stripe.ID(subID), Status: "paid", AmountPaid: 100}}
}

// notes flattens an effect's changes into "kind@version" strings.
func notes(eff Effect) []string {
	var out []string
	for _, c := range eff.Changes {
		for _, k := range c.Kinds {
			out = append(out, fmt.Sprintf("%s@%d", k, c.Version))
		}
	}
	return out
}

func TestApplyAnnouncesCustomerAndSubscriptionFirst(t *testing.T) {
	t.Parallel()
	st := State{CustomerID: "cus_1"}
	st, eff := Apply(st, subEvent("evt_1", "customer.subscription.updated", 100, "sub_1", "active"), 0)
	if eff.Outcome != Applied {
		t.Fatalf("outcome = %v, want Applied", eff.Outcome)
	}
	if got, want := notes(eff), []string{"customer.created@1", "subscription.created@1"}; !slices.Equal(got, want) {
		t.Fatalf("notes = %v, want %v", got, want)
	}
	// The real customer.created arriving later is an update downstream.
	_, eff = Apply(st, custEvent("evt_2", "customer.created", 90, "a@example.com"), 0)
	if got, want := notes(eff), []string{"customer.updated@2"}; eff.Outcome != Applied || !slices.Equal(got, want) {
		t.Fatalf("got %v %v, want Applied %v", eff.Outcome, got, want)
	}
}

func TestApplyParksInvoiceUntilItsSubscription(t *testing.T) {
	t.Parallel()
	st := State{CustomerID: "cus_1"}
	st, eff := Apply(st, invEvent("evt_inv", "invoice.paid", 300, "in_1", "sub_1"), 1000)
	if eff.Outcome != Parked || len(eff.Changes) != 0 || st.Version != 0 || len(st.Parked) != 1 {
		t.Fatalf("invoice before subscription: %v %v version %d parked %d, want Parked, no changes, version 0, 1 parked",
			eff.Outcome, notes(eff), st.Version, len(st.Parked))
	}
	// Parking the same event again changes nothing.
	if again, eff := Apply(st, invEvent("evt_inv", "invoice.paid", 300, "in_1", "sub_1"), 1001); eff.Outcome != Parked || len(again.Parked) != 1 {
		t.Fatalf("re-parking: %v with %d parked, want Parked with 1", eff.Outcome, len(again.Parked))
	}
	st, eff = Apply(st, subEvent("evt_sub", "customer.subscription.created", 200, "sub_1", "active"), 1002)
	want := []string{"customer.created@1", "subscription.created@1", "invoice.paid@2"}
	if got := notes(eff); eff.Outcome != Applied || !slices.Equal(got, want) {
		t.Fatalf("subscription arrives: %v %v, want Applied %v", eff.Outcome, got, want)
	}
	if r := eff.Released(); len(r) != 1 || r[0].EventID != "evt_inv" || r[0].Version != 2 {
		t.Fatalf("released %+v, want evt_inv at version 2", r)
	}
	if len(st.Parked) != 0 || st.Invoices["in_1"] == nil || st.Version != 2 {
		t.Fatalf("state after release: parked %d, invoice %v, version %d", len(st.Parked), st.Invoices["in_1"], st.Version)
	}
	// The snapshot of each change is the state at its version.
	if snap := eff.Changes[0].State; snap.Version != 1 || snap.Invoices["in_1"] != nil {
		t.Fatalf("snapshot at v1 has version %d and invoice %v, want 1 and none", snap.Version, snap.Invoices["in_1"])
	}
}

func TestResolveAfterDeadline(t *testing.T) {
	t.Parallel()
	st := State{CustomerID: "cus_1"}
	st, _ = Apply(st, custEvent("evt_c", "customer.created", 100, "a@example.com"), 1000)
	st, _ = Apply(st, invEvent("evt_inv", "invoice.paid", 300, "in_1", "sub_1"), 1000)
	if next, changes, _ := Resolve(st, 999, 2000, nil); len(changes) != 0 || len(next.Parked) != 1 {
		t.Fatalf("before the deadline: %d changes, %d parked; want none released", len(changes), len(next.Parked))
	}
	fetched := map[string]*stripe.Subscription{"sub_1": {ID: "sub_1", Status: "past_due"}}
	next, changes, reasons := Resolve(st, 1000, 2000, fetched)
	if len(changes) != 2 || len(next.Parked) != 0 || reasons["evt_inv"] == "" {
		t.Fatalf("after the deadline: %d changes, %d parked, reasons %v; want 2, 0, one for evt_inv", len(changes), len(next.Parked), reasons)
	}
	if got, want := append(changes[0].Kinds, changes[1].Kinds...), []string{"subscription.created", "invoice.paid"}; !slices.Equal(got, want) {
		t.Fatalf("kinds %v, want %v", got, want)
	}
	if next.Subscriptions["sub_1"].Status != "past_due" || changes[1].Version != 3 {
		t.Fatalf("subscription %+v at version %d, want past_due and the invoice at version 3", next.Subscriptions["sub_1"], changes[1].Version)
	}
	// An older subscription event arriving afterwards does not overwrite
	// what the provider said at resolution time.
	_, eff := Apply(next, subEvent("evt_sub", "customer.subscription.created", 200, "sub_1", "active"), 2001)
	if eff.Outcome != Superseded {
		t.Fatalf("late subscription.created: %v, want Superseded", eff.Outcome)
	}
}

func TestApplySupersedesOlderEvents(t *testing.T) {
	t.Parallel()
	st := State{CustomerID: "cus_1"}
	st, _ = Apply(st, custEvent("evt_2", "customer.updated", 200, "new@example.com"), 0)
	next, eff := Apply(st, custEvent("evt_1", "customer.updated", 100, "old@example.com"), 0)
	if eff.Outcome != Superseded || len(eff.Changes) != 0 || eff.Reason == "" || next.Email != "new@example.com" {
		t.Fatalf("got %v %v %q email %q, want Superseded, no changes, a reason, new@example.com", eff.Outcome, notes(eff), eff.Reason, next.Email)
	}
	// Same second: deleted ranks after updated.
	st, _ = Apply(st, custEvent("evt_3", "customer.deleted", 300, "new@example.com"), 0)
	if _, eff = Apply(st, custEvent("evt_4", "customer.updated", 300, "x@example.com"), 0); eff.Outcome != Superseded {
		t.Fatalf("same-second update after delete: %v, want Superseded", eff.Outcome)
	}
}

func TestApplyIgnoresUnprojectedTypes(t *testing.T) {
	t.Parallel()
	_, eff := Apply(State{CustomerID: "cus_1"}, Event{ID: "evt_1", Type: "charge.succeeded", Created: 1, ObjectType: "charge"}, 0)
	if eff.Outcome != Ignored || len(eff.Changes) != 0 || eff.Reason == "" {
		t.Fatalf("got %v %v %q, want Ignored with a reason", eff.Outcome, notes(eff), eff.Reason)
	}
}

func TestApplyDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	st := State{CustomerID: "cus_1"}
	st, _ = Apply(st, subEvent("evt_1", "customer.subscription.created", 100, "sub_1", "active"), 0)
	st, _ = Apply(st, invEvent("evt_i", "invoice.paid", 150, "in_1", "sub_2"), 0)
	before := st.clone()
	_, _ = Apply(st, subEvent("evt_2", "customer.subscription.updated", 200, "sub_1", "past_due"), 0)
	_, _ = Apply(st, subEvent("evt_3", "customer.subscription.created", 200, "sub_2", "active"), 0)
	_, _, _ = Resolve(st, 10, 20, nil)
	if !reflect.DeepEqual(before, st) {
		t.Fatalf("Apply modified its input:\nbefore %+v\nafter  %+v", before, st)
	}
}

// Applying a customer's events in any order, with duplicates, ends in the
// same state as applying them in created order (DESIGN.md invariant 5),
// and every order emits a causally sane stream (invariant 4).
func TestApplyConvergesOverShuffles(t *testing.T) {
	t.Parallel()
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	for round := 0; round < 1000; round++ {
		events := randomHistory(rng, "cus_1")
		want, _ := applyAll(events)
		shuffled := slices.Clone(events)
		for i := 0; i < rng.IntN(4); i++ {
			shuffled = append(shuffled, events[rng.IntN(len(events))])
		}
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got, stream := applyAll(shuffled)
		if !reflect.DeepEqual(Projected(got), Projected(want)) {
			t.Fatalf("seed %d round %d: shuffled state differs\n got %+v\nwant %+v", seed, round, Projected(got), Projected(want))
		}
		if err := CheckStream(stream); err != nil {
			t.Fatalf("seed %d round %d: %v", seed, round, err)
		}
	}
}

// applyAll applies events one by one (no dedup: the store does that) and
// returns the final state and the notification stream.
func applyAll(events []Event) (State, []StreamNote) {
	st := State{CustomerID: "cus_1"}
	var stream []StreamNote
	seen := map[string]bool{}
	for _, ev := range events {
		if seen[ev.ID] {
			continue // the store answers duplicate
		}
		withPeers(st, &ev, events)
		var eff Effect
		st, eff = Apply(st, ev, 0)
		if eff.Outcome != Ignored {
			seen[ev.ID] = true
		}
		stream = append(stream, StreamOf(eff.Changes)...)
	}
	return st, stream
}

// A parked event that a newer event for its object overtook while it
// waited is dropped at release and reported stale, to be settled as
// superseded.
func TestReleaseDropsStaleParkedEvents(t *testing.T) {
	t.Parallel()
	st := State{CustomerID: "cus_1"}
	st, _ = Apply(st, invEvent("evt_old", "invoice.paid", 300, "in_1", "sub_1"), 0)
	st, eff := Apply(st, invEvent("evt_new", "invoice.payment_failed", 400, "in_1", ""), 0)
	if eff.Outcome != Applied || len(st.Parked) != 1 {
		t.Fatalf("newer invoice event: %v with %d parked, want Applied with 1 parked", eff.Outcome, len(st.Parked))
	}
	st, eff = Apply(st, subEvent("evt_sub", "customer.subscription.created", 200, "sub_1", "active"), 0)
	if len(eff.Released()) != 0 || !slices.Equal(eff.Stale, []string{"evt_old"}) || len(st.Parked) != 0 {
		t.Fatalf("release: released %d, stale %v, parked %d; want 0, [evt_old], 0", len(eff.Released()), eff.Stale, len(st.Parked))
	}
	if st.Invoices["in_1"].PaymentFailures != 1 || st.Invoices["in_1"].Status != "paid" {
		t.Fatalf("invoice %+v: the stale paid event must not overwrite the newer failure", st.Invoices["in_1"])
	}
}

// Each change's snapshot is the state at its version, also when the state
// already has the maps later changes of the same Apply or Resolve write
// into (an invoice before, a second invoice released after).
func TestChangeSnapshotsAreTheStateAtTheirVersion(t *testing.T) {
	t.Parallel()
	st := State{CustomerID: "cus_1"}
	st, _ = Apply(st, subEvent("evt_s0", "customer.subscription.created", 100, "sub_0", "active"), 1000)
	st, _ = Apply(st, invEvent("evt_i0", "invoice.paid", 110, "in_0", "sub_0"), 1000)
	st, _ = Apply(st, invEvent("evt_i1", "invoice.paid", 300, "in_1", "sub_1"), 1000) // parked
	st, _ = Apply(st, invEvent("evt_i2", "invoice.paid", 310, "in_2", "sub_2"), 1000) // parked

	check := func(name string, changes []Change, want [][]string) {
		t.Helper()
		if len(changes) != len(want) {
			t.Fatalf("%s: %d changes, want %d", name, len(changes), len(want))
		}
		for i, c := range changes {
			if got := slices.Sorted(maps.Keys(c.State.Invoices)); !slices.Equal(got, want[i]) {
				t.Errorf("%s: snapshot of change %d (%v) holds invoices %v, want %v", name, i, c.Kinds, got, want[i])
			}
			if c.State.Version != c.Version {
				t.Errorf("%s: snapshot of change %d has version %d, want %d", name, i, c.State.Version, c.Version)
			}
		}
	}

	// sub_1 arrives: its change, then in_1 released by it.
	_, eff := Apply(st, subEvent("evt_s1", "customer.subscription.created", 200, "sub_1", "active"), 1001)
	check("apply", eff.Changes, [][]string{{"in_0"}, {"in_0", "in_1"}})
	if _, ok := eff.Changes[0].State.Marks.get("in_1"); ok {
		t.Errorf("apply: sub_1's own snapshot has in_1's mark, applied after it")
	}

	// Both deadlines pass: a subscription synthesized for in_1, which
	// releases it, then the same for in_2.
	_, changes, _ := Resolve(st, 1000, 2000, nil)
	check("resolve", changes, [][]string{{"in_0"}, {"in_0", "in_1"}, {"in_0", "in_1"}, {"in_0", "in_1", "in_2"}})
}

// Apply never changes the state it is given (an actor keeps it until the
// commit succeeds, and a snapshot of it may be on its way out): over random
// sequences of customer, subscription and invoice events, parked ones and
// their releases included, the input encodes the same before and after
// every Apply, and every earlier state the same at the end.
func TestApplyLeavesItsInputAsItWas(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for run := range 200 {
		st := State{CustomerID: "cus_1"}
		var kept []State // every earlier state, checked again at the end
		var encoded [][]byte
		for i := range 40 {
			id := fmt.Sprintf("evt_%d_%d", run, i)
			created := int64(100 + r.IntN(30))
			sub := fmt.Sprintf("sub_%d", r.IntN(3))
			var ev Event
			switch r.IntN(6) {
			case 0:
				ev = custEvent(id, []string{"customer.created", "customer.updated"}[r.IntN(2)], created, fmt.Sprintf("%d@example.com", i))
			case 1, 2:
				ev = subEvent(id, []string{"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"}[r.IntN(3)],
					created, sub, []string{"active", "past_due", "canceled"}[r.IntN(3)])
			default:
				ev = invEvent(id, []string{"invoice.paid", "invoice.payment_failed"}[r.IntN(2)], created, fmt.Sprintf("in_%d", r.IntN(4)), sub)
			}
			before, err := encodeState(st)
			if err != nil {
				t.Fatal(err)
			}
			next, _ := Apply(st, ev, int64(1000+i))
			after, _ := encodeState(st)
			if !bytes.Equal(before, after) {
				t.Fatalf("run %d, event %d (%s): Apply changed its input\nbefore %s\nafter  %s", run, i, ev.Type, before, after)
			}
			kept, encoded = append(kept, st), append(encoded, before)
			st = next
		}
		for i, old := range kept {
			if now, _ := encodeState(old); !bytes.Equal(now, encoded[i]) {
				t.Fatalf("run %d: state %d changed after later events\nthen %s\nnow  %s", run, i, encoded[i], now)
			}
		}
	}
}
