package customer

import (
	"encoding/json"
	"fmt"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// Event is the part of a provider event the reducer reads. It is decoded
// from the raw payload kept in the envelope, once per event.
type Event struct {
	ID         string
	Type       string
	Created    int64 // provider's created, seconds
	ObjectID   string
	ObjectType string
	Livemode   bool

	Customer     *CustomerObject     // for customer.* events on the customer object
	Subscription *SubscriptionObject // for customer.subscription.*
	Invoice      *InvoiceObject      // for invoice.*
}

// CustomerObject is the subset of a Stripe Customer hookd projects.
type CustomerObject struct {
	ID       string            `json:"id"`
	Email    string            `json:"email"`
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata"`
}

// SubscriptionObject is the subset of a Stripe Subscription hookd projects.
type SubscriptionObject struct {
	ID                string `json:"id"`
	Status            string `json:"status"`
	CancelAtPeriodEnd bool   `json:"cancel_at_period_end"`
	CurrentPeriodEnd  int64  `json:"current_period_end"`
	Items             struct {
		Data []SubscriptionItem `json:"data"`
	} `json:"items"`
}

// SubscriptionItem is one item of a subscription: hookd keeps its price.
type SubscriptionItem struct {
	Price struct {
		ID string `json:"id"`
	} `json:"price"`
}

// InvoiceObject is the subset of a Stripe Invoice hookd projects.
type InvoiceObject struct {
	ID           string          `json:"id"`
	Subscription json.RawMessage `json:"subscription"` // string, expanded object or null
	Status       string          `json:"status"`
	AmountPaid   int64           `json:"amount_paid"`
	AmountDue    int64           `json:"amount_due"`
	Currency     string          `json:"currency"`
}

// SubscriptionID returns the invoice's subscription ID, whether the field is
// a string or an expanded object.
func (i *InvoiceObject) SubscriptionID() string {
	return idOf(i.Subscription)
}

func idOf(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.ID
	}
	return ""
}

// DecodeEvent decodes the data.object of an envelope's payload into the
// fields the reducer needs. Only the object kinds the reducer projects are
// decoded; for other types the returned Event has no object.
func DecodeEvent(env *hookdv1.Envelope) (Event, error) {
	ev := Event{
		ID:         env.GetEventId(),
		Type:       env.GetType(),
		Created:    env.GetCreated(),
		ObjectID:   env.GetObjectId(),
		ObjectType: env.GetObjectType(),
		Livemode:   env.GetLivemode(),
	}
	var target any
	switch ev.ObjectType {
	case "customer":
		ev.Customer = &CustomerObject{}
		target = ev.Customer
	case "subscription":
		ev.Subscription = &SubscriptionObject{}
		target = ev.Subscription
	case "invoice":
		ev.Invoice = &InvoiceObject{}
		target = ev.Invoice
	default:
		return ev, nil
	}
	// One pass over the payload, straight into the object's type.
	body := struct {
		Data struct {
			Object any `json:"object"`
		} `json:"data"`
	}{}
	body.Data.Object = target
	if err := json.Unmarshal(env.GetPayload(), &body); err != nil {
		return ev, fmt.Errorf("decode event %s %s object: %w", ev.ID, ev.ObjectType, err)
	}
	return ev, nil
}
