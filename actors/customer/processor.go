package customer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// maxFenceRetries bounds how often Apply reloads and retries after another
// activation of the same customer committed first.
const maxFenceRetries = 5

// recentSize bounds the in-memory set of event IDs this activation
// committed; it only saves a database round trip for repeated deliveries.
const recentSize = 256

// Result is what Apply did with one event.
type Result struct {
	Status  store.Status
	Version int64 // the customer's version after the event
	Reason  string
}

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

	loaded  bool
	state   State
	version int64

	recent    map[string]struct{}
	recentLog []string
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
		recent:    make(map[string]struct{}, recentSize),
	}
}

// Version returns the version of the state this Processor holds (0 if not
// loaded or new).
func (p *Processor) Version() int64 { return p.version }

// Apply makes one event durable and applies it. On a nil error the event is
// committed (or was already); on an error nothing of it took effect and the
// in-memory state is dropped, to be reloaded from the store next time.
func (p *Processor) Apply(ctx context.Context, env *hookdv1.Envelope, routing string) (Result, error) {
	if _, ok := p.recent[env.GetEventId()]; ok && p.loaded {
		return Result{Status: store.StatusDuplicate, Version: p.version, Reason: "event already applied"}, nil
	}
	ev, decodeErr := DecodeEvent(env)
	for attempt := 0; ; attempt++ {
		if err := p.load(ctx); err != nil {
			return Result{}, err
		}
		w, next, res := p.plan(env, routing, ev, decodeErr)
		err := p.store.Commit(ctx, []store.Write{w})[0]
		switch {
		case err == nil:
			if w.State != nil {
				p.state, p.version = next, p.version+1
			}
			p.remember(env.GetEventId())
			if p.committed != nil && len(w.Notifications) > 0 {
				p.committed(p.id)
			}
			res.Version = p.version
			return res, nil
		case errors.Is(err, store.ErrDuplicate):
			return Result{Status: store.StatusDuplicate, Version: p.version, Reason: "event already received"}, nil
		case errors.Is(err, store.ErrFenced) && attempt < maxFenceRetries:
			p.log.InfoContext(ctx, "customer changed by another activation; reloading",
				"customer_id", p.id, "read_version", p.version)
			p.loaded = false
		default:
			p.loaded = false
			return Result{}, fmt.Errorf("commit event %s for customer %s: %w", env.GetEventId(), p.id, err)
		}
	}
}

// plan reduces the event against the loaded state and builds the write.
func (p *Processor) plan(env *hookdv1.Envelope, routing string, ev Event, decodeErr error) (store.Write, State, Result) {
	rec := store.Event{
		Source:     env.GetSource(),
		EventID:    env.GetEventId(),
		Type:       env.GetType(),
		CustomerID: p.id,
		Routing:    routing,
		Created:    unix(env.GetCreated()),
		APIVersion: env.GetApiVersion(),
		ObjectID:   env.GetObjectId(),
		Payload:    env.GetPayload(),
	}
	w := store.Write{ReadVersion: p.version, Routes: routes(env)}
	if decodeErr != nil {
		rec.Status, rec.Reason = store.StatusIgnored, "malformed "+env.GetObjectType()+" object: "+decodeErr.Error()
		w.Event = rec
		return w, p.state, Result{Status: rec.Status, Reason: rec.Reason}
	}
	next, notes, outcome, reason := Reduce(p.state, ev)
	switch outcome {
	case Ignored:
		rec.Status, rec.Reason = store.StatusIgnored, reason
	case Superseded:
		rec.Status, rec.Reason = store.StatusSuperseded, reason
		rec.DedupKey = dedupKey(env)
	case Applied:
		rec.Status = store.StatusApplied
		rec.DedupKey = dedupKey(env)
		rec.Version = p.version + 1
		next.CustomerID = p.id
		state, err := json.Marshal(next)
		if err != nil { // cannot happen for State; keep the event visible
			rec.Status, rec.Reason = store.StatusIgnored, "encode state: "+err.Error()
			break
		}
		snapshot, err := proto.Marshal(next.Proto(p.version + 1))
		if err != nil {
			rec.Status, rec.Reason = store.StatusIgnored, "encode customer: "+err.Error()
			break
		}
		w.State = state
		for _, n := range notes {
			w.Notifications = append(w.Notifications, store.Notification{
				CustomerID: p.id,
				Version:    p.version + 1,
				Kind:       n.Kind,
				EventID:    env.GetEventId(),
				OccurredAt: unix(env.GetCreated()),
				Customer:   snapshot,
			})
		}
	}
	w.Event = rec
	return w, next, Result{Status: rec.Status, Reason: rec.Reason}
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
		p.state, p.version = State{CustomerID: p.id}, 0
	case err != nil:
		return fmt.Errorf("load customer %s: %w", p.id, err)
	default:
		var st State
		if err := json.Unmarshal(c.State, &st); err != nil {
			return fmt.Errorf("decode customer %s state: %w", p.id, err)
		}
		p.state, p.version = st, c.Version
	}
	p.loaded = true
	return nil
}

func (p *Processor) remember(eventID string) {
	if len(p.recentLog) >= recentSize {
		delete(p.recent, p.recentLog[0])
		p.recentLog = p.recentLog[1:]
	}
	p.recent[eventID] = struct{}{}
	p.recentLog = append(p.recentLog, eventID)
}

// dedupKey identifies the change an event describes, so that two provider
// Event objects for one change (same type, object and created) take effect
// once (DESIGN.md invariant 2).
func dedupKey(env *hookdv1.Envelope) string {
	if env.GetObjectId() == "" {
		return ""
	}
	return env.GetSource() + "|" + env.GetType() + "|" + env.GetObjectId() + "|" + strconv.FormatInt(env.GetCreated(), 10)
}

// routes lists the object IDs an event teaches hookd to route by.
func routes(env *hookdv1.Envelope) []string {
	var ids []string
	if id := env.GetObjectId(); id != "" && env.GetObjectType() != "customer" {
		ids = append(ids, id)
	}
	return append(ids, env.GetRelatedObjectIds()...)
}

func unix(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
