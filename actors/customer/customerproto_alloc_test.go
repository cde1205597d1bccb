//go:build !race

package customer

import (
	"testing"

	"github.com/hookd/hookd/store"
)

// encodeCustomer allocates only the bytes it returns, and
// appendCustomerProto nothing into a buffer with room (the sorted
// subscriptions and invoices stay on the stack). Not under -race, which
// allocates on its own account.
func TestEncodeCustomerAllocatesOnce(t *testing.T) {
	st := snapshotBenchState()
	if allocs := testing.AllocsPerRun(100, func() { _, _ = encodeCustomer(st) }); allocs > 1 {
		t.Errorf("encodeCustomer allocated %.0f times, want once", allocs)
	}
	buf := make([]byte, 0, customerProtoSize(st))
	if allocs := testing.AllocsPerRun(100, func() { _, _ = appendCustomerProto(buf, st) }); allocs > 0 {
		t.Errorf("appendCustomerProto into a buffer with room allocated %.0f times, want none", allocs)
	}
}

// fill allocates three times however many changes it writes: the state,
// one buffer for every change's snapshot, and the notifications.
func TestFillAllocatesOnceForAllSnapshots(t *testing.T) {
	p := &Processor{id: "cus_NffrFeUfNV2Hib"}
	st := snapshotBenchState()
	changes := []Change{
		{EventID: "evt_1", Version: 26, Kinds: []string{"subscription.updated"}, State: benchState()},
		{EventID: "evt_2", Version: 27, Kinds: []string{"invoice.paid", "invoice.updated"}, State: st},
		{EventID: "evt_3", Version: 28, Kinds: []string{"invoice.paid"}, State: st},
	}
	allocs := testing.AllocsPerRun(100, func() {
		var w store.Write
		if err := p.fill(&w, st, changes); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 {
		t.Errorf("fill of %d changes allocated %.0f times, want at most 3", len(changes), allocs)
	}
}
