package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

func subscriptionEvent(eventID, typ, customerID, subID string, created int64, status string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2020-03-02","created":%d,"type":%q,
"data":{"object":{"id":%q,"object":"subscription","customer":%q,"status":%q,"cancel_at_period_end":false,
"items":{"object":"list","data":[{"id":"si_1","price":{"id":"price_pro"}}]}}}}`, eventID, created, typ, subID, customerID, status))
}

func invoiceEvent(eventID, typ, customerID, invoiceID, subID string, created int64) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2020-03-02","created":%d,"type":%q,
"data":{"object":{"id":%q,"object":"invoice","customer":%q,"subscription":%q,"status":"paid","amount_paid":2000,"amount_due":2000,"currency":"usd"}}}`,
		eventID, created, typ, invoiceID, customerID, subID))
}

func kindsOf(ns []*hookdv1.Notification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, fmt.Sprintf("%s@%d", n.GetKind(), n.GetVersion()))
	}
	return out
}

// invoice.paid before customer.subscription.created: the invoice is parked
// (200 parked), and released the moment the subscription arrives — no
// waiting for a deadline — so that subscribers see customer.created,
// subscription.created, then invoice.paid.
func TestInvoiceBeforeSubscriptionIsParkedThenReleased(t *testing.T) {
	h := startHookd(t, "--park-deadline", "1h")
	ctx := context.Background()
	if a := h.post(t, invoiceEvent("evt_o_inv", "invoice.paid", "cus_o", "in_o", "sub_o", 1700000200)); a.Code != 200 || a.Status != "parked" {
		t.Fatalf("invoice first: %d %+v, want 200 parked", a.Code, a)
	}
	list, err := h.events().ListEvents(ctx, &hookdv1.ListEventsRequest{Status: hookdv1.EventStatus_EVENT_STATUS_PARKED})
	if err != nil || len(list.GetEvents()) != 1 || list.GetEvents()[0].GetEventId() != "evt_o_inv" {
		t.Fatalf("parked events: %v (%v), want evt_o_inv", list.GetEvents(), err)
	}
	start := time.Now()
	if a := h.post(t, subscriptionEvent("evt_o_sub", "customer.subscription.created", "cus_o", "sub_o", 1700000100, "active")); a.Status != "applied" {
		t.Fatalf("subscription: %+v, want applied", a)
	}
	notes := collect(t, h, "", "cus_o", 3)
	if got, want := kindsOf(notes), []string{"customer.created@1", "subscription.created@1", "invoice.paid@2"}; !slices.Equal(got, want) {
		t.Fatalf("stream %v, want %v", got, want)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("release took %v, want no waiting", waited)
	}
	ev, err := h.events().GetEvent(ctx, &hookdv1.GetEventRequest{EventId: "evt_o_inv"})
	if err != nil || ev.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_APPLIED || ev.GetVersion() != 2 {
		t.Fatalf("released invoice stored as %v v%d (%v), want applied v2", ev.GetStatus(), ev.GetVersion(), err)
	}
	// A late redelivery of the parked invoice changes nothing and is
	// answered for what the event did by now: applied on its release.
	if a := h.post(t, invoiceEvent("evt_o_inv", "invoice.paid", "cus_o", "in_o", "sub_o", 1700000200)); a.Status != "applied" {
		t.Fatalf("redelivered invoice: %+v, want applied", a)
	}
	c, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_o"})
	if err != nil || c.GetVersion() != 2 || len(c.GetInvoices()) != 1 || c.GetInvoices()[0].GetStatus() != "paid" {
		t.Fatalf("customer %v (%v), want version 2 with the paid invoice", c, err)
	}
}

