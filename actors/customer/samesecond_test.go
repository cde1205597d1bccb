package customer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hookd/hookd/internal/storetest/backends"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
)

// eachStore runs f as a parallel subtest on a fresh PostgreSQL database
// and on a fresh embedded store.
func eachStore(t *testing.T, f func(t *testing.T, st store.Store)) {
	backends.Each(t, func(t *testing.T, st backends.Store) { f(t, st) })
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// customerCreated is a customer.created event.
func customerCreated(eventID, customerID string, created int64, email string) *hookdv1.Envelope {
	env := customerChange(eventID, customerID, created, fmt.Sprintf(`{"id":%q,"object":"customer","email":%q}`, customerID, email), "")
	env.Type = "customer.created"
	env.Payload = []byte(strings.Replace(string(env.Payload), `"customer.updated"`, `"customer.created"`, 1))
	return env
}

// customerChange is a customer.updated event whose object and
// previous_attributes are given as JSON.
func customerChange(eventID, customerID string, created int64, object, previous string) *hookdv1.Envelope {
	data := `{"object":` + object
	if previous != "" {
		data += `,"previous_attributes":` + previous
	}
	data += "}"
	payload := fmt.Sprintf(`{"id":%q,"object":"event","type":"customer.updated","created":%d,"data":%s}`, eventID, created, data)
	return &hookdv1.Envelope{Source: "stripe", EventId: eventID, Type: "customer.updated", Created: created,
		ObjectId: customerID, ObjectType: "customer", CustomerId: customerID, Routing: "object.id", Payload: []byte(payload)}
}

// threeChanges returns three changes to one customer within one second,
// each to another field, in the order they happened: email, name, then
// metadata.
func threeChanges(customerID string, created int64) []*hookdv1.Envelope {
	obj := func(email, name, plan string) string {
		return fmt.Sprintf(`{"id":%q,"object":"customer","email":%q,"name":%q,"metadata":{"plan":%q}}`, customerID, email, name, plan)
	}
	return []*hookdv1.Envelope{
		customerChange("evt_"+customerID+"_email", customerID, created, obj("new@x", "Old", "free"), `{"email":"old@x"}`),
		customerChange("evt_"+customerID+"_name", customerID, created, obj("new@x", "New", "free"), `{"name":"Old"}`),
		customerChange("evt_"+customerID+"_plan", customerID, created, obj("new@x", "New", "pro"), `{"metadata":{"plan":"free"}}`),
	}
}

// permutations returns every order of 0..n-1.
func permutations(n int) [][]int {
	if n == 1 {
		return [][]int{{0}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func loadState(t *testing.T, st store.Store, customerID string) State {
	t.Helper()
	c, err := st.GetCustomer(t.Context(), customerID)
	if err != nil {
		t.Fatalf("get customer %s: %v", customerID, err)
	}
	var s State
	if err := json.Unmarshal(c.State, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Distinct changes to one customer within one second all take effect, in
// every delivery order, one by one or in one batch, through a fresh
// activation each time or the same one: the final state is the newest
// change, each event is applied or superseded (never duplicate), and the
// reason says which rule ordered it.
func TestSameSecondChangesAllTakeEffectInAnyOrder(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		for pi, perm := range permutations(3) {
			for _, mode := range []string{"one by one", "batch", "new activation each"} {
				id := fmt.Sprintf("cus_p%d_%s", pi, strings.ReplaceAll(mode, " ", "_"))
				p := NewProcessor(id, st, discard, nil)
				if _, err := p.Apply(ctx, customerCreated("evt_"+id+"_created", id, 1_700_000_000, "old@x"), "object.id"); err != nil {
					t.Fatal(err)
				}
				changes := threeChanges(id, 1_700_000_100)
				var items []Item
				for _, k := range perm {
					items = append(items, Item{Envelope: changes[k], Routing: "object.id"})
				}
				var answers []Answer
				switch mode {
				case "batch":
					answers = p.ApplyBatch(ctx, items)
				default:
					for _, it := range items {
						if mode == "new activation each" {
							p = NewProcessor(id, st, discard, nil)
						}
						answers = append(answers, p.ApplyBatch(ctx, []Item{it})...)
					}
				}
				applied := 0
				for i, a := range answers {
					if a.Err != nil {
						t.Fatalf("%s %v: %v", mode, perm, a.Err)
					}
					switch a.Result.Status {
					case store.StatusApplied:
						applied++
					case store.StatusSuperseded:
						if !strings.Contains(a.Result.Reason, "previous_attributes") {
							t.Errorf("%s %v: event %d superseded with reason %q, want the previous_attributes rule named", mode, perm, i, a.Result.Reason)
						}
					default:
						t.Errorf("%s %v: event %d answered %s (%s), want applied or superseded", mode, perm, i, a.Result.Status, a.Result.Reason)
					}
				}
				got := loadState(t, st, id)
				if got.Email != "new@x" || got.Name != "New" || got.Metadata.goMap()["plan"] != "pro" {
					t.Errorf("%s %v: final state email %q name %q metadata %v, want the newest change (new@x, New, plan pro)",
						mode, perm, got.Email, got.Name, got.Metadata.goMap())
				}
				if got.Version != int64(1+applied) {
					t.Errorf("%s %v: version %d after %d applied changes, want %d", mode, perm, got.Version, applied, 1+applied)
				}
				if perm[0] == 0 && perm[1] == 1 && applied != 3 {
					t.Errorf("%s: in order, %d of 3 changes applied, want all", mode, applied)
				}
			}
		}
	})
}

// Two Event objects for one change (a true twin: another event ID, the same
// data) take effect once: the second is a duplicate, in either order and
// with a distinct change of the same second between them.
func TestSameSecondTwinsTakeEffectOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		const id = "cus_twin"
		p := NewProcessor(id, st, discard, nil)
		changes := threeChanges(id, 1_700_000_100)
		twin := customerChange("evt_twin_of_email", id, 1_700_000_100, "", "")
		// The same bytes as the email change, under another event ID.
		twin.Payload = []byte(strings.Replace(string(changes[0].Payload), string(`"`+changes[0].EventId+`"`), `"evt_twin_of_email"`, 1))
		want := map[string]store.Status{
			changes[0].EventId:  store.StatusApplied,
			changes[1].EventId:  store.StatusApplied,
			"evt_twin_of_email": store.StatusDuplicate,
		}
		for _, env := range []*hookdv1.Envelope{changes[0], changes[1], twin} {
			res, err := p.Apply(ctx, env, "object.id")
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != want[env.EventId] {
				t.Errorf("%s: %s (%s), want %s", env.EventId, res.Status, res.Reason, want[env.EventId])
			}
		}
		if got := loadState(t, st, id).Version; got != 2 {
			t.Errorf("version %d, want 2 (the twin took no effect)", got)
		}
		e, err := st.GetEvent(ctx, "stripe", "evt_twin_of_email")
		if err != nil || e.Status != store.StatusDuplicate {
			t.Errorf("stored twin: %+v, %v; want status duplicate", e, err)
		}
	})
}

// fakeObjects is an ObjectFetcher that answers with fixed objects and
// counts its calls.
type fakeObjects struct {
	objects map[string]stripe.Objects
	calls   atomic.Int32
	account atomic.Value // string: the last account asked for
}

func (f *fakeObjects) FetchObject(_ context.Context, objectType, id, account string) (stripe.Objects, error) {
	f.calls.Add(1)
	f.account.Store(account)
	o, ok := f.objects[id]
	if !ok {
		return stripe.Objects{}, fmt.Errorf("%s %s: %w", objectType, id, stripe.ErrNotFound)
	}
	return o, nil
}

// When the data does not decide the order of two changes in one second (no
// previous_attributes), the later arrival is applied and its reason says
// so; with an ObjectFetcher, the object as the provider has it now is
// applied instead, and the reason says that.
func TestSameSecondUndecidedOrder(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		send := func(p *Processor, id, evt, email string) Result {
			t.Helper()
			obj := fmt.Sprintf(`{"id":%q,"object":"customer","email":%q}`, id, email)
			res, err := p.Apply(ctx, customerChange(evt, id, 1_700_000_100, obj, ""), "object.id")
			if err != nil {
				t.Fatal(err)
			}
			return res
		}

		p := NewProcessor("cus_arrival", st, discard, nil)
		send(p, "cus_arrival", "evt_a1", "first@x")
		res := send(p, "cus_arrival", "evt_a2", "second@x")
		if res.Status != store.StatusApplied || !strings.Contains(res.Reason, "arrival order") || !strings.Contains(res.Reason, "evt_a1") {
			t.Errorf("undecided, no fetcher: %s %q; want applied, in arrival order, naming evt_a1", res.Status, res.Reason)
		}
		if got := loadState(t, st, "cus_arrival").Email; got != "second@x" {
			t.Errorf("email %q, want the later arrival's", got)
		}

		fetch := &fakeObjects{objects: map[string]stripe.Objects{
			"cus_fetch": {Customer: &stripe.Customer{ID: "cus_fetch", Email: "at-stripe@x"}},
		}}
		p = NewProcessor("cus_fetch", st, discard, nil)
		p.FetchObjectsWith(fetch)
		send(p, "cus_fetch", "evt_f1", "first@x")
		if n := fetch.calls.Load(); n != 0 {
			t.Errorf("fetched %d times for an event alone in its second, want 0", n)
		}
		env := customerChange("evt_f2", "cus_fetch", 1_700_000_100, `{"id":"cus_fetch","object":"customer","email":"second@x"}`, "")
		env.Account = "acct_connected"
		res, err := p.Apply(ctx, env, "object.id")
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != store.StatusApplied || !strings.Contains(res.Reason, "fetched") {
			t.Errorf("undecided, with fetcher: %s %q; want applied with the fetched object", res.Status, res.Reason)
		}
		if got := loadState(t, st, "cus_fetch").Email; got != "at-stripe@x" {
			t.Errorf("email %q, want the fetched object's", got)
		}
		if n, acct := fetch.calls.Load(), fetch.account.Load(); n != 1 || acct != "acct_connected" {
			t.Errorf("fetched %d times for account %v, want once for acct_connected", n, acct)
		}
		e, err := st.GetEvent(ctx, "stripe", "evt_f2")
		if err != nil || !strings.Contains(e.Reason, "fetched") {
			t.Errorf("stored event: reason %q, %v; want the fetched rule", e.Reason, err)
		}
	})
}

