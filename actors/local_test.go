package actors

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd/actors/customer"
	"github.com/hookd/hookd/internal/grainpb"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// payloadRecorder is a store that remembers the first byte of every
// event payload it is asked to commit.
type payloadRecorder struct {
	store.Store
	mu    sync.Mutex
	first map[string]*byte // event ID → &Payload[0]
}

func (r *payloadRecorder) Commit(ctx context.Context, writes []store.Write) []error {
	r.mu.Lock()
	for _, w := range writes {
		if len(w.Event.Payload) > 0 {
			r.first[w.Event.EventID] = &w.Event.Payload[0]
		}
	}
	r.mu.Unlock()
	return r.Store.Commit(ctx, writes)
}

// TestLocalGrainTakesTheRequestAsItIs: in one process, an event reaches
// its customer's grain and the store without its payload being copied (the
// generated grain client would encode the request to bytes and the grain
// decode it again: two copies of every payload), from the first event of
// a customer (whose grain is activated by the generated client) on, alone
// and in batches; and the answers are those of the generated protocol.
func TestLocalGrainTakesTheRequestAsItIs(t *testing.T) {
	rec := &payloadRecorder{Store: pgtest.NewStore(t), first: map[string]*byte{}}
	sys, _ := startSystem(t, Config{Store: rec})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const customers, perCustomer = 4, 30
	reqs := map[string]*grainpb.ApplyRequest{}
	var wg sync.WaitGroup
	errs := make(chan error, customers*perCustomer)
	for c := range customers {
		customerID := fmt.Sprint("cus_local", c)
		first := customerEvent(fmt.Sprint("evt_local", c, "_0"), "customer.created", customerID, 100)
		reqs[first.GetEnvelope().GetEventId()] = first
		if _, err := sys.Apply(ctx, customerID, first); err != nil {
			t.Fatal(err)
		}
		// The rest at once, so that the queue sends them in batches.
		for i := 1; i < perCustomer; i++ {
			req := customerEvent(fmt.Sprint("evt_local", c, "_", i), "customer.updated", customerID, int64(100+i))
			reqs[req.GetEnvelope().GetEventId()] = req
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := sys.Apply(ctx, customerID, req)
				// Sent concurrently, a later update can be applied
				// before an earlier one, which is then superseded.
				if st := resp.GetStatus(); err == nil && (resp.GetError() != "" || st != "applied" && st != "superseded") {
					err = fmt.Errorf("%s: %v, want applied or superseded", req.GetEnvelope().GetEventId(), resp)
				}
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	copied := 0
	for id, req := range reqs {
		got, ok := rec.first[id]
		switch {
		case !ok:
			t.Fatalf("event %s never reached the store", id)
		case got != &req.GetEnvelope().GetPayload()[0]:
			copied++
		}
	}
	// A customer's first event may go through the generated client (it
	// activates the grain); every later one is local.
	if copied > customers {
		t.Fatalf("%d of %d events reached the store as a copy of their payload; want at most %d (each customer's first)", copied, len(reqs), customers)
	}
	t.Logf("%d of %d payloads copied on the way to the store", copied, len(reqs))
}

// TestLocalApplyAfterTheGrainStopped: a cached PID whose grain has
// stopped is not sent a local apply that nobody would answer (a message
// without a sender to a stopped actor is a dead letter): the next event
// activates the grain again and is answered at once, not after an
// attempt's timeout.
func TestLocalApplyAfterTheGrainStopped(t *testing.T) {
	sys, _ := startSystem(t, Config{AttemptTimeout: 20 * time.Second, RequestTimeout: 60 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const customerID = "cus_stopped"
	for i, typ := range []string{"customer.created", "customer.updated"} {
		if _, err := sys.Apply(ctx, customerID, customerEvent(fmt.Sprint("evt_stopped_", i), typ, customerID, int64(100+i))); err != nil {
			t.Fatal(err)
		}
	}
	c, deps := sys.currentWithDeps()
	pid := deps.LocalPID(customerID)
	if pid == nil {
		t.Fatal("the grain is not cached as local after two events")
	}
	if err := c.ActorSystem.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	c.PidCache.Set(customerID, customer.KindName, pid) // a cache that has not heard yet
	if deps.LocalPID(customerID) != nil {
		t.Fatal("LocalPID returned the PID of a stopped grain")
	}
	start := time.Now()
	resp, err := sys.Apply(ctx, customerID, customerEvent("evt_stopped_2", "customer.updated", customerID, 102))
	if err != nil || resp.GetStatus() != "applied" {
		t.Fatalf("after the grain stopped: %v, %v; want applied", resp, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the event took %v: it waited out an attempt", took)
	}
}