// fakeStripe serves GET /v1/subscriptions/{id} on loopback, as the Stripe
// API would, for the subscriptions it knows.
func fakeStripe(t *testing.T, customerID string, subs map[string]string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer sk_test_hookd" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"bad key"}}`)
			return
		}
		id := strings.TrimPrefix(r.URL.Path, "/v1/subscriptions/")
		status, ok := subs[id]
		if r.Method != http.MethodGet || !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such subscription: '%s'"}}`, id)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"id": id, "object": "subscription", "customer": customerID, "status": status,
			"cancel_at_period_end": true, "current_period_end": 1800000000,
			"items": map[string]any{"object": "list", "data": []any{map[string]any{"id": "si_x", "object": "subscription_item",
				"price": map[string]any{"id": "price_fetched", "object": "price"}}}},
		})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// A parked invoice whose subscription never arrives is resolved after the
// deadline from the Stripe API (a fake one on loopback).
func TestParkedEventResolvedFromStripeAfterDeadline(t *testing.T) {
	api, calls := fakeStripe(t, "cus_r", map[string]string{"sub_r": "past_due"})
	h := startHookd(t, "--park-deadline", "1s", "--stripe-api-key", "sk_test_hookd", "--stripe-api-url", api.URL)
	ctx := context.Background()
	if a := h.post(t, invoiceEvent("evt_r_inv", "invoice.payment_failed", "cus_r", "in_r", "sub_r", 1700000300)); a.Status != "parked" {
		t.Fatalf("invoice: %+v, want parked", a)
	}
	notes := collect(t, h, "", "cus_r", 3)
	if got, want := kindsOf(notes), []string{"customer.created@1", "subscription.created@1", "invoice.payment_failed@2"}; !slices.Equal(got, want) {
		t.Fatalf("stream %v, want %v", got, want)
	}
	if calls.Load() == 0 {
		t.Fatal("the Stripe API was never called")
	}
	c, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_r"})
	if err != nil || len(c.GetSubscriptions()) != 1 || c.GetSubscriptions()[0].GetStatus() != "past_due" ||
		!slices.Equal(c.GetSubscriptions()[0].GetPriceIds(), []string{"price_fetched"}) {
		t.Fatalf("customer %v (%v), want the fetched past_due subscription", c, err)
	}
	ev, err := h.events().GetEvent(ctx, &hookdv1.GetEventRequest{EventId: "evt_r_inv"})
	if err != nil || ev.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_APPLIED || !strings.Contains(ev.GetReason(), "fetched") {
		t.Fatalf("invoice stored as %v %q (%v), want applied, resolved from the provider", ev.GetStatus(), ev.GetReason(), err)
	}
}

// Without an API key, an event parked past its deadline is released with
// what hookd knows, and says so.
func TestParkedEventReleasedWithoutAPIKey(t *testing.T) {
	h := startHookd(t, "--park-deadline", "1s")
	if a := h.post(t, invoiceEvent("evt_n_inv", "invoice.paid", "cus_n", "in_n", "sub_n", 1700000400)); a.Status != "parked" {
		t.Fatalf("invoice: %+v, want parked", a)
	}
	notes := collect(t, h, "", "cus_n", 3)
	if got, want := kindsOf(notes), []string{"customer.created@1", "subscription.created@1", "invoice.paid@2"}; !slices.Equal(got, want) {
		t.Fatalf("stream %v, want %v", got, want)
	}
	ev, err := h.events().GetEvent(context.Background(), &hookdv1.GetEventRequest{EventId: "evt_n_inv"})
	if err != nil || ev.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_APPLIED || !strings.Contains(ev.GetReason(), "synthesized") {
		t.Fatalf("invoice stored as %v %q (%v), want applied with a reason saying the subscription was synthesized", ev.GetStatus(), ev.GetReason(), err)
	}
}

