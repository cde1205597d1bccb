package stripe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// Source is the Envelope source for Stripe events.
const Source = "stripe"

// Routing values for Envelope.routing, saying how customer_id was found.
const (
	// RoutingObjectID: the event's object is the customer itself
	// (customer.created, customer.updated, customer.deleted).
	RoutingObjectID = "object.id"
	// RoutingObjectCustomer: the event's object names its customer in
	// data.object.customer (subscriptions, invoices, charges, ...).
	RoutingObjectCustomer = "object.customer"
	// RoutingObjectCustomerAccount: the event's object names no customer
	// (data.object.customer null or absent, allowed from 2025-12-15.clover
	// on) but an Accounts v2 account in data.object.customer_account
	// (acct_...): the event goes to that account's actor.
	RoutingObjectCustomerAccount = "object.customer_account"
)

// ErrMalformed is returned (wrapped, with the reason) by
// DecodeEnvelope when the body is not a Stripe Event: not JSON,
// truncated, not an object, missing id, type or data.object, an "object"
// other than "event" or "v2.core.event", or a field of the wrong JSON
// type. (A thin event needs only an id; see decodeThin.) Retrying cannot
// fix such a body.
var ErrMalformed = errors.New("malformed stripe event")

// stripeEvent is the part of a Stripe Event that hookd reads. Everything
// else stays in the raw payload. (Its fields are not an embedded struct
// shared with Decode's oneEvent: encoding/json would name the embedded
// struct in the field paths of its errors.)
type stripeEvent struct {
	ID         string  `json:"id"`
	Object     *string `json:"object"`
	Type       string  `json:"type"`
	Created    int64   `json:"created"`
	APIVersion string  `json:"api_version"` // JSON null leaves it empty
	Livemode   bool    `json:"livemode"`
	Account    string  `json:"account"`
	Data       struct {
		Object *stripeObject `json:"object"`
	} `json:"data"`
}

// fields returns the envelope's fields of the event.
func (ev *stripeEvent) fields() eventFields {
	return eventFields{ev.ID, ev.Object, ev.Type, ev.Created, ev.APIVersion, ev.Livemode, ev.Account}
}

// eventFields are the fields of a Stripe Event's envelope, however it was
// decoded (DecodeEnvelope, Decode).
type eventFields struct {
	ID         string
	Object     *string
	Type       string
	Created    int64
	APIVersion string
	Livemode   bool
	Account    string
}

// stripeObject is the part of data.object that hookd reads. The
// polymorphic references are each a string ID, an expanded object with an
// "id", or null; they are kept raw and resolved by refID.
type stripeObject struct {
	ID            string          `json:"id"`
	Object        string          `json:"object"`
	Customer      json.RawMessage `json:"customer"`
	CustomerAcct  json.RawMessage `json:"customer_account"` // from 2025-12-15.clover on
	Charge        json.RawMessage `json:"charge"`
	Invoice       json.RawMessage `json:"invoice"`
	PaymentIntent json.RawMessage `json:"payment_intent"`
	Subscription  json.RawMessage `json:"subscription"`
}

