package customer

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
)

// ReprojectKind is the notification kind, and the type of the event row, of
// a state repaired by Reproject.
const ReprojectKind = "customer.reprojected"

// reprojectPageSize is how many events Reproject reads per ListEvents page.
const reprojectPageSize = 500

// absent stands for a field or an object one of the two states lacks, in
// a FieldChange.
const absent = "(absent)"

// FieldChange is one difference between the live state and the state
// recomputed from the stored events, on what consumers see
// (hookd.v1.Customer). Path names the field: "email",
// "metadata[plan]", "subscriptions[sub_1].status", "invoices[in_1]" (the
// whole object, when one side lacks it). Live and Recomputed are the
// values as text; absent when that side lacks it.
type FieldChange struct {
	Path       string `json:"path"`
	Live       string `json:"live"`
	Recomputed string `json:"recomputed"`
}

// ReprojectResult is what Reproject found and did. Changed says the live
// state differs from the recomputed one (Changes lists how, in a stable
// order); Version is the live state's version, NewVersion the version
// after the call: Version+1 when the repair was committed, else Version
// (nothing differs, or a dry run).
type ReprojectResult struct {
	Changed    bool
	Version    int64
	NewVersion int64
	Changes    []FieldChange
}

// Reproject recomputes the customer's state from its stored events and,
// unless dryRun, repairs the live state where it differs.
//
// It reads the live state from the store (not the state this Processor
// holds: the point is to see what is stored) and every event stored for the
// customer; those that took effect (status applied with a version:
// released parked events have theirs) are decoded again from their raw
// payload with the current decoder and reduced, in version order (ties: in
// the order they were stored), by the current reducer from an empty state.
// The recomputed state is compared with the live one on what consumers
// see (State.Proto without its version and updated_at); bookkeeping
// (Version, Known, Marks, UpdatedAt, Parked) is not compared.
//
// When they differ and !dryRun, it commits, fenced like an event, one new
// version: a synthetic event row (source "hookd", type
// customer.reprojected, its payload the changes as JSON), the recomputed
// state with the live bookkeeping carried over (the next version, the
// live parked events) and one customer.reprojected notification with the
// new state. Running it again changes nothing.
//
// hookd's own rows (source "hookd": resolutions of parked events, earlier
// repairs) are not decoded. An event that took effect through a
// resolution (it parks again when recomputed) is resolved again at once,
// with the subscription it waited for taken from the live state when that
// has it (the object fetched from the provider then is not stored), else
// synthesized as Resolve does.
func (p *Processor) Reproject(ctx context.Context, dryRun bool) (ReprojectResult, error) {
	var (
		res    ReprojectResult
		errOut error
	)
	// Always read what is stored, not what this activation holds.
	p.loaded = false
	out, err := p.commit(ctx, "", func() (store.Write, State, Result) {
		res, errOut = ReprojectResult{}, nil
		live := p.state
		recomputed, err := p.recompute(ctx, live)
		if err != nil {
			errOut = err
			return store.Write{}, p.state, Result{}
		}
		res.Version, res.NewVersion = live.Version, live.Version
		res.Changes = Diff(live, recomputed)
		res.Changed = len(res.Changes) > 0
		if !res.Changed || dryRun {
			return store.Write{}, p.state, Result{}
		}
		next := recomputed
		next.CustomerID = p.id
		next.Version = live.Version + 1
		next.Known = live.Known || recomputed.Known
		next.UpdatedAt = max(live.UpdatedAt, recomputed.UpdatedAt)
		next.Parked = slices.Clone(live.Parked)
		payload, err := json.Marshal(res.Changes)
		if err != nil {
			errOut = fmt.Errorf("encode changes: %w", err)
			return store.Write{}, p.state, Result{}
		}
		now := p.now().UTC()
		eventID := "reproject_" + p.id + "_v" + strconv.FormatInt(next.Version, 10)
		w := store.Write{
			ReadVersion: p.revision,
			Event: store.Event{
				Source: "hookd", EventID: eventID, Type: ReprojectKind, CustomerID: p.id,
				Status: store.StatusApplied, Reason: strconv.Itoa(len(res.Changes)) + " field(s) recomputed from the stored events",
				Routing: "reproject", Created: now, Version: next.Version, Payload: payload,
			},
		}
		state, err := json.Marshal(next)
		if err != nil {
			errOut = fmt.Errorf("encode state: %w", err)
			return store.Write{}, p.state, Result{}
		}
		snapshot, err := proto.Marshal(next.Proto())
		if err != nil {
			errOut = fmt.Errorf("encode customer: %w", err)
			return store.Write{}, p.state, Result{}
		}
		w.State = state
		w.Notifications = []store.Notification{{
			CustomerID: p.id, Version: next.Version, Kind: ReprojectKind, EventID: eventID,
			OccurredAt: now, Customer: snapshot,
		}}
		res.NewVersion = next.Version
		return w, next, Result{Status: store.StatusApplied}
	})
	if err == nil {
		err = errOut
	}
	if err == nil && res.NewVersion != res.Version && out.Status != store.StatusApplied {
		// The repair's event ID is taken: another activation repaired
		// this version first.
		err = fmt.Errorf("%s: %s", out.Status, out.Reason)
	}
	if err != nil {
		return ReprojectResult{}, fmt.Errorf("reproject customer %s: %w", p.id, err)
	}
	return res, nil
}

