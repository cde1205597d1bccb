package delivery

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hookd/hookd/internal/pbwire"
	"github.com/hookd/hookd/store"
)

// payloadBuffers holds buffers to write bodies into, so that a body is
// not written into a buffer grown from nothing: it is written into one an
// earlier body grew, and copied out at its exact length.
var payloadBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPayloadBuffer bounds the buffers payloadBuffers keeps: a body that
// big is rare, and its buffer not worth holding on to.
const maxPayloadBuffer = 64 << 10

// payload is the body of a delivery: the notification as hookd.v1's
// Notification in JSON, as protojson writes it (lowerCamelCase names, as
// grpcurl prints them), in one allocation of its length. It is compact and
// the same bytes for the same notification on every attempt. Its error
// names the notification: the stored customer does not decode, or holds a
// value protojson refuses (a timestamp outside years 1 to 9999, a string
// that is not UTF-8).
func payload(n store.Notification) ([]byte, error) {
	buf := payloadBuffers.Get().(*[]byte)
	b, err := appendNotificationJSON((*buf)[:0], n)
	var out []byte
	if err == nil {
		out = bytes.Clone(b) // before another body can reuse b
	}
	if cap(b) <= maxPayloadBuffer {
		*buf = b[:0]
	}
	payloadBuffers.Put(buf)
	return out, err
}

// wireError is a stored customer that proto.Unmarshal rejects. The texts
// are proto.Unmarshal's, so that an attempt's error reads as before.
type wireError string

func (e wireError) Error() string { return string(e) }

var (
	errMalformed   error = wireError("proto: cannot parse invalid wire-format data")
	errInvalidUTF8 error = wireError("string field contains invalid UTF-8")
)

// The range of google.protobuf.Timestamp that protojson writes: years 1
// to 9999, nanos from 0 to 999,999,999.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
	maxTimestampNanos   = 999_999_999
)

// appendNotificationJSON appends n as hookd.v1.Notification in JSON, as
// protojson.Marshal writes outbox.Proto(n) with default options but
// without its random spaces: fields in number order and with their JSON
// names, proto3 zero values left out (occurredAt and customer, messages,
// always written), int64 values as strings, int32 as numbers, timestamps
// in RFC 3339 with 0, 3, 6 or 9 fractional digits, metadata keys sorted
// by their bytes, strings escaped as protojson escapes them.
//
// It reads the stored customer (n.Customer) in wire format as
// proto.Unmarshal reads it into hookd.v1.Customer: the last value of a
// field wins, a message field given twice is merged, a map key given
// twice keeps its last value, and unknown fields (from a newer writer),
// or known ones with another wire type, are skipped. It fails where
// proto.Unmarshal fails (bytes that do not parse, a string that is not
// UTF-8) and then where protojson.Marshal fails, and on failure returns b
// with what it wrote so far.
//
// A body is written for every delivery attempt, and building the message
// (proto.Unmarshal) for protojson to walk by reflection was, after the
// POST, the largest part of hookd's CPU per attempt: this reads the wire
// format and writes the JSON directly, allocating nothing when b has room
// (BenchmarkPayload: about a seventh of the time). The tests hold it to
// protojson, which stays the reference.
func appendNotificationJSON(b []byte, n store.Notification) ([]byte, error) {
	var entries [16]mapEntry
	c, err := scanCustomer(n.Customer, entries[:0])
	if err == nil {
		e := jsonEncoder{b: b}
		e.notification(n, &c)
		b, err = e.b, e.err
	}
	switch err.(type) {
	case nil:
		return b, nil
	case wireError:
		return b, fmt.Errorf("decode notification %s customer: %w", n.Cursor, err)
	default:
		return b, fmt.Errorf("encode notification %s: %w", n.Cursor, err)
	}
}

// jsonEncoder writes a notification into b. A subscription or invoice
// that does not decode ends the encoding with a wireError in err; a value
// protojson refuses (err holds the first) does not, so that a snapshot
// that does not decode is reported first, as before.
type jsonEncoder struct {
	b   []byte
	err error
}

