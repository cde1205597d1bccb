package customer

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	mathrand "math/rand"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/quick"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// withoutNil returns st with every nil subscription and invoice replaced
// by a zero one, which Proto takes (it does not take nil) and which
// appendCustomerProto writes a nil one as.
func withoutNil(st State) State {
	if st.Subscriptions != nil {
		subs := make(map[string]*Subscription, len(st.Subscriptions))
		for k, v := range st.Subscriptions {
			if v == nil {
				v = &Subscription{}
			}
			subs[k] = v
		}
		st.Subscriptions = subs
	}
	if st.Invoices != nil {
		invoices := make(map[string]*Invoice, len(st.Invoices))
		for k, v := range st.Invoices {
			if v == nil {
				v = &Invoice{}
			}
			invoices[k] = v
		}
		st.Invoices = invoices
	}
	return st
}

// checkCustomerProto fails unless encodeCustomer writes st byte for byte
// as proto.Marshal deterministically writes st.Proto(), in an allocation
// of exactly its length, and the bytes decode to st.Proto(); or, for a
// state proto.Marshal refuses (a string that is not UTF-8), unless it
// refuses it with the same error text. It returns the encoding.
func checkCustomerProto(t testing.TB, st State) []byte {
	t.Helper()
	msg := withoutNil(st).Proto()
	want, wantErr := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	got, err := encodeCustomer(st)
	if wantErr != nil {
		if err == nil || err.Error() != wantErr.Error() {
			t.Fatalf("encodeCustomer: got error %v, want %v (proto.Marshal)\nstate %#v", err, wantErr, st)
		}
		// appendCustomerProto leaves b as it was.
		prefix := []byte("prefix")
		if b, _ := appendCustomerProto(prefix, st); !bytes.Equal(b, prefix) {
			t.Fatalf("appendCustomerProto on error: got %q, want %q", b, prefix)
		}
		return nil
	}
	if err != nil {
		t.Fatalf("encodeCustomer: %v\nstate %#v", err, st)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encodeCustomer\n got %x\nwant %x (deterministic proto.Marshal)\nstate %#v", got, want, st)
	}
	if n := customerProtoSize(st); n != len(got) || cap(got) != len(got) {
		t.Fatalf("customerProtoSize %d, cap %d; want both the encoding's length %d", n, cap(got), len(got))
	}
	var back hookdv1.Customer
	if err := proto.Unmarshal(got, &back); err != nil {
		t.Fatalf("proto.Unmarshal: %v\n%x", err, got)
	}
	if !proto.Equal(&back, msg) {
		t.Fatalf("encodeCustomer's bytes decode to\n%v\nwant\n%v", &back, msg)
	}
	// Appending keeps what b holds.
	prefix := []byte("prefix")
	if b, err := appendCustomerProto(prefix, st); err != nil || !bytes.Equal(b, append(prefix, want...)) {
		t.Fatalf("appendCustomerProto after a prefix: got %q, %v; want the prefix and the encoding", b, err)
	}
	return got
}

// validStrings returns st with invalid UTF-8 in its strings replaced, so
// that proto.Marshal takes it (random states of jsonStrings almost all
// hold some). Keys that become equal keep one of their values.
func validStrings(st State) State {
	s := func(s string) string { return strings.ToValidUTF8(s, "\ufffd") }
	ss := func(in []string) []string {
		if in == nil {
			return nil
		}
		out := make([]string, len(in))
		for i, v := range in {
			out[i] = s(v)
		}
		return out
	}
	out := st
	out.CustomerID, out.Email, out.Name, out.Account = s(st.CustomerID), s(st.Email), s(st.Name), s(st.Account)
	if st.Metadata != nil {
		metadata := map[string]string{}
		for _, e := range st.Metadata {
			metadata[s(e.Key)] = s(e.Value)
		}
		out.Metadata = smallMapOf(metadata)
	}
	if st.Subscriptions != nil {
		out.Subscriptions = map[string]*Subscription{}
		for k, v := range st.Subscriptions {
			if v != nil {
				v = &Subscription{Status: s(v.Status), CancelAtPeriodEnd: v.CancelAtPeriodEnd, CurrentPeriodEnd: v.CurrentPeriodEnd, PriceIDs: ss(v.PriceIDs)}
			}
			out.Subscriptions[s(k)] = v
		}
	}
	if st.Invoices != nil {
		out.Invoices = map[string]*Invoice{}
		for k, v := range st.Invoices {
			if v != nil {
				v = &Invoice{SubscriptionID: s(v.SubscriptionID), Status: s(v.Status), AmountPaid: v.AmountPaid, AmountDue: v.AmountDue,
					Currency: s(v.Currency), PaymentFailures: v.PaymentFailures}
			}
			out.Invoices[s(k)] = v
		}
	}
	return out
}

