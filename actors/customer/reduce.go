package customer

import (
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// State is one customer's projection, as the actor keeps it in memory and
// the store keeps it (JSON) between activations.
type State struct {
	CustomerID string `json:"customer_id"`
	// Known is true once a customer.created notification has been emitted.
	Known    bool              `json:"known"`
	Email    string            `json:"email,omitempty"`
	Name     string            `json:"name,omitempty"`
	Deleted  bool              `json:"deleted,omitempty"`
	Livemode bool              `json:"livemode,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`

	Subscriptions map[string]*Subscription `json:"subscriptions,omitempty"`
	Invoices      map[string]*Invoice      `json:"invoices,omitempty"`

	// Marks holds, per object ID, the newest (created, rank) applied, so
	// that an older event never overwrites newer state.
	Marks map[string]Mark `json:"marks,omitempty"`
	// UpdatedAt is the newest provider created applied, seconds.
	UpdatedAt int64 `json:"updated_at,omitempty"`
}

// Subscription is the projected state of one subscription.
type Subscription struct {
	Status            string   `json:"status"`
	CancelAtPeriodEnd bool     `json:"cancel_at_period_end,omitempty"`
	CurrentPeriodEnd  int64    `json:"current_period_end,omitempty"`
	PriceIDs          []string `json:"price_ids,omitempty"`
}

// Invoice is the projected state of one invoice.
type Invoice struct {
	SubscriptionID  string `json:"subscription_id,omitempty"`
	Status          string `json:"status"`
	AmountPaid      int64  `json:"amount_paid"`
	AmountDue       int64  `json:"amount_due"`
	Currency        string `json:"currency,omitempty"`
	PaymentFailures int32  `json:"payment_failures,omitempty"`
}

// Mark orders events on one object: by the provider's created second, then
// by Rank for events of the same second.
type Mark struct {
	Created int64 `json:"c"`
	Rank    int   `json:"r"`
}

func (m Mark) less(o Mark) bool {
	return m.Created < o.Created || (m.Created == o.Created && m.Rank < o.Rank)
}

// rank orders same-second events on one object: creation, then updates,
// then terminal events (deleted, paid).
func rank(eventType string) int {
	switch {
	case strings.HasSuffix(eventType, ".created"):
		return 0
	case strings.HasSuffix(eventType, ".deleted"), eventType == "invoice.paid":
		return 2
	default:
		return 1
	}
}

// Outcome says what reduce did with an event.
type Outcome int

// Outcomes of reduce.
const (
	// Applied: the state changed; notifications were emitted.
	Applied Outcome = iota
	// Ignored: hookd does not project this event type.
	Ignored
	// Superseded: a newer event for the same object was already applied.
	Superseded
)

// Note is a notification the reducer emits; the actor writes it to the
// outbox with the new version.
type Note struct {
	Kind string
}

// Reduce applies one event to a state and returns the new state, the
// notifications to emit, the outcome and, when not applied, the reason.
// It is pure: st is not modified, and the result depends only on its inputs.
func Reduce(st State, ev Event) (State, []Note, Outcome, string) {
	var objectKey string
	switch {
	case ev.Customer != nil && strings.HasPrefix(ev.Type, "customer.") && !strings.HasPrefix(ev.Type, "customer.subscription."):
		switch ev.Type {
		case "customer.created", "customer.updated", "customer.deleted":
			objectKey = ev.Customer.ID
		default:
			return st, nil, Ignored, "event type " + ev.Type + " is not projected"
		}
	case ev.Subscription != nil && strings.HasPrefix(ev.Type, "customer.subscription."):
		objectKey = ev.Subscription.ID
	case ev.Invoice != nil && (ev.Type == "invoice.paid" || ev.Type == "invoice.payment_failed"):
		objectKey = ev.Invoice.ID
	default:
		return st, nil, Ignored, "event type " + ev.Type + " is not projected"
	}

	mark := Mark{Created: ev.Created, Rank: rank(ev.Type)}
	if prev, ok := st.Marks[objectKey]; ok && mark.less(prev) {
		return st, nil, Superseded, "a newer event for " + objectKey + " was already applied"
	}

	next := st.clone()
	if next.Marks == nil {
		next.Marks = map[string]Mark{}
	}
	next.Marks[objectKey] = mark
	if ev.Created > next.UpdatedAt {
		next.UpdatedAt = ev.Created
	}
	next.Livemode = ev.Livemode

	var notes []Note
	if !next.Known {
		// The first event that names a customer creates it downstream, so
		// that nothing ever refers to a customer not yet announced.
		next.Known = true
		notes = append(notes, Note{Kind: "customer.created"})
	}

	switch {
	case ev.Customer != nil:
		c := ev.Customer
		next.Email, next.Name = c.Email, c.Name
		next.Metadata = maps.Clone(c.Metadata)
		switch ev.Type {
		case "customer.deleted":
			next.Deleted = true
			notes = append(notes, Note{Kind: "customer.deleted"})
		case "customer.created":
			if len(notes) == 0 { // already announced by an earlier event
				notes = append(notes, Note{Kind: "customer.updated"})
			}
		default:
			if len(notes) == 0 {
				notes = append(notes, Note{Kind: "customer.updated"})
			}
		}
	case ev.Subscription != nil:
		s := ev.Subscription
		if next.Subscriptions == nil {
			next.Subscriptions = map[string]*Subscription{}
		}
		_, existed := next.Subscriptions[s.ID]
		sub := &Subscription{
			Status:            s.Status,
			CancelAtPeriodEnd: s.CancelAtPeriodEnd,
			CurrentPeriodEnd:  s.CurrentPeriodEnd,
		}
		for _, it := range s.Items.Data {
			if it.Price.ID != "" {
				sub.PriceIDs = append(sub.PriceIDs, it.Price.ID)
			}
		}
		if ev.Type == "customer.subscription.deleted" && sub.Status == "" {
			sub.Status = "canceled"
		}
		next.Subscriptions[s.ID] = sub
		switch {
		case !existed:
			// Whatever event first names a subscription announces it.
			notes = append(notes, Note{Kind: "subscription.created"})
			if ev.Type == "customer.subscription.deleted" {
				notes = append(notes, Note{Kind: "subscription.deleted"})
			}
		case ev.Type == "customer.subscription.deleted":
			notes = append(notes, Note{Kind: "subscription.deleted"})
		default:
			notes = append(notes, Note{Kind: "subscription.updated"})
		}
	case ev.Invoice != nil:
		in := ev.Invoice
		if next.Invoices == nil {
			next.Invoices = map[string]*Invoice{}
		}
		inv := &Invoice{}
		if prev, ok := next.Invoices[in.ID]; ok {
			*inv = *prev
		}
		inv.SubscriptionID = in.SubscriptionID()
		inv.Status = in.Status
		inv.AmountPaid, inv.AmountDue, inv.Currency = in.AmountPaid, in.AmountDue, in.Currency
		if ev.Type == "invoice.payment_failed" {
			inv.PaymentFailures++
			notes = append(notes, Note{Kind: "invoice.payment_failed"})
		} else {
			if inv.Status == "" {
				inv.Status = "paid"
			}
			notes = append(notes, Note{Kind: "invoice.paid"})
		}
		next.Invoices[in.ID] = inv
	}
	return next, notes, Applied, ""
}

// clone returns a deep copy, so that Reduce never aliases its input.
func (st State) clone() State {
	c := st
	c.Metadata = maps.Clone(st.Metadata)
	c.Marks = maps.Clone(st.Marks)
	if st.Subscriptions != nil {
		c.Subscriptions = make(map[string]*Subscription, len(st.Subscriptions))
		for k, v := range st.Subscriptions {
			s := *v
			s.PriceIDs = slices.Clone(v.PriceIDs)
			c.Subscriptions[k] = &s
		}
	}
	if st.Invoices != nil {
		c.Invoices = make(map[string]*Invoice, len(st.Invoices))
		for k, v := range st.Invoices {
			i := *v
			c.Invoices[k] = &i
		}
	}
	return c
}

// Proto renders the state as the public hookd.v1.Customer at a version.
func (st State) Proto(version int64) *hookdv1.Customer {
	c := &hookdv1.Customer{
		CustomerId: st.CustomerID,
		Version:    version,
		Email:      st.Email,
		Name:       st.Name,
		Deleted:    st.Deleted,
		Metadata:   maps.Clone(st.Metadata),
		Livemode:   st.Livemode,
	}
	if st.UpdatedAt > 0 {
		c.UpdatedAt = timestamppb.New(unix(st.UpdatedAt))
	}
	for _, id := range slices.Sorted(maps.Keys(st.Subscriptions)) {
		s := st.Subscriptions[id]
		ps := &hookdv1.Subscription{
			SubscriptionId:    id,
			Status:            s.Status,
			CancelAtPeriodEnd: s.CancelAtPeriodEnd,
			PriceIds:          slices.Clone(s.PriceIDs),
		}
		if s.CurrentPeriodEnd > 0 {
			ps.CurrentPeriodEnd = timestamppb.New(unix(s.CurrentPeriodEnd))
		}
		c.Subscriptions = append(c.Subscriptions, ps)
	}
	for _, id := range slices.Sorted(maps.Keys(st.Invoices)) {
		i := st.Invoices[id]
		c.Invoices = append(c.Invoices, &hookdv1.Invoice{
			InvoiceId:       id,
			SubscriptionId:  i.SubscriptionID,
			Status:          i.Status,
			AmountPaid:      i.AmountPaid,
			AmountDue:       i.AmountDue,
			Currency:        i.Currency,
			PaymentFailures: i.PaymentFailures,
		})
	}
	return c
}
