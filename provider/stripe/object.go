package stripe

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ID is a Stripe reference: in JSON a string ID, an expanded object whose
// "id" is the ID, or null/absent (""). Whichever shape the payload had, it
// holds the ID. It also reads hookd's own stored form (a plain string).
type ID string

// UnmarshalJSON accepts a string, an object with an "id", or null. An
// object without "id" yields "".
func (id *ID) UnmarshalJSON(b []byte) error {
	switch firstNonSpace(b) {
	case 'n':
		*id = ""
		return nil
	case '"':
		if s, ok := plainString(b); ok {
			*id = ID(s)
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	case '{':
		var o struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*id = ID(o.ID)
		return nil
	}
	return fmt.Errorf("a Stripe reference must be a string, an object or null, not %s", truncate(string(b)))
}

// plainString returns the string a JSON string literal b holds when b is
// one without escapes, of printable ASCII: its bytes between the quotes,
// which is what json.Unmarshal would return, without its cost (Stripe IDs
// are such strings). ok is false for anything else, which is then left to
// json.Unmarshal.
func plainString(b []byte) (s string, ok bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	inner := b[1 : len(b)-1]
	for _, c := range inner {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(inner), true
}

// Customer is the part of a Stripe Customer hookd projects. It is the same
// in every API version.
type Customer struct {
	ID       string            `json:"id"`
	Email    string            `json:"email"`
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata"`
}

// Subscription is the part of a Stripe Subscription hookd projects,
// normalized across API versions: CurrentPeriodEnd is the subscription's
// own field up to 2025-02-24.acacia and the latest of its items' periods
// from 2025-03-31.basil on, which moved it there.
type Subscription struct {
	ID                string `json:"id"`
	Customer          ID     `json:"customer,omitempty"`
	Status            string `json:"status"`
	CancelAtPeriodEnd bool   `json:"cancel_at_period_end"`
	CurrentPeriodEnd  int64  `json:"current_period_end"`
	Items             struct {
		Data []SubscriptionItem `json:"data"`
	} `json:"items"`
}

// SubscriptionItem is one item of a subscription: hookd keeps its price.
// CurrentPeriodStart and CurrentPeriodEnd are set from 2025-03-31.basil
// on; ID only where the payload has it (for the Notes).
type SubscriptionItem struct {
	ID    string `json:"id,omitempty"`
	Price struct {
		ID string `json:"id"`
	} `json:"price"`
	CurrentPeriodStart int64 `json:"current_period_start,omitempty"`
	CurrentPeriodEnd   int64 `json:"current_period_end,omitempty"`
}

// Invoice is the part of a Stripe Invoice hookd projects, normalized across
// API versions: Subscription is the invoice's own field up to
// 2025-02-24.acacia and parent.subscription_details.subscription from
// 2025-03-31.basil on (or the one subscription its lines name).
type Invoice struct {
	ID           string `json:"id"`
	Subscription ID     `json:"subscription"`
	Status       string `json:"status"`
	AmountPaid   int64  `json:"amount_paid"`
	AmountDue    int64  `json:"amount_due"`
	Currency     string `json:"currency"`
}

// SubscriptionID returns the invoice's subscription ID ("" for an invoice
// of no subscription).
func (i *Invoice) SubscriptionID() string { return string(i.Subscription) }

// Objects is an event's data.object decoded into the shape hookd projects:
// at most one of the pointers is set, by the object's type. Notes say what
// the decoding had to decide or could not find (a link or a period missing
// from both the old and the new shape); they belong in the event's reason.
type Objects struct {
	Customer     *Customer
	Subscription *Subscription
	Invoice      *Invoice
	Notes        []string
}

// wireSubscription and wireInvoice are the JSON shapes of every API
// version at once; DecodeObject normalizes them.
type wireSubscription struct {
	Subscription
	CurrentPeriodEnd *int64 `json:"current_period_end"` // up to acacia
	CustomerAccount  ID     `json:"customer_account"`   // from clover on
}

type wireInvoice struct {
	Invoice
	Customer        ID                 `json:"customer"`
	CustomerAccount ID                 `json:"customer_account"` // from clover on
	Parent          *wireInvoiceParent `json:"parent"`           // from basil on
	Lines           wireInvoiceLines   `json:"lines"`
}

// wireInvoiceParent is an invoice's parent (from basil on): what it was
// created for, and the subscription when that was one.
type wireInvoiceParent struct {
	Type                string           `json:"type"`
	SubscriptionDetails *subscriptionRef `json:"subscription_details"`
}

// wireInvoiceLines is an invoice's list of lines, as far as hookd reads it.
type wireInvoiceLines struct {
	Data []wireInvoiceLine `json:"data"`
}

type wireInvoiceLine struct {
	Subscription ID                     `json:"subscription"` // up to acacia
	Parent       *wireInvoiceLineParent `json:"parent"`       // from basil on
}

// wireInvoiceLineParent is an invoice line's parent (from basil on).
type wireInvoiceLineParent struct {
	SubscriptionItemDetails *subscriptionRef `json:"subscription_item_details"`
	InvoiceItemDetails      *subscriptionRef `json:"invoice_item_details"`
}

// subscriptionRef is an object that names a subscription: a parent's
// subscription_details, subscription_item_details or invoice_item_details.
type subscriptionRef struct {
	Subscription ID `json:"subscription"`
}

// subscription returns the subscription a line names, in whichever shape.
func (l wireInvoiceLine) subscription() ID {
	if p := l.Parent; p != nil {
		if d := p.SubscriptionItemDetails; d != nil && d.Subscription != "" {
			return d.Subscription
		}
		if d := p.InvoiceItemDetails; d != nil && d.Subscription != "" {
			return d.Subscription
		}
	}
	return l.Subscription
}

// DecodeObject decodes the data.object of a Stripe event payload into the
// fields hookd projects, for an object of type objectType ("customer",
// "subscription", "invoice"); for other types it returns no object. It
// reads the shapes of every API version: the version is never consulted,
// only the fields present.
func DecodeObject(objectType string, payload []byte) (Objects, error) {
	var out Objects
	var target any
	var sub wireSubscription
	var inv wireInvoice
	switch objectType {
	case "customer":
		out.Customer = &Customer{}
		target = out.Customer
	case "subscription":
		target = &sub
	case "invoice":
		target = &inv
	default:
		return out, nil
	}
	// One pass over the payload, straight into the object's type.
	body := struct {
		Data struct {
			Object any `json:"object"`
		} `json:"data"`
	}{}
	body.Data.Object = target
	if err := json.Unmarshal(payload, &body); err != nil {
		return Objects{}, fmt.Errorf("decode %s object: %s", objectType, describeJSONError(err))
	}
	switch objectType {
	case "subscription":
		out.Subscription = &sub.Subscription
		out.Notes = sub.normalize()
	case "invoice":
		out.Invoice = &inv.Invoice
		out.Notes = inv.normalize()
	}
	return out, nil
}

// normalize sets CurrentPeriodEnd from whichever shape the payload had,
// and says when the customer or the period is missing or doubtful.
func (w *wireSubscription) normalize() []string {
	notes := customerNotes("subscription "+w.ID, w.Customer, w.CustomerAccount)
	var ends []int64
	for _, it := range w.Items.Data {
		if it.CurrentPeriodEnd > 0 {
			ends = append(ends, it.CurrentPeriodEnd)
		}
		if it.CurrentPeriodEnd > 0 && it.CurrentPeriodStart > it.CurrentPeriodEnd {
			notes = append(notes, fmt.Sprintf("subscription %s's item %s ends its period (%d) before it starts (%d)",
				w.ID, it.ID, it.CurrentPeriodEnd, it.CurrentPeriodStart))
		}
	}
	if w.CurrentPeriodEnd != nil && *w.CurrentPeriodEnd > 0 {
		w.Subscription.CurrentPeriodEnd = *w.CurrentPeriodEnd
		if len(ends) > 0 && (slices.Min(ends) != *w.CurrentPeriodEnd || slices.Max(ends) != *w.CurrentPeriodEnd) {
			notes = append(notes, fmt.Sprintf("subscription %s's current_period_end (%d) differs from its items': the subscription's own is used",
				w.ID, *w.CurrentPeriodEnd))
		}
		return notes
	}
	if len(ends) == 0 {
		return append(notes, "subscription "+w.ID+" has no current_period_end (neither on the subscription nor on its items)")
	}
	w.Subscription.CurrentPeriodEnd = slices.Max(ends)
	if slices.Min(ends) != slices.Max(ends) {
		notes = append(notes, "subscription "+w.ID+"'s items end their periods at different times: current_period_end is the latest")
	}
	return notes
}

// normalize sets Subscription from whichever shape the payload had: the
// invoice's own field (up to acacia), its parent (from basil on), or else
// the subscription its lines name, when they name exactly one. It says
// when the customer or the subscription is missing, or when the shapes
// disagree.
func (w *wireInvoice) normalize() []string {
	name := "invoice " + w.ID
	var notes []string
	if w.ID == "" {
		name = "an invoice without id"
		notes = append(notes, "the invoice has no id (an upcoming invoice?)")
	}
	notes = append(notes, customerNotes(name, w.Customer, w.CustomerAccount)...)
	var fromLines []string
	for _, l := range w.Lines.Data {
		if s := l.subscription(); s != "" && !slices.Contains(fromLines, string(s)) {
			fromLines = append(fromLines, string(s))
		}
	}
	var fromParent ID
	if p := w.Parent; p != nil && p.SubscriptionDetails != nil {
		fromParent = p.SubscriptionDetails.Subscription
	}
	switch {
	case w.Subscription != "":
		if fromParent != "" && fromParent != w.Subscription {
			notes = append(notes, name+" names subscription "+string(w.Subscription)+" itself and "+string(fromParent)+
				" in parent.subscription_details: linked to "+string(w.Subscription))
		}
	case fromParent != "":
		w.Subscription = fromParent
		if w.Parent.Type != "subscription_details" {
			notes = append(notes, name+"'s parent.type is "+strconvQuote(w.Parent.Type)+", not subscription_details, yet it names subscription "+
				string(fromParent)+": linked to "+string(fromParent))
		}
	case len(fromLines) == 1:
		w.Subscription = ID(fromLines[0])
		return append(notes, name+" names no subscription itself: subscription "+fromLines[0]+" taken from its lines")
	case len(fromLines) > 1:
		return append(notes, name+"'s lines name several subscriptions ("+strings.Join(fromLines, ", ")+") and the invoice none: linked to no subscription")
	case w.Parent != nil && w.Parent.Type == "subscription_details":
		return append(notes, name+" has parent.type subscription_details but no subscription: linked to no subscription")
	default:
		return notes
	}
	var others []string
	for _, s := range fromLines {
		if s != string(w.Subscription) {
			others = append(others, s)
		}
	}
	if len(others) > 0 {
		notes = append(notes, name+"'s lines name subscription "+strings.Join(others, ", ")+", not the invoice's "+
			string(w.Subscription)+": linked to "+string(w.Subscription))
	}
	return notes
}

// customerNotes says when an object (what) names no customer: from
// 2025-12-15.clover on an object may name only its customer_account (an
// Accounts v2 ID), by which DecodeEnvelope then routes the event.
func customerNotes(what string, customer, account ID) []string {
	switch {
	case customer != "":
		return nil
	case account != "":
		return []string{what + " has no customer, only customer_account " + string(account)}
	}
	return []string{what + " has no customer"}
}

// strconvQuote quotes a sender-supplied string for a Note, shortened.
func strconvQuote(s string) string { return strconv.Quote(truncate(s)) }
