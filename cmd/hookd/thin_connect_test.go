package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hookd/hookd/internal/fixtures"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
)

// thinFixtures returns the paths of the real thin event notifications.
func thinFixtures(t *testing.T) []string {
	t.Helper()
	dir := fixtures.Dir(t, "stripe-modern")
	var paths []string
	for _, pattern := range []string{"stripe-dotnet/v2.core.event__*.json", "stripe-go/*.json"} {
		ps, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, ps...)
	}
	if len(paths) < 9 {
		t.Fatalf("thin fixtures: got %d, want at least 9", len(paths))
	}
	return paths
}

// getEvent returns a stored event or fails the test.
func getEvent(t *testing.T, h *hookd, id string) *hookdv1.Event {
	t.Helper()
	ev, err := h.events().GetEvent(context.Background(), &hookdv1.GetEventRequest{EventId: id})
	if err != nil {
		t.Fatalf("GetEvent(%s): %v", id, err)
	}
	return ev
}

// Every real thin event, signed and posted, is answered 200 and stored:
// none names a customer or an object hookd has seen, so each is ignored
// with a reason that says it is a thin event and why it was not routed.
// Several fixtures share an event ID: the later ones are duplicates.
func TestThinFixturesAreStored(t *testing.T) {
	paths := thinFixtures(t)
	forEachStore(t, func(t *testing.T, h *hookd) {
		first := map[string][]byte{} // event ID → the body stored for it
		for _, p := range paths {
			name := filepath.Base(p)
			body, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			env, err := stripe.DecodeEnvelope(body)
			if err != nil {
				t.Fatalf("%s: DecodeEnvelope: %v", name, err)
			}
			id := env.GetEventId()
			a := h.post(t, body)
			_, seen := first[id]
			wantStatus := "ignored" // a repeated ID too: answered as the first one stored
			if !seen {
				first[id] = body
			}
			if a.Code != http.StatusOK || a.Status != wantStatus || a.EventID != id {
				t.Errorf("%s: answered %d %q for %q (%s), want 200 %q for %q", name, a.Code, a.Status, a.EventID, a.Error, wantStatus, id)
				continue
			}
			ev := getEvent(t, h, id)
			if !slices.Equal(ev.GetPayload(), first[id]) {
				t.Errorf("%s: stored payload is not the first delivery of %s", name, id)
			}
			if seen {
				continue
			}
			if ev.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_IGNORED || ev.GetRouting() != "none" || ev.GetCustomerId() != "" {
				t.Errorf("%s: stored %v, routing %q, customer %q; want ignored, none, no customer", name, ev.GetStatus(), ev.GetRouting(), ev.GetCustomerId())
			}
			reason := ev.GetReason()
			if !strings.HasPrefix(reason, "thin event: ") {
				t.Errorf("%s: reason %q, want it to start with %q", name, reason, "thin event: ")
			}
			if obj := env.GetObjectId(); obj != "" && !strings.Contains(reason, "related object "+obj+" ("+env.GetObjectType()+") is not a customer") {
				t.Errorf("%s: reason %q, want it to say related object %s is not a customer", name, reason, obj)
			}
			if env.GetObjectId() == "" && !strings.Contains(reason, "names no related object") {
				t.Errorf("%s: reason %q, want it to say it names no related object", name, reason)
			}
			if ev.GetType() != env.GetType() || ev.GetCreated().AsTime().Unix() != env.GetCreated() || env.GetCreated() == 0 {
				t.Errorf("%s: stored type %q created %v, want %q at %d", name, ev.GetType(), ev.GetCreated().AsTime(), env.GetType(), env.GetCreated())
			}
			if ev.GetAccount() != env.GetAccount() {
				t.Errorf("%s: account %q, want %q", name, ev.GetAccount(), env.GetAccount())
			}
			if strings.Contains(name, "no-type") {
				if ev.GetType() != stripe.UntypedThinType || !strings.Contains(reason, "it had no type and is stored as "+stripe.UntypedThinType) {
					t.Errorf("%s: type %q reason %q, want the placeholder %q and a reason saying so", name, ev.GetType(), reason, stripe.UntypedThinType)
				}
			}
		}
		// The first evt_234 (stripe-dotnet, posted first, unknown type) has no context
		// but a related_object.stripe_context: that is its account.
		if ev := getEvent(t, h, "evt_234"); ev.GetType() != "this.event.doesnt.exist" || ev.GetAccount() != "acct_123" {
			t.Errorf("evt_234: type %q account %q, want this.event.doesnt.exist on acct_123", ev.GetType(), ev.GetAccount())
		}
		if len(first) < 6 {
			t.Errorf("distinct thin events: got %d, want at least 6", len(first))
		}
	})
}

