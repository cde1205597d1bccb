package sqlite_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
)

// BenchmarkCommit measures the one-event write path: each goroutine
// applies events to a customer of its own, one Commit per event, as the
// customer actors do. Concurrent calls share transactions (group commit);
// the parallel64 variant shows that with many actors committing at once.
func BenchmarkCommit(b *testing.B) {
	for _, bc := range []struct {
		name        string
		parallelism int // goroutines per GOMAXPROCS
	}{
		{"serial", 0},
		{"parallel1", 1},
		{"parallel64", 64},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, _ := setup(b)
			if bc.parallelism == 0 {
				for i := 0; b.Loop(); i++ {
					w := storetest.StateWrite(fmt.Sprintf("evt_%d", i), "cus_1", int64(i))
					if err := s.Commit(b.Context(), []store.Write{w})[0]; err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.SetParallelism(bc.parallelism)
				var writers atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					cus := fmt.Sprintf("cus_%d", writers.Add(1))
					var v int64
					for pb.Next() {
						w := storetest.StateWrite(fmt.Sprintf("%s_evt_%d", cus, v), cus, v)
						if err := s.Commit(b.Context(), []store.Write{w})[0]; err != nil {
							b.Error(err)
							return
						}
						v++
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkCommitBatch32 measures a batch of 32 customers' events per
// Commit.
func BenchmarkCommitBatch32(b *testing.B) {
	s, _ := setup(b)
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
