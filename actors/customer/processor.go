package customer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
)

// maxFenceRetries bounds how often Apply reloads and retries after another
// activation of the same customer committed first.
const maxFenceRetries = 5

// recentSize is how many event IDs an activation remembers having
// committed. It only saves planning and a commit attempt for a repeated
// delivery (the store rejects duplicates anyway; the answer is still read
// from the store, see received), and every resident actor pays for it, so
// it is small.
const recentSize = 8

// Result is what Apply did with one event.
type Result struct {
	Status  store.Status
	Version int64 // the customer's version after the event
	Reason  string
}

// SubscriptionFetcher gets a subscription as the provider has it now, for
// resolving an event parked past its deadline; account, when not empty, is
// the Connect account the customer belongs to. It returns an error
// wrapping stripe.ErrNotFound when the provider does not know the
// subscription. *stripe.Client implements it.
type SubscriptionFetcher interface {
	FetchSubscription(ctx context.Context, id, account string) (*stripe.Subscription, error)
}

// ObjectFetcher gets an object as the provider has it now, to apply when
// the data of events created in one second does not decide their order;
// account, when not empty, is the Connect account of the event.
// *stripe.Client implements it.
type ObjectFetcher interface {
	FetchObject(ctx context.Context, objectType, id, account string) (stripe.Objects, error)
}

// ThinRoutedReason says, in the reason of a thin event that reached its
// customer, why it changed nothing.
const ThinRoutedReason = "hookd does not fetch its related object; stored"

// Processor applies events to one customer, one at a time. It is the
// actor's logic without the actor runtime: the grain owns one Processor and
// calls Apply from its mailbox, so a Processor is not safe for concurrent
// use. Two Processors for the same customer (a double activation) may
// exist; the store's version fence lets only one of them commit from a
// given version.
type Processor struct {
	id        string
	store     store.Store
	log       *slog.Logger
	committed func(customerID string) // may be nil

	now     func() time.Time
	objects ObjectFetcher // may be nil

	loaded   bool
	state    State
	revision int64 // the store's version of the state, for fencing

	recent     [recentSize]string // ring of recently committed event IDs
	recentNext int
}

// NewProcessor returns a Processor for one customer. committed, if not
// nil, is called after every successful commit (to wake notification
// subscribers); it must not block.
func NewProcessor(customerID string, st store.Store, log *slog.Logger, committed func(string)) *Processor {
	return &Processor{
		id:        customerID,
		store:     st,
		log:       log,
		committed: committed,
		now:       time.Now,
	}
}

// FetchObjectsWith makes the Processor fetch an object from the provider
// when the data of events created in one second does not decide their
// order (nil: apply them in arrival order). Call it before Apply.
func (p *Processor) FetchObjectsWith(f ObjectFetcher) { p.objects = f }

// Version returns the customer version this Processor holds (0 if not
// loaded or new).
func (p *Processor) Version() int64 { return p.state.Version }

// Parked returns the events parked in the state this Processor holds.
func (p *Processor) Parked() []ParkedEvent { return slices.Clone(p.state.Parked) }

// Apply makes one event durable and applies it. On a nil error the event is
// committed (or was already); on an error nothing of it took effect and the
// in-memory state is dropped, to be reloaded from the store next time.
func (p *Processor) Apply(ctx context.Context, env *hookdv1.Envelope, routing string) (Result, error) {
	o := p.ApplyBatch(ctx, []Item{{Envelope: env, Routing: routing}})[0]
	return o.Result, o.Err
}

// Replay applies a stored event again: an ignored one takes effect as if
// delivered now; one that took effect is a duplicate.
func (p *Processor) Replay(ctx context.Context, env *hookdv1.Envelope, routing string) (Result, error) {
	o := p.ApplyBatch(ctx, []Item{{Envelope: env, Routing: routing, Replay: true}})[0]
	return o.Result, o.Err
}

// Item is one event for ApplyBatch.
type Item struct {
	Envelope *hookdv1.Envelope
	Routing  string
	Replay   bool // see Replay
	// Objects, when not nil, are the envelope's payload decoded already
	// (stripe.Decode, see Decoded): ApplyBatch takes them instead of
	// decoding the payload. They must be what DecodeEvent would decode;
	// nil (the zero value) decodes.
	Objects *stripe.Objects
}

