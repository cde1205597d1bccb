package customer

import (
	"bytes"
	"sync"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
)

// Decoded holds the objects of events on their way to this process's
// grains that were decoded already (by the gateway, stripe.Decode), so
// that a grain need not decode the payload again: the actor system adds an
// event's objects before it sends the event and removes them once it is
// answered (Add), and the grain looks each event it applies up (Lookup).
//
// A grain of this process usually gets the very envelope the system sent
// (LocalApply), but not always: a customer's first event, which activates
// its grain, goes through the generated client, which marshals the request
// and hands the grain a copy. So events are found by ID and taken only
// when the envelope has the payload and object type the objects were
// decoded from: the objects are then exactly what DecodeEvent would decode
// from it, whichever request they came with.
// An event not found (from another member, a replay, the gRPC
// IngestService, one whose object failed to decode) is decoded as before.
//
// The zero value is empty and ready; a nil *Decoded finds nothing. It is
// safe for concurrent use. The objects must not be modified once added.
type Decoded struct {
	mu      sync.Mutex              // guards byEvent
	byEvent map[string]*decodedItem // by event ID; a list, for deliveries of one event in flight at once
}

// decodedItem is one event's objects, as Add was given them.
type decodedItem struct {
	source, objectType string
	payload            []byte
	objs               stripe.Objects
	next               *decodedItem
}

// Add makes objs, decoded from env (stripe.Decode, without an object
// error), available to Lookup until remove is called; remove must be
// called exactly once. A thin env is not added: its grain decodes
// nothing.
func (d *Decoded) Add(env *hookdv1.Envelope, objs stripe.Objects) (remove func()) {
	if env.GetThin() {
		return func() {}
	}
	it := &decodedItem{source: env.GetSource(), objectType: env.GetObjectType(), payload: env.GetPayload(), objs: objs}
	id := env.GetEventId()
	d.mu.Lock()
	if d.byEvent == nil {
		d.byEvent = map[string]*decodedItem{}
	}
	it.next = d.byEvent[id]
	d.byEvent[id] = it
	d.mu.Unlock()
	return func() { d.remove(id, it) }
}

// remove unlinks it from the event's list.
func (d *Decoded) remove(id string, it *decodedItem) {
	d.mu.Lock()
	defer d.mu.Unlock()
	head := d.byEvent[id]
	if head == it {
		if it.next == nil {
			delete(d.byEvent, id)
		} else {
			d.byEvent[id] = it.next
		}
		return
	}
	for p := head; p != nil; p = p.next {
		if p.next == it {
			p.next = it.next
			return
		}
	}
}

// Lookup returns the objects added for an event with env's ID, source,
// object type and payload, if there are any; never for a thin env.
func (d *Decoded) Lookup(env *hookdv1.Envelope) (stripe.Objects, bool) {
	if d == nil || env.GetThin() {
		return stripe.Objects{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for it := d.byEvent[env.GetEventId()]; it != nil; it = it.next {
		if it.source == env.GetSource() && it.objectType == env.GetObjectType() && bytes.Equal(it.payload, env.GetPayload()) {
			return it.objs, true
		}
	}
	return stripe.Objects{}, false
}

// Len returns how many events' objects d holds (for tests: each Add is
// removed once its event is answered).
func (d *Decoded) Len() int {
	if d == nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, it := range d.byEvent {
		for ; it != nil; it = it.next {
			n++
		}
	}
	return n
}