// recompute reduces the customer's stored events that took effect, in
// version order, from an empty state (see Reproject). live supplies the
// subscriptions that resolutions applied.
func (p *Processor) recompute(ctx context.Context, live State) (State, error) {
	var events []store.Event
	token := ""
	for {
		page, next, err := p.store.ListEvents(ctx, store.ListEventsFilter{CustomerID: p.id, PageSize: reprojectPageSize, PageToken: token})
		if err != nil {
			return State{}, fmt.Errorf("list events: %w", err)
		}
		for _, e := range page {
			if e.Status == store.StatusApplied && e.Version > 0 {
				events = append(events, e)
			}
		}
		if next == "" {
			break
		}
		token = next
	}
	// Listed newest first by insertion: reverse to insertion order, which
	// the stable sort keeps for equal versions.
	slices.Reverse(events)
	slices.SortStableFunc(events, func(a, b store.Event) int { return cmp.Compare(a.Version, b.Version) })

	st := State{CustomerID: p.id}
	payloads := map[string][]byte{}
	var resolvedAt int64 // the time of the last resolution of parked events
	for _, e := range events {
		if e.Source != stripe.Source {
			if e.Type == "hookd.parked.resolved" {
				resolvedAt = e.Created.Unix()
			}
			continue // hookd's own rows: nothing to decode
		}
		env, err := stripe.DecodeEnvelope(e.Payload)
		if err != nil {
			p.log.WarnContext(ctx, "reproject: stored payload does not decode; skipped",
				"customer_id", p.id, "event_id", e.EventID, "err", err)
			continue
		}
		if env.GetThin() {
			continue
		}
		ev, err := DecodeEvent(env)
		if err != nil {
			p.log.WarnContext(ctx, "reproject: stored event does not decode; skipped",
				"customer_id", p.id, "event_id", e.EventID, "err", err)
			continue
		}
		if ids := st.PeersOf(ev); len(ids) > 0 {
			ev.Data = stripe.Data(env.GetPayload())
			ev.Peers = make(map[string]json.RawMessage, len(ids))
			for _, id := range ids {
				if d := stripe.Data(payloads[id]); d != nil {
					ev.Peers[id] = d
				}
			}
		}
		payloads[ev.ID] = env.GetPayload()
		next, eff := Apply(st, ev, 0)
		if eff.Outcome == Parked {
			// It took effect live, so what it waits for came by a
			// resolution: resolve it again at once.
			fetched := map[string]*stripe.Subscription{}
			for _, pk := range next.Parked {
				if s, ok := live.Subscriptions[pk.WaitingFor]; ok {
					fetched[pk.WaitingFor] = s.stripe(pk.WaitingFor)
				}
			}
			next, _, _ = Resolve(next, math.MaxInt64, cmp.Or(resolvedAt, e.ReceivedAt.Unix()), fetched)
		}
		st = next
		st.CustomerID = p.id
	}
	if st.Account == "" {
		// An account named only by events still parked.
		for _, pk := range live.Parked {
			if pk.Event.Account != "" {
				st.Account = pk.Event.Account
			}
		}
	}
	return st, nil
}

