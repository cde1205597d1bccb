package stripe

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// ThinObject is the "object" of a thin event notification: Stripe's v2
// event, which names the object it is about (related_object) but carries
// no snapshot of it (no data.object) and no API version.
const ThinObject = "v2.core.event"

// UntypedThinType is the Envelope type of a thin event that came without
// a "type" (Stripe's SDK tests show such notifications). hookd stores it
// under this placeholder, and the event's reason says so.
const UntypedThinType = "v2.core.event.untyped"

// RoutingRelatedObject: a thin event whose related_object is the customer
// itself (related_object.type "customer" or "v1.customer").
const RoutingRelatedObject = "related_object"

// thinEvent is the part of a thin event that hookd reads. Everything else
// (reason, related_object.url, an unexpected data block) stays in the raw
// payload.
type thinEvent struct {
	ID            string          `json:"id"`
	Type          *string         `json:"type"` // absent or null: UntypedThinType
	Created       json.RawMessage `json:"created"`
	Livemode      bool            `json:"livemode"`
	Context       *string         `json:"context"` // the Connect account; null or absent for the platform
	RelatedObject *struct {
		ID            string  `json:"id"`
		Type          string  `json:"type"`
		StripeContext *string `json:"stripe_context"`
	} `json:"related_object"`
}

// decodeThin decodes a thin event notification (object "v2.core.event")
// into an Envelope with Thin set. Its object_id and object_type are the
// related object's (empty when it has none). A related object of type
// "customer" (or "v1.customer") routes the event to that customer (routing
// "related_object"); any other related object's id goes into
// related_object_ids, for routing by an earlier event's mapping. The
// Connect account is the event's context, else the related object's
// stripe_context. Errors wrap ErrMalformed.
func decodeThin(raw []byte) (*hookdv1.Envelope, error) {
	var ev thinEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("%w: thin event: %s", ErrMalformed, describeJSONError(err))
	}
	if ev.ID == "" {
		return nil, fmt.Errorf("%w: thin event: missing id", ErrMalformed)
	}
	created, err := thinCreated(ev.Created)
	if err != nil {
		return nil, err
	}
	env := &hookdv1.Envelope{
		Source:   Source,
		EventId:  ev.ID,
		Type:     UntypedThinType,
		Created:  created,
		Livemode: ev.Livemode,
		Payload:  raw,
		Thin:     true,
	}
	if ev.Type != nil && *ev.Type != "" {
		env.Type = *ev.Type
	}
	if ev.Context != nil {
		env.Account = *ev.Context
	}
	if ro := ev.RelatedObject; ro != nil && ro.ID != "" {
		env.ObjectId, env.ObjectType = ro.ID, ro.Type
		if env.Account == "" && ro.StripeContext != nil {
			env.Account = *ro.StripeContext
		}
		if IsCustomerType(ro.Type) {
			env.CustomerId, env.Routing = ro.ID, RoutingRelatedObject
		} else {
			env.RelatedObjectIds = []string{ro.ID}
		}
	}
	return env, nil
}

// IsCustomerType reports whether a thin event's related_object.type names
// a v1 Customer: Stripe names v1 objects without a prefix ("customer",
// "billing.meter") and v2 ones with theirs ("v2.core.account"); the "v1."
// prefix is accepted too.
func IsCustomerType(t string) bool {
	return strings.TrimPrefix(t, "v1.") == "customer"
}

// thinCreated parses a thin event's created: an RFC 3339 string (Stripe
// sends 3 or 9 fractional digits), or, leniently, Unix seconds as a v1
// event has them. Absent or null is 0, as for a v1 event.
func thinCreated(raw json.RawMessage) (int64, error) {
	switch firstNonSpace(raw) {
	case 0, 'n':
		return 0, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("%w: thin event: created: %s", ErrMalformed, describeJSONError(err))
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, fmt.Errorf("%w: thin event: created %q is not an RFC 3339 time", ErrMalformed, truncate(s))
		}
		return t.Unix(), nil
	default:
		var sec int64
		if err := json.Unmarshal(raw, &sec); err != nil {
			return 0, fmt.Errorf("%w: thin event: created must be an RFC 3339 string", ErrMalformed)
		}
		return sec, nil
	}
}

// ThinReason explains, for the event's record, what hookd did not do with
// a thin event and why: the start of the reason of every stored thin
// event, followed by what (if anything) was missing from it.
func ThinReason(env *hookdv1.Envelope, why string) string {
	r := "thin event: " + why
	if env.GetType() == UntypedThinType {
		r += "; it had no type and is stored as " + UntypedThinType
	}
	return r
}