// DecodeEnvelope decodes the envelope fields of a Stripe Event and
// finds its routing key.
//
// customer_id and routing are set as follows: for an object of type
// "customer", customer_id is the object's own id (routing "object.id");
// otherwise, if data.object.customer is present (as an ID or an expanded
// object), it is that customer (routing "object.customer"); otherwise, if
// data.object.customer_account is (clover's Accounts v2 ID, acct_...), it
// is that account (routing "object.customer_account"); otherwise both
// are empty and later stages route the event by related_object_ids, which
// lists data.object's charge, invoice, payment_intent and subscription
// references, in that order, when present.
//
// A thin event notification ("object": "v2.core.event") is decoded by
// decodeThin instead: see there for its fields and routing.
//
// The API version is copied, never checked: any version, and null, is
// accepted. The returned envelope's payload aliases raw, so the caller must
// not modify raw afterwards. Errors wrap ErrMalformed. DecodeEnvelope
// never panics, whatever its input.
func DecodeEnvelope(raw []byte) (*hookdv1.Envelope, error) {
	if first := firstNonSpace(raw); first != '{' {
		if first == 0 {
			return nil, fmt.Errorf("%w: empty body", ErrMalformed)
		}
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var ev stripeEvent
	err := json.Unmarshal(raw, &ev)
	// A thin event's created is a string, which stripeEvent cannot take;
	// json.Unmarshal still fills the other fields, object included.
	if ev.Object != nil && *ev.Object == ThinObject {
		return decodeThin(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, describeJSONError(err))
	}
	f := ev.fields()
	if err := f.check(ev.Data.Object != nil); err != nil {
		return nil, err
	}
	obj := ev.Data.Object
	refs, err := obj.refs()
	if err != nil {
		return nil, err
	}
	return f.envelope(obj.ID, obj.Object, refs, raw), nil
}

// check says why a v1 event that decoded as JSON is not a Stripe Event,
// if it is not; hasObject is whether it has a data.object.
func (f *eventFields) check(hasObject bool) error {
	switch {
	case f.Object != nil && *f.Object != "event":
		return fmt.Errorf("%w: object is %q, not \"event\" or %q", ErrMalformed, truncate(*f.Object), ThinObject)
	case f.ID == "":
		return fmt.Errorf("%w: missing id", ErrMalformed)
	case f.Type == "":
		return fmt.Errorf("%w: missing type", ErrMalformed)
	case !hasObject:
		return fmt.Errorf("%w: missing data.object", ErrMalformed)
	}
	return nil
}

// objectRefs are the references of data.object that an envelope is
// routed by, resolved to IDs ("" when absent or null).
type objectRefs struct {
	customer, customerAccount                    string
	charge, invoice, paymentIntent, subscription string
}

// refs resolves the object's references, failing on the first malformed
// one in the order DecodeEnvelope documents.
func (o *stripeObject) refs() (objectRefs, error) {
	var r objectRefs
	for _, f := range [...]struct {
		name string
		raw  json.RawMessage
		id   *string
	}{
		{"customer", o.Customer, &r.customer},
		{"customer_account", o.CustomerAcct, &r.customerAccount},
		{"charge", o.Charge, &r.charge},
		{"invoice", o.Invoice, &r.invoice},
		{"payment_intent", o.PaymentIntent, &r.paymentIntent},
		{"subscription", o.Subscription, &r.subscription},
	} {
		id, err := refID(f.name, f.raw)
		if err != nil {
			return objectRefs{}, err
		}
		*f.id = id
	}
	return r, nil
}

// envelope builds the Envelope of a checked v1 event whose data.object
// has the given id, type and references, routed as DecodeEnvelope
// documents.
func (f *eventFields) envelope(objectID, objectType string, refs objectRefs, raw []byte) *hookdv1.Envelope {
	env := &hookdv1.Envelope{
		Source:     Source,
		EventId:    f.ID,
		Type:       f.Type,
		Created:    f.Created,
		ApiVersion: f.APIVersion,
		Livemode:   f.Livemode,
		Account:    f.Account,
		ObjectId:   objectID,
		ObjectType: objectType,
		Payload:    raw,
	}
	switch {
	case objectType == "customer" && objectID != "":
		env.CustomerId, env.Routing = objectID, RoutingObjectID
	case refs.customer != "":
		env.CustomerId, env.Routing = refs.customer, RoutingObjectCustomer
	case refs.customerAccount != "":
		env.CustomerId, env.Routing = refs.customerAccount, RoutingObjectCustomerAccount
	}
	for _, id := range [...]string{refs.charge, refs.invoice, refs.paymentIntent, refs.subscription} {
		if id != "" {
			env.RelatedObjectIds = append(env.RelatedObjectIds, id)
		}
	}
	return env
}

// refID resolves a Stripe reference field of data.object: a string ID, an
// expanded object whose "id" is the ID, or null/absent (""). Any other JSON
// type is malformed.
func refID(field string, raw json.RawMessage) (string, error) {
	switch firstNonSpace(raw) {
	case 0, 'n': // absent or null (json.Unmarshal already validated the JSON)
		return "", nil
	case '"':
		if id, ok := plainString(raw); ok {
			return id, nil
		}
		var id string
		if err := json.Unmarshal(raw, &id); err != nil {
			return "", fmt.Errorf("%w: data.object.%s: %s", ErrMalformed, field, describeJSONError(err))
		}
		return id, nil
	case '{':
		var expanded struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &expanded); err != nil {
			return "", fmt.Errorf("%w: data.object.%s.id: %s", ErrMalformed, field, describeJSONError(err))
		}
		return expanded.ID, nil
	default:
		return "", fmt.Errorf("%w: data.object.%s must be a string, an object or null", ErrMalformed, field)
	}
}

// firstNonSpace returns the first byte of b that is not JSON whitespace, or
// 0 if there is none.
func firstNonSpace(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// describeJSONError turns an encoding/json error into a message for the
// sender that names the JSON field, not hookd's Go types.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field != "" {
			return fmt.Sprintf("field %s: unexpected JSON %s", typeErr.Field, typeErr.Value)
		}
		return fmt.Sprintf("unexpected JSON %s", typeErr.Value)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Sprintf("invalid JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())
	}
	return "invalid JSON: " + err.Error()
}

// truncate shortens a sender-supplied string before it goes into an error
// message, so that a hostile body cannot inflate the response.
func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
