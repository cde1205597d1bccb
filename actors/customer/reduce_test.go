package customer

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func custEvent(id, typ string, created int64, email string) Event {
	return Event{ID: id, Type: typ, Created: created, ObjectID: "cus_1", ObjectType: "customer",
		Customer: &CustomerObject{ID: "cus_1", Email: email}}
}

func subEvent(id, typ string, created int64, subID, status string) Event {
	return Event{ID: id, Type: typ, Created: created, ObjectID: subID, ObjectType: "subscription",
		Subscription: &SubscriptionObject{ID: subID, Status: status}}
}

func kinds(notes []Note) []string {
	var out []string
	for _, n := range notes {
		out = append(out, n.Kind)
	}
	return out
}

func TestReduceAnnouncesCustomerFirst(t *testing.T) {
	t.Parallel()
	st := State{CustomerID: "cus_1"}
	st, notes, out, _ := Reduce(st, subEvent("evt_1", "customer.subscription.created", 100, "sub_1", "active"))
	if out != Applied {
		t.Fatalf("outcome = %v, want Applied", out)
	}
	if got, want := kinds(notes), []string{"customer.created", "subscription.created"}; !slices.Equal(got, want) {
		t.Fatalf("notes = %v, want %v", got, want)
	}
	// The real customer.created arriving later is an update downstream.
	_, notes, out, _ = Reduce(st, custEvent("evt_2", "customer.created", 90, "a@example.com"))
	if out != Applied || !slices.Equal(kinds(notes), []string{"customer.updated"}) {
		t.Fatalf("got %v %v, want Applied [customer.updated]", out, kinds(notes))
	}
}

func TestReduceSupersedesOlderEvents(t *testing.T) {
	t.Parallel()
	st := State{CustomerID: "cus_1"}
	st, _, _, _ = Reduce(st, custEvent("evt_2", "customer.updated", 200, "new@example.com"))
	next, notes, out, reason := Reduce(st, custEvent("evt_1", "customer.updated", 100, "old@example.com"))
	if out != Superseded || len(notes) != 0 || reason == "" {
		t.Fatalf("got %v %v %q, want Superseded, no notes, a reason", out, kinds(notes), reason)
	}
	if next.Email != "new@example.com" {
		t.Fatalf("email = %q, want new@example.com", next.Email)
	}
	// Same second: deleted ranks after updated.
	st, _, _, _ = Reduce(st, custEvent("evt_3", "customer.deleted", 300, "new@example.com"))
	_, _, out, _ = Reduce(st, custEvent("evt_4", "customer.updated", 300, "x@example.com"))
	if out != Superseded {
		t.Fatalf("same-second update after delete: outcome %v, want Superseded", out)
	}
}

func TestReduceIgnoresUnprojectedTypes(t *testing.T) {
	t.Parallel()
	st := State{CustomerID: "cus_1"}
	_, notes, out, reason := Reduce(st, Event{ID: "evt_1", Type: "charge.succeeded", Created: 1, ObjectType: "charge"})
	if out != Ignored || len(notes) != 0 || reason == "" {
		t.Fatalf("got %v %v %q, want Ignored with a reason", out, kinds(notes), reason)
	}
}

func TestReduceDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	st := State{CustomerID: "cus_1"}
	st, _, _, _ = Reduce(st, subEvent("evt_1", "customer.subscription.created", 100, "sub_1", "active"))
	before := st.clone()
	_, _, _, _ = Reduce(st, subEvent("evt_2", "customer.subscription.updated", 200, "sub_1", "past_due"))
	if !reflect.DeepEqual(before, st) {
		t.Fatalf("Reduce modified its input:\nbefore %+v\nafter  %+v", before, st)
	}
}

// Applying a customer's events in any order, with duplicates, ends in the
// same state as applying them in created order (DESIGN.md invariant 5),
// for the events the reducer orders by itself (no parking involved).
func TestReduceConvergesOverShuffles(t *testing.T) {
	t.Parallel()
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	for round := 0; round < 500; round++ {
		var events []Event
		created := int64(1000)
		events = append(events, custEvent("evt_c", "customer.created", created, "e0@example.com"))
		for i := 0; i < 1+rng.IntN(6); i++ {
			created += 1 + int64(rng.IntN(3))
			events = append(events, custEvent(fmt.Sprintf("evt_u%d", i), "customer.updated", created, fmt.Sprintf("e%d@example.com", i)))
		}
		for s := 0; s < rng.IntN(3); s++ {
			sub := fmt.Sprintf("sub_%d", s)
			created += 1 + int64(rng.IntN(3))
			events = append(events, subEvent(sub+"c", "customer.subscription.created", created, sub, "trialing"))
			created += 1 + int64(rng.IntN(3))
			events = append(events, subEvent(sub+"u", "customer.subscription.updated", created, sub, "active"))
		}
		want := applyAll(events)

		shuffled := slices.Clone(events)
		for i := 0; i < rng.IntN(4); i++ {
			shuffled = append(shuffled, events[rng.IntN(len(events))])
		}
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := applyAll(shuffled)
		if !reflect.DeepEqual(projected(got), projected(want)) {
			t.Fatalf("seed %d round %d: shuffled state differs\n got %+v\nwant %+v", seed, round, projected(got), projected(want))
		}
	}
}

func applyAll(events []Event) State {
	st := State{CustomerID: "cus_1"}
	for _, ev := range events {
		st, _, _, _ = Reduce(st, ev)
	}
	return st
}

// projected drops bookkeeping that legitimately depends on arrival order.
func projected(st State) State {
	st.Marks = nil
	return st
}
