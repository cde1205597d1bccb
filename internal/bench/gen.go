package bench

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// EventSpec describes a Stripe event to generate: enough to try hookd (and
// load it) without a Stripe account or a file.
type EventSpec struct {
	Type         string
	EventID      string // default: a random evt_ ID
	Customer     string // required
	Subscription string // default sub_<customer suffix>
	Invoice      string // default in_<random>
	Created      time.Time
	Email        string
	Status       string // subscription status; default by type
}

// generators maps each supported type to the data.object it generates.
var generators = map[string]func(s EventSpec) map[string]any{
	"customer.created": customerObject,
	"customer.updated": customerObject,
	"customer.deleted": func(s EventSpec) map[string]any {
		o := customerObject(s)
		o["deleted"] = true
		return o
	},
	"customer.subscription.created": subscriptionObject("active"),
	"customer.subscription.updated": subscriptionObject("active"),
	"customer.subscription.deleted": subscriptionObject("canceled"),
	"invoice.paid":                  invoiceObject("paid"),
	"invoice.payment_failed":        invoiceObject("open"),
}

// GeneratedTypes lists the types `hookd send --type` accepts.
func GeneratedTypes() []string {
	var out []string
	for t := range generators {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// GenerateEvent renders a realistic Stripe event (the fields hookd reads
// and a few it does not), as Stripe would send it.
func GenerateEvent(s EventSpec) ([]byte, error) {
	gen, ok := generators[s.Type]
	if !ok {
		return nil, fmt.Errorf("cannot generate %q events (want one of %s)", s.Type, strings.Join(GeneratedTypes(), ", "))
	}
	if s.Customer == "" {
		return nil, fmt.Errorf("generating a %s event needs --customer", s.Type)
	}
	if s.EventID == "" {
		s.EventID = "evt_" + randomID()
	}
	if s.Created.IsZero() {
		s.Created = time.Now()
	}
	if s.Subscription == "" {
		s.Subscription = "sub_" + strings.TrimPrefix(s.Customer, "cus_")
	}
	if s.Invoice == "" {
		s.Invoice = "in_" + randomID()
	}
	if s.Email == "" {
		s.Email = strings.TrimPrefix(s.Customer, "cus_") + "@example.com"
	}
	ev := map[string]any{
		"id":               s.EventID,
		"object":           "event",
		"api_version":      "2024-06-20",
		"created":          s.Created.Unix(),
		"livemode":         false,
		"pending_webhooks": 1,
		"request":          map[string]any{"id": "req_" + randomID(), "idempotency_key": nil},
		"type":             s.Type,
		"data":             map[string]any{"object": gen(s)},
	}
	return json.MarshalIndent(ev, "", "  ")
}

func customerObject(s EventSpec) map[string]any {
	return map[string]any{
		"id":       s.Customer,
		"object":   "customer",
		"created":  s.Created.Unix(),
		"email":    s.Email,
		"name":     "Test " + strings.TrimPrefix(s.Customer, "cus_"),
		"metadata": map[string]string{"source": "hookd send"},
		"livemode": false,
	}
}

func subscriptionObject(defaultStatus string) func(EventSpec) map[string]any {
	return func(s EventSpec) map[string]any {
		status := s.Status
		if status == "" {
			status = defaultStatus
		}
		return map[string]any{
			"id":                   s.Subscription,
			"object":               "subscription",
			"customer":             s.Customer,
			"status":               status,
			"cancel_at_period_end": false,
			"created":              s.Created.Unix(),
			"current_period_start": s.Created.Unix(),
			"current_period_end":   s.Created.AddDate(0, 1, 0).Unix(),
			"items": map[string]any{"object": "list", "data": []any{map[string]any{
				"id": "si_" + randomID(), "object": "subscription_item",
				"price": map[string]any{"id": "price_pro_monthly", "object": "price", "unit_amount": 2000, "currency": "usd"},
			}}},
			"livemode": false,
		}
	}
}

func invoiceObject(status string) func(EventSpec) map[string]any {
	return func(s EventSpec) map[string]any {
		paid := 2000
		if status != "paid" {
			paid = 0
		}
		return map[string]any{
			"id":           s.Invoice,
			"object":       "invoice",
			"customer":     s.Customer,
			"subscription": s.Subscription,
			"status":       status,
			"paid":         status == "paid",
			"amount_due":   2000,
			"amount_paid":  paid,
			"currency":     "usd",
			"created":      s.Created.Unix(),
			"livemode":     false,
		}
	}
}

func randomID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