// ReplayEvent is idempotent for events that took effect, and re-routes an
// ignored event once hookd has learned which customer its objects belong to.
func TestReplayEvent(t *testing.T) {
	h := startHookd(t)
	ctx := context.Background()
	pi := []byte(`{"id":"evt_rp_pi","object":"event","created":1700000500,"type":"payment_intent.succeeded",
"data":{"object":{"id":"pi_rp","object":"payment_intent","customer":null,"amount":2000}}}`)
	if a := h.post(t, pi); a.Status != "ignored" {
		t.Fatalf("payment intent without customer: %+v, want ignored", a)
	}
	r, err := h.events().ReplayEvent(ctx, &hookdv1.ReplayEventRequest{EventId: "evt_rp_pi"})
	if err != nil || r.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_DUPLICATE || r.GetEvent().GetCustomerId() != "" {
		t.Fatalf("replay before any mapping: %v (%v), want duplicate (unchanged)", r, err)
	}
	// An invoice names the payment intent and its customer.
	inv := []byte(`{"id":"evt_rp_inv","object":"event","created":1700000501,"type":"invoice.paid",
"data":{"object":{"id":"in_rp","object":"invoice","customer":"cus_rp","subscription":null,"payment_intent":"pi_rp","status":"paid","amount_paid":2000}}}`)
	if a := h.post(t, inv); a.Status != "applied" {
		t.Fatalf("invoice: %+v, want applied", a)
	}
	r, err = h.events().ReplayEvent(ctx, &hookdv1.ReplayEventRequest{EventId: "evt_rp_pi"})
	if err != nil || r.GetEvent().GetCustomerId() != "cus_rp" || r.GetEvent().GetRouting() != "mapping:pi_rp" {
		t.Fatalf("replay after the mapping: %v (%v), want routed to cus_rp by mapping:pi_rp", r, err)
	}
	// Replaying an applied event changes nothing.
	before, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_rp"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		r, err = h.events().ReplayEvent(ctx, &hookdv1.ReplayEventRequest{EventId: "evt_rp_inv"})
		if err != nil || r.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_DUPLICATE || r.GetEvent().GetStatus() != hookdv1.EventStatus_EVENT_STATUS_APPLIED {
			t.Fatalf("replay of an applied event: %v (%v), want duplicate, still applied", r, err)
		}
	}
	after, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_rp"})
	if err != nil || after.GetVersion() != before.GetVersion() {
		t.Fatalf("version %d after replays, want %d", after.GetVersion(), before.GetVersion())
	}
	if _, err := h.events().ReplayEvent(ctx, &hookdv1.ReplayEventRequest{EventId: "evt_nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("replay of an unknown event: %v, want NotFound", err)
	}
}

// With --admin-token, ReplayEvent needs the token; so do reads, now that
// any configured token turns authentication on for every method.
func TestAdminTokenGuardsReplay(t *testing.T) {
	h := startHookd(t, "--admin-token", "s3cret")
	ctx := context.Background()
	if a := h.post(t, customerEvent("evt_adm", "customer.created", "cus_adm", 1700000600, "a@example.com")); a.Status != "applied" {
		t.Fatalf("event: %+v", a)
	}
	req := &hookdv1.ReplayEventRequest{EventId: "evt_adm"}
	if _, err := h.events().ReplayEvent(ctx, req); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("replay without the token: %v, want Unauthenticated", err)
	}
	wrong := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer nope")
	if _, err := h.events().ReplayEvent(wrong, req); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("replay with a wrong token: %v, want Unauthenticated", err)
	}
	right := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer s3cret")
	if r, err := h.events().ReplayEvent(right, req); err != nil || r.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_DUPLICATE {
		t.Fatalf("replay with the token: %v (%v), want duplicate", r, err)
	}
	if _, err := h.events().GetEvent(ctx, &hookdv1.GetEventRequest{EventId: "evt_adm"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("GetEvent without a token: %v, want Unauthenticated", err)
	}
	if _, err := h.events().GetEvent(right, &hookdv1.GetEventRequest{EventId: "evt_adm"}); err != nil {
		t.Fatalf("GetEvent with the admin token: %v, want allowed", err)
	}
}
