package batch_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/batch"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// committers is about how many customer actors commit at once in the
// benchmark.
const committers = 64

// BenchmarkCommitParallel measures the actors' write path over PostgreSQL:
// about 64 goroutines, each applying events to a customer of its own, one
// single-write Commit per event, without batching (MaxBatch 1) and with.
func BenchmarkCommitParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  batch.Config
	}{
		{"MaxBatch=1", batch.Config{MaxBatch: 1}},
		{"MaxBatch=64/NoLinger", batch.Config{MaxWait: -1}},
		{"MaxBatch=64", batch.Config{}}, // default linger
		{"MaxBatch=64/MaxWait=1ms", batch.Config{MaxWait: time.Millisecond}},
		{"MaxBatch=64/MaxWait=2ms", batch.Config{MaxWait: 2 * time.Millisecond}},
	} {
		b.Run(bc.name, func(b *testing.B) { benchmarkCommitParallel(b, bc.cfg) })
	}
}

var benchRun atomic.Int64 // makes customer IDs unique across runs

func benchmarkCommitParallel(b *testing.B, cfg batch.Config) {
	s := batch.New(pgtest.NewStore(b), cfg)
	b.Cleanup(s.Close)
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	run := benchRun.Add(1)
	var writers atomic.Int64
	parallelism := max(1, committers/testingProcs())
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cus := fmt.Sprintf("cus_%d_%d", run, writers.Add(1))
		var v int64
		for pb.Next() {
			w := storetest.StateWrite(fmt.Sprintf("%s_evt_%d", cus, v), cus, v)
			if err := s.Commit(b.Context(), []store.Write{w})[0]; err != nil {
				b.Fatal(err)
			}
			v++
		}
	})
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if st.Commits > 0 {
		b.ReportMetric(float64(st.Writes)/float64(st.Commits), "writes/tx")
	}
}

// testingProcs is GOMAXPROCS, by which RunParallel multiplies the
// parallelism.
func testingProcs() int { return runtime.GOMAXPROCS(0) }
