package customer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
)

// stripeEvent renders a Stripe Event with the given data.object and
// decodes it as the gateway does.
func stripeEvent(t *testing.T, eventID, typ string, created int64, object map[string]any) *hookdv1.Envelope {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"id": eventID, "object": "event", "type": typ, "created": created,
		"api_version": "2024-06-20", "livemode": false, "data": map[string]any{"object": object}})
	if err != nil {
		t.Fatal(err)
	}
	env, err := stripe.DecodeEnvelope(raw)
	if err != nil {
		t.Fatalf("decode %s: %v", eventID, err)
	}
	return env
}

// history is a realistic sequence of events for one customer: created,
// updated (name, metadata), a subscription created and updated twice, an
// invoice paid. With parkFirst the invoice arrives before its
// subscription (parked, then released by it).
func history(t *testing.T, cus string, t0 int64, parkFirst bool) []*hookdv1.Envelope {
	sub, inv := "sub_"+cus, "in_"+cus
	customerObj := func(name string, plan string) map[string]any {
		return map[string]any{"id": cus, "object": "customer", "email": cus + "@example.com", "name": name,
			"metadata": map[string]string{"plan": plan}}
	}
	subObj := func(status string) map[string]any {
		return map[string]any{"id": sub, "object": "subscription", "customer": cus, "status": status,
			"current_period_end": t0 + 86400, "cancel_at_period_end": false,
			"items": map[string]any{"object": "list", "data": []any{map[string]any{"price": map[string]any{"id": "price_pro"}}}}}
	}
	invoice := stripeEvent(t, "evt_"+cus+"_inv", "invoice.paid", t0+40, map[string]any{"id": inv, "object": "invoice",
		"customer": cus, "subscription": sub, "status": "paid", "amount_paid": 2500, "amount_due": 2500, "currency": "usd"})
	evs := []*hookdv1.Envelope{
		stripeEvent(t, "evt_"+cus+"_c", "customer.created", t0, customerObj("", "free")),
		stripeEvent(t, "evt_"+cus+"_u", "customer.updated", t0+10, customerObj("Ada "+cus, "pro")),
	}
	if parkFirst {
		evs = append(evs, invoice)
	}
	evs = append(evs,
		stripeEvent(t, "evt_"+cus+"_sc", "customer.subscription.created", t0+20, subObj("incomplete")),
		stripeEvent(t, "evt_"+cus+"_su1", "customer.subscription.updated", t0+30, subObj("past_due")),
		stripeEvent(t, "evt_"+cus+"_su2", "customer.subscription.updated", t0+35, subObj("active")),
	)
	if !parkFirst {
		evs = append(evs, invoice)
	}
	return evs
}

// tamper replaces a customer's stored state behind hookd's back (a
// commit with a row that takes no effect, fenced on the stored version).
func tamper(t *testing.T, st store.Store, cus string, change func(*State)) {
	t.Helper()
	c, err := st.GetCustomer(t.Context(), cus)
	if err != nil {
		t.Fatal(err)
	}
	var s State
	if err := json.Unmarshal(c.State, &s); err != nil {
		t.Fatal(err)
	}
	change(&s)
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Commit(t.Context(), []store.Write{{ReadVersion: c.Version, State: raw,
		Event: store.Event{Source: "test", EventID: "tamper_" + cus, Type: "test.tamper", CustomerID: cus,
			Status: store.StatusIgnored, Routing: "none", Payload: []byte("{}")}}})[0]
	if err != nil {
		t.Fatalf("tamper %s: %v", cus, err)
	}
}