// thinEvent is a thin event notification about a related object.
func thinEvent(eventID, typ, relatedID, relatedType string) []byte {
	typeField := ""
	if typ != "" {
		typeField = fmt.Sprintf(`"type": %q, `, typ)
	}
	return []byte(fmt.Sprintf(`{"id": %q, "object": "v2.core.event", %s"created": "2025-10-04T15:13:32.232083866Z", "livemode": false,
"context": null, "related_object": {"id": %q, "type": %q, "url": "/v1/x/%s"}}`, eventID, typeField, relatedID, relatedType, relatedID))
}

// A thin event whose related object is a known customer, or an object an
// earlier event linked to one, reaches that customer's actor, which stores
// it as ignored (it has no snapshot to apply) and changes nothing.
func TestThinEventsAreRoutedToTheirCustomer(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *hookd) {
		ctx := context.Background()
		for _, body := range [][]byte{
			customerEvent("evt_tc_c", "customer.created", "cus_tc", 1700000000, "t@example.com"),
			subscriptionEvent("evt_tc_s", "customer.subscription.created", "cus_tc", "sub_tc", 1700000001, "active"),
		} {
			if a := h.post(t, body); a.Code != 200 || a.Status != "applied" {
				t.Fatalf("setup event: answered %d %q (%s), want 200 applied", a.Code, a.Status, a.Error)
			}
		}
		const routed = "thin event: hookd does not fetch its related object; stored"
		for _, tt := range []struct {
			name, id, typ, relatedID, relatedType string
			wantRouting, wantReason               string
		}{
			{"customer", "evt_tc_t1", "v1.customer.updated", "cus_tc", "customer", "related_object", routed},
			{"v1.customer", "evt_tc_t2", "v1.customer.updated", "cus_tc", "v1.customer", "related_object", routed},
			{"mapped subscription", "evt_tc_t3", "v1.subscription.updated", "sub_tc", "subscription", "mapping:sub_tc", routed},
			{"untyped", "evt_tc_t4", "", "cus_tc", "customer", "related_object",
				routed + "; it had no type and is stored as " + stripe.UntypedThinType},
		} {
			a := h.post(t, thinEvent(tt.id, tt.typ, tt.relatedID, tt.relatedType))
			if a.Code != 200 || a.Status != "ignored" || a.CustomerID != "cus_tc" {
				t.Errorf("%s: answered %d %q for %q (%s), want 200 ignored for cus_tc", tt.name, a.Code, a.Status, a.CustomerID, a.Error)
				continue
			}
			ev := getEvent(t, h, tt.id)
			if ev.GetCustomerId() != "cus_tc" || ev.GetRouting() != tt.wantRouting || ev.GetReason() != tt.wantReason ||
				ev.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_IGNORED || ev.GetObjectId() != tt.relatedID {
				t.Errorf("%s: stored %v for %q by %q, object %q, reason %q; want ignored for cus_tc by %q, object %q, reason %q",
					tt.name, ev.GetStatus(), ev.GetCustomerId(), ev.GetRouting(), ev.GetObjectId(), ev.GetReason(),
					tt.wantRouting, tt.relatedID, tt.wantReason)
			}
		}
		// A related object nobody linked to a customer: not routed.
		if a := h.post(t, thinEvent("evt_tc_t5", "v1.subscription.updated", "sub_unknown", "subscription")); a.Code != 200 || a.Status != "ignored" || a.CustomerID != "" {
			t.Errorf("unmapped: answered %d %q for %q, want 200 ignored, no customer", a.Code, a.Status, a.CustomerID)
		}
		if ev := getEvent(t, h, "evt_tc_t5"); !strings.Contains(ev.GetReason(), "thin event: its related object sub_unknown (subscription) is not a customer and no earlier event linked it to one") {
			t.Errorf("unmapped: reason %q, want it to say why it was not routed", ev.GetReason())
		}
		c, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_tc"})
		if err != nil || c.GetVersion() != 2 || c.GetEmail() != "t@example.com" {
			t.Errorf("customer: got %v (%v), want version 2, unchanged by thin events", c, err)
		}
		// Ignored and routed, the thin events show in the customer's events.
		list, err := h.events().ListEvents(ctx, &hookdv1.ListEventsRequest{CustomerId: "cus_tc", Status: hookdv1.EventStatus_EVENT_STATUS_IGNORED})
		if err != nil || len(list.GetEvents()) != 4 {
			t.Errorf("ListEvents(cus_tc, ignored): got %d (%v), want the 4 routed thin events", len(list.GetEvents()), err)
		}
	})
}

