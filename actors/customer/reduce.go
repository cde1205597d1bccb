package customer

import (
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
)

// State is one customer's projection, as the actor keeps it in memory and
// the store keeps it (JSON) between activations.
type State struct {
	CustomerID string `json:"customer_id"`
	// Version counts applied events: it increases by exactly one for each,
	// and notifications carry it. (The store's own version, used to fence
	// writes, also counts writes that only park an event.)
	Version int64 `json:"version"`
	// Known is true once a customer.created notification has been emitted.
	Known    bool             `json:"known"`
	Email    string           `json:"email,omitempty"`
	Name     string           `json:"name,omitempty"`
	Deleted  bool             `json:"deleted,omitempty"`
	Livemode bool             `json:"livemode,omitempty"`
	Metadata smallMap[string] `json:"metadata,omitempty"`
	// Account is the Connect account (acct_...) the customer belongs to,
	// from the newest event applied or parked that named one; empty for
	// the platform's own customers. Resolve fetches on its behalf. Omitted
	// when empty, so states of earlier releases read and write unchanged.
	Account string `json:"account,omitempty"`

	Subscriptions map[string]*Subscription `json:"subscriptions,omitempty"`
	Invoices      map[string]*Invoice      `json:"invoices,omitempty"`

	// Marks holds, per object ID, the newest (created, rank) applied, so
	// that an older event never overwrites newer state.
	Marks smallMap[Mark] `json:"marks,omitempty"`
	// UpdatedAt is the newest provider created applied, seconds.
	UpdatedAt int64 `json:"updated_at,omitempty"`

	// Parked holds events waiting for a prerequisite, in arrival order.
	// They are part of the state, so they survive restarts and passivation
	// and are released in the same transaction that brings what they wait for.
	Parked []ParkedEvent `json:"parked,omitempty"`
}