// TestCustomerProtoMatchesMarshal: for random states (statejson_test.go's:
// tricky strings and keys, nil and empty maps, nil values, zero, negative
// and extreme numbers), with their invalid UTF-8 and without, and for the
// states of random histories as the reducer builds them, encodeCustomer
// writes what deterministic proto.Marshal writes for st.Proto(), or
// refuses what it refuses.
func TestCustomerProtoMatchesMarshal(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 8))
	refused := 0
	for range 3000 {
		st := randomState(r)
		if checkCustomerProto(t, st) == nil {
			refused++
		}
		checkCustomerProto(t, validStrings(st))
	}
	if refused == 0 {
		t.Errorf("no random state held invalid UTF-8: the generator no longer tests refusals")
	}
	for i := range 200 {
		events := randomHistory(r, fmt.Sprintf("cus_p%d", i))
		st := State{CustomerID: fmt.Sprintf("cus_p%d", i)}
		for _, ev := range events {
			withPeers(st, &ev, events)
			var eff Effect
			st, eff = Apply(st, ev, 0)
			for _, c := range eff.Changes {
				checkCustomerProto(t, c.State)
			}
		}
	}
	checkCustomerProto(t, State{})
	checkCustomerProto(t, benchState())
	checkCustomerProto(t, snapshotBenchState())
}

// everyFieldState sets every field Proto renders, each to a value that is
// not its zero, and some to values that encode in the most bytes.
func everyFieldState() State {
	return State{
		CustomerID: "cus_1", Version: math.MaxInt64, Email: "a@example.com", Name: "Jenny Rosen", Deleted: true,
		Livemode: true, Account: "acct_1", UpdatedAt: 1_717_000_207,
		Metadata: smallMapOf(map[string]string{"plan": "pro", "": "", "é": "😀"}),
		Subscriptions: map[string]*Subscription{
			"sub_1": {Status: "active", CancelAtPeriodEnd: true, CurrentPeriodEnd: math.MaxInt64, PriceIDs: []string{"price_1", "", "price_2"}},
		},
		Invoices: map[string]*Invoice{
			"in_1": {SubscriptionID: "sub_1", Status: "open", AmountPaid: -1, AmountDue: 2900, Currency: "usd", PaymentFailures: math.MinInt32},
		},
	}
}

// TestCustomerProtoEveryField: the every-field state sets every field of
// hookd.v1.Customer, Subscription and Invoice, so that a field added to
// customer.proto fails here until the state sets it, and then fails the
// byte comparison until appendCustomerProto writes it. (Timestamp's nanos
// are never set: a state holds seconds.) States with every Go field
// filled by reflection are encoded as proto.Marshal encodes them too.
func TestCustomerProtoEveryField(t *testing.T) {
	t.Parallel()
	st := everyFieldState()
	msg := st.Proto()
	unset := func(m protoreflect.Message) {
		fields := m.Descriptor().Fields()
		for i := range fields.Len() {
			if fd := fields.Get(i); !m.Has(fd) {
				t.Errorf("everyFieldState's Proto leaves %s unset: set it, and write it in appendCustomerProto", fd.FullName())
			}
		}
	}
	unset(msg.ProtoReflect())
	if len(msg.GetSubscriptions()) == 0 || len(msg.GetInvoices()) == 0 {
		t.Fatal("everyFieldState has no subscription or no invoice")
	}
	for _, s := range msg.GetSubscriptions() {
		unset(s.ProtoReflect())
	}
	for _, in := range msg.GetInvoices() {
		unset(in.ProtoReflect())
	}
	checkCustomerProto(t, st)

	r := mathrand.New(mathrand.NewSource(9))
	typ := reflect.TypeFor[State]()
	for range 300 {
		v, ok := quick.Value(typ, r)
		if !ok {
			t.Fatalf("cannot make a %v", typ)
		}
		st := v.Interface().(State)
		// smallMaps are sorted and have each key once.
		st.Metadata = smallMapOf(st.Metadata.goMap())
		checkCustomerProto(t, st)
	}
}

// FuzzCustomerProto: a state of fuzzed strings and numbers in every field
// Proto renders encodes as proto.Marshal encodes it, or is refused as
// proto.Marshal refuses it.
func FuzzCustomerProto(f *testing.F) {
	f.Add("cus_1", "a@example.com", "sub_1", "in_1", int64(1), int64(1_700_000_000), int64(0), uint8(0))
	f.Add("", "", "é日本😀", "\x00\n\t\x1f", int64(0), int64(0), int64(-7), uint8(0x55))
	f.Add("\xff\xc3", "\xed\xa0\x80", "a", "b", int64(-1), int64(math.MaxInt64), int64(math.MinInt64), uint8(0xff))
	f.Fuzz(func(t *testing.T, a, b, c, d string, x, y, n int64, flags uint8) {
		bit := func(i uint) bool { return flags&(1<<i) != 0 }
		st := State{
			CustomerID: a, Version: x, Known: bit(0), Email: b, Name: c, Deleted: bit(1), Livemode: bit(2),
			Metadata: smallMapOf(map[string]string{a: b, c: d}), Account: d,
			Subscriptions: map[string]*Subscription{
				b: {Status: a, CancelAtPeriodEnd: bit(3), CurrentPeriodEnd: y, PriceIDs: []string{c, d}},
				c: {Status: d, CurrentPeriodEnd: n},
			},
			Invoices: map[string]*Invoice{
				c: {SubscriptionID: d, Status: b, AmountPaid: x, AmountDue: y, Currency: a, PaymentFailures: int32(n)},
				a: {Status: c, AmountPaid: n, PaymentFailures: int32(n >> 32)},
			},
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
			st.UpdatedAt = x
		}
		checkCustomerProto(t, st)
	})
}