// reprojectedNotes returns a customer's customer.reprojected
// notifications, waiting (a little) until at least want are readable: a
// notification becomes readable once every older transaction has ended,
// which tests running in parallel can delay.
func reprojectedNotes(t *testing.T, st store.Store, cus string, want int) []store.Notification {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		notes, err := st.ReadNotifications(t.Context(), "", cus, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var out []store.Notification
		for _, n := range notes {
			if n.Kind == ReprojectKind {
				out = append(out, n)
			}
		}
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// consumerView is what consumers see of a state: its projection without
// the version and updated_at.
func consumerView(st State) *hookdv1.Customer {
	c := st.Proto()
	c.Version, c.UpdatedAt = 0, nil
	return c
}

// Reproject finds exactly the customers whose stored state was altered,
// with the right field changes, writes nothing on a dry run, repairs them
// (one new version, one customer.reprojected notification each) and
// leaves the others alone; a second run changes nothing.
func TestReprojectRepairsAlteredStates(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		customers := []string{"cus_a", "cus_b", "cus_c", "cus_d"}
		procs := map[string]*Processor{}
		for i, cus := range customers {
			p := NewProcessor(cus, st, discard, nil)
			procs[cus] = p
			for _, env := range history(t, cus, 1_700_000_000+int64(i)*1000, cus == "cus_c" || cus == "cus_b") {
				res, err := p.Apply(ctx, env, env.GetRouting())
				if err != nil || (res.Status != store.StatusApplied && res.Status != store.StatusParked) {
					t.Fatalf("apply %s: %+v, %v", env.GetEventId(), res, err)
				}
			}
			if got := loadState(t, st, cus); len(got.Parked) != 0 || got.Invoices["in_"+cus] == nil {
				t.Fatalf("%s after its history: %+v", cus, got)
			}
		}
		original := map[string]State{}
		for _, cus := range customers {
			original[cus] = loadState(t, st, cus)
		}

		tamper(t, st, "cus_a", func(s *State) {
			s.Email = "wrong@example.com"
			s.Metadata = smallMapOf(map[string]string{"plan": "free", "x": "1"})
		})
		tamper(t, st, "cus_b", func(s *State) { s.Subscriptions["sub_cus_b"].Status = "canceled" })

		stored := map[string]store.Customer{}
		for _, cus := range customers {
			c, err := st.GetCustomer(ctx, cus)
			if err != nil {
				t.Fatal(err)
			}
			stored[cus] = c
		}

		want := map[string][]FieldChange{
			"cus_a": {
				{Path: "email", Live: "wrong@example.com", Recomputed: "cus_a@example.com"},
				{Path: "metadata[plan]", Live: "free", Recomputed: "pro"},
				{Path: "metadata[x]", Live: "1", Recomputed: absent},
			},
			"cus_b": {{Path: "subscriptions[sub_cus_b].status", Live: "canceled", Recomputed: "active"}},
		}

		// Dry run: through the activations that applied the events (they
		// hold the untampered state: Reproject reads the stored one).
		for _, cus := range customers {
			res, err := procs[cus].Reproject(ctx, true)
			if err != nil {
				t.Fatalf("dry run %s: %v", cus, err)
			}
			v := original[cus].Version
			if res.Changed != (want[cus] != nil) || !reflect.DeepEqual(res.Changes, want[cus]) || res.Version != v || res.NewVersion != v {
				t.Fatalf("dry run %s: %+v, want changed=%v version %d changes %+v", cus, res, want[cus] != nil, v, want[cus])
			}
		}
		for _, cus := range customers {
			c, err := st.GetCustomer(ctx, cus)
			if err != nil || c.Version != stored[cus].Version || !bytes.Equal(c.State, stored[cus].State) {
				t.Fatalf("dry run wrote %s: version %d→%d (%v)", cus, stored[cus].Version, c.Version, err)
			}
			if n := reprojectedNotes(t, st, cus, 0); len(n) != 0 {
				t.Fatalf("dry run notified %s: %d", cus, len(n))
			}
		}

		// The real run, through fresh activations for two of them.
		for _, cus := range customers {
			p := procs[cus]
			if cus == "cus_b" || cus == "cus_d" {
				p = NewProcessor(cus, st, discard, nil)
			}
			res, err := p.Reproject(ctx, false)
			if err != nil {
				t.Fatalf("reproject %s: %v", cus, err)
			}
			v := original[cus].Version
			wantNew := v
			if want[cus] != nil {
				wantNew = v + 1
			}
			if res.Changed != (want[cus] != nil) || !reflect.DeepEqual(res.Changes, want[cus]) || res.Version != v || res.NewVersion != wantNew {
				t.Fatalf("reproject %s: %+v, want version %d→%d changes %+v", cus, res, v, wantNew, want[cus])
			}
			if p.Version() != wantNew {
				t.Fatalf("%s: processor holds version %d after reproject, want %d", cus, p.Version(), wantNew)
			}
		}
		for _, cus := range customers {
			c, err := st.GetCustomer(ctx, cus)
			if err != nil {
				t.Fatal(err)
			}
			notes := reprojectedNotes(t, st, cus, min(len(want[cus]), 1))
			if want[cus] == nil {
				if c.Version != stored[cus].Version || !bytes.Equal(c.State, stored[cus].State) || len(notes) != 0 {
					t.Fatalf("%s untouched: store version %d→%d, %d notifications", cus, stored[cus].Version, c.Version, len(notes))
				}
				continue
			}
			got := loadState(t, st, cus)
			if d := Diff(got, original[cus]); d != nil {
				t.Fatalf("%s repaired differs from its recomputation: %+v", cus, d)
			}
			if !proto.Equal(consumerView(got), consumerView(original[cus])) {
				t.Fatalf("%s repaired: %v, want %v", cus, consumerView(got), consumerView(original[cus]))
			}
			newV := original[cus].Version + 1
			if got.Version != newV || c.Version != stored[cus].Version+1 || !got.Known || len(got.Parked) != 0 {
				t.Fatalf("%s repaired: version %d (store %d→%d), known %v, parked %d; want version %d",
					cus, got.Version, stored[cus].Version, c.Version, got.Known, len(got.Parked), newV)
			}
			if len(notes) != 1 || notes[0].Version != newV || notes[0].EventID != fmt.Sprintf("reproject_%s_v%d", cus, newV) {
				t.Fatalf("%s: reprojected notifications %+v, want one at version %d", cus, notes, newV)
			}
			var snap hookdv1.Customer
			if err := proto.Unmarshal(notes[0].Customer, &snap); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&snap, got.Proto()) {
				t.Fatalf("%s: notification carries %v, want %v", cus, &snap, got.Proto())
			}
			e, err := st.GetEvent(ctx, "hookd", notes[0].EventID)
			if err != nil || e.Status != store.StatusApplied || e.Type != ReprojectKind || e.Version != newV || e.CustomerID != cus || e.Routing != "reproject" {
				t.Fatalf("%s: event row %+v, %v", cus, e, err)
			}
			var changes []FieldChange
			if err := json.Unmarshal(e.Payload, &changes); err != nil || !reflect.DeepEqual(changes, want[cus]) {
				t.Fatalf("%s: event payload %s (%v), want the changes", cus, e.Payload, err)
			}
		}

		// A second run changes nothing, through a fresh activation or not.
		for _, cus := range customers {
			before, _ := st.GetCustomer(ctx, cus)
			for _, p := range []*Processor{procs[cus], NewProcessor(cus, st, discard, nil)} {
				res, err := p.Reproject(ctx, false)
				if err != nil || res.Changed || len(res.Changes) != 0 || res.NewVersion != res.Version {
					t.Fatalf("second run %s: %+v, %v", cus, res, err)
				}
			}
			after, _ := st.GetCustomer(ctx, cus)
			if after.Version != before.Version || len(reprojectedNotes(t, st, cus, min(len(want[cus]), 1))) != min(len(want[cus]), 1) {
				t.Fatalf("second run %s wrote", cus)
			}
		}

		// Events keep applying after a repair, on the repaired state.
		p := procs["cus_a"]
		env := stripeEvent(t, "evt_cus_a_u2", "customer.updated", 1_700_000_100, map[string]any{"id": "cus_a", "object": "customer",
			"email": "new@example.com", "name": "Ada cus_a", "metadata": map[string]string{"plan": "pro"}})
		res, err := p.Apply(ctx, env, env.GetRouting())
		if err != nil || res.Status != store.StatusApplied || res.Version != original["cus_a"].Version+2 {
			t.Fatalf("apply after repair: %+v, %v", res, err)
		}
		if res, err := NewProcessor("cus_a", st, discard, nil).Reproject(ctx, true); err != nil || res.Changed {
			t.Fatalf("reproject after a further event: %+v, %v", res, err)
		}
	})
}

