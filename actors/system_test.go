package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/grainpb"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// customerEvent is an Apply request for a Stripe customer event.
func customerEvent(eventID, typ, customerID string, created int64) *grainpb.ApplyRequest {
	payload := fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"created":%d,"data":{"object":{"id":%q,"object":"customer","email":"%s@example.com"}}}`,
		eventID, typ, created, customerID, customerID)
	return &grainpb.ApplyRequest{Routing: "object.id", Envelope: &hookdv1.Envelope{
		Source: "stripe", EventId: eventID, Type: typ, Created: created,
		ObjectId: customerID, ObjectType: "customer", CustomerId: customerID, Routing: "object.id", Payload: []byte(payload)}}
}

// TestIdleCustomersArePassivated: a customer's actor leaves memory after
// the idle timeout without an event (through the compact mailbox: the
// receive timeout poisons the actor), one that keeps getting events
// stays, and a passivated customer's next event is applied on the state
// it reloads, at the next version. Against PostgreSQL, through the
// cluster as the ingest service calls it.
func TestIdleCustomersArePassivated(t *testing.T) {
	st := pgtest.NewStore(t)
	const idle = time.Second
	sys, _ := startSystem(t, Config{Store: st, IdleTimeout: idle})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	apply := func(req *grainpb.ApplyRequest, wantVersion int64) {
		t.Helper()
		resp, err := sys.Apply(ctx, req.GetEnvelope().GetCustomerId(), req)
		if err != nil || resp.GetError() != "" || resp.GetStatus() != "applied" || resp.GetVersion() != wantVersion {
			t.Fatalf("apply %s: %v, %v; want applied at version %d", req.GetEnvelope().GetEventId(), resp, err, wantVersion)
		}
	}
	const customers = 20
	for i := range customers {
		apply(customerEvent(fmt.Sprint("evt_c", i), "customer.created", fmt.Sprint("cus_", i), 100), 1)
	}
	if resident, activations := sys.Actors(); resident != customers || activations != customers {
		t.Fatalf("after one event each for %d customers: %d resident, %d activations", customers, resident, activations)
	}

	// cus_0 gets an event every idle/10 for two idle timeouts; the others
	// get none and leave. (If the machine is so loaded that cus_0 itself
	// went idle/2 without an event, its staying is not checked.)
	var maxGap time.Duration
	last := time.Now()
	for i := range 20 {
		apply(customerEvent(fmt.Sprint("evt_busy", i), "customer.updated", "cus_0", int64(101+i)), int64(2+i))
		maxGap, last = max(maxGap, time.Since(last)), time.Now()
		time.Sleep(idle / 10)
	}
	busyStayed := maxGap < idle/2
	if !busyStayed {
		t.Logf("cus_0 went %v without an event (idle timeout %v): not checking that it stayed", maxGap, idle)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resident, activations := sys.Actors()
		if busyStayed && activations != customers {
			t.Fatalf("%d activations while only the resident cus_0 got events, want %d", activations, customers)
		}
		if resident == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d customers still resident 10 s after their last event (idle timeout %v)", resident, idle)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A passivated customer comes back with its state: the next version.
	apply(customerEvent("evt_back", "customer.updated", "cus_7", 200), 2)
	if resident, activations := sys.Actors(); resident < 1 || (busyStayed && activations != customers+1) {
		t.Fatalf("after an event for a passivated customer: %d resident, %d activations; want it resident again, activated once more (%d)", resident, activations, customers+1)
	}
	c, err := st.GetCustomer(ctx, "cus_7")
	if err != nil || c.Version != 2 {
		t.Fatalf("cus_7 stored at version %d (%v), want 2", c.Version, err)
	}
}

// TestSystemLifecycle: Stop is safe before Start (which then fails), and
// twice and concurrently after it; Apply before Start and after Stop
// fails with ErrNotStarted; Start twice is an error.
func TestSystemLifecycle(t *testing.T) {
	st := pgtest.NewStore(t)
	cfg := Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	early, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	early.Stop()
	early.Stop()
	if err := early.Start(ctx); err == nil {
		t.Fatal("Start after Stop: got nil, want an error")
	}

	sys, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ev := customerEvent("evt_l1", "customer.created", "cus_l", 100)
	if _, err := sys.Apply(ctx, "cus_l", ev); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Apply before Start: got %v, want ErrNotStarted", err)
	}
	if err := sys.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sys.Start(ctx); err == nil {
		t.Fatal("second Start: got nil, want an error")
	}
	if resp, err := sys.Apply(ctx, "cus_l", ev); err != nil || resp.GetStatus() != "applied" {
		t.Fatalf("Apply: %v, %v", resp, err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); sys.Stop() }()
	}
	wg.Wait()
	sys.Stop()
	if _, err := sys.Apply(ctx, "cus_l", customerEvent("evt_l2", "customer.updated", "cus_l", 101)); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Apply after Stop: got %v, want ErrNotStarted", err)
	}
}

// TestResolveNow: an invoice event whose subscription hookd has not seen
// parks; ResolveNow releases it at once (well before the 30 s park
// deadline), synthesizing the subscription, and then has nothing left.
func TestResolveNow(t *testing.T) {
	st := pgtest.NewStore(t)
	sys, err := New(Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ParkDeadline: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := sys.ResolveNow(ctx, "cus_r"); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("ResolveNow before Start: %v, want ErrNotStarted", err)
	}
	if err := sys.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sys.Stop()
	if resp, err := sys.Apply(ctx, "cus_r", customerEvent("evt_r1", "customer.created", "cus_r", 100)); err != nil || resp.GetStatus() != "applied" {
		t.Fatalf("customer.created: %v, %v", resp, err)
	}
	payload := `{"id":"evt_r2","object":"event","type":"invoice.paid","created":200,"data":{"object":{"id":"in_r","object":"invoice","customer":"cus_r","subscription":"sub_r","status":"paid"}}}`
	inv := &grainpb.ApplyRequest{Routing: "object.customer", Envelope: &hookdv1.Envelope{
		Source: "stripe", EventId: "evt_r2", Type: "invoice.paid", Created: 200,
		ObjectId: "in_r", ObjectType: "invoice", CustomerId: "cus_r", Routing: "object.customer", Payload: []byte(payload)}}
	if resp, err := sys.Apply(ctx, "cus_r", inv); err != nil || resp.GetStatus() != "parked" {
		t.Fatalf("invoice.paid before its subscription: %v, %v; want parked", resp, err)
	}
	n, err := sys.ResolveNow(ctx, "cus_r")
	if err != nil || n != 1 {
		t.Fatalf("ResolveNow: %d, %v; want 1 released", n, err)
	}
	if e, err := st.GetEvent(ctx, "stripe", "evt_r2"); err != nil || e.Status == "parked" {
		t.Fatalf("evt_r2 after ResolveNow: %q, %v; want it no longer parked", e.Status, err)
	}
	if n, err := sys.ResolveNow(ctx, "cus_r"); err != nil || n != 0 {
		t.Fatalf("second ResolveNow: %d, %v; want 0", n, err)
	}
}
