package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres/pgtest"
	"github.com/hookd/hookd/store/storetest"
)

// BenchmarkCommit measures the one-event write path: each goroutine
// applies events to a customer of its own, one Commit per event.
func BenchmarkCommit(b *testing.B) {
	s := pgtest.NewStore(b)
	var writers atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		cus := fmt.Sprintf("cus_%d", writers.Add(1))
		var v int64
		for pb.Next() {
			w := storetest.StateWrite(fmt.Sprintf("%s_evt_%d", cus, v), cus, v)
			if err := s.Commit(b.Context(), []store.Write{w})[0]; err != nil {
				b.Fatal(err)
			}
			v++
		}
	})
}

// BenchmarkCommitBatch32 measures group commit: 32 customers' events per
// Commit.
func BenchmarkCommitBatch32(b *testing.B) {
	s := pgtest.NewStore(b)
	const size = 32
	var v int64
	for b.Loop() {
		ws := make([]store.Write, size)
		for i := range ws {
			cus := fmt.Sprintf("cus_%d", i)
			ws[i] = storetest.StateWrite(fmt.Sprintf("%s_evt_%d", cus, v), cus, v)
		}
		for i, err := range s.Commit(b.Context(), ws) {
			if err != nil {
				b.Fatalf("write %d: %v", i, err)
			}
		}
		v++
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
}
