package customer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	mathrand "math/rand"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"testing/quick"

	"github.com/hookd/hookd/provider/stripe"
)

// stateWithMaps is State as declared before metadata and marks became
// smallMaps. encoding/json writes it by reflection alone, so it is the
// reference for every byte, smallMap's own encoding included (which
// json.Marshal(state) calls).
type stateWithMaps struct {
	CustomerID    string                   `json:"customer_id"`
	Version       int64                    `json:"version"`
	Known         bool                     `json:"known"`
	Email         string                   `json:"email,omitempty"`
	Name          string                   `json:"name,omitempty"`
	Deleted       bool                     `json:"deleted,omitempty"`
	Livemode      bool                     `json:"livemode,omitempty"`
	Metadata      map[string]string        `json:"metadata,omitempty"`
	Account       string                   `json:"account,omitempty"`
	Subscriptions map[string]*Subscription `json:"subscriptions,omitempty"`
	Invoices      map[string]*Invoice      `json:"invoices,omitempty"`
	Marks         map[string]Mark          `json:"marks,omitempty"`
	UpdatedAt     int64                    `json:"updated_at,omitempty"`
	Parked        []ParkedEvent            `json:"parked,omitempty"`
}

func withMaps(st State) stateWithMaps {
	return stateWithMaps{st.CustomerID, st.Version, st.Known, st.Email, st.Name, st.Deleted, st.Livemode,
		st.Metadata.goMap(), st.Account, st.Subscriptions, st.Invoices, st.Marks.goMap(), st.UpdatedAt, st.Parked}
}

// checkStateJSON fails unless encodeState writes st exactly as
// json.Marshal does, and as it does st with Go maps for its smallMaps.
func checkStateJSON(t *testing.T, st State) []byte {
	t.Helper()
	got, err := encodeState(st)
	if err != nil {
		t.Fatalf("encodeState: %v\nstate %#v", err, st)
	}
	want, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encodeState\n got %s\nwant %s (json.Marshal)", got, want)
	}
	if legacy, err := json.Marshal(withMaps(st)); err != nil || !bytes.Equal(got, legacy) {
		t.Fatalf("encodeState\n got %s\nwant %s (json.Marshal with Go maps), %v", got, legacy, err)
	}
	return got
}