// A customer with no state and no events has nothing to reproject.
func TestReprojectUnknownCustomer(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		res, err := NewProcessor("cus_none", st, discard, nil).Reproject(t.Context(), false)
		if err != nil || res.Changed || res.Version != 0 || res.NewVersion != 0 {
			t.Fatalf("Reproject: %+v, %v", res, err)
		}
		if _, err := st.GetCustomer(t.Context(), "cus_none"); err == nil {
			t.Fatal("a customer was written")
		}
	})
}

func TestDiffOrderAndPaths(t *testing.T) {
	live := State{Email: "a", Subscriptions: map[string]*Subscription{"sub_2": {Status: "active"}, "sub_1": {Status: "active", PriceIDs: []string{"p1"}}},
		Invoices: map[string]*Invoice{"in_1": {Status: "paid", AmountPaid: 1}}}
	re := State{Email: "b", Livemode: true, Metadata: smallMapOf(map[string]string{"k": "v"}),
		Subscriptions: map[string]*Subscription{"sub_1": {Status: "past_due", PriceIDs: []string{"p1", "p2"}}},
		Invoices:      map[string]*Invoice{"in_1": {Status: "paid", AmountPaid: 2}}}
	got := Diff(live, re)
	want := []FieldChange{
		{"email", "a", "b"},
		{"livemode", "false", "true"},
		{"metadata[k]", absent, "v"},
		{"subscriptions[sub_1].status", "active", "past_due"},
		{"subscriptions[sub_1].price_ids", "p1", "p1,p2"},
		{"subscriptions[sub_2]", `{"status":"active"}`, absent},
		{"invoices[in_1].amount_paid", "1", "2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Diff:\n got %+v\nwant %+v", got, want)
	}
	if d := Diff(re, re); d != nil {
		t.Fatalf("Diff of equal states: %+v", d)
	}
}

