//go:build !race

package delivery

import "testing"

// payload allocates only the body it returns: the buffer it writes into
// is reused, and the sorted metadata stays on the stack. Not under -race,
// which allocates on its own account and drops pooled buffers at random.
func TestPayloadAllocatesOnce(t *testing.T) {
	n := benchNotification()
	if allocs := testing.AllocsPerRun(100, func() { _, _ = payload(n) }); allocs > 1 {
		t.Errorf("payload allocated %.0f times, want once", allocs)
	}
	// Metadata written out of order is sorted without allocating.
	n.Customer = append([]byte{0x32, 0x05, 0x0a, 0x01, 'z', 0x12, 0x00}, n.Customer...)
	if allocs := testing.AllocsPerRun(100, func() { _, _ = payload(n) }); allocs > 1 {
		t.Errorf("payload of unsorted metadata allocated %.0f times, want once", allocs)
	}
}
