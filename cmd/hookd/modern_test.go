package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/hookd/hookd/internal/fixtures"
	"github.com/hookd/hookd/provider/stripe"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// The modern fixtures are objects and data blocks, not events (no
// permissively licensed modern event exists: stripe-modern/PROVENANCE.md):
// these tests wrap them in envelopes as Stripe does, one API version
// family at a time. Each family gets customer and object IDs of its own
// (the fixtures share theirs), substituted in the fixture's bytes, so that
// all families can go to one hookd.

// retarget replaces IDs in a fixture's bytes, old1, new1, old2, new2, ...
func retarget(raw []byte, oldNew ...string) []byte {
	return []byte(strings.NewReplacer(oldNew...).Replace(string(raw)))
}

// IDs in the stripe-openapi objects.
const (
	oaCustomer     = "cus_QXg1o8vcGmoR32"
	oaSubscription = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
	oaInvoice      = "in_1Pgc6tB7WZ01zgkWu9fdqL6I"
	// The synthetic period end of its subscription's one item (which
	// starts, also synthetically, after it ends).
	oaPeriodEnd = 976287773
)

// openapi returns a stripe-openapi object with its IDs replaced by the
// family's customer, subscription and invoice (the invoice's synthetic
// "subscription" link included).
func openapi(t *testing.T, file, customer, sub, invoice string) []byte {
	return retarget(fixtures.Read(t, "stripe-modern", "stripe-openapi/"+file),
		oaCustomer, customer, oaSubscription, sub, oaInvoice, invoice,
		`"subscription": "subscription"`, `"subscription": "`+sub+`"`)
}

// pay returns data.object of a pay data block with its IDs replaced.
func pay(t *testing.T, file string, oldNew ...string) []byte {
	return fixtures.ObjectOf(t, retarget(fixtures.Read(t, "stripe-modern", "pay-rails-pay/"+file), oldNew...))
}

// old returns data.object of an event in ../stripe with its IDs replaced.
func old(t *testing.T, file string, oldNew ...string) []byte {
	return fixtures.ObjectOf(t, retarget(fixtures.Read(t, "stripe", file), oldNew...))
}

// cloverAccount sets customer null beside customer_account, as clover
// sends an object of an Accounts v2 customer.
func cloverAccount(t *testing.T, object []byte, account string) []byte {
	return fixtures.With(t, object, map[string]any{"customer": nil, "customer_account": account})
}

// expandCustomer replaces an object's customer ID with the customer object.
func expandCustomer(t *testing.T, object, customer []byte) []byte {
	return fixtures.With(t, object, map[string]any{"customer": json.RawMessage(customer)})
}

// modernEvent is one event of a family and what hookd must answer and
// record for it.
type modernEvent struct {
	typ     string
	created int64
	object  []byte
	// data, when set, is the whole data block (with previous_attributes).
	data        []byte
	wantStatus  string // in the HTTP answer
	wantRouting string // in GetEvent
	wantReason  string // a substring of GetEvent's reason; "" checks nothing
}

// modernFamily is one API version family: its events, posted in order,
// and the customer they must build.
type modernFamily struct {
	version  string
	customer string // customer_id hookd routes to (an acct_ ID for clover)
	events   []modernEvent

	wantSubscription string
	wantPeriodEnd    int64
	wantInvoice      string
	wantInvoiceSub   string
}

