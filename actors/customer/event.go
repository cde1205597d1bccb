package customer

import (
	"encoding/json"
	"fmt"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
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
	// Account is the Connect account the event came from (empty for the
	// platform's own events). Omitted from JSON when empty, so parked
	// events stored by earlier releases decode unchanged.
	Account string `json:"account,omitempty"`

	Customer     *stripe.Customer     // for customer.* events on the customer object
	Subscription *stripe.Subscription // for customer.subscription.*
	Invoice      *stripe.Invoice      // for invoice.*

	// Notes say what decoding the payload had to decide or could not
	// find; they go into the event's reason, and into its reason when it is
	// released if it was parked.
	Notes []string `json:",omitempty"`
	// Data is the payload's raw data block (object and
	// previous_attributes), to order events of one second by. Peers holds
	// the data blocks of the events Apply orders it against (see
	// State.PeersOf), as the caller found them; one missing leaves that
	// order undecided. Fetched says the object was replaced by the object
	// as the provider has it now, because the data did not decide the
	// order. None of these three is kept with parked events.
	Data    json.RawMessage            `json:"-"`
	Peers   map[string]json.RawMessage `json:"-"`
	Fetched bool                       `json:"-"`
}

// DecodeEvent decodes the data.object of an envelope's payload into the
// fields the reducer needs. Only the object kinds the reducer projects are
// decoded; for other types, and for a thin event (which has no snapshot
// of its object), the returned Event has no object.
func DecodeEvent(env *hookdv1.Envelope) (Event, error) {
	ev := eventHead(env)
	if env.GetThin() {
		return ev, nil
	}
	objs, err := stripe.DecodeObject(ev.ObjectType, env.GetPayload())
	if err != nil {
		return ev, fmt.Errorf("event %s: %w", ev.ID, err)
	}
	ev.setObjects(objs)
	return ev, nil
}

// eventWith returns the Event DecodeEvent returns for env when its payload
// decodes to objs: stripe.Decode decoded them already (see Decoded).
func eventWith(env *hookdv1.Envelope, objs stripe.Objects) Event {
	ev := eventHead(env)
	if !env.GetThin() {
		ev.setObjects(objs)
	}
	return ev
}

// eventHead returns the Event of env without its object.
func eventHead(env *hookdv1.Envelope) Event {
	return Event{
		ID:         env.GetEventId(),
		Type:       env.GetType(),
		Created:    env.GetCreated(),
		ObjectID:   env.GetObjectId(),
		ObjectType: env.GetObjectType(),
		Livemode:   env.GetLivemode(),
		Account:    env.GetAccount(),
	}
}

// setObjects sets the event's object and the notes of its decoding.
func (ev *Event) setObjects(objs stripe.Objects) {
	ev.Customer, ev.Subscription, ev.Invoice, ev.Notes = objs.Customer, objs.Subscription, objs.Invoice, objs.Notes
}
