package customer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/actors/customer"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// recordingFetcher answers FetchSubscription with sub (its ID set to the
// one asked for) and records the account of every call.
type recordingFetcher struct {
	sub stripe.Subscription

	mu       sync.Mutex // guards accounts
	accounts []string
}

func (f *recordingFetcher) FetchSubscription(_ context.Context, id, account string) (*stripe.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts = append(f.accounts, account)
	s := f.sub
	s.ID = id
	return &s, nil
}

func invoiceEnvelope(eventID, customerID, subID string, created int64) *hookdv1.Envelope {
	payload := fmt.Sprintf(`{"id":%q,"object":"event","type":"invoice.paid","created":%d,"data":{"object":{"id":"in_1","object":"invoice","customer":%q,"subscription":%q,"status":"paid","amount_paid":100,"currency":"usd"}}}`,
		eventID, created, customerID, subID)
	return &hookdv1.Envelope{Source: "stripe", EventId: eventID, Type: "invoice.paid", Created: created,
		ObjectId: "in_1", ObjectType: "invoice", CustomerId: customerID, Routing: "object.customer",
		RelatedObjectIds: []string{subID}, Payload: []byte(payload)}
}

// parkOnConnectedAccount makes cus_1 a customer of acct_1 and parks an
// invoice of sub_1, which the customer does not have yet.
func parkOnConnectedAccount(t *testing.T) (*customer.Processor, store.Store) {
	t.Helper()
	st := pgtest.NewStore(t)
	p := customer.NewProcessor("cus_1", st, quiet, nil)
	created := envelope("evt_c", "customer.created", "cus_1", 1_700_000_000, "a@example.com")
	created.Account = "acct_1"
	if res, err := p.Apply(t.Context(), created, created.GetRouting()); err != nil || res.Status != store.StatusApplied {
		t.Fatalf("Apply(customer.created): got %+v, %v; want applied", res, err)
	}
	inv := invoiceEnvelope("evt_i", "cus_1", "sub_1", 1_700_000_100)
	inv.Account = "acct_1"
	if res, err := p.Apply(t.Context(), inv, inv.GetRouting()); err != nil || res.Status != store.StatusParked {
		t.Fatalf("Apply(invoice.paid): got %+v, %v; want parked", res, err)
	}
	return p, st
}

func storedState(t *testing.T, st store.Store, id string) customer.State {
	t.Helper()
	c, err := st.GetCustomer(t.Context(), id)
	if err != nil {
		t.Fatalf("GetCustomer(%s): %v", id, err)
	}
	var s customer.State
	if err := json.Unmarshal(c.State, &s); err != nil {
		t.Fatalf("decode state: %v", err)
	}
	return s
}

func TestResolveFetchesOnBehalfOfTheConnectAccount(t *testing.T) {
	t.Parallel()
	p, st := parkOnConnectedAccount(t)
	if s := storedState(t, st, "cus_1"); s.Account != "acct_1" || s.Proto().GetAccount() != "acct_1" {
		t.Fatalf("state account: got %q (proto %q), want acct_1", s.Account, s.Proto().GetAccount())
	}
	e, err := st.GetEvent(t.Context(), "stripe", "evt_c")
	if err != nil || e.Account != "acct_1" {
		t.Fatalf("GetEvent(evt_c): got account %q, %v; want acct_1", e.Account, err)
	}

	f := &recordingFetcher{sub: stripe.Subscription{Customer: "cus_1", Status: "active"}}
	now := time.Now()
	n, err := p.Resolve(t.Context(), now.Add(time.Minute), now, f)
	if err != nil || n != 1 {
		t.Fatalf("Resolve: got %d, %v; want 1 released", n, err)
	}
	if len(f.accounts) != 1 || f.accounts[0] != "acct_1" {
		t.Errorf("FetchSubscription accounts: got %q, want [acct_1] (the Stripe-Account of the customer)", f.accounts)
	}
	if s := storedState(t, st, "cus_1"); s.Subscriptions["sub_1"] == nil || s.Subscriptions["sub_1"].Status != "active" {
		t.Errorf("sub_1: got %+v, want the fetched subscription (active)", s.Subscriptions["sub_1"])
	}
	e, err = st.GetEvent(t.Context(), "stripe", "evt_i")
	if err != nil || e.Status != store.StatusApplied || !strings.Contains(e.Reason, "fetched from the provider") {
		t.Errorf("GetEvent(evt_i): got %q %q, %v; want applied with the fetched subscription", e.Status, e.Reason, err)
	}
}

func TestResolvePlatformCustomerFetchesWithoutAccount(t *testing.T) {
	t.Parallel()
	st := pgtest.NewStore(t)
	p := customer.NewProcessor("cus_1", st, quiet, nil)
	for _, env := range []*hookdv1.Envelope{
		envelope("evt_c", "customer.created", "cus_1", 1_700_000_000, "a@example.com"),
		invoiceEnvelope("evt_i", "cus_1", "sub_1", 1_700_000_100),
	} {
		if _, err := p.Apply(t.Context(), env, env.GetRouting()); err != nil {
			t.Fatal(err)
		}
	}
	f := &recordingFetcher{sub: stripe.Subscription{Customer: "cus_1", Status: "active"}}
	now := time.Now()
	if n, err := p.Resolve(t.Context(), now.Add(time.Minute), now, f); err != nil || n != 1 {
		t.Fatalf("Resolve: got %d, %v; want 1 released", n, err)
	}
	if len(f.accounts) != 1 || f.accounts[0] != "" {
		t.Errorf("FetchSubscription accounts: got %q, want [\"\"]", f.accounts)
	}
}