// ParkedEvent is an event waiting for an object the customer does not have yet.
type ParkedEvent struct {
	Event Event `json:"event"`
	// WaitingFor is the ID of the missing object (a subscription).
	WaitingFor string `json:"waiting_for"`
	// Since is when it was parked (wall clock, Unix seconds), for the
	// resolution deadline.
	Since int64 `json:"since"`
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
// by Rank for events of the same second, then by their data (see Apply).
type Mark struct {
	Created int64 `json:"c"`
	Rank    int   `json:"r"`
	// IDs are the events applied on the object at (Created, Rank), oldest
	// first, at most maxSameSecond: a later event of the same second is
	// ordered against them by their data.
	IDs []string `json:"i,omitempty"`
}

// maxSameSecond bounds Mark.IDs.
const maxSameSecond = 4

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

// Outcome says what Apply did with an event.
type Outcome int

// Outcomes of Apply.
const (
	// Applied: the state changed; notifications were emitted.
	Applied Outcome = iota
	// Ignored: hookd does not project this event type.
	Ignored
	// Superseded: a newer event for the same object was already applied.
	Superseded
	// Parked: the event waits for a prerequisite; it is kept in the state.
	Parked
)

// Change is one applied event's effect: the version it produced, the
// notifications it emits and the state at that version.
type Change struct {
	EventID string
	Created int64
	Version int64
	Kinds   []string
	// Subscription is the subscription the change refers to, if any.
	Subscription string
	State        State
}

// Effect is what Apply did: the outcome for the event itself, and the
// changes, in version order. The first change is the event's own when it
// was applied; the others are parked events it released.
type Effect struct {
	Outcome Outcome
	Reason  string
	Changes []Change
	// Stale lists parked events dropped because a newer event for their
	// object was applied while they waited; they are settled as superseded.
	Stale []string
}

// Released returns the changes of previously parked events.
func (r Effect) Released() []Change {
	if r.Outcome == Applied && len(r.Changes) > 0 {
		return r.Changes[1:]
	}
	return r.Changes
}

// Apply applies one event, and every parked event it releases, to a state.
// now is the wall clock (Unix seconds), recorded on events it parks. It is
// pure: st is not modified, and the result depends only on its inputs.
func Apply(st State, ev Event, now int64) (State, Effect) {
	if objectKey(ev) == "" {
		return st, Effect{Outcome: Ignored, Reason: "event type " + ev.Type + " is not projected"}
	}
	// Superseded events and repeats of a parked one leave the state as it
	// is: decide them before paying for a copy.
	if m, ok := st.Marks.get(objectKey(ev)); ok && (Mark{Created: ev.Created, Rank: rank(ev.Type)}).less(m) {
		return st, Effect{Outcome: Superseded, Reason: "a newer event for " + objectKey(ev) + " was already applied"}
	}
	sameSecond, older := st.orderSameSecond(ev)
	if older {
		return st, Effect{Outcome: Superseded, Reason: sameSecond}
	}
	sub := waitsFor(st, ev)
	if sub != "" {
		for _, p := range st.Parked {
			if p.Event.ID == ev.ID {
				return st, Effect{Outcome: Parked, Reason: "waiting for subscription " + sub}
			}
		}
	}
	next := st.clone()
	if sub != "" {
		next.Parked = append(next.Parked, ParkedEvent{Event: ev, WaitingFor: sub, Since: now})
		if ev.Account != "" {
			// Known before anything is applied: resolving the parked
			// event fetches on the account's behalf.
			next.Account = ev.Account
		}
		return next, Effect{Outcome: Parked, Reason: "waiting for subscription " + sub}
	}
	res := Effect{Outcome: Applied, Reason: sameSecond}
	res.Changes = append(res.Changes, next.applyOne(ev))
	released, stale := next.release()
	res.Changes = append(res.Changes, released...)
	res.Stale = stale
	return next, res
}

// Resolve releases parked events that waited since before deadline (Unix
// seconds). For each missing subscription, fetched may hold the object as
// the provider has it now (from its API); a subscription it lacks is
// synthesized from what the parked events say. reason explains, per
// released event, how it was resolved.
//
// A parked event dropped as stale gets the reason "superseded".
func Resolve(st State, deadline, now int64, fetched map[string]*stripe.Subscription) (State, []Change, map[string]string) {
	next := st.clone()
	var changes []Change
	reasons := map[string]string{}
	for {
		var due *ParkedEvent
		for i := range next.Parked {
			if next.Parked[i].Since <= deadline {
				due = &next.Parked[i]
				break
			}
		}
		if due == nil {
			return next, changes, reasons
		}
		subID, evID := due.WaitingFor, due.Event.ID
		obj := fetched[subID]
		how := "released after its deadline with subscription " + subID + " fetched from the provider"
		if obj == nil {
			obj = &stripe.Subscription{ID: subID, Status: "unknown"}
			how = "released after its deadline without subscription " + subID + " (not fetched); the subscription was synthesized from the invoice"
		}
		// The fetched object is the provider's state now: newer than any
		// event created before now.
		synthetic := Event{ID: "", Type: "customer.subscription.updated", Created: now, ObjectID: subID,
			ObjectType: "subscription", Livemode: next.Livemode, Subscription: obj}
		ch := next.applyNext(synthetic)
		ch.EventID = evID // the resolution happens on behalf of the parked event
		changes = append(changes, ch)
		released, stale := next.release()
		for _, c := range released {
			reasons[c.EventID] = how
			changes = append(changes, c)
		}
		for _, id := range stale {
			reasons[id] = "superseded"
		}
	}
}

// PeersOf lists the events whose data Apply needs to order ev: those
// applied on ev's object in ev's created second with ev's rank (Mark.IDs),
// ev itself excepted. The caller puts their data blocks in ev.Peers.
func (st State) PeersOf(ev Event) []string {
	key := objectKey(ev)
	if key == "" {
		return nil
	}
	m, ok := st.Marks.get(key)
	if !ok || m.Created != ev.Created || m.Rank != rank(ev.Type) {
		return nil
	}
	var ids []string
	for _, id := range m.IDs {
		if id != ev.ID {
			ids = append(ids, id)
		}
	}
	return ids
}

// OrderUndecided reports whether ev shares its created second with events
// already applied on its object and their data (ev.Peers) does not decide
// which came first: then the caller may fetch the object as the provider
// has it now and apply that (Event.Fetched).
func (st State) OrderUndecided(ev Event) bool {
	ids := st.PeersOf(ev)
	if len(ids) == 0 {
		return false
	}
	for _, id := range ids {
		switch stripe.SameSecondOrder(ev.Data, ev.Peers[id]) {
		case stripe.Before:
			return false // superseded: decided
		case stripe.Undecided:
			return true
		}
	}
	return false
}

// orderSameSecond orders ev against the events applied on its object in
// the same created second (PeersOf), by their data: ev is older (to be
// superseded) if one of them says it came after ev. reason records which
// rule decided, or that none did and the order is ev's arrival (or the
// object fetched from the provider, when ev.Fetched); it is "" when ev
// shares its second with no applied event.
func (st State) orderSameSecond(ev Event) (reason string, older bool) {
	ids := st.PeersOf(ev)
	if len(ids) == 0 {
		return "", false
	}
	var after, undecided []string
	for _, id := range ids {
		switch stripe.SameSecondOrder(ev.Data, ev.Peers[id]) {
		case stripe.Before:
			return "same second as " + id + ", whose previous_attributes equal this event's values: " + id + " is the newer change", true
		case stripe.After:
			after = append(after, id)
		default:
			undecided = append(undecided, id)
		}
	}
	switch {
	case len(undecided) == 0:
		return "same second as " + strings.Join(after, ", ") + ": ordered after it, as its previous_attributes equal their values", false
	case ev.Fetched:
		return "same second as " + strings.Join(undecided, ", ") + " and the data does not decide the order: applied the object as fetched from the provider", false
	}
	return "same second as " + strings.Join(undecided, ", ") + " and the data does not decide the order: applied in arrival order", false
}

// objectKey returns the object an event changes, or "" when hookd does not
// project the event type.
func objectKey(ev Event) string {
	switch {
	case ev.Customer != nil && (ev.Type == "customer.created" || ev.Type == "customer.updated" || ev.Type == "customer.deleted"):
		return ev.Customer.ID
	case ev.Subscription != nil && strings.HasPrefix(ev.Type, "customer.subscription."):
		return ev.Subscription.ID
	case ev.Invoice != nil && (ev.Type == "invoice.paid" || ev.Type == "invoice.payment_failed"):
		return ev.Invoice.ID
	}
	return ""
}

// waitsFor returns the subscription an event needs and the state lacks:
// an invoice of a subscription not yet announced.
func waitsFor(st State, ev Event) string {
	if ev.Invoice == nil {
		return ""
	}
	sub := ev.Invoice.SubscriptionID()
	if sub == "" {
		return ""
	}
	if _, ok := st.Subscriptions[sub]; ok {
		return ""
	}
	return sub
}

// release applies, in created order, every parked event whose
// prerequisite is now present, and removes them from Parked. It returns
// the changes, and the IDs of parked events it dropped as stale.
func (st *State) release() (changes []Change, stale []string) {
	for {
		best := -1
		for i, p := range st.Parked {
			if _, ok := st.Subscriptions[p.WaitingFor]; ok && (best < 0 || p.Event.Created < st.Parked[best].Event.Created) {
				best = i
			}
		}
		if best < 0 {
			return changes, stale
		}
		p := st.Parked[best]
		st.Parked = slices.Delete(slices.Clone(st.Parked), best, best+1)
		if len(st.Parked) == 0 {
			st.Parked = nil
		}
		if m, ok := st.Marks.get(objectKey(p.Event)); ok && (Mark{Created: p.Event.Created, Rank: rank(p.Event.Type)}).less(m) {
			stale = append(stale, p.Event.ID) // a newer event for its invoice applied meanwhile
			continue
		}
		changes = append(changes, st.applyNext(p.Event))
	}
}

// applyNext is applyOne on a state that may share its maps with changes
// already returned (their snapshots): it gives st maps of its own first.
func (st *State) applyNext(ev Event) Change {
	*st = st.clone()
	return st.applyOne(ev)
}

// applyOne applies an event whose prerequisites are present and returns
// its change. It mutates st, which must be a private copy, shared with no
// earlier change. The change's snapshot shares st's maps: st must not be
// mutated again except through applyNext.
func (st *State) applyOne(ev Event) Change {
	key := objectKey(ev)
	mark := Mark{Created: ev.Created, Rank: rank(ev.Type), IDs: []string{ev.ID}}
	if m, ok := st.Marks.get(key); ok && m.Created == mark.Created && m.Rank == mark.Rank && ev.ID != "" {
		mark.IDs = append(slices.Clone(m.IDs[max(0, len(m.IDs)-maxSameSecond+1):]), ev.ID)
	}
	if ev.ID == "" { // a resolution on behalf of a parked event
		mark.IDs = nil
	}
	st.Marks.set(key, mark)
	if ev.Created > st.UpdatedAt {
		st.UpdatedAt = ev.Created
	}
	st.Livemode = ev.Livemode
	if ev.Account != "" {
		st.Account = ev.Account
	}
	st.Version++

	var kinds []string
	if !st.Known {
		// The first event that names a customer creates it downstream, so
		// that nothing ever refers to a customer not yet announced.
		st.Known = true
		kinds = append(kinds, "customer.created")
	}
	switch {
	case ev.Customer != nil:
		c := ev.Customer
		st.Email, st.Name = c.Email, c.Name
		st.Metadata = smallMapOf(c.Metadata)
		switch {
		case ev.Type == "customer.deleted":
			st.Deleted = true
			kinds = append(kinds, "customer.deleted")
		case len(kinds) == 0: // created or updated, already announced
			kinds = append(kinds, "customer.updated")
		}
	case ev.Subscription != nil:
		s := ev.Subscription
		if st.Subscriptions == nil {
			st.Subscriptions = map[string]*Subscription{}
		}
		_, existed := st.Subscriptions[s.ID]
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
		st.Subscriptions[s.ID] = sub
		if !existed {
			// Whatever event first names a subscription announces it.
			kinds = append(kinds, "subscription.created")
		}
		switch {
		case ev.Type == "customer.subscription.deleted":
			kinds = append(kinds, "subscription.deleted")
		case existed:
			kinds = append(kinds, "subscription.updated")
		}
	case ev.Invoice != nil:
		in := ev.Invoice
		if st.Invoices == nil {
			st.Invoices = map[string]*Invoice{}
		}
		inv := &Invoice{}
		if prev, ok := st.Invoices[in.ID]; ok {
			*inv = *prev
		}
		inv.SubscriptionID = in.SubscriptionID()
		inv.Status = in.Status
		inv.AmountPaid, inv.AmountDue, inv.Currency = in.AmountPaid, in.AmountDue, in.Currency
		if ev.Type == "invoice.payment_failed" {
			inv.PaymentFailures++
			kinds = append(kinds, "invoice.payment_failed")
		} else {
			if inv.Status == "" {
				inv.Status = "paid"
			}
			kinds = append(kinds, "invoice.paid")
		}
		st.Invoices[in.ID] = inv
	}
	ch := Change{EventID: ev.ID, Created: ev.Created, Version: st.Version, Kinds: kinds, State: *st}
	switch {
	case ev.Subscription != nil:
		ch.Subscription = ev.Subscription.ID
	case ev.Invoice != nil:
		ch.Subscription = ev.Invoice.SubscriptionID()
	}
	return ch
}

// clone returns a deep copy, so that Reduce never aliases its input.
func (st State) clone() State {
	c := st
	c.Metadata = slices.Clone(st.Metadata)
	c.Marks = slices.Clone(st.Marks)
	c.Parked = slices.Clone(st.Parked)
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

// Proto renders the state as the public hookd.v1.Customer. Notifications
// carry the same message written by appendCustomerProto, without building
// it; customerproto_test.go holds the two to the same bytes.
func (st State) Proto() *hookdv1.Customer {
	c := &hookdv1.Customer{
		CustomerId: st.CustomerID,
		Version:    st.Version,
		Email:      st.Email,
		Name:       st.Name,
		Deleted:    st.Deleted,
		Metadata:   st.Metadata.goMap(),
		Livemode:   st.Livemode,
		Account:    st.Account,
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
