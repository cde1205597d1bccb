package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres"
	"github.com/hookd/hookd/store/postgres/pgtest"
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

// BenchmarkCommitBatch32Poison measures what one poisoned write costs a
// batch of 32: none (clean), one refused under its savepoint (a 3 KB event
// ID: 54000), and one that fails the COMMIT (a deferred constraint), which
// no savepoint pins on a write, so that the batch is split until the
// guilty write is alone.
func BenchmarkCommitBatch32Poison(b *testing.B) {
	for _, kind := range []string{"clean", "savepoint", "split"} {
		b.Run(kind, func(b *testing.B) {
			url := pgtest.NewDatabase(b)
			s, err := postgres.Open(b.Context(), url, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(b.Context()); err != nil {
				b.Fatal(err)
			}
			conn, err := pgx.Connect(b.Context(), url)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(context.Background())
			installPoisonTriggers(b, conn)
			const size = 32
			var v int64
			for b.Loop() {
				ws := make([]store.Write, size)
				for i := range ws {
					cus := fmt.Sprintf("cus_%d", i)
					ws[i] = storetest.StateWrite(fmt.Sprintf("%s_evt_%d", cus, v), cus, v)
				}
				bad := size / 2
				switch kind {
				case "savepoint":
					ws[bad] = storetest.StateWrite("evt_"+incompressible(3000), fmt.Sprintf("cus_bad_%d", v), 0)
				case "split":
					ws[bad] = storetest.StateWrite(fmt.Sprintf("evt_commitdata_%d", v), fmt.Sprintf("cus_bad_%d", v), 0)
				}
				for i, err := range s.Commit(b.Context(), ws) {
					if (err != nil) != (kind != "clean" && i == bad) {
						b.Fatalf("write %d: %v", i, err)
					}
				}
				v++
			}
		})
	}
}

// BenchmarkDeliveryClaimComplete measures the delivery hot path: each
// iteration claims up to 50 due deliveries of one endpoint and completes
// them as delivered, from parallel workers. Run it with a fixed count
// (-benchtime=200x): the deliveries are made before the clock starts.
func BenchmarkDeliveryClaimComplete(b *testing.B) {
	s := pgtest.NewStore(b)
	ctx := b.Context()
	if _, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_bench", URL: "https://example.com"}); err != nil {
		b.Fatal(err)
	}
	const batch = 50
	total := b.N*batch + batch
	var notes []storetest.Note
	for i := range total {
		notes = append(notes, storetest.Note{CustomerID: fmt.Sprintf("cus_%d", i), Kind: "k"})
	}
	storetest.CommitNotes(b, s, notes...)
	for read := 0; read < total; {
		r, _, err := s.Enqueue(ctx, "ep_bench", 1000)
		if err != nil {
			b.Fatal(err)
		}
		read += r
	}
	var done atomic.Int64
	var owners atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		owner := fmt.Sprintf("w%d", owners.Add(1))
		for pb.Next() {
			cs, err := s.Claim(ctx, "ep_bench", owner, batch, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Complete(ctx, deliveredResults(cs)); err != nil {
				b.Fatal(err)
			}
			done.Add(int64(len(cs)))
		}
	})
	b.ReportMetric(float64(done.Load())/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkDeliveryCycle measures PostgreSQL's CPU per delivery over the
// whole cycle of one endpoint: Enqueue (500 notifications a call, as the
// engine) of b.N notifications over 1,000 customers, then Claim (128 a
// call) and Complete as delivered until every one is, each Complete
// promoting its customers' next deliveries. The notifications are
// committed before the clock starts. Run it alone and with a fixed count
// (-run '^$' -benchtime=20000x): pg-µs/delivery is the CPU of
// the database's backends over the timed part, divided by b.N, and
// server-µs/delivery the whole server's (see pgtest.StartCPU).
func BenchmarkDeliveryCycle(b *testing.B) {
	for _, claimBatch := range []int{128} {
		b.Run(fmt.Sprintf("claim=%d", claimBatch), func(b *testing.B) {
			const customers, enqueueBatch = 1000, 500
			s, dbURL := pgtest.NewStoreURL(b)
			ctx := b.Context()
			if _, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_bench", URL: "https://example.com"}); err != nil {
				b.Fatal(err)
			}
			n := b.N
			notes := make([]storetest.Note, n)
			for i := range notes {
				notes[i] = storetest.Note{CustomerID: fmt.Sprintf("cus_%d", i%customers), Kind: "k"}
			}
			storetest.CommitNotes(b, s, notes...)
			pgtest.Settle(b, dbURL, "events", "outbox", "customers")
			cpu := pgtest.StartCPU(b, dbURL)
			b.ResetTimer()
			for read := 0; read < n; {
				r, _, err := s.Enqueue(ctx, "ep_bench", enqueueBatch)
				if err != nil {
					b.Fatal(err)
				}
				if r == 0 {
					b.Fatalf("Enqueue read nothing after %d of %d", read, n)
				}
				read += r
			}
			for done := 0; done < n; {
				cs, err := s.Claim(ctx, "ep_bench", "w1", claimBatch, time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				if len(cs) == 0 {
					b.Fatalf("Claim found nothing after %d of %d delivered", done, n)
				}
				if err := s.Complete(ctx, deliveredResults(cs)); err != nil {
					b.Fatal(err)
				}
				done += len(cs)
			}
			b.StopTimer()
			var db, server time.Duration
			if cpu != nil {
				db, server = cpu.Stop()
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "deliveries/s")
			if cpu != nil {
				b.ReportMetric(float64(db.Microseconds())/float64(n), "pg-µs/delivery")
				b.ReportMetric(float64(server.Microseconds())/float64(n), "server-µs/delivery")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// deliveredResults answers every claimed delivery 200.
func deliveredResults(cs []store.Claimed) []store.Result {
	rs := make([]store.Result, len(cs))
	for i, c := range cs {
		rs[i] = store.Result{Lease: c.Lease, Outcome: store.OutcomeDelivered,
			Attempt: store.Attempt{DeliveryID: c.ID, Attempt: c.Lease.Attempt, StartedAt: time.Now(), StatusCode: 200}}
	}
	return rs
}