// stripe renders a projected subscription as the provider object it came
// from, as far as hookd keeps it.
func (s *Subscription) stripe(id string) *stripe.Subscription {
	out := &stripe.Subscription{ID: id, Status: s.Status, CancelAtPeriodEnd: s.CancelAtPeriodEnd, CurrentPeriodEnd: s.CurrentPeriodEnd}
	for _, price := range s.PriceIDs {
		var it stripe.SubscriptionItem
		it.Price.ID = price
		out.Items.Data = append(out.Items.Data, it)
	}
	return out
}

// Diff lists how two states differ on what consumers see
// (hookd.v1.Customer: email, name, deleted, livemode, account, metadata,
// subscriptions, invoices), in that order, map entries by key. Bookkeeping
// (Version, Known, Marks, UpdatedAt, Parked) is not compared.
func Diff(live, recomputed State) []FieldChange {
	var out []FieldChange
	field := func(path, a, b string) {
		if a != b {
			out = append(out, FieldChange{Path: path, Live: a, Recomputed: b})
		}
	}
	field("email", live.Email, recomputed.Email)
	field("name", live.Name, recomputed.Name)
	field("deleted", strconv.FormatBool(live.Deleted), strconv.FormatBool(recomputed.Deleted))
	field("livemode", strconv.FormatBool(live.Livemode), strconv.FormatBool(recomputed.Livemode))
	field("account", live.Account, recomputed.Account)

	lm, rm := live.Metadata.goMap(), recomputed.Metadata.goMap()
	for _, k := range unionKeys(lm, rm) {
		a, okA := lm[k]
		b, okB := rm[k]
		field("metadata["+k+"]", orAbsent(a, okA), orAbsent(b, okB))
	}

	for _, id := range unionKeys(live.Subscriptions, recomputed.Subscriptions) {
		a, b := live.Subscriptions[id], recomputed.Subscriptions[id]
		path := "subscriptions[" + id + "]"
		if a == nil || b == nil {
			field(path, objectText(a), objectText(b))
			continue
		}
		field(path+".status", a.Status, b.Status)
		field(path+".cancel_at_period_end", strconv.FormatBool(a.CancelAtPeriodEnd), strconv.FormatBool(b.CancelAtPeriodEnd))
		field(path+".current_period_end", strconv.FormatInt(a.CurrentPeriodEnd, 10), strconv.FormatInt(b.CurrentPeriodEnd, 10))
		field(path+".price_ids", strings.Join(a.PriceIDs, ","), strings.Join(b.PriceIDs, ","))
	}

	for _, id := range unionKeys(live.Invoices, recomputed.Invoices) {
		a, b := live.Invoices[id], recomputed.Invoices[id]
		path := "invoices[" + id + "]"
		if a == nil || b == nil {
			field(path, objectText(a), objectText(b))
			continue
		}
		field(path+".subscription_id", a.SubscriptionID, b.SubscriptionID)
		field(path+".status", a.Status, b.Status)
		field(path+".amount_paid", strconv.FormatInt(a.AmountPaid, 10), strconv.FormatInt(b.AmountPaid, 10))
		field(path+".amount_due", strconv.FormatInt(a.AmountDue, 10), strconv.FormatInt(b.AmountDue, 10))
		field(path+".currency", a.Currency, b.Currency)
		field(path+".payment_failures", strconv.FormatInt(int64(a.PaymentFailures), 10), strconv.FormatInt(int64(b.PaymentFailures), 10))
	}
	return out
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func orAbsent(v string, ok bool) string {
	if !ok {
		return absent
	}
	return v
}

// objectText renders a subscription or invoice as JSON, or absent for
// nil.
func objectText[T any](v *T) string {
	if v == nil {
		return absent
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(*v)
	}
	return string(b)
}