func modernFamilies(t *testing.T) []modernFamily {
	const (
		acacia, basil, basil0827, clover, dahlia = "2025-02-24.acacia", "2025-03-31.basil", "2025-08-27.basil", "2025-12-15.clover", "2026-07-29.dahlia"
	)
	var fams []modernFamily

	// ≤2025-02-24.acacia: the old shape (real 2020-03-02 objects).
	c, s, i := "cus_m_acacia", "sub_m_acacia", "in_m_acacia"
	fams = append(fams, modernFamily{version: acacia, customer: c,
		wantSubscription: s, wantPeriodEnd: 1625740918, wantInvoice: i, wantInvoiceSub: s,
		events: []modernEvent{
			{typ: "customer.created", created: 1750000100, wantStatus: "applied", wantRouting: stripe.RoutingObjectID,
				object: old(t, "supabase-stripe-sync-engine/customer_updated.json", "cus_IhGfebO16cMIGN", c)},
			{typ: "customer.subscription.created", created: 1750000200, wantStatus: "applied", wantRouting: stripe.RoutingObjectCustomer,
				object: old(t, "supabase-stripe-sync-engine/subscription_created.json", "sub_JdIzvfy6o5GZRd", s, "cus_IhGfebO16cMIGN", c)},
			{typ: "invoice.paid", created: 1750000300, wantStatus: "applied", wantRouting: stripe.RoutingObjectCustomer,
				object: old(t, "supabase-stripe-sync-engine/invoice_paid.json",
					"in_1KJqKBJDPojXS6LNJbvLUgEy", i, "sub_JsuPyCPhXWfZar", s, "cus_JsuO3bmrj0QlAw", c)},
		}})

	// 2025-03-31.basil: the period on the items, the invoice's
	// subscription in parent.subscription_details (pay's real block).
	c, s, i = "cus_m_basil", "sub_m_basil", "in_m_basil"
	fams = append(fams, modernFamily{version: basil, customer: c,
		wantSubscription: s, wantPeriodEnd: oaPeriodEnd, wantInvoice: i, wantInvoiceSub: s,
		events: []modernEvent{
			{typ: "customer.created", created: 1750000100, wantStatus: "applied", wantRouting: stripe.RoutingObjectID,
				object: openapi(t, "object.customer.json", c, s, i)},
			{typ: "customer.subscription.created", created: 1750000200, wantStatus: "applied", wantRouting: stripe.RoutingObjectCustomer,
				object:     openapi(t, "object.subscription.json", c, s, i),
				wantReason: "ends its period (976287773) before it starts (1896570518)"},
			{typ: "invoice.payment_failed", created: 1750000300, wantStatus: "applied", wantRouting: stripe.RoutingObjectCustomer,
				object: pay(t, "invoice.payment_failed.data.json", "cus_1234", c, "sub_1234", s, "in_1234", i)},
		}})

	// 2025-08-27.basil: a renewal carrying the old period in
	// previous_attributes.items; invoice.upcoming (no id); invoice.updated
	// whose object is an invoice_payment with no customer, routed by the
	// invoice an earlier event named.
	c, s, i = "cus_m_basil0827", "sub_m_basil0827", "in_m_basil0827"
	paid := fixtures.With(t, pay(t, "invoice.payment_failed.data.json", "cus_1234", c, "sub_1234", s, "in_1234", i),
		map[string]any{"status": "paid", "amount_paid": 24900, "amount_remaining": 0})
	renewal := []byte(`{"object":` + string(openapi(t, "object.subscription.json", c, s, i)) +
		`,"previous_attributes":{"items":{"data":[{"current_period_end":900000000,"current_period_start":1800000000}]}}}`)
	fams = append(fams, modernFamily{version: basil0827, customer: c,
		wantSubscription: s, wantPeriodEnd: oaPeriodEnd, wantInvoice: i, wantInvoiceSub: s,
		events: []modernEvent{
			{typ: "customer.subscription.created", created: 1750000100, wantStatus: "applied", wantRouting: stripe.RoutingObjectCustomer,
				object: openapi(t, "object.subscription.json", c, s, i)},
			{typ: "customer.subscription.updated", created: 1750000200, wantStatus: "applied", wantRouting: stripe.RoutingObjectCustomer,
				data: renewal},
			{typ: "invoice.paid", created: 1750000300, wantStatus: "applied", wantRouting: stripe.RoutingObjectCustomer,
				object: paid},
			{typ: "invoice.upcoming", created: 1750000400, wantStatus: "ignored", wantRouting: stripe.RoutingObjectCustomer,
				object:     pay(t, "invoice.upcoming.data.json", "cus_L7lJPQIi3GxrTG", c, "sub_1234", s),
				wantReason: "the invoice has no id"},
			{typ: "invoice.updated", created: 1750000500, wantStatus: "ignored", wantRouting: "mapping:" + i,
				object: pay(t, "invoice.updated.data.json", "in_1T4AIkGWAy8DppqhJAdbjaWb", i, "sub_1234", s)},
		}})

	// 2025-12-15.clover: customer null beside customer_account.
	a, s, i := "acct_1MClover", "sub_m_clover", "in_m_clover"
	fams = append(fams, modernFamily{version: clover, customer: a,
		wantSubscription: s, wantPeriodEnd: oaPeriodEnd, wantInvoice: i, wantInvoiceSub: s,
		events: []modernEvent{
			{typ: "customer.subscription.created", created: 1750000100, wantStatus: "applied", wantRouting: stripe.RoutingObjectCustomerAccount,
				object:     cloverAccount(t, openapi(t, "object.subscription.json", "", s, i), a),
				wantReason: "subscription " + s + " has no customer, only customer_account " + a},
			{typ: "invoice.paid", created: 1750000200, wantStatus: "applied", wantRouting: stripe.RoutingObjectCustomerAccount,
				object:     cloverAccount(t, openapi(t, "object.invoice.json", "", s, i), a),
				wantReason: "invoice " + i + " has no customer, only customer_account " + a},
		}})

	// 2026-07-29.dahlia: the objects as stripe/openapi has them now, the
	// customer expanded.
	c, s, i = "cus_m_dahlia", "sub_m_dahlia", "in_m_dahlia"
	customer := openapi(t, "object.customer.json", c, s, i)
	fams = append(fams, modernFamily{version: dahlia, customer: c,
		wantSubscription: s, wantPeriodEnd: oaPeriodEnd, wantInvoice: i, wantInvoiceSub: s,
		events: []modernEvent{
			{typ: "customer.created", created: 1750000100, wantStatus: "applied", wantRouting: stripe.RoutingObjectID,
				object: customer},
			{typ: "customer.subscription.created", created: 1750000200, wantStatus: "applied", wantRouting: stripe.RoutingObjectCustomer,
				object: expandCustomer(t, openapi(t, "object.subscription.json", c, s, i), customer)},
			{typ: "invoice.paid", created: 1750000300, wantStatus: "applied", wantRouting: stripe.RoutingObjectCustomer,
				object:     expandCustomer(t, openapi(t, "object.invoice.json", c, s, i), customer),
				wantReason: `parent.type is "quote_details"`},
		}})
	return fams
}

