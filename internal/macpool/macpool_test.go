package macpool

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
)

func want(key, msg string) []byte {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// A state from the pool computes the HMAC of its own key, whatever was
// written to it before it was given back, from many goroutines, for
// keys within and past the bound.
func TestGetComputesTheKeysHMAC(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				key := fmt.Sprintf("whsec_%d", (i*7+g)%(maxKeys+50))
				msg := fmt.Sprintf("%d.payload-%d", i, g)
				h := Get(key)
				h.Write([]byte(msg))
				got := h.Sum(nil)
				if !hmac.Equal(got, want(key, msg)) {
					t.Errorf("key %s: wrong HMAC", key)
					return
				}
				h.Write([]byte("left over")) // must not leak into the next Get
				Put(key, h)
			}
		})
	}
	wg.Wait()
	if n := count.Load(); n > maxKeys {
		t.Errorf("%d keys pooled, bound %d", n, maxKeys)
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m := hmac.New(sha256.New, []byte("whsec_test_secret_0123456789"))
		m.Write([]byte("1700000000.{}"))
		m.Sum(nil)
	}
}

func BenchmarkPooled(b *testing.B) {
	b.ReportAllocs()
	var sum [sha256.Size]byte
	for b.Loop() {
		m := Get("whsec_test_secret_0123456789")
		m.Write([]byte("1700000000.{}"))
		m.Sum(sum[:0])
		Put("whsec_test_secret_0123456789", m)
	}
}