// refuse records why protojson would not encode the notification, unless
// there is a reason already.
func (e *jsonEncoder) refuse(err error) {
	if e.err == nil {
		e.err = err
	}
}

// mapEntry is one metadata entry, pointing into the stored bytes.
type mapEntry struct {
	key, value []byte
}

// timestamp is a google.protobuf.Timestamp as read, set when the field
// was present (even empty).
type timestamp struct {
	seconds int64
	nanos   int32
	set     bool
}

// customerFields is a hookd.v1.Customer as read from the stored bytes:
// strings point into them, and the repeated messages are read again
// where they are written, from the first of each.
type customerFields struct {
	id, email, name, account []byte
	version                  int64
	deleted, livemode        bool
	updatedAt                timestamp
	// metadata holds the entries sorted by key, each key once.
	metadata []mapEntry
	// subscriptions and invoices are the offsets in the stored bytes of
	// the first subscription and the first invoice; -1 when none.
	subscriptions, invoices int
	// raw is the stored bytes.
	raw []byte
}

// scanCustomer reads the stored customer b, with its metadata entries
// appended to entries, and checks every field but the subscriptions and
// invoices, which jsonEncoder reads as it writes them.
func scanCustomer(b []byte, entries []mapEntry) (customerFields, error) {
	c := customerFields{subscriptions: -1, invoices: -1, raw: b, metadata: entries}
	sorted := true
	for i := 0; i < len(b); {
		at := i
		num, typ, n := consumeTag(b[i:])
		if n < 0 {
			return c, errMalformed
		}
		i += n
		var err error
		switch {
		case typ == protowire.BytesType && num <= pbwire.CustomerAccount:
			v, n := protowire.ConsumeBytes(b[i:])
			if n < 0 {
				return c, errMalformed
			}
			i += n
			switch num {
			case pbwire.CustomerCustomerID:
				c.id, err = validString(v)
			case pbwire.CustomerEmail:
				c.email, err = validString(v)
			case pbwire.CustomerName:
				c.name, err = validString(v)
			case pbwire.CustomerAccount:
				c.account, err = validString(v)
			case pbwire.CustomerMetadata:
				var e mapEntry
				if e, err = scanMapEntry(v); err == nil {
					if k := len(c.metadata); k > 0 && bytes.Compare(c.metadata[k-1].key, e.key) >= 0 {
						sorted = false
					}
					c.metadata = append(c.metadata, e)
				}
			case pbwire.CustomerSubscriptions:
				if c.subscriptions < 0 {
					c.subscriptions = at
				}
			case pbwire.CustomerInvoices:
				if c.invoices < 0 {
					c.invoices = at
				}
			case pbwire.CustomerUpdatedAt:
				err = scanTimestamp(v, &c.updatedAt)
			default:
				// A scalar field given with another wire type: proto.Unmarshal
				// keeps it as an unknown field.
			}
		case typ == protowire.VarintType && (num == pbwire.CustomerVersion || num == pbwire.CustomerDeleted || num == pbwire.CustomerLivemode):
			v, n := protowire.ConsumeVarint(b[i:])
			if n < 0 {
				return c, errMalformed
			}
			i += n
			switch num {
			case pbwire.CustomerVersion:
				c.version = int64(v)
			case pbwire.CustomerDeleted:
				c.deleted = v != 0
			case pbwire.CustomerLivemode:
				c.livemode = v != 0
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b[i:])
			if n < 0 {
				return c, errMalformed
			}
			i += n
		}
		if err != nil {
			return c, err
		}
	}
	if !sorted {
		c.metadata = sortEntries(c.metadata)
	}
	return c, nil
}