// body returns the event as Stripe would send it.
func (e modernEvent) body(t *testing.T, id, version string) []byte {
	return fixtures.StripeEvent{ID: id, Type: e.typ, APIVersion: version, Created: e.created, Object: e.object, Data: e.data}.JSON(t)
}

// Every modern fixture, wrapped in an event of each API version family,
// signed and posted, is answered 200 and projected with its customer,
// subscription link and period end; each event's routing and the notes of
// its decoding are on its record.
func TestModernVersionFamiliesAreProjected(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *hookd) {
		ctx := context.Background()
		for _, fam := range modernFamilies(t) {
			for n, e := range fam.events {
				id := "evt_m_" + fam.version + "_" + string(rune('a'+n))
				if a := h.post(t, e.body(t, id, fam.version)); a.Code != 200 || a.Status != e.wantStatus {
					t.Errorf("%s %s %s: answered %d %q %q, want 200 %s", fam.version, id, e.typ, a.Code, a.Status, a.Error, e.wantStatus)
					continue
				}
				ev, err := h.events().GetEvent(ctx, &hookdv1.GetEventRequest{EventId: id})
				if err != nil {
					t.Errorf("%s %s: GetEvent: %v", fam.version, id, err)
					continue
				}
				if ev.GetCustomerId() != fam.customer || ev.GetRouting() != e.wantRouting || ev.GetApiVersion() != fam.version {
					t.Errorf("%s %s %s: recorded for %q by %q at %q, want %q by %q at %q", fam.version, id, e.typ,
						ev.GetCustomerId(), ev.GetRouting(), ev.GetApiVersion(), fam.customer, e.wantRouting, fam.version)
				}
				if !strings.Contains(ev.GetReason(), e.wantReason) {
					t.Errorf("%s %s %s: reason %q, want it to say %q", fam.version, id, e.typ, ev.GetReason(), e.wantReason)
				}
			}
			c, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: fam.customer})
			if err != nil {
				t.Errorf("%s: GetCustomer(%s): %v", fam.version, fam.customer, err)
				continue
			}
			subs := c.GetSubscriptions()
			if len(subs) != 1 || subs[0].GetSubscriptionId() != fam.wantSubscription ||
				subs[0].GetCurrentPeriodEnd().GetSeconds() != fam.wantPeriodEnd {
				t.Errorf("%s: subscriptions of %s: got %v, want %s ending %d", fam.version, fam.customer, subs, fam.wantSubscription, fam.wantPeriodEnd)
			}
			invs := c.GetInvoices()
			if len(invs) != 1 || invs[0].GetInvoiceId() != fam.wantInvoice || invs[0].GetSubscriptionId() != fam.wantInvoiceSub {
				t.Errorf("%s: invoices of %s: got %v, want %s of subscription %s", fam.version, fam.customer, invs, fam.wantInvoice, fam.wantInvoiceSub)
			}
		}
	})
}

