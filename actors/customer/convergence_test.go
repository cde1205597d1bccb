package customer

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// envelopeOf renders an Event as the gateway would hand it over: its Data
// when it has one, else its object, half of the time (by object and created, so that twins share it) in the
// shape of API versions up to 2025-02-24.acacia and half in that of
// 2025-03-31.basil on (an invoice's subscription under parent, a
// subscription's period on its items).
func envelopeOf(ev Event, customerID string) *hookdv1.Envelope {
	basil := crc32.ChecksumIEEE([]byte(ev.ObjectID+strconv.FormatInt(ev.Created, 10)))%2 == 0
	var obj any
	switch {
	case ev.Customer != nil:
		obj = ev.Customer
	case ev.Subscription != nil:
		s := ev.Subscription
		items := []map[string]any{}
		for _, it := range s.Items.Data {
			items = append(items, map[string]any{"price": map[string]any{"id": it.Price.ID}})
		}
		o := map[string]any{"id": s.ID, "object": "subscription", "customer": customerID, "status": s.Status,
			"cancel_at_period_end": s.CancelAtPeriodEnd}
		switch {
		case !basil:
			o["current_period_end"] = s.CurrentPeriodEnd
		case len(items) == 0:
			items = append(items, map[string]any{"current_period_end": s.CurrentPeriodEnd})
		default:
			for _, it := range items {
				it["current_period_end"] = s.CurrentPeriodEnd
			}
		}
		o["items"] = map[string]any{"object": "list", "data": items}
		obj = o
	case ev.Invoice != nil:
		in := ev.Invoice
		o := map[string]any{"id": in.ID, "object": "invoice", "customer": customerID, "status": in.Status,
			"amount_paid": in.AmountPaid, "amount_due": in.AmountDue, "currency": in.Currency}
		switch {
		case !basil:
			o["subscription"] = in.SubscriptionID()
		case in.SubscriptionID() != "":
			o["parent"] = map[string]any{"type": "subscription_details",
				"subscription_details": map[string]any{"subscription": in.SubscriptionID()}}
		}
		obj = o
	}
	var data any = map[string]any{"object": obj}
	if ev.Data != nil {
		data = ev.Data
	}
	raw, _ := json.Marshal(map[string]any{"id": ev.ID, "object": "event", "type": ev.Type, "created": ev.Created,
		"data": data})
	return &hookdv1.Envelope{Source: "stripe", EventId: ev.ID, Type: ev.Type, Created: ev.Created,
		ObjectId: ev.ObjectID, ObjectType: ev.ObjectType, CustomerId: customerID, Routing: "object.customer", Payload: raw}
}