// event returns the item's Event: DecodeEvent's, or the same built from
// the objects it carries.
func (it *Item) event() (Event, error) {
	if it.Objects == nil {
		return DecodeEvent(it.Envelope)
	}
	return eventWith(it.Envelope, *it.Objects), nil
}

// Answer is what ApplyBatch did with one Item, as Apply would answer it.
type Answer struct {
	Result Result
	Err    error
}

// ApplyBatch applies events in order and commits them in one store call:
// each event's write is fenced on the version the write before it
// produces and chained to it (store.Write.AfterPrevious), so the events
// take effect exactly as if applied one by one, at the cost of one
// commit. The outcome of each item is what Apply would have answered.
//
// When a write does not succeed (a duplicate, a fence conflict, a store
// error), the writes after it were skipped by the store; they are planned
// again against the state that did commit and sent again, until each item
// has its outcome. Every round settles at least one item or counts a
// fence conflict, of which there are at most maxFenceRetries.
func (p *Processor) ApplyBatch(ctx context.Context, items []Item) []Answer {
	out := make([]Answer, len(items))
	todo := make([]int, len(items))
	for i := range todo {
		todo[i] = i
	}
	notify := false
	for fences := 0; len(todo) > 0; {
		if err := p.load(ctx); err != nil {
			for _, i := range todo {
				out[i].Err = err
			}
			break
		}
		// Plan every pending item against the state the ones before it
		// would produce.
		type planned struct {
			item int
			next State
			res  Result
		}
		var (
			writes []store.Write
			plans  []planned
			copies = map[int]int{} // an item repeating an earlier one's event → that item
			first  = map[string]int{}
			// payloads of this round's events, for ordering later ones
			// of the same second against them before they are stored
			payloads = map[string][]byte{}
			state    = p.state
			rev      = p.revision
		)
		for _, i := range todo {
			it := items[i]
			id := it.Envelope.GetEventId()
			if !it.Replay && p.seen(id) {
				out[i].Result = p.received(ctx, it.Envelope)
				continue
			}
			if j, ok := first[id]; ok && !it.Replay {
				copies[i] = j
				continue
			}
			first[id] = i
			ev, decodeErr := it.event()
			if decodeErr == nil {
				p.prepareOrder(ctx, state, &ev, it.Envelope, payloads)
			}
			payloads[id] = it.Envelope.GetPayload()
			w, next, res := p.plan(state, rev, it.Envelope, it.Routing, ev, decodeErr)
			w.Replace = it.Replay
			w.AfterPrevious = len(writes) > 0
			writes = append(writes, w)
			plans = append(plans, planned{i, next, res})
			if w.State != nil {
				state, rev = next, rev+1
			}
		}
		var errs []error
		if len(writes) > 0 {
			errs = p.store.Commit(ctx, writes)
		}
		var retry []int
		fenced := false
		for k, pl := range plans {
			w, err := writes[k], errs[k]
			switch {
			case err == nil:
				if w.State != nil {
					p.state, p.revision = pl.next, p.revision+1
				}
				p.remember(w.Event.EventID)
				notify = notify || len(w.Notifications) > 0
				pl.res.Version = p.state.Version
				out[pl.item].Result = pl.res
			case errors.Is(err, store.ErrDuplicate) && items[pl.item].Replay:
				// A replay of an event that took effect changes nothing.
				out[pl.item].Result = Result{Status: store.StatusDuplicate, Version: p.state.Version, Reason: "event already received"}
			case errors.Is(err, store.ErrDuplicate):
				out[pl.item].Result = p.received(ctx, items[pl.item].Envelope)
			case errors.Is(err, store.ErrSkipped):
				retry = append(retry, pl.item)
			case errors.Is(err, store.ErrFenced) && fences < maxFenceRetries:
				p.log.InfoContext(ctx, "customer changed by another activation; reloading",
					"customer_id", p.id, "read_version", w.ReadVersion)
				p.loaded, fenced = false, true
				retry = append(retry, pl.item)
			default:
				p.loaded = false
				out[pl.item].Err = fmt.Errorf("commit event %s for customer %s: %w", w.Event.EventID, p.id, err)
			}
		}
		// A repeated event shares the fate of its first copy, unless that
		// one is to be sent again (then so is the copy, and it will be
		// seen as the repeat it is).
		for i, j := range copies {
			switch {
			case slices.Contains(retry, j):
				retry = append(retry, i)
			case out[j].Err != nil:
				out[i].Err = out[j].Err
			default:
				out[i].Result = out[j].Result
				out[i].Result.Reason = alreadyReceived(out[j].Result.Reason)
			}
		}
		if fenced {
			fences++
		}
		slices.Sort(retry) // keep arrival order
		todo = retry
	}
	if notify && p.committed != nil {
		p.committed(p.id)
	}
	return out
}