// A basil invoice.paid (its subscription only in
// parent.subscription_details and its lines' parent) sent before its basil
// subscription is parked, and released when the subscription arrives:
// subscribers see customer.created, subscription.created, invoice.paid.
func TestModernBasilInvoiceParkedUntilSubscription(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *hookd) {
		ctx := context.Background()
		const version, c, s, i = "2025-03-31.basil", "cus_m_park", "sub_m_park", "in_m_park"
		invoice := modernEvent{typ: "invoice.paid", created: 1750000300,
			object: fixtures.With(t, pay(t, "invoice.payment_failed.data.json", "cus_1234", c, "sub_1234", s, "in_1234", i),
				map[string]any{"status": "paid", "amount_paid": 24900, "amount_remaining": 0})}
		if a := h.post(t, invoice.body(t, "evt_m_park_inv", version)); a.Code != 200 || a.Status != "parked" {
			t.Fatalf("basil invoice.paid first: answered %d %q %q, want 200 parked", a.Code, a.Status, a.Error)
		}
		ev, err := h.events().GetEvent(ctx, &hookdv1.GetEventRequest{EventId: "evt_m_park_inv"})
		if err != nil || ev.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_PARKED || !strings.Contains(ev.GetReason(), "waiting for subscription "+s) {
			t.Fatalf("parked invoice recorded as %v %q (%v), want parked waiting for subscription %s", ev.GetStatus(), ev.GetReason(), err, s)
		}
		sub := modernEvent{typ: "customer.subscription.created", created: 1750000200, object: openapi(t, "object.subscription.json", c, s, i)}
		if a := h.post(t, sub.body(t, "evt_m_park_sub", version)); a.Code != 200 || a.Status != "applied" {
			t.Fatalf("basil subscription: answered %d %q %q, want 200 applied", a.Code, a.Status, a.Error)
		}
		got := kindsOf(collect(t, h, "", c, 3))
		if want := []string{"customer.created@1", "subscription.created@1", "invoice.paid@2"}; !slices.Equal(got, want) {
			t.Fatalf("notifications of %s: got %v, want %v", c, got, want)
		}
		ev, err = h.events().GetEvent(ctx, &hookdv1.GetEventRequest{EventId: "evt_m_park_inv"})
		if err != nil || ev.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_APPLIED || ev.GetVersion() != 2 {
			t.Fatalf("released invoice recorded as %v v%d (%v), want applied v2", ev.GetStatus(), ev.GetVersion(), err)
		}
		cu, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: c})
		if err != nil {
			t.Fatalf("GetCustomer(%s): %v", c, err)
		}
		if invs := cu.GetInvoices(); len(invs) != 1 || invs[0].GetSubscriptionId() != s || invs[0].GetStatus() != "paid" {
			t.Errorf("invoices of %s: got %v, want %s paid of subscription %s", c, invs, i, s)
		}
		if subs := cu.GetSubscriptions(); len(subs) != 1 || subs[0].GetCurrentPeriodEnd().GetSeconds() != oaPeriodEnd {
			t.Errorf("subscriptions of %s: got %v, want %s ending %d", c, subs, s, oaPeriodEnd)
		}
	}, "--park-deadline", "1h")
}