// Over many random histories, shuffled and with duplicates, delivered
// concurrently across customers through the processor and PostgreSQL —
// with activations replaced at random, as passivation and restarts do —
// every customer converges to the state of in-order delivery, every
// notification stream is causally sane (invariants 3 and 4), and no event
// takes effect twice. HOOKD_CONVERGENCE_SEED replays a failing run.
func TestConvergenceOverShuffledHistories(t *testing.T) {
	t.Parallel()
	histories := 1000
	if testing.Short() {
		histories = 100
	}
	seed := rand.Uint64()
	if s := os.Getenv("HOOKD_CONVERGENCE_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (replay with HOOKD_CONVERGENCE_SEED=%d)", seed, seed)
	pg := pgtest.NewStore(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	type customerRun struct {
		id       string
		history  []Event // in created order
		delivery []Event // shuffled, with duplicates
	}
	var runs []customerRun
	for h := range histories {
		rng := rand.New(rand.NewPCG(seed, uint64(h)))
		for c := range 1 + rng.IntN(3) {
			id := fmt.Sprintf("cus_h%d_%d", h, c)
			history := randomHistory(rng, id)
			delivery := slices.Clone(history)
			for range rng.IntN(4) {
				delivery = append(delivery, history[rng.IntN(len(history))])
			}
			// True twins: another Event object for the same change.
			for range rng.IntN(3) {
				twin := history[rng.IntN(len(history))]
				twin.ID += "_twin"
				delivery = append(delivery, twin)
			}
			rng.Shuffle(len(delivery), func(i, j int) { delivery[i], delivery[j] = delivery[j], delivery[i] })
			runs = append(runs, customerRun{id, history, delivery})
		}
	}

	jobs := make(chan customerRun)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(1_000_000+w)))
			for r := range jobs {
				// Two activations, used in turn at random, so that each
				// often holds a stale state and is fenced; deliveries go
				// one by one or in batches of up to 4 (ApplyBatch).
				procs := [2]*Processor{NewProcessor(r.id, pg, quiet, nil), NewProcessor(r.id, pg, quiet, nil)}
				for i := 0; i < len(r.delivery); {
					k := rng.IntN(2)
					if rng.IntN(5) == 0 {
						procs[k] = NewProcessor(r.id, pg, quiet, nil) // a new activation
					}
					n := min(1+rng.IntN(4), len(r.delivery)-i)
					var items []Item
					for _, ev := range r.delivery[i : i+n] {
						items = append(items, Item{Envelope: envelopeOf(ev, r.id), Routing: "object.customer"})
					}
					for j, a := range procs[k].ApplyBatch(ctx, items) {
						if a.Err != nil {
							errs <- fmt.Errorf("%s: apply %s: %w", r.id, r.delivery[i+j].ID, a.Err)
							return
						}
					}
					i += n
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, r := range runs {
			select {
			case jobs <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("seed %d: %v", seed, err)
	}

	events := 0
	for _, r := range runs {
		events += len(r.delivery)
		subOf := map[string]string{}
		for _, ev := range r.delivery {
			if ev.Subscription != nil {
				subOf[ev.ID] = ev.Subscription.ID
			} else if ev.Invoice != nil {
				subOf[ev.ID] = ev.Invoice.SubscriptionID()
			}
		}
		want := applyInOrder(State{CustomerID: r.id}, r.history)
		c, err := pg.GetCustomer(ctx, r.id)
		if err != nil {
			t.Fatalf("seed %d: %s: %v", seed, r.id, err)
		}
		var got State
		if err := json.Unmarshal(c.State, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(Projected(got), Projected(want)) {
			t.Fatalf("seed %d: %s: state differs from in-order delivery\n got %+v\nwant %+v", seed, r.id, Projected(got), Projected(want))
		}
		// Notifications become readable once every older transaction on
		// the server has ended; other tests may hold one for a moment.
		var notes []store.Notification
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			notes, err = pg.ReadNotifications(ctx, "", r.id, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if (len(notes) > 0 && notes[len(notes)-1].Version >= got.Version) || time.Now().After(deadline) {
				break
			}
		}
		if len(notes) == 0 {
			t.Fatalf("seed %d: %s: no notifications", seed, r.id)
		}
		var stream []StreamNote
		for _, n := range notes {
			stream = append(stream, StreamNote{Kind: n.Kind, Version: n.Version, Subscription: subOf[n.EventID]})
		}
		if err := CheckStream(stream); err != nil {
			t.Fatalf("seed %d: %s: %v\nstream %+v", seed, r.id, err, stream)
		}
		// No event took effect twice: one version per applied event, and
		// the last notification shows the final state.
		applied, _, err := pg.ListEvents(ctx, store.ListEventsFilter{CustomerID: r.id, Status: store.StatusApplied, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(applied)) != got.Version || notes[len(notes)-1].Version != got.Version {
			t.Fatalf("seed %d: %s: %d applied events, version %d, last notification v%d; want all equal",
				seed, r.id, len(applied), got.Version, notes[len(notes)-1].Version)
		}
		var last hookdv1.Customer
		if err := proto.Unmarshal(notes[len(notes)-1].Customer, &last); err != nil || !proto.Equal(&last, got.Proto()) {
			t.Fatalf("seed %d: %s: last notification's customer differs from the stored state (%v)", seed, r.id, err)
		}
	}
	t.Logf("%d histories, %d customers, %d deliveries", histories, len(runs), events)
}
