package delivery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookd/hookd/internal/outbox"
	"github.com/hookd/hookd/internal/pbwire"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// protojsonPayload is payload as it was written before appendNotificationJSON:
// outbox.Proto, then protojson. It is the reference the tests hold payload
// to.
func protojsonPayload(n store.Notification) ([]byte, error) {
	msg, err := outbox.Proto(n)
	if err != nil {
		return nil, err
	}
	b, err := protojson.MarshalOptions{}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode notification %s: %w", n.Cursor, err)
	}
	return b, nil
}

// checkPayload fails unless payload(n) is what protojsonPayload(n) is: both
// fail, with errors of the same kind that name the notification, or both
// give the same JSON. The same JSON means, as the brief for it says:
// protojson.Unmarshal of payload's gives back outbox.Proto's message (as
// protojson drops unknown fields, so without them); encoding/json decodes
// both to equal values; and, stronger, payload's is protojson's with its
// random spaces removed (json.Compact), so compact and stable. It reports
// whether n encoded.
func checkPayload(t *testing.T, n store.Notification) bool {
	t.Helper()
	got, err := payload(n)
	want, wantErr := protojsonPayload(n)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("payload: %v; protojson: %v\nnotification %+v\ncustomer %x\n got %s\nwant %s", err, wantErr, n, n.Customer, got, want)
	}
	if err != nil {
		prefix := func(err error) string { return strings.SplitN(err.Error(), " ", 2)[0] }
		if !strings.Contains(err.Error(), "notification "+n.Cursor) || prefix(err) != prefix(wantErr) {
			t.Fatalf("payload's error %q, want one like protojson's %q (naming the notification %q)", err, wantErr, n.Cursor)
		}
		return false
	}
	msg, err := outbox.Proto(n)
	if err != nil {
		t.Fatal(err)
	}
	discardUnknown(msg.ProtoReflect())
	var back hookdv1.Notification
	if err := protojson.Unmarshal(got, &back); err != nil {
		t.Fatalf("protojson.Unmarshal of payload's %s: %v", got, err)
	}
	if !proto.Equal(&back, msg) {
		t.Fatalf("payload's %s decodes to\n%v\nwant\n%v", got, &back, msg)
	}
	var gotValue, wantValue any
	if err := json.Unmarshal(got, &gotValue); err != nil {
		t.Fatalf("json.Unmarshal of payload's %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &wantValue); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotValue, wantValue) {
		t.Fatalf("encoding/json decodes payload's and protojson's differently\n got %s\nwant %s", got, want)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, compact.Bytes()) {
		t.Fatalf("payload\n got %s\nwant %s (protojson, compacted)", got, compact.Bytes())
	}
	return true
}

// discardUnknown removes the unknown fields of m and of the messages in
// it, as protojson leaves them out.
func discardUnknown(m protoreflect.Message) {
	m.SetUnknown(nil)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
					discardUnknown(v.Message())
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := range v.List().Len() {
					discardUnknown(v.List().Get(i).Message())
				}
			}
		case fd.Message() != nil:
			discardUnknown(v.Message())
		}
		return true
	})
}