func TestResolveDoesNotApplyAnotherCustomersSubscription(t *testing.T) {
	t.Parallel()
	p, st := parkOnConnectedAccount(t)
	f := &recordingFetcher{sub: stripe.Subscription{Customer: "cus_other", Status: "active",
		CurrentPeriodEnd: 1_800_000_000}}
	now := time.Now()
	n, err := p.Resolve(t.Context(), now.Add(time.Minute), now, f)
	if err != nil || n != 1 {
		t.Fatalf("Resolve: got %d, %v; want 1 released", n, err)
	}
	s := storedState(t, st, "cus_1")
	if sub := s.Subscriptions["sub_1"]; sub == nil || sub.Status != "unknown" || sub.CurrentPeriodEnd != 0 {
		t.Errorf("sub_1: got %+v, want synthesized (status unknown), not cus_other's", sub)
	}
	e, err := st.GetEvent(t.Context(), "stripe", "evt_i")
	if err != nil {
		t.Fatal(err)
	}
	const want = "fetched subscription sub_1 belongs to customer cus_other, not cus_1: not applied"
	if e.Status != store.StatusApplied || !strings.Contains(e.Reason, want) || !strings.Contains(e.Reason, "synthesized") {
		t.Errorf("GetEvent(evt_i): got %q %q; want applied, the reason saying %q and that it was synthesized", e.Status, e.Reason, want)
	}
}

func TestThinEventIsStoredIgnoredNotDecoded(t *testing.T) {
	t.Parallel()
	st := pgtest.NewStore(t)
	p := customer.NewProcessor("cus_1", st, quiet, nil)
	created := envelope("evt_c", "customer.created", "cus_1", 1_700_000_000, "a@example.com")
	if _, err := p.Apply(t.Context(), created, created.GetRouting()); err != nil {
		t.Fatal(err)
	}
	// A data.object in a thin event must not be taken for a snapshot.
	raw := []byte(`{"id":"evt_t","object":"v2.core.event","type":"v1.customer.updated","created":"2025-10-04T15:13:32.232Z",` +
		`"context":"acct_1","related_object":{"id":"cus_1","type":"customer","url":"/v1/customers/cus_1"},` +
		`"data":{"object":{"id":"cus_1","object":"customer","email":"changed@example.com"}}}`)
	env, err := stripe.DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Apply(t.Context(), env, env.GetRouting())
	if err != nil {
		t.Fatal(err)
	}
	const want = "thin event: hookd does not fetch its related object; stored"
	if res.Status != store.StatusIgnored || res.Reason != want || res.Version != 1 {
		t.Errorf("Apply(thin): got %+v, want ignored at version 1 with reason %q", res, want)
	}
	e, err := st.GetEvent(t.Context(), "stripe", "evt_t")
	if err != nil || e.Status != store.StatusIgnored || e.Reason != want || e.CustomerID != "cus_1" || e.Account != "acct_1" {
		t.Errorf("GetEvent(evt_t): got %+v, %v; want ignored for cus_1 on acct_1", e, err)
	}
	if s := storedState(t, st, "cus_1"); s.Email != "a@example.com" || s.Version != 1 {
		t.Errorf("state: got email %q version %d, want unchanged", s.Email, s.Version)
	}
}

// TestStateOfEarlierReleaseDecodes decodes a state as the release before
// Connect support stored it: no account, parked events without one.
func TestStateOfEarlierReleaseDecodes(t *testing.T) {
	t.Parallel()
	old := `{"customer_id":"cus_1","version":2,"known":true,"email":"a@example.com",` +
		`"parked":[{"event":{"ID":"evt_i","Type":"invoice.paid","Created":1,"ObjectID":"in_1","ObjectType":"invoice","Livemode":false,"Customer":null,"Subscription":null,"Invoice":null},"waiting_for":"sub_1","since":1}]}`
	var s customer.State
	if err := json.Unmarshal([]byte(old), &s); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if s.Account != "" || len(s.Parked) != 1 || s.Parked[0].Event.Account != "" {
		t.Errorf("decoded: got %+v, want no account", s)
	}
	again, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(again), "account") {
		t.Errorf("encoded: got %s, want no account field when there is none", again)
	}
}

// The first event of a connected customer may be parked: the account is
// known from it, for the fetch and for the snapshots Resolve emits.
func TestResolveFetchesForTheAccountOfAParkedFirstEvent(t *testing.T) {
	t.Parallel()
	st := pgtest.NewStore(t)
	p := customer.NewProcessor("cus_1", st, quiet, nil)
	inv := invoiceEnvelope("evt_i", "cus_1", "sub_1", 1_700_000_100)
	inv.Account = "acct_1"
	if res, err := p.Apply(t.Context(), inv, inv.GetRouting()); err != nil || res.Status != store.StatusParked {
		t.Fatalf("Apply(invoice.paid): got %+v, %v; want parked", res, err)
	}
	f := &recordingFetcher{sub: stripe.Subscription{Customer: "cus_1", Status: "active"}}
	now := time.Now()
	if n, err := p.Resolve(t.Context(), now.Add(time.Minute), now, f); err != nil || n != 1 {
		t.Fatalf("Resolve: got %d, %v; want 1 released", n, err)
	}
	if len(f.accounts) != 1 || f.accounts[0] != "acct_1" {
		t.Errorf("FetchSubscription accounts: got %q, want [acct_1]", f.accounts)
	}
	for _, n := range waitNotifications(t, st, "cus_1", 3) {
		var c hookdv1.Customer
		if err := proto.Unmarshal(n.Customer, &c); err != nil {
			t.Fatal(err)
		}
		if c.GetAccount() != "acct_1" {
			t.Errorf("notification %s v%d: snapshot account %q, want acct_1", n.Kind, n.Version, c.GetAccount())
		}
	}
}