// received answers a delivery of an event whose (source, ID) or change is
// already stored: with the status the stored event has, so that a retry of
// a request that was applied (a sender that timed out waiting) is answered
// applied with its version, not duplicate. A twin (another event ID for
// the same change) is stored as duplicate and so answered; an event that
// cannot be read back is answered duplicate too: it is stored, and
// retrying changes nothing.
func (p *Processor) received(ctx context.Context, env *hookdv1.Envelope) Result {
	res := Result{Status: store.StatusDuplicate, Version: p.state.Version, Reason: "event already received"}
	e, err := p.store.GetEvent(ctx, env.GetSource(), env.GetEventId())
	if err != nil || e.Status == "" {
		return res
	}
	res.Status, res.Reason = e.Status, alreadyReceived(e.Reason)
	if e.Status == store.StatusApplied && e.Version > 0 {
		res.Version = e.Version
	}
	return res
}

// alreadyReceived is the reason of an answer to a repeated delivery: the
// stored event's reason, marked.
func alreadyReceived(reason string) string {
	if reason == "" {
		return "already received"
	}
	return "already received; " + reason
}

// prepareOrder gives ev what Apply needs to order it against the events
// applied on its object in the same created second (State.PeersOf): its
// own data block and theirs, from this round's payloads or else the store;
// and, when their data does not decide the order and an ObjectFetcher is
// set, the object as the provider has it now. A peer or an object that
// cannot be read leaves the order to arrival, and the event's reason says
// so.
func (p *Processor) prepareOrder(ctx context.Context, state State, ev *Event, env *hookdv1.Envelope, payloads map[string][]byte) {
	ids := state.PeersOf(*ev)
	if len(ids) == 0 {
		return
	}
	ev.Data = stripe.Data(env.GetPayload())
	ev.Peers = make(map[string]json.RawMessage, len(ids))
	for _, id := range ids {
		payload, ok := payloads[id]
		if !ok {
			e, err := p.store.GetEvent(ctx, env.GetSource(), id)
			if err != nil {
				p.log.WarnContext(ctx, "cannot read an event of the same second to order by",
					"customer_id", p.id, "event_id", ev.ID, "peer_event_id", id, "err", err)
				continue
			}
			payload = e.Payload
		}
		if d := stripe.Data(payload); d != nil {
			ev.Peers[id] = d
		}
	}
	if p.objects == nil || !state.OrderUndecided(*ev) {
		return
	}
	objs, err := p.objects.FetchObject(ctx, ev.ObjectType, ev.ObjectID, env.GetAccount())
	switch {
	case err != nil:
		p.log.WarnContext(ctx, "cannot fetch an object to order events of one second by; applying in arrival order",
			"customer_id", p.id, "event_id", ev.ID, "object_id", ev.ObjectID, "err", err)
		return
	case objs.Subscription != nil && objs.Subscription.Customer != "" && string(objs.Subscription.Customer) != p.id:
		p.log.WarnContext(ctx, "fetched subscription belongs to another customer; applying the event in arrival order",
			"customer_id", p.id, "event_id", ev.ID, "object_id", ev.ObjectID, "fetched_customer_id", objs.Subscription.Customer)
		return
	}
	switch {
	case ev.Customer != nil && objs.Customer != nil:
		ev.Customer = objs.Customer
	case ev.Subscription != nil && objs.Subscription != nil:
		ev.Subscription = objs.Subscription
	case ev.Invoice != nil && objs.Invoice != nil:
		ev.Invoice = objs.Invoice
	default:
		return
	}
	ev.Fetched = true
}