// What decoding had to decide about an event stays in its reason when it
// was parked and is released: the reason says what released it and the
// decoding note (here, a basil invoice whose subscription only its lines
// name).
func TestReleasedEventKeepsDecodingNotes(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		const id = "cus_notes"
		invoice := `{"id":"evt_inv","object":"event","type":"invoice.paid","created":1700000200,"api_version":"2025-03-31.basil",
"data":{"object":{"id":"in_1","object":"invoice","customer":"cus_notes","status":"paid","amount_paid":500,"currency":"usd",
"lines":{"data":[{"id":"il_1","parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_notes"}}}]}}}}`
		p := NewProcessor(id, st, discard, nil)
		res, err := p.Apply(ctx, &hookdv1.Envelope{Source: "stripe", EventId: "evt_inv", Type: "invoice.paid", Created: 1700000200,
			ObjectId: "in_1", ObjectType: "invoice", CustomerId: id, Routing: "object.customer", Payload: []byte(invoice)}, "object.customer")
		if err != nil || res.Status != store.StatusParked || !strings.Contains(res.Reason, "taken from its lines") {
			t.Fatalf("invoice before its subscription: %+v %v; want parked, with the lines note", res, err)
		}
		sub := fmt.Sprintf(`{"id":"evt_sub","object":"event","type":"customer.subscription.created","created":1700000100,
"data":{"object":{"id":"sub_notes","object":"subscription","customer":%q,"status":"active","items":{"data":[{"current_period_end":1702000000}]}}}}`, id)
		if _, err := p.Apply(ctx, &hookdv1.Envelope{Source: "stripe", EventId: "evt_sub", Type: "customer.subscription.created", Created: 1700000100,
			ObjectId: "sub_notes", ObjectType: "subscription", CustomerId: id, Routing: "object.customer", Payload: []byte(sub)}, "object.customer"); err != nil {
			t.Fatal(err)
		}
		e, err := st.GetEvent(ctx, "stripe", "evt_inv")
		if err != nil || e.Status != store.StatusApplied || !strings.Contains(e.Reason, "released by evt_sub") || !strings.Contains(e.Reason, "taken from its lines") {
			t.Errorf("released invoice: status %s reason %q (%v); want applied, released by evt_sub, with the lines note", e.Status, e.Reason, err)
		}
	})
}
