package customer_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/hookd/hookd/actors/customer"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// TestApplyBatchTakesCarriedObjects: an Item that carries its objects is
// applied with them, not with what its payload would decode to (the
// objects here differ from the payload on purpose, to tell the two
// apart); an Item without decodes its payload, as before.
func TestApplyBatchTakesCarriedObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.NewStore(t)
	p := customer.NewProcessor("cus_carry", st, quiet, nil)
	carried := &stripe.Objects{
		Customer: &stripe.Customer{ID: "cus_carry", Email: "carried@example.com"},
		Notes:    []string{"the carried objects"},
	}
	state := func() []byte {
		t.Helper()
		c, err := st.GetCustomer(ctx, "cus_carry")
		if err != nil {
			t.Fatal(err)
		}
		return c.State
	}
	apply := func(it customer.Item) customer.Result {
		t.Helper()
		o := p.ApplyBatch(ctx, []customer.Item{it})[0]
		if o.Err != nil || o.Result.Status != store.StatusApplied {
			t.Fatalf("%s: got %+v, %v; want applied", it.Envelope.GetEventId(), o.Result, o.Err)
		}
		return o.Result
	}

	res := apply(customer.Item{Envelope: envelope("evt_carry_1", "customer.created", "cus_carry", 1, "payload@example.com"),
		Routing: "object.id", Objects: carried})
	if !strings.Contains(res.Reason, "the carried objects") {
		t.Errorf("carried item's reason: got %q, want the carried note", res.Reason)
	}
	if e, err := st.GetEvent(ctx, "stripe", "evt_carry_1"); err != nil || !strings.Contains(e.Reason, "the carried objects") {
		t.Errorf("stored carried event: reason %q (%v), want the carried note", e.Reason, err)
	}
	if s := state(); !bytes.Contains(s, []byte("carried@example.com")) || bytes.Contains(s, []byte("payload@example.com")) {
		t.Errorf("state after the carried item: got %s, want the carried email, not the payload's", s)
	}

	res = apply(customer.Item{Envelope: envelope("evt_carry_2", "customer.updated", "cus_carry", 2, "decoded@example.com"), Routing: "object.id"})
	if strings.Contains(res.Reason, "the carried objects") {
		t.Errorf("decoded item's reason: got %q, want no carried note", res.Reason)
	}
	if s := state(); !bytes.Contains(s, []byte("decoded@example.com")) {
		t.Errorf("state after the item without objects: got %s, want its payload's email", s)
	}
}