// Resolve releases the events parked since before deadline: it fetches
// each missing subscription with fetch (when not nil), else synthesizes
// it, and applies the parked events after it, in one transaction. It
// returns how many events it released.
func (p *Processor) Resolve(ctx context.Context, deadline, now time.Time, fetch SubscriptionFetcher) (int, error) {
	if err := p.load(ctx); err != nil {
		return 0, err
	}
	fetched := map[string]*stripe.Subscription{}
	// rejected holds, per subscription, why the object fetched for it
	// was not applied; it is synthesized instead, as when none was fetched.
	rejected := map[string]string{}
	for _, pk := range p.state.Parked {
		if pk.Since > deadline.Unix() || fetch == nil {
			continue
		}
		if _, done := fetched[pk.WaitingFor]; done {
			continue
		}
		// A connected account's objects are fetched on its behalf
		// (Stripe-Account); the platform's with "".
		obj, err := fetch.FetchSubscription(ctx, pk.WaitingFor, cmp.Or(pk.Event.Account, p.state.Account))
		switch {
		case errors.Is(err, stripe.ErrNotFound):
			fetched[pk.WaitingFor] = nil
		case err != nil:
			// The provider is unreachable: try again at the next sweep.
			return 0, fmt.Errorf("fetch subscription %s: %w", pk.WaitingFor, err)
		case obj != nil && obj.Customer != "" && string(obj.Customer) != p.id:
			// Never apply another customer's object (a wrong account, a
			// reused ID). One that names no customer is taken as this one's.
			fetched[pk.WaitingFor] = nil
			rejected[pk.WaitingFor] = fmt.Sprintf("fetched subscription %s belongs to customer %s, not %s: not applied",
				pk.WaitingFor, obj.Customer, p.id)
		default:
			fetched[pk.WaitingFor] = obj
		}
	}
	released := 0
	_, err := p.commit(ctx, "", func() (store.Write, State, Result) {
		next, changes, reasons := Resolve(p.state, deadline.Unix(), now.Unix(), fetched)
		if len(changes) == 0 {
			return store.Write{}, p.state, Result{}
		}
		for _, pk := range p.state.Parked {
			if why, ok := rejected[pk.WaitingFor]; ok && reasons[pk.Event.ID] != "" && reasons[pk.Event.ID] != "superseded" {
				reasons[pk.Event.ID] = why + "; " + reasons[pk.Event.ID]
			}
		}
		released = len(reasons)
		first := changes[0]
		w := store.Write{
			ReadVersion: p.revision,
			// An audit row for the resolution, named after the first event
			// it released.
			Event: store.Event{
				Source: "hookd", EventID: "resolve_" + first.EventID + "_v" + strconv.FormatInt(first.Version, 10),
				Type: "hookd.parked.resolved", CustomerID: p.id, Status: store.StatusApplied,
				Reason: reasons[first.EventID], Routing: "parked", Created: now.UTC(), Version: first.Version,
				Payload: []byte("{}"),
			},
		}
		if err := p.fill(&w, next, changes); err != nil {
			return store.Write{}, p.state, Result{}
		}
		for id, why := range reasons {
			// versionOf is 0 for an event dropped as stale: settled superseded.
			w.Released = append(w.Released, store.Release{Source: p.parkedSource(id), EventID: id, Version: versionOf(changes, id), Reason: why})
		}
		return w, next, Result{Status: store.StatusApplied, Version: next.Version}
	})
	return released, err
}