// withAccount returns an event's JSON with a top-level Connect account.
func withAccount(body []byte, account string) []byte {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		panic(err)
	}
	m["account"] = account
	out, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return out
}

// A Connect event's account is on the stored event (GetEvent,
// ListEvents), on the customer (GetCustomer) and on every notification,
// at the top and in its customer snapshot; a platform customer has none.
func TestConnectAccountIsVisible(t *testing.T) {
	connect := fixtures.Read(t, "stripe-modern", "stripe-dotnet/customer.created__connect_account.json") // evt_123: cus_123 on acct_123
	account := fixtures.Read(t, "stripe-modern", "dj-stripe/account.updated__connect_account.json")
	forEachStore(t, func(t *testing.T, h *hookd) {
		ctx := context.Background()
		for _, body := range [][]byte{
			connect,
			withAccount(subscriptionEvent("evt_cn_s", "customer.subscription.created", "cus_123", "sub_cn", 1700000000, "active"), "acct_123"),
			customerEvent("evt_cn_p", "customer.created", "cus_platform", 1700000001, "p@example.com"),
		} {
			if a := h.post(t, body); a.Code != 200 || a.Status != "applied" {
				t.Fatalf("event: answered %d %q (%s), want 200 applied", a.Code, a.Status, a.Error)
			}
		}
		if a := h.post(t, account); a.Code != 200 || a.Status != "ignored" {
			t.Fatalf("account.updated: answered %d %q (%s), want 200 ignored", a.Code, a.Status, a.Error)
		}
		for id, want := range map[string]string{
			"evt_123": "acct_123", "evt_cn_s": "acct_123", "evt_cn_p": "",
			"evt_1Itt6eB9wPxT0ovY3LLhi5bw": "acct_1IuHosQveW0ONQsd", // no customer: stored without the actor
		} {
			if ev := getEvent(t, h, id); ev.GetAccount() != want {
				t.Errorf("GetEvent(%s): account %q, want %q", id, ev.GetAccount(), want)
			}
		}
		list, err := h.events().ListEvents(ctx, &hookdv1.ListEventsRequest{CustomerId: "cus_123"})
		if err != nil || len(list.GetEvents()) != 2 {
			t.Fatalf("ListEvents(cus_123): got %d (%v), want 2", len(list.GetEvents()), err)
		}
		for _, ev := range list.GetEvents() {
			if ev.GetAccount() != "acct_123" {
				t.Errorf("ListEvents: %s account %q, want acct_123", ev.GetEventId(), ev.GetAccount())
			}
		}
		for id, want := range map[string]string{"cus_123": "acct_123", "cus_platform": ""} {
			c, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: id})
			if err != nil || c.GetAccount() != want {
				t.Errorf("GetCustomer(%s): account %q (%v), want %q", id, c.GetAccount(), err, want)
			}
		}
		// From the start: every notification of the connected customer
		// carries its account, the platform customer's none.
		notes := collect(t, h, "", "", 3)
		byCustomer := map[string][]string{}
		for _, n := range notes {
			byCustomer[n.GetCustomerId()] = append(byCustomer[n.GetCustomerId()], fmt.Sprintf("%s@%d", n.GetKind(), n.GetVersion()))
			want := map[string]string{"cus_123": "acct_123", "cus_platform": ""}[n.GetCustomerId()]
			if n.GetAccount() != want || n.GetCustomer().GetAccount() != want {
				t.Errorf("notification %s/v%d/%s: account %q (snapshot %q), want %q", n.GetCustomerId(), n.GetVersion(), n.GetKind(),
					n.GetAccount(), n.GetCustomer().GetAccount(), want)
			}
		}
		if got, want := byCustomer["cus_123"], []string{"customer.created@1", "subscription.created@2"}; !slices.Equal(got, want) {
			t.Errorf("cus_123 notifications: got %v, want %v", got, want)
		}
		if got, want := byCustomer["cus_platform"], []string{"customer.created@1"}; !slices.Equal(got, want) {
			t.Errorf("cus_platform notifications: got %v, want %v", got, want)
		}
	})
}

