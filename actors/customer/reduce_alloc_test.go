//go:build !race

package customer

import (
	"fmt"
	"testing"
)

// A superseded event, or a parked event delivered again, leaves the state
// as it is, and Apply decides so without copying it: on a hot customer
// whose senders reorder its updates, about half the events are superseded
// (hookd bench --customers 1 --mix stripe). Not under -race, which
// allocates on its own account.
func TestApplyDecidesNoOpsWithoutCopying(t *testing.T) {
	st := State{CustomerID: "cus_1"}
	st, _ = Apply(st, custEvent("evt_1", "customer.created", 100, "a@example.com"), 0)
	st, _ = Apply(st, subEvent("evt_2", "customer.subscription.created", 100, "sub_1", "active"), 0)
	st, _ = Apply(st, custEvent("evt_3", "customer.updated", 200, "b@example.com"), 0)
	st, _ = Apply(st, invEvent("evt_4", "invoice.paid", 300, "in_9", "sub_9"), 1000) // parked
	// A state worth copying: 50 subscriptions make a copy cost over 50
	// allocations.
	for i := range 50 {
		st, _ = Apply(st, subEvent(fmt.Sprintf("evt_s%d", i), "customer.subscription.created", 100, fmt.Sprintf("sub_x%d", i), "active"), 0)
	}
	copyAllocs := testing.AllocsPerRun(10, func() { _ = st.clone() })
	older := custEvent("evt_5", "customer.updated", 150, "old@example.com")
	again := invEvent("evt_4", "invoice.paid", 300, "in_9", "sub_9")
	for name, ev := range map[string]Event{"superseded": older, "parked again": again} {
		var out Outcome
		allocs := testing.AllocsPerRun(100, func() {
			var eff Effect
			_, eff = Apply(st, ev, 2000)
			out = eff.Outcome
		})
		if out != Superseded && out != Parked {
			t.Fatalf("%s: outcome %v", name, out)
		}
		// Building the reason and reading the invoice's subscription ID
		// allocate a little; a copy of the state would be far more.
		if allocs > 8 || copyAllocs < 50 {
			t.Errorf("%s: Apply allocated %.0f times (a copy of the state: %.0f), want at most 8", name, allocs, copyAllocs)
		}
	}
}