// commit plans a write against the loaded state and commits it, reloading
// and planning again when another activation committed first. A plan that
// returns a write with no event has nothing to do.
func (p *Processor) commit(ctx context.Context, eventID string, plan func() (store.Write, State, Result)) (Result, error) {
	for attempt := 0; ; attempt++ {
		if err := p.load(ctx); err != nil {
			return Result{}, err
		}
		w, next, res := plan()
		if w.Event.EventID == "" {
			return res, nil
		}
		err := p.store.Commit(ctx, []store.Write{w})[0]
		switch {
		case err == nil:
			if w.State != nil {
				p.state, p.revision = next, p.revision+1
			}
			if eventID != "" {
				p.remember(eventID)
			}
			if p.committed != nil && len(w.Notifications) > 0 {
				p.committed(p.id)
			}
			res.Version = p.state.Version
			return res, nil
		case errors.Is(err, store.ErrDuplicate):
			return Result{Status: store.StatusDuplicate, Version: p.state.Version, Reason: "event already received"}, nil
		case errors.Is(err, store.ErrFenced) && attempt < maxFenceRetries:
			p.log.InfoContext(ctx, "customer changed by another activation; reloading",
				"customer_id", p.id, "read_version", p.revision)
			p.loaded = false
		default:
			p.loaded = false
			return Result{}, fmt.Errorf("commit event %s for customer %s: %w", w.Event.EventID, p.id, err)
		}
	}
}

// plan reduces the event against the loaded state and builds the write.
func (p *Processor) plan(state State, revision int64, env *hookdv1.Envelope, routing string, ev Event, decodeErr error) (store.Write, State, Result) {
	rec := store.Event{
		Source:     env.GetSource(),
		EventID:    env.GetEventId(),
		Type:       env.GetType(),
		CustomerID: p.id,
		Routing:    routing,
		Created:    unix(env.GetCreated()),
		APIVersion: env.GetApiVersion(),
		ObjectID:   env.GetObjectId(),
		Account:    env.GetAccount(),
		Payload:    env.GetPayload(),
	}
	if env.GetThin() {
		// No snapshot to apply, and no route to learn: it was routed by
		// its related object, which is the customer or already mapped.
		rec.Status, rec.Reason = store.StatusIgnored, stripe.ThinReason(env, ThinRoutedReason)
		return store.Write{ReadVersion: revision, Event: rec}, state, Result{Status: rec.Status, Reason: rec.Reason}
	}
	w := store.Write{ReadVersion: revision, Routes: routes(state, env)}
	if decodeErr != nil {
		rec.Status, rec.Reason = store.StatusIgnored, "malformed "+env.GetObjectType()+" object: "+decodeErr.Error()
		w.Event = rec
		return w, state, Result{Status: rec.Status, Reason: rec.Reason}
	}
	next, eff := Apply(state, ev, p.now().Unix())
	next.CustomerID = p.id
	rec.Reason = withNotes(eff.Reason, ev.Notes) // and what decoding the payload decided or missed
	switch eff.Outcome {
	case Ignored:
		rec.Status = store.StatusIgnored
	case Superseded:
		rec.Status = store.StatusSuperseded
		rec.DedupKey = dedupKey(env)
	case Parked:
		rec.Status = store.StatusParked
		rec.DedupKey = dedupKey(env)
		if err := p.fill(&w, next, nil); err != nil {
			rec.Status, rec.Reason = store.StatusIgnored, err.Error()
		}
	case Applied:
		rec.Status = store.StatusApplied
		rec.DedupKey = dedupKey(env)
		rec.Version = eff.Changes[0].Version
		if err := p.fill(&w, next, eff.Changes); err != nil {
			rec.Status, rec.Reason, rec.Version = store.StatusIgnored, err.Error(), 0
			break
		}
		for _, c := range eff.Released() {
			w.Released = append(w.Released, store.Release{Source: p.parkedSource(c.EventID), EventID: c.EventID, Version: c.Version,
				Reason: withNotes("released by "+env.GetEventId(), parkedNotes(state, c.EventID))})
		}
		for _, id := range eff.Stale {
			w.Released = append(w.Released, store.Release{Source: p.parkedSource(id), EventID: id,
				Reason: "superseded while parked: " + env.GetEventId() + " applied a newer change to its object"})
		}
	}
	w.Event = rec
	return w, next, Result{Status: rec.Status, Reason: rec.Reason}
}

// withNotes appends notes to a reason, "; "-separated.
func withNotes(reason string, notes []string) string {
	for _, note := range notes {
		if reason != "" {
			reason += "; "
		}
		reason += note
	}
	return reason
}

// parkedNotes returns the decoding notes of a parked event in st.
func parkedNotes(st State, eventID string) []string {
	for _, pk := range st.Parked {
		if pk.Event.ID == eventID {
			return pk.Event.Notes
		}
	}
	return nil
}

