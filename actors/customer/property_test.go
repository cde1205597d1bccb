package customer

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/hookd/hookd/provider/stripe"
)

// randomHistory returns one customer's events in created order: the
// customer, updates, subscriptions with updates and deletions, and
// invoices (of subscriptions, and one-off), with distinct created seconds.
func randomHistory(rng *rand.Rand, customerID string) []Event {
	created := int64(1_700_000_000 + rng.IntN(1000)*100)
	next := func() int64 { created += 1 + int64(rng.IntN(3)); return created }
	id := func(kind string, n int) string { return fmt.Sprintf("evt_%s_%s_%d_%d", customerID, kind, n, created) }
	cust := func(typ string, n int) Event {
		return Event{ID: id("c", n), Type: typ, Created: next(), ObjectID: customerID, ObjectType: "customer",
			Customer: &stripe.Customer{ID: customerID, Email: fmt.Sprintf("%s-%d@example.com", customerID, n), Metadata: map[string]string{"n": fmt.Sprint(n)}}}
	}
	events := []Event{cust("customer.created", 0)}
	for i := range rng.IntN(3) {
		events = append(events, cust("customer.updated", i+1))
	}
	if rng.IntN(2) == 0 {
		// Two changes in one second, as Stripe sends them (an email
		// change, then a metadata change): only previous_attributes
		// order them.
		last := events[len(events)-1].Customer
		at := next()
		email := customerID + "-same-second@example.com"
		first := &stripe.Customer{ID: customerID, Email: email, Metadata: last.Metadata}
		second := &stripe.Customer{ID: customerID, Email: email, Metadata: map[string]string{"n": "same-second"}}
		data := func(obj *stripe.Customer, prev map[string]any) json.RawMessage {
			b, _ := json.Marshal(map[string]any{"object": obj, "previous_attributes": prev})
			return b
		}
		events = append(events,
			Event{ID: id("c_email", 0), Type: "customer.updated", Created: at, ObjectID: customerID, ObjectType: "customer",
				Customer: first, Data: data(first, map[string]any{"email": last.Email})},
			Event{ID: id("c_meta", 0), Type: "customer.updated", Created: at, ObjectID: customerID, ObjectType: "customer",
				Customer: second, Data: data(second, map[string]any{"metadata": map[string]any{"n": last.Metadata["n"]}})})
	}
	for s := range 1 + rng.IntN(2) {
		sub := fmt.Sprintf("sub_%s_%d", strings.TrimPrefix(customerID, "cus_"), s)
		subEv := func(typ, status string, n int) Event {
			return Event{ID: id(sub, n), Type: typ, Created: next(), ObjectID: sub, ObjectType: "subscription",
				Subscription: &stripe.Subscription{ID: sub, Status: status, CurrentPeriodEnd: created + 30*86400}}
		}
		events = append(events, subEv("customer.subscription.created", "trialing", 0))
		for i := range rng.IntN(3) {
			inv := fmt.Sprintf("in_%s_%d", sub, i)
			typ := "invoice.paid"
			if rng.IntN(3) == 0 {
				typ = "invoice.payment_failed"
			}
			e := invEvent(id(inv, 0), typ, next(), inv, sub)
			events = append(events, e)
		}
		if rng.IntN(2) == 0 {
			events = append(events, subEv("customer.subscription.updated", "active", 1))
		}
		if rng.IntN(4) == 0 {
			events = append(events, subEv("customer.subscription.deleted", "canceled", 2))
		}
	}
	if rng.IntN(3) == 0 {
		inv := "in_oneoff_" + customerID
		events = append(events, invEvent(id(inv, 0), "invoice.paid", next(), inv, ""))
	}
	if rng.IntN(5) == 0 {
		events = append(events, cust("customer.deleted", 9))
	}
	return events
}

// applyInOrder applies events one after the other, as Apply's callers do:
// each gets the data of the events of its second it is ordered against.
func applyInOrder(st State, events []Event) State {
	for _, ev := range events {
		withPeers(st, &ev, events)
		st, _ = Apply(st, ev, 0)
	}
	return st
}

// withPeers gives ev the data of the events among all that Apply orders it
// against on st, as the Processor does from its store.
func withPeers(st State, ev *Event, all []Event) {
	ids := st.PeersOf(*ev)
	if len(ids) == 0 {
		return
	}
	ev.Peers = map[string]json.RawMessage{}
	for _, id := range ids {
		for _, e := range all {
			if e.ID == id {
				ev.Peers[id] = e.Data
			}
		}
	}
}

// Projected drops what legitimately depends on arrival order: the marks,
// the version (superseded events do not count), and parking bookkeeping.
func Projected(st State) State {
	st.Marks = nil
	st.Version = 0
	st.Parked = nil
	return st
}

// StreamNote is one notification as a subscriber sees it.
type StreamNote struct {
	Kind         string
	Version      int64
	Subscription string
}

// StreamOf lists the notifications of changes, in order.
func StreamOf(changes []Change) []StreamNote {
	var out []StreamNote
	for _, c := range changes {
		for _, k := range c.Kinds {
			out = append(out, StreamNote{Kind: k, Version: c.Version, Subscription: c.Subscription})
		}
	}
	return out
}

// CheckStream checks one customer's notification stream: versions start at
// 1 and increase by exactly one per change (invariant 3), the customer is
// announced first, and nothing refers to a subscription before its
// subscription.created (invariant 4).
func CheckStream(stream []StreamNote) error {
	var version int64
	subs := map[string]bool{}
	for i, n := range stream {
		switch {
		case n.Version != version && n.Version != version+1:
			return fmt.Errorf("notification %d (%s): version %d after %d", i, n.Kind, n.Version, version)
		case i == 0 && n.Kind != "customer.created":
			return fmt.Errorf("first notification is %s, want customer.created", n.Kind)
		case i > 0 && n.Kind == "customer.created":
			return fmt.Errorf("notification %d: a second customer.created", i)
		}
		version = n.Version
		switch {
		case n.Kind == "subscription.created":
			if subs[n.Subscription] {
				return fmt.Errorf("notification %d: subscription %s created twice", i, n.Subscription)
			}
			subs[n.Subscription] = true
		case strings.HasPrefix(n.Kind, "subscription."), strings.HasPrefix(n.Kind, "invoice.") && n.Subscription != "":
			if !subs[n.Subscription] {
				return fmt.Errorf("notification %d: %s refers to subscription %s before its subscription.created", i, n.Kind, n.Subscription)
			}
		}
	}
	return nil
}
