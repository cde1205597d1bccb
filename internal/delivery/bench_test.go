package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/internal/storetest"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// BenchmarkEngineDrain measures the engine draining a backlog of b.N
// notifications of 1,000 customers to one endpoint on PostgreSQL, at
// concurrency 32, to a receiver on loopback that answers 204 at once. The
// notifications are committed before the clock starts; it stops when the
// engine has stopped with every result recorded. Run it alone and with a
// fixed count (-run '^$' -benchtime=20000x): pg-µs/delivery is the
// CPU of the database's backends over the drain, divided by b.N, and
// server-µs/delivery the whole server's (pgtest.StartCPU).
func BenchmarkEngineDrain(b *testing.B) {
	const customers = 1000
	st, dbURL := pgtest.NewStoreURL(b)
	ctx := context.Background()
	var received atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	if _, err := st.CreateEndpoint(ctx, store.Endpoint{ID: "ep_bench", URL: srv.URL + "/hook",
		Secrets: []store.Secret{{Value: NewSecret()}}}); err != nil {
		b.Fatal(err)
	}
	n := b.N
	var writes []store.Write
	for i := range n {
		c := fmt.Sprintf("cus_%d", i%customers)
		v := int64(i/customers + 1)
		state, err := proto.Marshal(&hookdv1.Customer{CustomerId: c, Version: v})
		if err != nil {
			b.Fatal(err)
		}
		id := fmt.Sprintf("evt_drain_%d", i)
		writes = append(writes, store.Write{Event: storetest.Event(id, c), Notifications: []store.Notification{{
			CustomerID: c, Version: v, Kind: "customer.updated", EventID: id, OccurredAt: time.Now(), Customer: state}}})
	}
	for chunk := range slices.Chunk(writes, 250) {
		for i, err := range st.Commit(ctx, chunk) {
			if err != nil {
				b.Fatalf("Commit(%s): %v", chunk[i].Event.EventID, err)
			}
		}
	}
	eng := New(Config{Store: st, Concurrency: 32, PollInterval: 100 * time.Millisecond, Timeout: 5 * time.Second,
		Jitter: -1, AllowPrivate: true, Logger: slog.New(slog.DiscardHandler)})
	pgtest.Settle(b, dbURL, "events", "outbox", "customers")
	cpu := pgtest.StartCPU(b, dbURL)
	b.ResetTimer()
	if err := eng.Start(ctx); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for received.Load() < int64(n) {
		if time.Now().After(deadline) {
			eng.Stop()
			b.Fatalf("received %d of %d", received.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	eng.Stop() // records the last results
	b.StopTimer()
	var db, server time.Duration
	if cpu != nil {
		db, server = cpu.Stop()
	}
	bl, err := st.Backlog(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, x := range bl {
		if x.Undelivered != 0 {
			b.Fatalf("after the drain: %+v", x)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "deliveries/s")
	if cpu != nil {
		b.ReportMetric(float64(db.Microseconds())/float64(n), "pg-µs/delivery")
		b.ReportMetric(float64(server.Microseconds())/float64(n), "server-µs/delivery")
	}
	b.ReportMetric(0, "ns/op")
}