// sortEntries sorts entries by key and keeps, of the entries with the
// same key, the last: the map proto.Unmarshal makes of them.
func sortEntries(entries []mapEntry) []mapEntry {
	slices.SortStableFunc(entries, func(a, b mapEntry) int { return bytes.Compare(a.key, b.key) })
	out := entries[:0]
	for i, e := range entries {
		if i+1 < len(entries) && bytes.Equal(e.key, entries[i+1].key) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// scanMapEntry reads a map<string, string> entry; a missing key or value
// is empty.
func scanMapEntry(b []byte) (mapEntry, error) {
	var e mapEntry
	for i := 0; i < len(b); {
		num, typ, n := consumeTag(b[i:])
		if n < 0 {
			return e, errMalformed
		}
		i += n
		if typ == protowire.BytesType && (num == pbwire.MapEntryKey || num == pbwire.MapEntryValue) {
			v, n := protowire.ConsumeBytes(b[i:])
			if n < 0 {
				return e, errMalformed
			}
			i += n
			if !utf8.Valid(v) {
				return e, errInvalidUTF8
			}
			if num == pbwire.MapEntryKey {
				e.key = v
			} else {
				e.value = v
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b[i:])
		if n < 0 {
			return e, errMalformed
		}
		i += n
	}
	return e, nil
}

// scanTimestamp merges the google.protobuf.Timestamp b into ts.
func scanTimestamp(b []byte, ts *timestamp) error {
	ts.set = true
	for i := 0; i < len(b); {
		num, typ, n := consumeTag(b[i:])
		if n < 0 {
			return errMalformed
		}
		i += n
		if typ == protowire.VarintType && (num == pbwire.TimestampSeconds || num == pbwire.TimestampNanos) {
			v, n := protowire.ConsumeVarint(b[i:])
			if n < 0 {
				return errMalformed
			}
			i += n
			if num == pbwire.TimestampSeconds {
				ts.seconds = int64(v)
			} else {
				ts.nanos = int32(v)
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b[i:])
		if n < 0 {
			return errMalformed
		}
		i += n
	}
	return nil
}

// consumeTag reads a field's tag, as proto.Unmarshal does: a field
// number from 1 to protowire.MaxValidNumber. Its length is negative when
// the tag is not valid.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	var v uint64
	var n int
	if len(b) > 0 && b[0] < 0x80 {
		v, n = uint64(b[0]), 1
	} else if v, n = protowire.ConsumeVarint(b); n < 0 {
		return 0, 0, n
	}
	if num := v >> 3; num < uint64(protowire.MinValidNumber) || num > uint64(protowire.MaxValidNumber) {
		return 0, 0, -1
	}
	return protowire.Number(v >> 3), protowire.Type(v & 7), n
}

// validString returns v, or errInvalidUTF8 when it is not UTF-8.
func validString(v []byte) ([]byte, error) {
	if !utf8.Valid(v) {
		return nil, errInvalidUTF8
	}
	return v, nil
}

// Writing. Every object is written as a run of `,"name":value`; closeObject
// then turns the first comma into the opening brace.

// notification writes n, with the customer c read from n.Customer.
func (e *jsonEncoder) notification(n store.Notification, c *customerFields) {
	start := len(e.b)
	e.stringField(`,"cursor":`, "cursor", n.Cursor)
	e.stringField(`,"customerId":`, "customer_id", n.CustomerID)
	e.int64Field(`,"version":"`, n.Version)
	e.stringField(`,"kind":`, "kind", n.Kind)
	e.stringField(`,"eventId":`, "event_id", n.EventID)
	// timestamppb.New(n.OccurredAt), which outbox.Proto sets even for the
	// zero time.
	e.b = append(e.b, `,"occurredAt":`...)
	e.timestamp("occurred_at", timestamp{seconds: n.OccurredAt.Unix(), nanos: int32(n.OccurredAt.Nanosecond()), set: true})
	e.b = append(e.b, `,"customer":`...)
	if !e.customer(c) {
		return
	}
	// The customer's account, as outbox.Proto sets it.
	e.bytesField(`,"account":`, c.account)
	e.b = closeObject(e.b, start)
}

// customer writes c, and reports false when a subscription or invoice
// does not decode (e.err says why).
func (e *jsonEncoder) customer(c *customerFields) bool {
	start := len(e.b)
	e.bytesField(`,"customerId":`, c.id)
	e.int64Field(`,"version":"`, c.version)
	e.bytesField(`,"email":`, c.email)
	e.bytesField(`,"name":`, c.name)
	e.boolField(`,"deleted":true`, c.deleted)
	if len(c.metadata) > 0 {
		e.b = append(e.b, `,"metadata":{`...)
		for i, m := range c.metadata {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = appendJSONString(e.b, m.key)
			e.b = append(e.b, ':')
			e.b = appendJSONString(e.b, m.value)
		}
		e.b = append(e.b, '}')
	}
	if c.subscriptions >= 0 {
		e.b = append(e.b, `,"subscriptions":[`...)
		if !e.repeated(c.raw[c.subscriptions:], pbwire.CustomerSubscriptions) {
			return false
		}
		e.b = append(e.b, ']')
	}
	if c.invoices >= 0 {
		e.b = append(e.b, `,"invoices":[`...)
		if !e.repeated(c.raw[c.invoices:], pbwire.CustomerInvoices) {
			return false
		}
		e.b = append(e.b, ']')
	}
	if c.updatedAt.set {
		e.b = append(e.b, `,"updatedAt":`...)
		e.timestamp("customer.updated_at", c.updatedAt)
	}
	e.boolField(`,"livemode":true`, c.livemode)
	e.bytesField(`,"account":`, c.account)
	e.b = closeObject(e.b, start)
	return true
}

// repeated writes, comma-separated, every subscription or invoice (num)
// of the customer b, and reports false when one does not decode.
func (e *jsonEncoder) repeated(b []byte, num protowire.Number) bool {
	first := true
	for i := 0; i < len(b); {
		fnum, typ, n := consumeTag(b[i:])
		if n < 0 {
			e.err = errMalformed
			return false
		}
		i += n
		if fnum == num && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b[i:])
			if n < 0 {
				e.err = errMalformed
				return false
			}
			i += n
			if !first {
				e.b = append(e.b, ',')
			}
			first = false
			if num == pbwire.CustomerSubscriptions && !e.subscription(v) || num == pbwire.CustomerInvoices && !e.invoice(v) {
				return false
			}
			continue
		}
		n = protowire.ConsumeFieldValue(fnum, typ, b[i:])
		if n < 0 {
			e.err = errMalformed
			return false
		}
		i += n
	}
	return true
}

// subscription writes the hookd.v1.Subscription b.
func (e *jsonEncoder) subscription(b []byte) bool {
	var (
		id, status []byte
		cancel     bool
		periodEnd  timestamp
		priceIDs   = -1 // offset of the first price ID
	)
	for i := 0; i < len(b); {
		at := i
		num, typ, n := consumeTag(b[i:])
		if n < 0 {
			e.err = errMalformed
			return false
		}
		i += n
		var err error
		switch {
		case typ == protowire.BytesType && num != pbwire.SubscriptionCancelAtPeriodEnd && num <= pbwire.SubscriptionPriceIDs:
			v, n := protowire.ConsumeBytes(b[i:])
			if n < 0 {
				e.err = errMalformed
				return false
			}
			i += n
			switch num {
			case pbwire.SubscriptionSubscriptionID:
				id, err = validString(v)
			case pbwire.SubscriptionStatus:
				status, err = validString(v)
			case pbwire.SubscriptionCurrentPeriodEnd:
				err = scanTimestamp(v, &periodEnd)
			case pbwire.SubscriptionPriceIDs:
				_, err = validString(v)
				if priceIDs < 0 {
					priceIDs = at
				}
			}
		case typ == protowire.VarintType && num == pbwire.SubscriptionCancelAtPeriodEnd:
			v, n := protowire.ConsumeVarint(b[i:])
			if n < 0 {
				e.err = errMalformed
				return false
			}
			i += n
			cancel = v != 0
		default:
			n := protowire.ConsumeFieldValue(num, typ, b[i:])
			if n < 0 {
				e.err = errMalformed
				return false
			}
			i += n
		}
		if err != nil {
			e.err = err
			return false
		}
	}
	start := len(e.b)
	e.bytesField(`,"subscriptionId":`, id)
	e.bytesField(`,"status":`, status)
	e.boolField(`,"cancelAtPeriodEnd":true`, cancel)
	if periodEnd.set {
		e.b = append(e.b, `,"currentPeriodEnd":`...)
		e.timestamp("subscription.current_period_end", periodEnd)
	}
	if priceIDs >= 0 {
		e.b = append(e.b, `,"priceIds":[`...)
		// Every field was checked above: only the price IDs are left to
		// find.
		first := true
		for i := priceIDs; i < len(b); {
			num, typ, n := consumeTag(b[i:])
			i += n
			if num == pbwire.SubscriptionPriceIDs && typ == protowire.BytesType {
				v, n := protowire.ConsumeBytes(b[i:])
				i += n
				if !first {
					e.b = append(e.b, ',')
				}
				first = false
				e.b = appendJSONString(e.b, v)
				continue
			}
			i += protowire.ConsumeFieldValue(num, typ, b[i:])
		}
		e.b = append(e.b, ']')
	}
	e.b = closeObject(e.b, start)
	return true
}

// invoice writes the hookd.v1.Invoice b.
func (e *jsonEncoder) invoice(b []byte) bool {
	var (
		id, subscriptionID, status, currency []byte
		amountPaid, amountDue                int64
		paymentFailures                      int32
	)
	for i := 0; i < len(b); {
		num, typ, n := consumeTag(b[i:])
		if n < 0 {
			e.err = errMalformed
			return false
		}
		i += n
		var err error
		switch {
		case typ == protowire.BytesType && (num == pbwire.InvoiceInvoiceID || num == pbwire.InvoiceSubscriptionID ||
			num == pbwire.InvoiceStatus || num == pbwire.InvoiceCurrency):
			v, n := protowire.ConsumeBytes(b[i:])
			if n < 0 {
				e.err = errMalformed
				return false
			}
			i += n
			switch num {
			case pbwire.InvoiceInvoiceID:
				id, err = validString(v)
			case pbwire.InvoiceSubscriptionID:
				subscriptionID, err = validString(v)
			case pbwire.InvoiceStatus:
				status, err = validString(v)
			case pbwire.InvoiceCurrency:
				currency, err = validString(v)
			}
		case typ == protowire.VarintType && (num == pbwire.InvoiceAmountPaid || num == pbwire.InvoiceAmountDue || num == pbwire.InvoicePaymentFailures):
			v, n := protowire.ConsumeVarint(b[i:])
			if n < 0 {
				e.err = errMalformed
				return false
			}
			i += n
			switch num {
			case pbwire.InvoiceAmountPaid:
				amountPaid = int64(v)
			case pbwire.InvoiceAmountDue:
				amountDue = int64(v)
			case pbwire.InvoicePaymentFailures:
				paymentFailures = int32(v)
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b[i:])
			if n < 0 {
				e.err = errMalformed
				return false
			}
			i += n
		}
		if err != nil {
			e.err = err
			return false
		}
	}
	start := len(e.b)
	e.bytesField(`,"invoiceId":`, id)
	e.bytesField(`,"subscriptionId":`, subscriptionID)
	e.bytesField(`,"status":`, status)
	e.int64Field(`,"amountPaid":"`, amountPaid)
	e.int64Field(`,"amountDue":"`, amountDue)
	e.bytesField(`,"currency":`, currency)
	if paymentFailures != 0 {
		e.b = append(e.b, `,"paymentFailures":`...)
		e.b = strconv.AppendInt(e.b, int64(paymentFailures), 10)
	}
	e.b = closeObject(e.b, start)
	return true
}

// closeObject ends the object whose fields were written from start:
// "{}" when there are none, else the first field's comma becomes "{".
func closeObject(b []byte, start int) []byte {
	if len(b) == start {
		return append(b, "{}"...)
	}
	b[start] = '{'
	return append(b, '}')
}

// stringField writes a string field of the notification itself, left out
// when empty. proto names it in the error for a string that is not UTF-8.
func (e *jsonEncoder) stringField(name, proto, s string) {
	if s == "" {
		return
	}
	if !utf8.ValidString(s) {
		e.refuse(fmt.Errorf("proto: field hookd.v1.Notification.%s contains invalid UTF-8", proto))
	}
	e.b = append(e.b, name...)
	e.b = appendJSONString(e.b, s)
}

// bytesField writes a string field from the stored bytes (checked as
// UTF-8 when read), left out when empty.
func (e *jsonEncoder) bytesField(name string, s []byte) {
	if len(s) == 0 {
		return
	}
	e.b = append(e.b, name...)
	e.b = appendJSONString(e.b, s)
}

// int64Field writes an int64 field as protojson does, a JSON string, left
// out when 0; name ends with the opening quote.
func (e *jsonEncoder) int64Field(name string, v int64) {
	if v == 0 {
		return
	}
	e.b = append(e.b, name...)
	e.b = strconv.AppendInt(e.b, v, 10)
	e.b = append(e.b, '"')
}

// boolField writes field, which holds its value true, when v.
func (e *jsonEncoder) boolField(field string, v bool) {
	if v {
		e.b = append(e.b, field...)
	}
}

// timestamp writes ts as protojson writes a google.protobuf.Timestamp:
// RFC 3339 in UTC, with 0, 3, 6 or 9 fractional digits. Outside its
// range (which protojson refuses) it writes null and records why.
func (e *jsonEncoder) timestamp(field string, ts timestamp) {
	if ts.seconds < minTimestampSeconds || ts.seconds > maxTimestampSeconds {
		e.refuse(fmt.Errorf("%s: google.protobuf.Timestamp: seconds out of range %d", field, ts.seconds))
		e.b = append(e.b, "null"...)
		return
	}
	if ts.nanos < 0 || ts.nanos > maxTimestampNanos {
		e.refuse(fmt.Errorf("%s: google.protobuf.Timestamp: nanos out of range %d", field, ts.nanos))
		e.b = append(e.b, "null"...)
		return
	}
	e.b = appendTimestamp(e.b, ts.seconds, ts.nanos)
}

// appendTimestamp appends the quoted RFC 3339 form of seconds and nanos
// within the range of google.protobuf.Timestamp, byte for byte what
// protojson writes: time.Unix(seconds, nanos).UTC() formatted as
// "2006-01-02T15:04:05.000000000", without its last three zeros twice and
// then without ".000", and "Z".
func appendTimestamp(b []byte, seconds int64, nanos int32) []byte {
	days, secs := seconds/86400, seconds%86400
	if secs < 0 {
		days, secs = days-1, secs+86400
	}
	year, month, day := civil(days)
	b = append(b, '"',
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+secs/36000), byte('0'+secs/3600%10), ':',
		byte('0'+secs/600%6), byte('0'+secs/60%10), ':',
		byte('0'+secs%60/10), byte('0'+secs%10))
	if nanos != 0 {
		digits, v := 9, nanos
		switch {
		case nanos%1_000_000 == 0:
			digits, v = 3, nanos/1_000_000
		case nanos%1_000 == 0:
			digits, v = 6, nanos/1_000
		}
		b = append(b, '.')
		at := len(b)
		b = append(b, "000000000"[:digits]...)
		for k := at + digits - 1; k >= at; k-- {
			b[k] = byte('0' + v%10)
			v /= 10
		}
	}
	return append(b, 'Z', '"')
}

// civil returns the proleptic Gregorian date of days since 1970-01-01
// (Howard Hinnant's days_from_civil, inverted).
func civil(days int64) (year, month, day int64) {
	z := days + 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365]
	mp := (5*doy + 2) / 153                                // [0, 11], from March
	day = doy - (153*mp+2)/5 + 1
	month = mp + 3
	if month > 12 {
		month -= 12
	}
	year = yoe + era*400
	if month <= 2 {
		year++
	}
	return year, month, day
}

// appendJSONString appends s, UTF-8, as a JSON string escaped as protojson
// escapes it: '"' and '\\' with a backslash, control characters as \b,
// \f, \n, \r, \t or \u00xx, everything else as it is.
func appendJSONString[S ~string | ~[]byte](b []byte, s S) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
