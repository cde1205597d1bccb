package stripe

import (
	"encoding/json"
	"strconv"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// Decode decodes a webhook body in one JSON pass where DecodeEnvelope and
// DecodeObject take one each: it returns what DecodeEnvelope(raw)
// returns, and what DecodeObject(env.GetObjectType(), raw) returns for a
// v1 event (a thin event has no object: objs is zero). The gateway
// decodes each webhook with it, so that the customer actor of the same
// process need not decode the payload again (see customer.Decoded).
//
// err is DecodeEnvelope's error: when it is set, env is nil and objs and
// objErr are zero. objErr is DecodeObject's: the event is still accepted,
// and its actor reports objErr when it applies the event, as when it
// decodes the object itself.
//
// The one pass decodes data.object into the fields of every object kind
// hookd projects at once (oneObject), since its kind is known only once
// it is decoded. Where that could differ from the two passes (a JSON
// error anywhere, even in a field the object's kind does not have; a
// data.object repeated after null; one without "object"), Decode decodes
// the two-pass way, so its results never differ; real Stripe events take
// the one pass. env's payload aliases raw, as with DecodeEnvelope.
func Decode(raw []byte) (env *hookdv1.Envelope, objs Objects, objErr, err error) {
	if env, objs, ok, err := decodeOnce(raw); ok {
		return env, objs, nil, err
	}
	return decodeTwice(raw)
}

// decodeOnce is Decode in one pass; ok is false when that pass cannot
// vouch for its results, which Decode then gets from decodeTwice. It has
// no object error: an object that fails to decode fails the pass.
func decodeOnce(raw []byte) (env *hookdv1.Envelope, objs Objects, ok bool, err error) {
	if firstNonSpace(raw) != '{' {
		return nil, Objects{}, false, nil // DecodeEnvelope's error, without decoding
	}
	var ev oneEvent
	ev.Data.Object = &ev.object
	// The scanner decodes what it can vouch for as encoding/json would;
	// anything else encoding/json decodes, from a fresh ev.
	if !ev.scan(raw) {
		ev = oneEvent{}
		ev.Data.Object = &ev.object
		if json.Unmarshal(raw, &ev) != nil {
			return nil, Objects{}, false, nil
		}
	}
	// Without a JSON error, Object is what DecodeEnvelope finds too.
	if ev.Object != nil && *ev.Object == ThinObject {
		env, err := decodeThin(raw)
		return env, Objects{}, true, err
	}
	if !ev.oneObject() {
		return nil, Objects{}, false, nil
	}
	f := eventFields{ev.ID, ev.Object, ev.Type, ev.Created.unix, ev.APIVersion, ev.Livemode, ev.Account}
	if err := f.check(true); err != nil {
		return nil, Objects{}, true, err
	}
	obj := &ev.object
	return f.envelope(obj.ID, obj.Object, obj.refs(), raw), obj.objects(), true, nil
}

// decodeTwice is Decode the two-pass way.
func decodeTwice(raw []byte) (*hookdv1.Envelope, Objects, error, error) {
	env, err := DecodeEnvelope(raw)
	if err != nil || env.GetThin() {
		return env, Objects{}, nil, err
	}
	objs, objErr := DecodeObject(env.GetObjectType(), raw)
	return env, objs, objErr, nil
}

// oneEvent is stripeEvent and DecodeObject's target at once: its fields
// are stripeEvent's, of the same types (so that they decode alike),
// except created (see eventCreated) and data.object. data.object is an
// interface holding a *oneObject, as DecodeObject holds its target, so
// that a repeated data.object decodes as there.
type oneEvent struct {
	ID         string       `json:"id"`
	Object     *string      `json:"object"`
	Type       string       `json:"type"`
	Created    eventCreated `json:"created"`
	APIVersion string       `json:"api_version"`
	Livemode   bool         `json:"livemode"`
	Account    string       `json:"account"`
	Data       struct {
		Object any `json:"object"`
	} `json:"data"`

	object oneObject // what Data.Object holds
}

// oneObject reports whether the one pass decoded data.object as both
// passes would: as the object it still holds (null would have replaced
// it), decoded at least once (it has an "object"; absent, stripeEvent's
// data.object would be nil), with a created that is an int64.
func (ev *oneEvent) oneObject() bool {
	o, ok := ev.Data.Object.(*oneObject)
	return ok && o == &ev.object && o.Object != "" && !ev.Created.bad
}

// eventCreated is a v1 event's created decoded as encoding/json decodes
// an int64 (null leaves it as it was), except that a value it would
// refuse (a thin event's RFC 3339 string) marks it bad instead of failing
// the decoding: so one pass still tells a thin event apart.
type eventCreated struct {
	unix int64
	bad  bool
}

// UnmarshalJSON implements json.Unmarshaler. It never fails.
func (c *eventCreated) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
		c.bad = true
	case b[0] == 'n':
	case b[0] == '-' || ('0' <= b[0] && b[0] <= '9'):
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			c.bad = true
			break
		}
		c.unix = n
	default:
		c.bad = true
	}
	return nil
}

