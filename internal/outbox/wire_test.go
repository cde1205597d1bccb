package outbox

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// randomCustomer returns a customer with every kind of field, some left
// empty.
func randomCustomer(r *rand.Rand) *hookdv1.Customer {
	s := func(prefix string) string {
		if r.IntN(4) == 0 {
			return ""
		}
		return fmt.Sprintf("%s_%d", prefix, r.IntN(1000))
	}
	c := &hookdv1.Customer{
		CustomerId: s("cus"), Version: r.Int64N(1 << 40), Email: s("e@x.com"), Name: s("Ünïcode ✓"),
		Deleted: r.IntN(2) == 0, Livemode: r.IntN(2) == 0, Account: s("acct"),
	}
	if r.IntN(2) == 0 {
		c.UpdatedAt = timestamppb.New(time.Unix(r.Int64N(2e9)-1e9, r.Int64N(1e9)))
	}
	for range r.IntN(4) {
		if c.Metadata == nil {
			c.Metadata = map[string]string{}
		}
		c.Metadata[s("k")] = s("v")
	}
	for range r.IntN(3) {
		c.Subscriptions = append(c.Subscriptions, &hookdv1.Subscription{
			SubscriptionId: s("sub"), Status: s("active"), CancelAtPeriodEnd: r.IntN(2) == 0,
			CurrentPeriodEnd: timestamppb.New(time.Unix(r.Int64N(2e9), 0)), PriceIds: []string{s("price"), s("price")},
		})
	}
	for range r.IntN(3) {
		c.Invoices = append(c.Invoices, &hookdv1.Invoice{
			InvoiceId: s("in"), SubscriptionId: s("sub"), Status: s("paid"), AmountPaid: r.Int64N(1e6) - 5e5,
			AmountDue: r.Int64N(1e6), Currency: s("usd"), PaymentFailures: r.Int32N(5),
		})
	}
	return c
}

func randomNotification(t testing.TB, r *rand.Rand) store.Notification {
	b, err := proto.Marshal(randomCustomer(r))
	if err != nil {
		t.Fatal(err)
	}
	if r.IntN(4) == 0 { // a field from a newer writer
		b = protowire.AppendTag(b, 99, protowire.BytesType)
		b = protowire.AppendString(b, "future")
	}
	if r.IntN(4) == 0 { // a second account: the last wins
		b = protowire.AppendTag(b, 11, protowire.BytesType)
		b = protowire.AppendString(b, "acct_last")
	}
	at := []time.Time{{}, time.Unix(0, 0), time.Unix(-5, 7), time.Unix(r.Int64N(2e9), r.Int64N(1e9))}[r.IntN(4)]
	return store.Notification{
		Cursor: fmt.Sprintf("%d-%d", r.IntN(1e6), r.IntN(100)), CustomerID: fmt.Sprintf("cus_%d", r.IntN(100)),
		Version: r.Int64N(100), Kind: []string{"", "customer.updated", "invoice.paid"}[r.IntN(3)],
		EventID: fmt.Sprintf("evt_%d", r.IntN(1e6)), OccurredAt: at, Customer: b,
	}
}

// The message Subscribe sends decodes, at the client, to what Proto
// builds.
func TestMessageDecodesAsProto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		n := randomNotification(t, r)
		want, err := Proto(n)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Message(n)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		wire, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := &hookdv1.Notification{}
		if err := proto.Unmarshal(wire, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("%d: decodes to\n%v\nwant\n%v", i, got, want)
		}
	}
}

// A stored customer that does not decode fails Message as it fails
// Proto, and so does a string proto.Marshal refuses.
func TestMessageFailsWhereProtoFails(t *testing.T) {
	good := randomNotification(t, rand.New(rand.NewPCG(3, 4)))
	for name, n := range map[string]store.Notification{
		"truncated":     {Cursor: "1-1", Customer: good.Customer[:len(good.Customer)-1]},
		"bad tag":       {Cursor: "1-1", Customer: []byte{0x00}},
		"bad utf8":      {Cursor: "1-1", Customer: protowire.AppendString(protowire.AppendTag(nil, 4, protowire.BytesType), "\xff")},
		"bad utf8 deep": {Cursor: "1-1", Customer: badDeep()},
	} {
		_, perr := Proto(n)
		_, merr := Message(n)
		if perr == nil || merr == nil {
			t.Errorf("%s: Proto: %v, Message: %v; want both to fail", name, perr, merr)
			continue
		}
		if !strings.HasPrefix(merr.Error(), "decode notification 1-1 customer: ") {
			t.Errorf("%s: %v", name, merr)
		}
	}
	n := good
	n.Kind = "\xff"
	if _, err := Message(n); err == nil {
		t.Error("a kind that is not UTF-8 was encoded")
	}
}

// badDeep is a customer whose invoice's currency is not UTF-8.
func badDeep() []byte {
	inv := protowire.AppendString(protowire.AppendTag(nil, 6, protowire.BytesType), "\xfe")
	return protowire.AppendBytes(protowire.AppendTag(nil, 8, protowire.BytesType), inv)
}

// FuzzScanCustomerAgreesWithUnmarshal checks that scanCustomer accepts
// exactly what proto.Unmarshal accepts, and finds its account.
func FuzzScanCustomerAgreesWithUnmarshal(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		n := randomNotification(f, r)
		f.Add(n.Customer)
		f.Add(n.Customer[:r.IntN(len(n.Customer)+1)])
	}
	f.Add(badDeep())
	f.Add([]byte{0x0b, 0x0c}) // a group
	f.Add([]byte{0x0c})       // an end group alone
	f.Fuzz(func(t *testing.T, b []byte) {
		account, err := scanCustomer(b)
		c := &hookdv1.Customer{}
		uerr := proto.Unmarshal(b, c)
		if (err == nil) != (uerr == nil) {
			t.Fatalf("scanCustomer: %v, proto.Unmarshal: %v", err, uerr)
		}
		if err == nil && string(account) != c.GetAccount() {
			t.Fatalf("account %q, want %q", account, c.GetAccount())
		}
	})
}

func BenchmarkSubscribeSend(b *testing.B) {
	n := randomNotification(b, rand.New(rand.NewPCG(7, 8)))
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, _ := Proto(n)
			_, _ = proto.Marshal(m)
		}
	})
	b.Run("message", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, _ := Message(n)
			_, _ = proto.Marshal(m)
		}
	})
}