// fakeConnectStripe is a Stripe API on loopback that records the
// Stripe-Account header of every request and answers each subscription
// as belonging to owners[id].
func fakeConnectStripe(t *testing.T, owners map[string]string) (*httptest.Server, func() []string) {
	t.Helper()
	var (
		mu       sync.Mutex
		accounts []string // guarded by mu: "<sub>=<Stripe-Account>"
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/v1/subscriptions/")
		mu.Lock()
		accounts = append(accounts, id+"="+r.Header.Get("Stripe-Account"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		owner, ok := owners[id]
		if r.Method != http.MethodGet || !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such subscription: '%s'"}}`, id)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"id": id, "object": "subscription", "customer": owner, "status": "past_due", "current_period_end": 1800000000,
		})
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(accounts)
	}
}

// An event of a connected account parked past its deadline is resolved
// from the Stripe API on behalf of that account (Stripe-Account); a
// fetched subscription that belongs to another customer is not applied:
// the subscription is synthesized, and the released event says why.
func TestConnectResolveFetchesForTheAccountAndChecksTheCustomer(t *testing.T) {
	api, requests := fakeConnectStripe(t, map[string]string{"sub_cr_ok": "cus_cr_ok", "sub_cr_bad": "cus_someone_else"})
	forEachStore(t, func(t *testing.T, h *hookd) {
		ctx := context.Background()
		for _, c := range []string{"ok", "bad"} {
			cus, sub := "cus_cr_"+c, "sub_cr_"+c
			if a := h.post(t, withAccount(invoiceEvent("evt_cr_"+c, "invoice.paid", cus, "in_cr_"+c, sub, 1700000300), "acct_cr")); a.Status != "parked" {
				t.Fatalf("invoice of %s: %+v, want parked", cus, a)
			}
		}
		for _, c := range []string{"ok", "bad"} {
			notes := collect(t, h, "", "cus_cr_"+c, 3)
			if got, want := kindsOf(notes), []string{"customer.created@1", "subscription.created@1", "invoice.paid@2"}; !slices.Equal(got, want) {
				t.Fatalf("cus_cr_%s stream %v, want %v", c, got, want)
			}
			for _, n := range notes {
				if n.GetAccount() != "acct_cr" {
					t.Errorf("cus_cr_%s notification %s: account %q, want acct_cr", c, n.GetKind(), n.GetAccount())
				}
			}
		}
		got := requests()
		for _, want := range []string{"sub_cr_ok=acct_cr", "sub_cr_bad=acct_cr"} {
			if !slices.Contains(got, want) {
				t.Errorf("Stripe API requests (subscription=Stripe-Account): got %q, want %q among them", got, want)
			}
		}
		ok, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_cr_ok"})
		if err != nil || len(ok.GetSubscriptions()) != 1 || ok.GetSubscriptions()[0].GetStatus() != "past_due" || ok.GetAccount() != "acct_cr" {
			t.Errorf("cus_cr_ok: %v (%v), want the fetched past_due subscription, on acct_cr", ok, err)
		}
		bad, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_cr_bad"})
		if err != nil || len(bad.GetSubscriptions()) != 1 || bad.GetSubscriptions()[0].GetStatus() != "unknown" ||
			bad.GetSubscriptions()[0].GetCurrentPeriodEnd() != nil {
			t.Errorf("cus_cr_bad: %v (%v), want a synthesized subscription (status unknown), not cus_someone_else's", bad, err)
		}
		if ev := getEvent(t, h, "evt_cr_ok"); !strings.Contains(ev.GetReason(), "fetched from the provider") {
			t.Errorf("evt_cr_ok: reason %q, want resolved with the fetched subscription", ev.GetReason())
		}
		ev := getEvent(t, h, "evt_cr_bad")
		const want = "fetched subscription sub_cr_bad belongs to customer cus_someone_else, not cus_cr_bad: not applied"
		if ev.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_APPLIED || !strings.Contains(ev.GetReason(), want) {
			t.Errorf("evt_cr_bad: %v %q, want applied with a reason containing %q", ev.GetStatus(), ev.GetReason(), want)
		}
	}, "--park-deadline", "1s", "--stripe-api-key", "sk_test_hookd", "--stripe-api-url", api.URL)
}