// jsonStrings are the pieces random strings are made of: what encoding/json
// escapes (HTML characters, quotes, backslashes, control characters,
// U+2028 and U+2029, invalid UTF-8) and what it writes as it is. As keys
// they sort differently as bytes than as written ("<" is written \u003c,
// after "="; "\xff" is written \ufffd, and sorts after "😀" as bytes).
var jsonStrings = []string{
	"", "a", "b", "A", "=", "~", "_", "cus_1", "sub_1", "in_1", "/", " ",
	"<", ">", "&", "<b>", `"`, `\`, "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f",
	"é", "ü", "日本", "😀", "\ufffd", "\u2028", "\u2029",
	"\xff", "\xc3", "\xed\xa0\x80", "a\xffb",
}

func randomString(r *rand.Rand) string {
	var s string
	for range r.IntN(4) {
		s += jsonStrings[r.IntN(len(jsonStrings))]
	}
	return s
}

func randomInt(r *rand.Rand) int64 {
	switch r.IntN(6) {
	case 0:
		return 0
	case 1:
		return -r.Int64N(1000)
	case 2:
		return math.MinInt64
	case 3:
		return math.MaxInt64
	}
	return r.Int64N(2_000_000_000)
}

func randomStrings(r *rand.Rand) []string {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	ss := make([]string, 1+r.IntN(3))
	for i := range ss {
		ss[i] = randomString(r)
	}
	return ss
}

// randomMap returns nil, an empty map or a few entries, some of them nil
// when the values are pointers.
func randomMap[V any](r *rand.Rand, value func() V) map[string]V {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return map[string]V{}
	}
	m := map[string]V{}
	for range 1 + r.IntN(10) {
		var v V
		if r.IntN(5) > 0 {
			v = value()
		}
		m[randomString(r)] = v
	}
	return m
}

// randomSmallMap is randomMap's smallMap, at times empty but not nil.
func randomSmallMap[V any](r *rand.Rand, value func() V) smallMap[V] {
	if r.IntN(8) == 0 {
		return smallMap[V]{}
	}
	return smallMapOf(randomMap(r, value))
}

func randomState(r *rand.Rand) State {
	str := func() string { return randomString(r) }
	mark := func() Mark {
		return Mark{Created: randomInt(r), Rank: int(randomInt(r)), IDs: randomStrings(r)}
	}
	st := State{
		CustomerID: str(), Version: randomInt(r), Known: r.IntN(2) == 0,
		Email: str(), Name: str(), Deleted: r.IntN(2) == 0, Livemode: r.IntN(2) == 0,
		Metadata: randomSmallMap(r, str), Account: str(),
		Subscriptions: randomMap(r, func() *Subscription {
			return &Subscription{Status: str(), CancelAtPeriodEnd: r.IntN(2) == 0, CurrentPeriodEnd: randomInt(r), PriceIDs: randomStrings(r)}
		}),
		Invoices: randomMap(r, func() *Invoice {
			return &Invoice{SubscriptionID: str(), Status: str(), AmountPaid: randomInt(r), AmountDue: randomInt(r),
				Currency: str(), PaymentFailures: int32(randomInt(r))}
		}),
		Marks:     randomSmallMap(r, mark),
		UpdatedAt: randomInt(r),
	}
	for range max(0, r.IntN(6)-3) {
		ev := Event{ID: str(), Type: str(), Created: randomInt(r), ObjectID: str(), ObjectType: str(),
			Livemode: r.IntN(2) == 0, Account: str(), Notes: randomStrings(r)}
		switch r.IntN(3) {
		case 0:
			ev.Customer = &stripe.Customer{ID: str(), Email: str(), Name: str(), Metadata: randomMap(r, str)}
		case 1:
			ev.Subscription = &stripe.Subscription{ID: str(), Customer: stripe.ID(str()), Status: str(), CurrentPeriodEnd: randomInt(r)}
		default:
			ev.Invoice = &stripe.Invoice{ID: str(), Subscription: stripe.ID(str()), Status: str(), AmountDue: randomInt(r), Currency: str()}
		}
		st.Parked = append(st.Parked, ParkedEvent{Event: ev, WaitingFor: str(), Since: randomInt(r)})
	}
	return st
}

// decoded is st as json.Unmarshal gives it back: what omitempty leaves out
// is nil, and invalid UTF-8 is U+FFFD, one for each byte (where two keys
// become one, the later in the encoding wins). Parked events are encoded
// by encoding/json as they are, and decoded as it decodes them.
func decoded(t *testing.T, st State) State {
	t.Helper()
	s := func(s string) string { return string([]rune(s)) }
	ss := func(ss []string) []string {
		if len(ss) == 0 {
			return nil
		}
		out := make([]string, len(ss))
		for i, v := range ss {
			out[i] = s(v)
		}
		return out
	}
	out := State{CustomerID: s(st.CustomerID), Version: st.Version, Known: st.Known, Email: s(st.Email), Name: s(st.Name),
		Deleted: st.Deleted, Livemode: st.Livemode, Account: s(st.Account), UpdatedAt: st.UpdatedAt}
	metadata := map[string]string{}
	for _, e := range st.Metadata {
		metadata[s(e.Key)] = s(e.Value)
	}
	out.Metadata = smallMapOf(metadata)
	marks := map[string]Mark{}
	for _, e := range st.Marks {
		marks[s(e.Key)] = Mark{Created: e.Value.Created, Rank: e.Value.Rank, IDs: ss(e.Value.IDs)}
	}
	out.Marks = smallMapOf(marks)
	for _, k := range slices.Sorted(maps.Keys(st.Subscriptions)) {
		if out.Subscriptions == nil {
			out.Subscriptions = map[string]*Subscription{}
		}
		var sub *Subscription
		if v := st.Subscriptions[k]; v != nil {
			sub = &Subscription{Status: s(v.Status), CancelAtPeriodEnd: v.CancelAtPeriodEnd, CurrentPeriodEnd: v.CurrentPeriodEnd, PriceIDs: ss(v.PriceIDs)}
		}
		out.Subscriptions[s(k)] = sub
	}
	for _, k := range slices.Sorted(maps.Keys(st.Invoices)) {
		if out.Invoices == nil {
			out.Invoices = map[string]*Invoice{}
		}
		var inv *Invoice
		if v := st.Invoices[k]; v != nil {
			inv = &Invoice{SubscriptionID: s(v.SubscriptionID), Status: s(v.Status), AmountPaid: v.AmountPaid, AmountDue: v.AmountDue,
				Currency: s(v.Currency), PaymentFailures: v.PaymentFailures}
		}
		out.Invoices[s(k)] = inv
	}
	if len(st.Parked) > 0 {
		enc, err := json.Marshal(st.Parked)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(enc, &out.Parked); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestStateJSONMatchesEncodingJSON: for random states, tricky strings and
// keys, nil and empty maps, nil values, zero and extreme numbers and
// parked events, encodeState writes what json.Marshal writes, and the
// bytes decode to the same state.
func TestStateJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		st := randomState(r)
		enc := checkStateJSON(t, st)
		var back State
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if want := decoded(t, st); !reflect.DeepEqual(back, want) {
			t.Fatalf("%s decodes to\n%#v\nwant\n%#v", enc, back, want)
		}
	}
	checkStateJSON(t, State{})
	checkStateJSON(t, benchState())
}

// TestStateJSONEveryField: states with every field filled by reflection,
// so that a field added to State and not to appendJSON fails here even
// before the random states above fill it.
func TestStateJSONEveryField(t *testing.T) {
	r := mathrand.New(mathrand.NewSource(5))
	typ := reflect.TypeFor[State]()
	for range 300 {
		v, ok := quick.Value(typ, r)
		if !ok {
			t.Fatalf("cannot make a %v", typ)
		}
		st := v.Interface().(State)
		// smallMaps are sorted and have each key once.
		st.Metadata, st.Marks = smallMapOf(st.Metadata.goMap()), smallMapOf(st.Marks.goMap())
		checkStateJSON(t, st)
	}
}

// FuzzStateJSON: a state of fuzzed strings and numbers in every field
// encodes as json.Marshal encodes it.
func FuzzStateJSON(f *testing.F) {
	f.Add("cus_1", "a@example.com", "sub_1", "in_1", int64(1), int64(1_700_000_000), int64(0), uint8(0))
	f.Add("<a&b>", "\"q\"\\", "\u2028\u2029", "\xff\xc3", int64(-1), int64(math.MaxInt64), int64(math.MinInt64), uint8(0xff))
	f.Add("", "", "é日本😀", "\x00\n\t\x1f", int64(0), int64(0), int64(-7), uint8(0x55))
	f.Fuzz(func(t *testing.T, a, b, c, d string, x, y, n int64, flags uint8) {
		bit := func(i uint) bool { return flags&(1<<i) != 0 }
		st := State{
			CustomerID: a, Version: x, Known: bit(0), Email: b, Name: c, Deleted: bit(1), Livemode: bit(2),
			Metadata: smallMapOf(map[string]string{a: b, c: d}), Account: d,
			Subscriptions: map[string]*Subscription{
				b: {Status: a, CancelAtPeriodEnd: bit(3), CurrentPeriodEnd: y, PriceIDs: []string{c, d}},
			},
			Invoices: map[string]*Invoice{
				c: {SubscriptionID: d, Status: b, AmountPaid: x, AmountDue: y, Currency: a, PaymentFailures: int32(n)},
				a: {Status: c, AmountPaid: n},
			},
			Marks:     smallMapOf(map[string]Mark{a: {Created: x, Rank: int(n), IDs: []string{b, c}}, d: {Created: y}}),
			UpdatedAt: y,
		}
		if bit(4) {
			st.Subscriptions[d] = nil
			st.Invoices[d] = nil
		}
		if bit(5) {
			st.Metadata, st.Subscriptions = nil, map[string]*Subscription{}
		}
		if bit(6) {
			st.Parked = []ParkedEvent{{Event: Event{ID: a, Type: b, Created: x, Notes: []string{c},
				Invoice: &stripe.Invoice{ID: c, Subscription: stripe.ID(d)}}, WaitingFor: d, Since: y}}
		}
		checkStateJSON(t, st)
	})
}

// benchState is a customer as hookd commonly holds one: a subscription
// with one price, eight invoices, and the mark of each object.
func benchState() State {
	st := State{CustomerID: "cus_NffrFeUfNV2Hib", Version: 27, Known: true, Email: "jenny.rosen@example.com", Name: "Jenny Rosen",
		Livemode: true, UpdatedAt: 1_717_000_207,
		Metadata: smallMapOf(map[string]string{"plan": "pro", "crm_id": "A-1029384"}),
		Subscriptions: map[string]*Subscription{
			"sub_1MowQVLkdIwHu7ixeRlqHVzs": {Status: "active", CurrentPeriodEnd: 1_719_763_717, PriceIDs: []string{"price_1MowQULkdIwHu7ixraBm864M"}},
		},
		Invoices: map[string]*Invoice{},
	}
	marks := map[string]Mark{
		"cus_NffrFeUfNV2Hib":           {Created: 1_717_000_000, Rank: 1, IDs: []string{"evt_1NG8Du2eZvKYlo2CUI79vXWy"}},
		"sub_1MowQVLkdIwHu7ixeRlqHVzs": {Created: 1_717_000_100, Rank: 1, IDs: []string{"evt_1NG8Du2eZvKYlo2CUI79vXWz"}},
	}
	for i := range 8 {
		id := fmt.Sprintf("in_1MtHbELkdIwHu7ixl4OzzPM%d", i)
		st.Invoices[id] = &Invoice{SubscriptionID: "sub_1MowQVLkdIwHu7ixeRlqHVzs", Status: "paid", AmountPaid: 2900, AmountDue: 2900, Currency: "usd"}
		marks[id] = Mark{Created: 1_717_000_200 + int64(i), Rank: 2, IDs: []string{fmt.Sprintf("evt_1NG8Du2eZvKYlo2CUI79vXW%d", i)}}
	}
	st.Marks = smallMapOf(marks)
	return st
}

// BenchmarkStateJSON: encoding a state for a write, by reflection and by
// encodeState (what Processor.fill calls).
func BenchmarkStateJSON(b *testing.B) {
	st := benchState()
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(st); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encodeState", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeState(st); err != nil {
				b.Fatal(err)
			}
		}
	})
}
