package envelope_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/storetest/backends"

	"github.com/hookd/hookd/internal/envelope"
	"github.com/hookd/hookd/store"
)

// What Check accepts, both stores store and give back byte for byte, and
// distinct accepted IDs stay distinct in both: so an event accepted by one
// store is accepted by the other (the stores' text columns are where they
// differ: PostgreSQL refuses NUL and invalid UTF-8, SQLite takes anything
// and its driver folds invalid bytes). This covers the edge cases by hand
// and random strings drawn from a palette of awkward runes and bytes; the
// fuzz target provider/stripe FuzzDecodeEnvelope checks that whatever
// DecodeEnvelope and Check accept has only such text.
func TestAcceptedTextRoundTripsThroughBothStores(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stores := map[string]store.Store{}
	for _, b := range backends.All {
		stores[b.Name] = b.Open(t)
	}

	edge := []string{
		strings.Repeat("x", envelope.MaxTextBytes),
		strings.Repeat("é", envelope.MaxTextBytes/2) + "x",
		strings.Repeat("😀", envelope.MaxTextBytes/4) + "xyz",
		"cus_\ufffe\uffff", "cus_\u2028\u2029", "cus_e\u0301", "cus_\u00e9", // NFD and NFC stay two IDs
		"cus_\U0010FFFF", "cus_ '\"\\%_;--", "cus_\u200b", "CUS_a", "cus_a", "cus_a ", // no folding of case or space
	}
	rng := rand.New(rand.NewPCG(12, 34))
	palette := []string{"a", "Z", "_", "0", " ", "é", "e\u0301", "ß", "İ", "😀", "\u200d", "\ufeff", "\ufffe", "\u2028",
		"\x00", "\n", "\x7f", "\u0085", "\ufffd", "\xff", "\xc0\xc1", "\xed\xa0\x80", "\xe2\x82", "%", "'", `\`}
	var accepted, rejected int
	ids := map[string]bool{}
	for _, id := range edge {
		ids[id] = true
	}
	for len(ids) < len(edge)+300 {
		var b strings.Builder
		b.WriteString("cus_")
		for range 1 + rng.IntN(90) {
			b.WriteString(palette[rng.IntN(len(palette))])
		}
		id := b.String()
		env := valid()
		env.EventId, env.CustomerId, env.ObjectId = id, id, id
		if envelope.Check(env, envelope.Limits{Latest: latest}) != nil {
			rejected++
			continue
		}
		ids[id] = true
	}
	for name, st := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := 0
			for id := range ids {
				n++
				env := valid()
				env.EventId, env.CustomerId, env.ObjectId, env.Type = id, id, id, id
				if err := envelope.Check(env, envelope.Limits{Latest: latest}); err != nil {
					t.Fatalf("%q: %v", id, err)
				}
				w := store.Write{
					Event: store.Event{Source: env.Source, EventID: env.EventId, Type: env.Type, CustomerID: env.CustomerId,
						Status: store.StatusApplied, Routing: env.Routing, Created: time.Unix(env.Created, 0).UTC(),
						APIVersion: env.ApiVersion, ObjectID: env.ObjectId, Account: env.Account, Version: 1, Payload: env.Payload,
						DedupKey: fmt.Sprintf("%s|%s|%s|%d|h", env.Source, env.Type, env.ObjectId, env.Created)},
					State:  []byte(`{}`),
					Routes: []string{env.ObjectId},
				}
				if err := st.Commit(ctx, []store.Write{w})[0]; err != nil {
					t.Fatalf("commit %q: %v", id, err)
				}
				got, err := st.GetEvent(ctx, env.Source, id)
				if err != nil {
					t.Fatalf("get event %q: %v", id, err)
				}
				if got.EventID != id || got.CustomerID != id || got.ObjectID != env.ObjectId || got.Type != env.Type {
					t.Fatalf("event %q read back as id %q customer %q object %q type %q", id, got.EventID, got.CustomerID, got.ObjectID, got.Type)
				}
				if c, err := st.GetCustomer(ctx, id); err != nil || c.Version != 1 {
					t.Fatalf("customer %q: version %d (%v), want 1: merged with another ID?", id, c.Version, err)
				}
				if c, err := st.LookupRoute(ctx, env.ObjectId); err != nil || c != id {
					t.Fatalf("route %q: %q (%v), want %q", env.ObjectId, c, err, id)
				}
			}
			t.Logf("%d accepted IDs stored and read back", n)
		})
	}
	accepted = len(ids)
	if rejected == 0 || accepted < 300 {
		t.Fatalf("%d accepted, %d rejected: want both kinds from the palette", accepted, rejected)
	}
}

// The poison IDs hookd used to take, rejected before any store sees them.
func TestPoisonIDsAreRejected(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"cus_\xff\xfe", "cus_\xc0\xc1", "cus_\x00", "cus_\ufffd", strings.Repeat("c", 256)} {
		env := valid()
		env.CustomerId = id
		if err := envelope.Check(env, envelope.Limits{Latest: latest}); err == nil || !strings.HasPrefix(err.Error(), "customer_id: ") {
			t.Errorf("customer_id %q: got %v, want a customer_id error", id, err)
		}
	}
}