// oneObject holds the fields of data.object that the envelope reads
// (stripeObject's) and those of each object kind hookd projects
// (Customer, wireSubscription, wireInvoice), each under its JSON name
// and of the Go type it has there, so that a key decodes into it as it
// does there. The references are IDs, as the objects have them: when
// they decode, they resolve as refID resolves them. No two fields' names
// fold to the same (encoding/json matches keys case-insensitively), and
// none is embedded, so each key lands where it lands in either pass.
type oneObject struct {
	ID            string `json:"id"`
	Object        string `json:"object"`
	Customer      ID     `json:"customer"`
	CustomerAcct  ID     `json:"customer_account"`
	Charge        ID     `json:"charge"`
	Invoice       ID     `json:"invoice"`
	PaymentIntent ID     `json:"payment_intent"`
	Subscription  ID     `json:"subscription"`

	// Customer's.
	Email    string            `json:"email"`
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata"`

	// wireSubscription's; Status is also the invoice's.
	Status            string `json:"status"`
	CancelAtPeriodEnd bool   `json:"cancel_at_period_end"`
	CurrentPeriodEnd  *int64 `json:"current_period_end"`
	Items             struct {
		Data []SubscriptionItem `json:"data"`
	} `json:"items"`

	// wireInvoice's.
	AmountPaid int64              `json:"amount_paid"`
	AmountDue  int64              `json:"amount_due"`
	Currency   string             `json:"currency"`
	Parent     *wireInvoiceParent `json:"parent"`
	Lines      wireInvoiceLines   `json:"lines"`
}

// refs returns the object's references as stripeObject.refs resolves
// them.
func (o *oneObject) refs() objectRefs {
	return objectRefs{
		customer: string(o.Customer), customerAccount: string(o.CustomerAcct),
		charge: string(o.Charge), invoice: string(o.Invoice),
		paymentIntent: string(o.PaymentIntent), subscription: string(o.Subscription),
	}
}

// objects returns what DecodeObject returns for the object's kind, built
// from the fields that kind has and normalized as there.
func (o *oneObject) objects() Objects {
	switch o.Object {
	case "customer":
		return Objects{Customer: &Customer{ID: o.ID, Email: o.Email, Name: o.Name, Metadata: o.Metadata}}
	case "subscription":
		w := &wireSubscription{
			Subscription: Subscription{
				ID: o.ID, Customer: o.Customer, Status: o.Status,
				CancelAtPeriodEnd: o.CancelAtPeriodEnd, Items: o.Items,
			},
			CurrentPeriodEnd: o.CurrentPeriodEnd,
			CustomerAccount:  o.CustomerAcct,
		}
		notes := w.normalize()
		return Objects{Subscription: &w.Subscription, Notes: notes}
	case "invoice":
		w := &wireInvoice{
			Invoice: Invoice{
				ID: o.ID, Subscription: o.Subscription, Status: o.Status,
				AmountPaid: o.AmountPaid, AmountDue: o.AmountDue, Currency: o.Currency,
			},
			Customer:        o.Customer,
			CustomerAccount: o.CustomerAcct,
			Parent:          o.Parent,
			Lines:           o.Lines,
		}
		notes := w.normalize()
		return Objects{Invoice: &w.Invoice, Notes: notes}
	}
	return Objects{}
}
