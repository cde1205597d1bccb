package customer

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
)

// stateBuffers holds buffers to encode states into, so that a state is
// not written into a buffer grown from nothing (nine allocations for a
// customer with eight invoices): it is encoded into one an earlier state
// grew, and copied out at its exact length.
var stateBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxStateBuffer bounds the buffers stateBuffers keeps: a state that big
// (many parked events) is rare, and its buffer not worth holding on to.
const maxStateBuffer = 64 << 10

// encodeState returns the state as stored: json.Marshal(st), byte for
// byte, in one allocation of its length.
//
// A state is encoded for every applied event, and encoding/json's
// reflection over it was 7.4% of hookd's CPU under load, so appendJSON
// writes it by hand. Every state stored so far was written by
// json.Marshal, and tests may compare stored bytes, so each field
// is written as encoding/json writes it: in declared order, left out as
// its omitempty says, map keys sorted by their bytes, nil pointers as
// null, strings through appendString. State has no MarshalJSON on
// purpose: json.Marshal(state) stays the reference the tests hold
// appendJSON to.
func encodeState(st State) ([]byte, error) {
	buf := stateBuffers.Get().(*[]byte)
	b, err := st.appendJSON((*buf)[:0])
	var out []byte
	if err == nil {
		out = bytes.Clone(b) // before another encoding can reuse b
		if cap(b) <= maxStateBuffer {
			*buf = b
		}
	}
	stateBuffers.Put(buf)
	return out, err
}

// appendJSON appends the state's JSON encoding, byte for byte
// json.Marshal(s).
func (s State) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"customer_id":`...)
	b = appendString(b, s.CustomerID)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, s.Version, 10)
	b = append(b, `,"known":`...)
	b = strconv.AppendBool(b, s.Known)
	if s.Email != "" {
		b = append(b, `,"email":`...)
		b = appendString(b, s.Email)
	}
	if s.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, s.Name)
	}
	if s.Deleted {
		b = append(b, `,"deleted":true`...)
	}
	if s.Livemode {
		b = append(b, `,"livemode":true`...)
	}
	var err error
	if len(s.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		if b, err = s.Metadata.appendJSON(b); err != nil {
			return nil, err
		}
	}
	if s.Account != "" {
		b = append(b, `,"account":`...)
		b = appendString(b, s.Account)
	}
	if len(s.Subscriptions) > 0 {
		b = append(b, `,"subscriptions":`...)
		b = appendSorted(b, s.Subscriptions, (*Subscription).appendJSON)
	}
	if len(s.Invoices) > 0 {
		b = append(b, `,"invoices":`...)
		b = appendSorted(b, s.Invoices, (*Invoice).appendJSON)
	}
	if len(s.Marks) > 0 {
		b = append(b, `,"marks":`...)
		if b, err = s.Marks.appendJSON(b); err != nil {
			return nil, err
		}
	}
	if s.UpdatedAt != 0 {
		b = append(b, `,"updated_at":`...)
		b = strconv.AppendInt(b, s.UpdatedAt, 10)
	}
	if len(s.Parked) > 0 {
		// Rare, short-lived, and holding whole provider objects: not
		// worth writing by hand.
		enc, err := json.Marshal(s.Parked)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"parked":`...)
		b = append(b, enc...)
	}
	return append(b, '}'), nil
}

// appendSorted appends m as encoding/json writes a map: keys sorted by
// their bytes, a nil value as null.
func appendSorted[V any](b []byte, m map[string]*V, value func(*V, []byte) []byte) []byte {
	// A customer has a few subscriptions and invoices: sort its entries
	// on the stack, with their values, not to look each up again.
	var buf [16]smallEntry[*V]
	entries := buf[:0]
	for k, v := range m {
		entries = append(entries, smallEntry[*V]{k, v})
	}
	slices.SortFunc(entries, compareEntries[*V])
	b = append(b, '{')
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, e.Key)
		b = append(b, ':')
		if e.Value != nil {
			b = value(e.Value, b)
		} else {
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}

func compareEntries[V any](a, b smallEntry[V]) int { return cmp.Compare(a.Key, b.Key) }

func (s *Subscription) appendJSON(b []byte) []byte {
	b = append(b, `{"status":`...)
	b = appendString(b, s.Status)
	if s.CancelAtPeriodEnd {
		b = append(b, `,"cancel_at_period_end":true`...)
	}
	if s.CurrentPeriodEnd != 0 {
		b = append(b, `,"current_period_end":`...)
		b = strconv.AppendInt(b, s.CurrentPeriodEnd, 10)
	}
	if len(s.PriceIDs) > 0 {
		b = append(b, `,"price_ids":`...)
		b = appendStrings(b, s.PriceIDs)
	}
	return append(b, '}')
}

func (in *Invoice) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if in.SubscriptionID != "" {
		b = append(b, `"subscription_id":`...)
		b = appendString(b, in.SubscriptionID)
		b = append(b, ',')
	}
	b = append(b, `"status":`...)
	b = appendString(b, in.Status)
	b = append(b, `,"amount_paid":`...)
	b = strconv.AppendInt(b, in.AmountPaid, 10)
	b = append(b, `,"amount_due":`...)
	b = strconv.AppendInt(b, in.AmountDue, 10)
	if in.Currency != "" {
		b = append(b, `,"currency":`...)
		b = appendString(b, in.Currency)
	}
	if in.PaymentFailures != 0 {
		b = append(b, `,"payment_failures":`...)
		b = strconv.AppendInt(b, int64(in.PaymentFailures), 10)
	}
	return append(b, '}')
}

func (m Mark) appendJSON(b []byte) []byte {
	b = append(b, `{"c":`...)
	b = strconv.AppendInt(b, m.Created, 10)
	b = append(b, `,"r":`...)
	b = strconv.AppendInt(b, int64(m.Rank), 10)
	if len(m.IDs) > 0 {
		b = append(b, `,"i":`...)
		b = appendStrings(b, m.IDs)
	}
	return append(b, '}')
}

// appendStrings appends a JSON array of strings.
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}