// TestFillSnapshotsShareOneBuffer: fill writes each change's snapshot as
// its own slice, decoding to that change's state, with its length as
// capacity, so that appending to one leaves the others as they are; the
// notifications of one change share its snapshot.
func TestFillSnapshotsShareOneBuffer(t *testing.T) {
	t.Parallel()
	p := &Processor{id: "cus_1"}
	a := benchState()
	b := snapshotBenchState()
	c := State{CustomerID: "cus_1", Version: 30}
	changes := []Change{
		{EventID: "evt_1", Version: a.Version, Kinds: []string{"invoice.paid"}, State: a},
		{EventID: "evt_2", Version: b.Version, Kinds: []string{"subscription.updated", "invoice.paid"}, State: b},
		{EventID: "evt_3", Version: c.Version, Kinds: []string{"customer.updated"}, State: c},
	}
	var w store.Write
	if err := p.fill(&w, c, changes); err != nil {
		t.Fatal(err)
	}
	if len(w.Notifications) != 4 {
		t.Fatalf("got %d notifications, want 4", len(w.Notifications))
	}
	states := []State{a, b, b, c}
	for i, n := range w.Notifications {
		if cap(n.Customer) != len(n.Customer) {
			t.Errorf("notification %d: snapshot capacity %d, want its length %d", i, cap(n.Customer), len(n.Customer))
		}
		if want, _ := (proto.MarshalOptions{Deterministic: true}).Marshal(states[i].Proto()); !bytes.Equal(n.Customer, want) {
			t.Errorf("notification %d: snapshot\n got %x\nwant %x", i, n.Customer, want)
		}
	}
	if &w.Notifications[1].Customer[0] != &w.Notifications[2].Customer[0] {
		t.Error("the notifications of one change have snapshots of their own, want one shared")
	}
	// An append to one snapshot (a reader adding to it) must not write
	// into the next.
	next := bytes.Clone(w.Notifications[1].Customer)
	_ = append(w.Notifications[0].Customer, 0xff, 0xff, 0xff)
	if !bytes.Equal(w.Notifications[1].Customer, next) {
		t.Error("appending to a snapshot changed the next one")
	}
}

// TestFillRefusesInvalidUTF8: a change whose state proto.Marshal refuses
// fails fill with proto.Marshal's error text, as before the snapshot was
// written by hand.
func TestFillRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	p := &Processor{id: "cus_\xff"}
	st := State{CustomerID: "cus_\xff", Version: 1}
	var w store.Write
	err := p.fill(&w, st, []Change{{EventID: "evt_1", Version: 1, Kinds: []string{"customer.created"}, State: st}})
	_, want := proto.Marshal(st.Proto())
	if err == nil || want == nil || err.Error() != "encode customer: "+want.Error() {
		t.Fatalf("fill: got %v, want encode customer: %v", err, want)
	}
}

// snapshotBenchState is a customer as a notification commonly carries
// one: two subscriptions (one canceled at period end, with two prices),
// eight invoices, a few metadata keys.
func snapshotBenchState() State {
	st := benchState()
	st.Metadata = smallMapOf(map[string]string{"plan": "pro", "crm_id": "A-1029384", "source": "hookd bench"})
	st.Subscriptions = maps.Clone(st.Subscriptions)
	st.Subscriptions["sub_1MowQVLkdIwHu7ixeRlqHVzt"] = &Subscription{Status: "active", CancelAtPeriodEnd: true, CurrentPeriodEnd: 1_719_763_800,
		PriceIDs: []string{"price_1MowQULkdIwHu7ixraBm864N", "price_1MowQULkdIwHu7ixraBm864O"}}
	st.Invoices = maps.Clone(st.Invoices)
	st.Invoices["in_1MtHbELkdIwHu7ixl4OzzPM7"] = &Invoice{SubscriptionID: "sub_1MowQVLkdIwHu7ixeRlqHVzt", Status: "open",
		AmountDue: 4900, Currency: "usd", PaymentFailures: 2}
	return st
}

// BenchmarkSnapshot: encoding a notification's customer, by building the
// message for proto.Marshal (what Processor.fill did) and by
// encodeCustomer (what it does).
func BenchmarkSnapshot(b *testing.B) {
	st := snapshotBenchState()
	b.Run("proto.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(st.Proto()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encodeCustomer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeCustomer(st); err != nil {
				b.Fatal(err)
			}
		}
	})
}