// fill sets the write's state and the notifications of its changes.
func (p *Processor) fill(w *store.Write, next State, changes []Change) error {
	state, err := encodeState(next)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	w.State = state
	// The snapshots of all changes share one allocation of their total
	// length; each is its own slice of it, with its length as capacity,
	// so that an append to one never writes into the next.
	size, notes := 0, 0
	for _, c := range changes {
		size += customerProtoSize(c.State)
		notes += len(c.Kinds)
	}
	buf := make([]byte, 0, size)
	w.Notifications = slices.Grow(w.Notifications, notes)
	for _, c := range changes {
		start := len(buf)
		if buf, err = appendCustomerProto(buf, c.State); err != nil {
			return fmt.Errorf("encode customer: %w", err)
		}
		snapshot := buf[start:len(buf):len(buf)]
		for _, kind := range c.Kinds {
			w.Notifications = append(w.Notifications, store.Notification{
				CustomerID: p.id,
				Version:    c.Version,
				Kind:       kind,
				EventID:    c.EventID,
				OccurredAt: unix(c.Created),
				Customer:   snapshot,
			})
		}
	}
	return nil
}

// parkedSource returns the source of a parked event (all parked events
// come from providers; hookd has one so far).
func (p *Processor) parkedSource(string) string { return stripe.Source }

// versionOf returns the newest version a change for eventID produced.
func versionOf(changes []Change, eventID string) int64 {
	var v int64
	for _, c := range changes {
		if c.EventID == eventID {
			v = max(v, c.Version)
		}
	}
	return v
}

// Load reads the customer's state from the store, if not already held.
// Apply loads by itself; Load lets an activation warm up early.
func (p *Processor) Load(ctx context.Context) error { return p.load(ctx) }

func (p *Processor) load(ctx context.Context) error {
	if p.loaded {
		return nil
	}
	c, err := p.store.GetCustomer(ctx, p.id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.state, p.revision = State{CustomerID: p.id}, 0
	case err != nil:
		return fmt.Errorf("load customer %s: %w", p.id, err)
	default:
		var st State
		if err := json.Unmarshal(c.State, &st); err != nil {
			return fmt.Errorf("decode customer %s state: %w", p.id, err)
		}
		p.state, p.revision = st, c.Version
	}
	p.loaded = true
	return nil
}

func (p *Processor) remember(eventID string) {
	p.recent[p.recentNext] = eventID
	p.recentNext = (p.recentNext + 1) % recentSize
}

func (p *Processor) seen(eventID string) bool {
	return eventID != "" && slices.Contains(p.recent[:], eventID)
}

// dedupKey identifies the change an event describes, so that two provider
// Event objects for one change take effect once (DESIGN.md invariant 2):
// its type, object, created second and the hash of its content
// (stripe.ChangeHash). Two different changes to one object in the same
// second differ in content, so neither is taken for the other's twin.
//
// Releases up to ed4cdf9 keyed on (source, type, object, created) alone and
// dropped such changes; their stored keys have four fields and never equal
// a key of five, so they stay as history without blocking anything.
func dedupKey(env *hookdv1.Envelope) string {
	if env.GetObjectId() == "" {
		return ""
	}
	hash := stripe.ChangeHash(env.GetPayload())
	if hash == "" {
		return ""
	}
	return env.GetSource() + "|" + env.GetType() + "|" + env.GetObjectId() + "|" + strconv.FormatInt(env.GetCreated(), 10) + "|" + hash
}

// routes lists the object IDs an event teaches hookd to route by, but
// those st has already learnt: an object with a mark naming events was
// the object of an event applied here, whose write recorded its route in
// the transaction that applied it (object_routes keeps the first mapping,
// so writing it again changed nothing, and cost PostgreSQL an index probe
// for most invoice and subscription events).
func routes(st State, env *hookdv1.Envelope) []string {
	var ids []string
	add := func(id string) {
		if m, ok := st.Marks.get(id); !ok || len(m.IDs) == 0 {
			ids = append(ids, id)
		}
	}
	if id := env.GetObjectId(); id != "" && env.GetObjectType() != "customer" {
		add(id)
	}
	for _, id := range env.GetRelatedObjectIds() {
		add(id)
	}
	return ids
}

func unix(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
