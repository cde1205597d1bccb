package customer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hookd/hookd/internal/storetest/backends"

	"github.com/hookd/hookd/actors/customer"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// stores returns a fresh store of each kind.
func stores(t *testing.T) map[string]store.Store {
	t.Helper()
	m := map[string]store.Store{}
	for _, b := range backends.All {
		m[b.Name] = b.Open(t)
	}
	return m
}

// A retry of a request (same source and event ID) is answered with the
// status the event has, by the activation that applied it and by a fresh
// one; a twin (a new event ID for the same change) stays a duplicate, and
// so does its retry. Nothing takes effect twice.
func TestRetryIsAnsweredForWhatTheEventDid(t *testing.T) {
	t.Parallel()
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			const cus = "cus_retry"
			created := envelope("evt_r0", "customer.created", cus, 100, "a@example.com")
			updated := envelope("evt_r1", "customer.updated", cus, 102, "b@example.com")
			twin := envelope("evt_r1_twin", "customer.updated", cus, 102, "b@example.com")
			stale := envelope("evt_r_stale", "customer.updated", cus, 101, "old@example.com")
			parked := subscriptionEnvelope("evt_r_sub", cus, "sub_r", 103) // no current_period_end: still applied
			p := customer.NewProcessor(cus, st, quiet, nil)
			first := map[string]customer.Result{}
			for _, env := range []*hookdv1.Envelope{created, updated, twin, stale, parked} {
				res, err := p.Apply(ctx, env, env.GetRouting())
				if err != nil {
					t.Fatalf("%s: %v", env.GetEventId(), err)
				}
				first[env.GetEventId()] = res
			}
			want := map[string]store.Status{
				"evt_r0": store.StatusApplied, "evt_r1": store.StatusApplied, "evt_r1_twin": store.StatusDuplicate,
				"evt_r_stale": store.StatusSuperseded,
			}
			for id, w := range want {
				if first[id].Status != w {
					t.Fatalf("first delivery of %s: %+v, want %s", id, first[id], w)
				}
			}
			fresh := customer.NewProcessor(cus, st, quiet, nil)
			for _, proc := range []*customer.Processor{p, fresh} {
				for _, env := range []*hookdv1.Envelope{created, updated, twin, stale, parked} {
					id := env.GetEventId()
					res, err := proc.Apply(ctx, env, env.GetRouting())
					if err != nil {
						t.Fatalf("retry of %s: %v", id, err)
					}
					f := first[id]
					if res.Status != f.Status || (f.Status == store.StatusApplied && res.Version != f.Version) {
						t.Errorf("retry of %s: %s v%d, want %s v%d as the first delivery", id, res.Status, res.Version, f.Status, f.Version)
					}
					if !strings.Contains(res.Reason, "already received") {
						t.Errorf("retry of %s: reason %q, want it to say already received", id, res.Reason)
					}
				}
			}
			c, err := st.GetCustomer(ctx, cus)
			if err != nil || c.Version != first["evt_r_sub"].Version {
				t.Fatalf("customer version %d (%v), want %d: no retry took effect", c.Version, err, first["evt_r_sub"].Version)
			}
		})
	}
}