// subFetcher answers every subscription with status.
type subFetcher struct{ status string }

func (f subFetcher) FetchSubscription(_ context.Context, id, _ string) (*stripe.Subscription, error) {
	return &stripe.Subscription{ID: id, Status: f.status, CurrentPeriodEnd: 1_800_000_000}, nil
}

// Events released by a resolution (the subscription fetched from the
// provider, or synthesized) recompute to the live state: nothing to
// repair, whether or not later events changed the subscription.
func TestReprojectAfterResolution(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		for _, tc := range []struct {
			cus     string
			fetcher SubscriptionFetcher
		}{{"cus_fetched", subFetcher{"trialing"}}, {"cus_synth", nil}} {
			p := NewProcessor(tc.cus, st, discard, nil)
			hist := history(t, tc.cus, 1_700_000_000, true)
			for _, env := range hist[:3] { // created, updated, the invoice (parked)
				if _, err := p.Apply(ctx, env, env.GetRouting()); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := p.Resolve(ctx, time.Now().Add(time.Hour), time.Now(), tc.fetcher); err != nil || n != 1 {
				t.Fatalf("%s: Resolve: %d, %v", tc.cus, n, err)
			}
			check := func(when string) {
				t.Helper()
				res, err := NewProcessor(tc.cus, st, discard, nil).Reproject(ctx, true)
				if err != nil || res.Changed {
					t.Fatalf("%s %s: %+v, %v; want nothing to repair", tc.cus, when, res, err)
				}
			}
			check("after the resolution")
			// A subscription event created after the resolution.
			env := stripeEvent(t, "evt_"+tc.cus+"_late", "customer.subscription.updated", time.Now().Unix()+60,
				map[string]any{"id": "sub_" + tc.cus, "object": "subscription", "customer": tc.cus, "status": "active"})
			if res, err := p.Apply(ctx, env, env.GetRouting()); err != nil || res.Status != store.StatusApplied {
				t.Fatalf("%s: late update: %+v, %v", tc.cus, res, err)
			}
			check("after a later subscription event")
		}
	})
}
