//go:build !race

package customer

import "testing"

// encodeState allocates only the bytes it returns: the buffer it writes
// into is reused, and nothing else escapes (the sorted keys of the maps
// stay on the stack). Not under -race, which allocates on its own account
// and drops pooled buffers at random.
func TestEncodeStateAllocatesOnce(t *testing.T) {
	st := benchState()
	if allocs := testing.AllocsPerRun(100, func() { _, _ = encodeState(st) }); allocs > 1 {
		t.Errorf("encodeState allocated %.0f times, want once", allocs)
	}
}
