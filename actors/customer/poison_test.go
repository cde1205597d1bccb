package customer_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/hookd/hookd/actors/customer"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/batch"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// longEventID returns a 3 KB event ID PostgreSQL cannot index (54000):
// random hex, so that index compression does not shrink it under the
// btree limit.
func longEventID() string {
	b := make([]byte, 1500)
	_, _ = rand.Read(b)
	return "evt_" + hex.EncodeToString(b)
}

// Processors of many customers share group commits and batched loads
// with processors fed poisoned events (a 3 KB event ID, a NUL byte in the
// customer ID, invalid UTF-8 in it): every good event is applied once,
// every poisoned one gets an error wrapping store.ErrInvalidArgument (the
// grain answers it Permanent, the ingest service InvalidArgument), and
// a poisoned event among good ones of the same customer fails alone.
func TestProcessorsPoisonIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := batch.New(pgtest.NewStore(t), batch.Config{})
	t.Cleanup(st.Close)
	if err := st.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const customers = 24
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for c := range customers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("cus_pp_%d", c)
			switch c % 6 {
			case 0: // the customer ID itself cannot be stored or read
				bad := []string{"cus_\x00" + id, "cus_\xff" + id}[c/6%2]
				p := customer.NewProcessor(bad, st, quiet, nil)
				_, err := p.Apply(ctx, envelope("evt_"+id, "customer.created", bad, 100, "x@example.com"), "object.id")
				if !errors.Is(err, store.ErrInvalidArgument) || errors.Is(err, store.ErrUnavailable) {
					fail("%q: got %v, want ErrInvalidArgument", bad, err)
				}
				return
			}
			p := customer.NewProcessor(id, st, quiet, nil)
			items := []customer.Item{
				{Envelope: envelope("evt_"+id+"_1", "customer.created", id, 100, "a@example.com")},
				{Envelope: envelope(longEventID(), "customer.updated", id, 101, "poison@example.com")},
				{Envelope: envelope("evt_"+id+"_3", "customer.updated", id, 102, "c@example.com")},
			}
			answers := p.ApplyBatch(ctx, items)
			for i, a := range answers {
				switch {
				case i == 1 && (!errors.Is(a.Err, store.ErrInvalidArgument) || errors.Is(a.Err, store.ErrUnavailable)):
					fail("%s: poisoned event: got %v, want ErrInvalidArgument", id, a.Err)
				case i != 1 && (a.Err != nil || a.Result.Status != store.StatusApplied):
					fail("%s: event %d: got %v, %v; want applied", id, i, a.Result.Status, a.Err)
				}
			}
			if answers[2].Result.Version != 2 {
				fail("%s: version after the good events: got %d, want 2", id, answers[2].Result.Version)
			}
		}()
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	for c := range customers {
		if c%6 == 0 {
			continue
		}
		id := fmt.Sprintf("cus_pp_%d", c)
		events, _, err := st.ListEvents(ctx, store.ListEventsFilter{CustomerID: id, PageSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 2 {
			t.Errorf("%s: %d events stored, want 2", id, len(events))
		}
	}
}