// payloadStrings are the pieces random strings are made of: what JSON
// escapes (quotes, backslashes, control characters), what protojson and
// encoding/json escape differently (HTML characters, U+2028, U+2029,
// DEL), and UTF-8 of every length, U+FFFD itself included.
var payloadStrings = []string{
	"", "a", "Z", "cus_1", "sub_1", "in_1", "price_1", " ", "/", "=", "~",
	`"`, `\`, "\n", "\r", "\t", "\b", "\f", "\x00", "\x01", "\x1f", "\x7f",
	"<", ">", "&", "<b>", "é", "ü", "日本", "😀", "\ufffd", "\u2028", "\u2029", "\U0010ffff",
}

// invalidUTF8 are strings that are not UTF-8: protojson refuses each, and
// proto.Unmarshal refuses them in a string field.
var invalidUTF8 = []string{"\xff", "\xc3", "\xed\xa0\x80", "a\xffb", "\xf4\x90\x80\x80"}

// generator makes random notifications: their own fields, and stored
// customers written as hookd writes them (proto.Marshal) or as any
// writer might (fields in any order, given twice, with other wire types,
// unknown fields, missing map keys).
type generator struct {
	r *rand.Rand
}

// str returns a random string, one in about 300 of them not UTF-8.
func (g generator) str() string {
	if g.r.IntN(300) == 0 {
		return g.validStr() + invalidUTF8[g.r.IntN(len(invalidUTF8))] + g.validStr()
	}
	return g.validStr()
}

func (g generator) validStr() string {
	var s string
	for range g.r.IntN(4) {
		s += payloadStrings[g.r.IntN(len(payloadStrings))]
	}
	return s
}

// int64 returns zero, small, negative, extreme and int32-overflowing
// values.
func (g generator) int64() int64 {
	switch g.r.IntN(9) {
	case 0, 1:
		return 0
	case 2:
		return -g.r.Int64N(1000)
	case 3:
		return math.MinInt64
	case 4:
		return math.MaxInt64
	case 5:
		return math.MaxInt32 + g.r.Int64N(3)
	case 6:
		return math.MinInt32 - g.r.Int64N(3)
	}
	return g.r.Int64N(2_000_000_000)
}

// seconds returns a timestamp's seconds: the epoch, before and after it,
// the ends of protojson's range and, one in about 60 times, beyond them.
func (g generator) seconds() int64 {
	switch g.r.IntN(12) {
	case 0:
		return 0
	case 1:
		return minTimestampSeconds
	case 2:
		return maxTimestampSeconds
	case 3:
		return -g.r.Int64N(-minTimestampSeconds)
	case 4:
		return g.r.Int64N(maxTimestampSeconds)
	case 5:
		if g.r.IntN(5) == 0 {
			return []int64{minTimestampSeconds - 1, maxTimestampSeconds + 1, math.MinInt64, math.MaxInt64}[g.r.IntN(4)]
		}
	}
	return 1_700_000_000 + g.r.Int64N(100_000_000)
}

// nanos returns a timestamp's nanos, for each number of fractional digits
// protojson writes and, one in about 60 times, outside its range.
func (g generator) nanos() int32 {
	switch g.r.IntN(6) {
	case 0, 1:
		return 0
	case 2:
		return g.r.Int32N(1000) * 1_000_000
	case 3:
		return g.r.Int32N(1_000_000) * 1000
	case 4:
		if g.r.IntN(10) == 0 {
			return []int32{-1, 1_000_000_000, math.MinInt32, math.MaxInt32}[g.r.IntN(4)]
		}
	}
	return g.r.Int32N(1_000_000_000)
}

func (g generator) timestamp() *timestamppb.Timestamp {
	if g.r.IntN(4) == 0 {
		return nil
	}
	return &timestamppb.Timestamp{Seconds: g.seconds(), Nanos: g.nanos()}
}

// occurredAt returns a notification's time: the zero time, times before
// 1970, with and without nanoseconds, and, rarely, after year 9999.
func (g generator) occurredAt() time.Time {
	switch g.r.IntN(20) {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(maxTimestampSeconds+1+g.r.Int64N(1000), 0)
	}
	sec, nsec := g.seconds(), g.nanos()
	if sec < minTimestampSeconds || sec > maxTimestampSeconds || nsec < 0 || nsec >= 1e9 {
		sec, nsec = 1_700_000_000, 0
	}
	return time.Unix(sec, int64(nsec))
}

// customer returns a random hookd.v1.Customer with UTF-8 strings (which
// proto.Marshal needs).
func (g generator) customer() *hookdv1.Customer {
	str := g.validStr
	c := &hookdv1.Customer{CustomerId: str(), Version: g.int64(), Email: str(), Name: str(), Deleted: g.r.IntN(2) == 0,
		UpdatedAt: g.timestamp(), Livemode: g.r.IntN(2) == 0, Account: str()}
	if k := g.r.IntN(6) - 1; k >= 0 {
		c.Metadata = map[string]string{}
		for range k {
			c.Metadata[str()] = str()
		}
	}
	for range max(0, g.r.IntN(6)-2) {
		s := &hookdv1.Subscription{SubscriptionId: str(), Status: str(), CancelAtPeriodEnd: g.r.IntN(2) == 0,
			CurrentPeriodEnd: g.timestamp()}
		for range max(0, g.r.IntN(5)-1) {
			s.PriceIds = append(s.PriceIds, str())
		}
		c.Subscriptions = append(c.Subscriptions, s)
	}
	for range max(0, g.r.IntN(12)-3) {
		c.Invoices = append(c.Invoices, &hookdv1.Invoice{InvoiceId: str(), SubscriptionId: str(), Status: str(),
			AmountPaid: g.int64(), AmountDue: g.int64(), Currency: str(), PaymentFailures: int32(g.int64())})
	}
	return c
}

// field writes one random field of a message.
type field func(g generator, b []byte) []byte

func stringField(num protowire.Number) field {
	return func(g generator, b []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendString(b, g.str())
	}
}

func varintField(num protowire.Number) field {
	return func(g generator, b []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(g.int64()))
	}
}

func messageField(num protowire.Number, fields []field) field {
	return func(g generator, b []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, g.message(fields))
	}
}

// otherType writes field num with a wire type it is not declared with,
// or an unknown field when num is 0.
func otherType(num protowire.Number) field {
	return func(g generator, b []byte) []byte {
		if num == 0 {
			num = []protowire.Number{12, 15, 16, 127, 2047, 19000, protowire.MaxValidNumber}[g.r.IntN(7)]
		}
		return g.anyValue(b, num, 0)
	}
}

// anyValue writes field num as a value of a random wire type, groups
// nested up to depth 3.
func (g generator) anyValue(b []byte, num protowire.Number, depth int) []byte {
	switch g.r.IntN(5) {
	case 0:
		b = protowire.AppendTag(b, num, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(g.int64()))
	case 1:
		b = protowire.AppendTag(b, num, protowire.Fixed32Type)
		return protowire.AppendFixed32(b, g.r.Uint32())
	case 2:
		b = protowire.AppendTag(b, num, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, g.r.Uint64())
	case 3:
		if depth < 3 {
			b = protowire.AppendTag(b, num, protowire.StartGroupType)
			for range g.r.IntN(3) {
				b = g.anyValue(b, protowire.Number(1+g.r.IntN(20)), depth+1)
			}
			return protowire.AppendTag(b, num, protowire.EndGroupType)
		}
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, g.str())
}

var (
	timestampFields = []field{varintField(1), varintField(2), otherType(1), otherType(0)}
	mapEntryFields  = []field{stringField(1), stringField(2), otherType(2), otherType(0)}
	// The fields of Subscription, with its timestamp twice as likely.
	subscriptionFields = []field{stringField(1), stringField(2), varintField(3),
		messageField(4, timestampFields), messageField(4, timestampFields), stringField(5), stringField(5),
		otherType(1), otherType(3), otherType(0)}
	invoiceFields = []field{stringField(1), stringField(2), stringField(3), varintField(4), varintField(5),
		stringField(6), varintField(7), otherType(4), otherType(7), otherType(0)}
	customerFieldList = []field{stringField(1), varintField(2), stringField(3), stringField(4), varintField(5),
		messageField(6, mapEntryFields), messageField(6, mapEntryFields), messageField(7, subscriptionFields),
		messageField(8, invoiceFields), messageField(9, timestampFields), varintField(10), stringField(11),
		otherType(1), otherType(6), otherType(9), otherType(10), otherType(0)}
)

// message writes up to 11 random fields of a message, in any order, some
// more than once.
func (g generator) message(fields []field) []byte {
	var b []byte
	for range g.r.IntN(12) {
		b = fields[g.r.IntN(len(fields))](g, b)
	}
	return b
}

// snapshot returns a stored customer: as hookd writes one, at times with
// a newer writer's unknown fields after it, or random fields.
func (g generator) snapshot() []byte {
	if g.r.IntN(3) == 0 {
		return g.message(customerFieldList)
	}
	b, err := proto.MarshalOptions{Deterministic: g.r.IntN(2) == 0}.Marshal(g.customer())
	if err != nil {
		panic(err)
	}
	if g.r.IntN(4) == 0 {
		b = otherType(0)(g, b)
	}
	return b
}

func (g generator) notification() store.Notification {
	return store.Notification{Cursor: g.str(), CustomerID: g.str(), Version: g.int64(), Kind: g.str(), EventID: g.str(),
		OccurredAt: g.occurredAt(), Customer: g.snapshot()}
}

// TestPayloadMatchesProtojson: over many random notifications, payload
// writes what protojson writes of outbox.Proto's message, and fails where
// either of those fails.
func TestPayloadMatchesProtojson(t *testing.T) {
	t.Parallel()
	g := generator{rand.New(rand.NewPCG(1, 2))}
	encoded, failed := 0, 0
	for range 20_000 {
		if checkPayload(t, g.notification()) {
			encoded++
		} else {
			failed++
		}
	}
	// Each outcome must be common enough to have been tested.
	if encoded < 10_000 || failed < 1_000 {
		t.Fatalf("%d notifications encoded and %d failed; the generator should give at least 10000 and 1000", encoded, failed)
	}
}

// fullNotification returns a notification that sets every field of
// hookd.v1.Notification, Customer, Subscription and Invoice (and the
// message it is made from), with timestamps of 0, 3, 6 and 9 fractional
// digits.
func fullNotification(t *testing.T) (store.Notification, *hookdv1.Notification) {
	t.Helper()
	c := &hookdv1.Customer{
		CustomerId: "cus_1", Version: 7, Email: "a@example.com", Name: "A \"B\"", Deleted: true,
		Metadata: map[string]string{"plan": "pro", "crm\n": "\u2028"},
		Subscriptions: []*hookdv1.Subscription{{
			SubscriptionId: "sub_1", Status: "active", CancelAtPeriodEnd: true,
			CurrentPeriodEnd: &timestamppb.Timestamp{Seconds: -1, Nanos: 5000},
			PriceIds:         []string{"price_1", ""},
		}},
		Invoices: []*hookdv1.Invoice{{
			InvoiceId: "in_1", SubscriptionId: "sub_1", Status: "open", AmountPaid: -1, AmountDue: math.MaxInt64,
			Currency: "eur", PaymentFailures: math.MinInt32,
		}},
		UpdatedAt: &timestamppb.Timestamp{Seconds: 1_700_000_000, Nanos: 120_000_000},
		Livemode:  true, Account: "acct_1",
	}
	b, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	n := store.Notification{Cursor: "176301-3", CustomerID: "cus_1", Version: 7, Kind: "invoice.paid", EventID: "evt_1",
		OccurredAt: time.Unix(-86_401, 123_456_789), Customer: b}
	msg, err := outbox.Proto(n)
	if err != nil {
		t.Fatal(err)
	}
	return n, msg
}

// TestPayloadWritesEveryField fails when a field is added to
// hookd.v1.Notification, Customer, Subscription or Invoice and payload does
// not write it: every field the descriptors list must be set in the test
// message, and be in the body under its JSON name.
func TestPayloadWritesEveryField(t *testing.T) {
	t.Parallel()
	n, msg := fullNotification(t)
	checkPayload(t, n)
	body, err := payload(n)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatal(err)
	}
	checkEveryField(t, "", msg.ProtoReflect(), obj)
	// Every form of fraction protojson writes.
	for _, want := range []string{`"1969-12-30T23:59:59.123456789Z"`, `"2023-11-14T22:13:20.120Z"`, `"1969-12-31T23:59:59.000005Z"`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("the body %s has no %s", body, want)
		}
	}
}

// checkEveryField checks that every field of m is set and appears in obj,
// m's JSON, and so on down hookd.v1's messages.
func checkEveryField(t *testing.T, path string, m protoreflect.Message, obj map[string]any) {
	t.Helper()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := path + string(fd.Name())
		if !m.Has(fd) {
			t.Errorf("the test message does not set %s (%s): set it in fullNotification", name, m.Descriptor().FullName())
			continue
		}
		v, ok := obj[fd.JSONName()]
		if !ok {
			t.Errorf("the body has no %s (%q)", name, fd.JSONName())
			continue
		}
		if fd.Message() == nil || fd.IsMap() || fd.Message().ParentFile().Package() != "hookd.v1" {
			continue
		}
		if !fd.IsList() {
			sub, _ := v.(map[string]any)
			checkEveryField(t, name+".", m.Get(fd).Message(), sub)
			continue
		}
		list := m.Get(fd).List()
		elems, _ := v.([]any)
		if len(elems) != list.Len() {
			t.Errorf("the body has %d %s, want %d", len(elems), name, list.Len())
			continue
		}
		for j := range list.Len() {
			sub, _ := elems[j].(map[string]any)
			checkEveryField(t, fmt.Sprintf("%s[%d].", name, j), list.Get(j).Message(), sub)
		}
	}
}

// TestPayloadEdgeCases: zero values, empty messages, a snapshot read as
// proto.Unmarshal reads it (last value wins, messages merged, unknown
// fields and other wire types skipped), and each kind of failure.
func TestPayloadEdgeCases(t *testing.T) {
	t.Parallel()
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	str := func(b []byte, num protowire.Number, s string) []byte {
		return protowire.AppendString(tag(b, num, protowire.BytesType), s)
	}
	msg := func(b []byte, num protowire.Number, m []byte) []byte {
		return protowire.AppendBytes(tag(b, num, protowire.BytesType), m)
	}
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(tag(b, num, protowire.VarintType), v)
	}
	ts := func(sec int64, nanos int32) []byte {
		return varint(varint(nil, pbwire.TimestampSeconds, uint64(sec)), pbwire.TimestampNanos, uint64(nanos))
	}
	for _, tc := range []struct {
		name     string
		customer []byte
		n        store.Notification
		wantErr  string // "" for none
	}{
		{name: "zero notification"},
		{name: "empty messages", customer: msg(msg(msg(msg(nil, pbwire.CustomerSubscriptions, nil), pbwire.CustomerInvoices, nil), pbwire.CustomerUpdatedAt, nil), pbwire.CustomerMetadata, nil)},
		{name: "last value wins", customer: str(varint(str(varint(nil, pbwire.CustomerVersion, 3), pbwire.CustomerEmail, "a"), pbwire.CustomerVersion, 4), pbwire.CustomerEmail, "b")},
		{name: "timestamps merge", customer: msg(msg(nil, pbwire.CustomerUpdatedAt, ts(5, 7)), pbwire.CustomerUpdatedAt, varint(nil, pbwire.TimestampSeconds, 9))},
		{name: "map keys once, sorted", customer: msg(msg(msg(nil, pbwire.CustomerMetadata, str(str(nil, 1, "b"), 2, "x")),
			pbwire.CustomerMetadata, str(nil, 2, "only a value")), pbwire.CustomerMetadata, str(str(nil, 1, "b"), 2, "y"))},
		{name: "repeated fields between others", customer: msg(str(msg(nil, pbwire.CustomerInvoices, str(nil, 1, "in_1")), pbwire.CustomerName, "n"), pbwire.CustomerInvoices, str(nil, 1, "in_2"))},
		{name: "int32 truncated", customer: msg(nil, pbwire.CustomerInvoices, varint(nil, pbwire.InvoicePaymentFailures, 1<<32+5))},
		{name: "other wire types skipped", customer: str(protowire.AppendFixed32(tag(nil, pbwire.CustomerVersion, protowire.Fixed32Type), 7), pbwire.CustomerDeleted, "x")},
		{name: "unknown group", customer: tag(varint(tag(nil, 20, protowire.StartGroupType), 1, 1), 20, protowire.EndGroupType)},
		{name: "truncated", customer: str(nil, pbwire.CustomerEmail, "abc")[:3], wantErr: "decode notification c customer: "},
		{name: "field number 0", customer: varint(nil, 0, 1), wantErr: "decode notification c customer: "},
		{name: "field number too large", customer: varint(nil, protowire.MaxValidNumber+1, 1), wantErr: "decode notification c customer: "},
		{name: "end group alone", customer: tag(nil, 20, protowire.EndGroupType), wantErr: "decode notification c customer: "},
		{name: "unbalanced group", customer: tag(tag(nil, 20, protowire.StartGroupType), 21, protowire.EndGroupType), wantErr: "decode notification c customer: "},
		{name: "invalid UTF-8, overwritten", customer: str(str(nil, pbwire.CustomerName, "\xff"), pbwire.CustomerName, "ok"), wantErr: "decode notification c customer: "},
		{name: "invalid UTF-8 in a price ID", customer: msg(nil, pbwire.CustomerSubscriptions, str(nil, pbwire.SubscriptionPriceIDs, "\xff")), wantErr: "decode notification c customer: "},
		{name: "invalid UTF-8 in a map key", customer: msg(nil, pbwire.CustomerMetadata, str(nil, pbwire.MapEntryKey, "\xff")), wantErr: "decode notification c customer: "},
		{name: "broken invoice", customer: msg(nil, pbwire.CustomerInvoices, []byte{0xff}), wantErr: "decode notification c customer: "},
		{name: "timestamp out of range", customer: msg(nil, pbwire.CustomerUpdatedAt, ts(maxTimestampSeconds+1, 0)), wantErr: "encode notification c: "},
		{name: "nanos out of range", customer: msg(nil, pbwire.CustomerSubscriptions, msg(nil, pbwire.SubscriptionCurrentPeriodEnd, ts(0, -1))), wantErr: "encode notification c: "},
		{name: "timestamp out of range, overwritten", customer: msg(msg(nil, pbwire.CustomerUpdatedAt, ts(maxTimestampSeconds+1, 0)), pbwire.CustomerUpdatedAt, ts(1, 0))},
		{name: "a snapshot that does not decode comes first", customer: msg(msg(nil, pbwire.CustomerUpdatedAt, ts(-1<<62, 0)), pbwire.CustomerInvoices, []byte{0xff}), wantErr: "decode notification c customer: "},
		{name: "invalid UTF-8 in the notification", n: store.Notification{Kind: "\xff"}, wantErr: "encode notification c: "},
		{name: "year 10000", n: store.Notification{OccurredAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, wantErr: "encode notification c: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := tc.n
			n.Cursor, n.Customer = "c", tc.customer
			ok := checkPayload(t, n)
			_, err := payload(n)
			switch {
			case tc.wantErr == "" && !ok:
				t.Fatalf("payload: %v, want a body", err)
			case tc.wantErr != "" && (ok || !strings.HasPrefix(err.Error(), tc.wantErr)):
				t.Fatalf("payload: %v, want an error starting %q", err, tc.wantErr)
			}
		})
	}
}

// TestAppendTimestamp: appendTimestamp writes what protojson does for
// times across the whole range, at both ends and around the epoch.
func TestAppendTimestamp(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	g := generator{r}
	for i := range 100_000 {
		var sec int64
		switch i % 4 {
		case 0:
			sec = minTimestampSeconds + r.Int64N(maxTimestampSeconds-minTimestampSeconds+1)
		case 1:
			sec = []int64{minTimestampSeconds, maxTimestampSeconds, 0, -1, 1, -86400, 86399, 951782400, 951868800}[r.IntN(9)] + r.Int64N(5) - 2
		default:
			sec = g.seconds()
		}
		nanos := g.nanos()
		if sec < minTimestampSeconds || sec > maxTimestampSeconds || nanos < 0 || nanos > maxTimestampNanos {
			continue
		}
		want, err := protojson.Marshal(&timestamppb.Timestamp{Seconds: sec, Nanos: nanos})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendTimestamp(nil, sec, nanos); !bytes.Equal(got, want) {
			t.Fatalf("appendTimestamp(%d, %d) = %s, want %s", sec, nanos, got, want)
		}
	}
}

// FuzzPayload: for any notification and any stored bytes, payload fails
// where protojson of proto.Unmarshal's message does, and otherwise writes
// the same JSON; it never panics.
func FuzzPayload(f *testing.F) {
	g := generator{rand.New(rand.NewPCG(5, 6))}
	for range 200 {
		n := g.notification()
		f.Add(n.Cursor, n.CustomerID, n.Version, n.Kind, n.EventID, n.OccurredAt.Unix(), int64(n.OccurredAt.Nanosecond()), n.Customer)
	}
	f.Fuzz(func(t *testing.T, cursor, customerID string, version int64, kind, eventID string, sec, nsec int64, customer []byte) {
		checkPayload(t, store.Notification{Cursor: cursor, CustomerID: customerID, Version: version, Kind: kind, EventID: eventID,
			OccurredAt: time.Unix(sec, nsec), Customer: customer})
	})
}

// benchNotification is a customer as hookd stores one, with 2
// subscriptions, 8 invoices and 3 metadata keys.
func benchNotification() store.Notification {
	c := &hookdv1.Customer{
		CustomerId: "cus_NffrFeUfNV2Hib", Version: 27, Email: "jenny.rosen@example.com", Name: "Jenny Rosen",
		Metadata:  map[string]string{"plan": "pro", "crm_id": "A-1029384", "region": "eu-west-1"},
		UpdatedAt: &timestamppb.Timestamp{Seconds: 1_717_000_207}, Livemode: true, Account: "acct_1Nv0FGQ9RKHgCVdK",
	}
	for i := range 2 {
		c.Subscriptions = append(c.Subscriptions, &hookdv1.Subscription{
			SubscriptionId: fmt.Sprintf("sub_1MowQVLkdIwHu7ixeRlqHVz%d", i), Status: "active",
			CurrentPeriodEnd: &timestamppb.Timestamp{Seconds: 1_719_763_717},
			PriceIds:         []string{fmt.Sprintf("price_1MowQULkdIwHu7ixraBm864%d", i)},
		})
	}
	for i := range 8 {
		c.Invoices = append(c.Invoices, &hookdv1.Invoice{
			InvoiceId: fmt.Sprintf("in_1MtHbELkdIwHu7ixl4OzzPM%d", i), SubscriptionId: "sub_1MowQVLkdIwHu7ixeRlqHVz0",
			Status: "paid", AmountPaid: 2900, AmountDue: 2900, Currency: "usd", PaymentFailures: int32(i % 2),
		})
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		panic(err)
	}
	return store.Notification{Cursor: "176301-3", CustomerID: c.CustomerId, Version: 27, Kind: "invoice.paid",
		EventID: "evt_1NG8Du2eZvKYlo2CUI79vXWy", OccurredAt: time.Unix(1_717_000_207, 123_456_000), Customer: b}
}

func TestBenchNotification(t *testing.T) {
	t.Parallel()
	checkPayload(t, benchNotification())
}

// BenchmarkPayload: a delivery's body the old way (outbox.Proto, then
// protojson), the new (payload), and proto.Unmarshal of the stored
// customer alone, the least that encoding from the message would cost.
func BenchmarkPayload(b *testing.B) {
	n := benchNotification()
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := protojsonPayload(n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("payload", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := payload(n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := proto.Unmarshal(n.Customer, &hookdv1.Customer{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
