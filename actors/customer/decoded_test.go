package customer

import (
	"reflect"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/internal/fixtures"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
)

// TestEventWithIsDecodeEvent: the Event built from the objects
// stripe.Decode returns is the Event DecodeEvent decodes, for every
// fixture (objects, notes and all), so the reducer cannot tell which way
// an event came.
func TestEventWithIsDecodeEvent(t *testing.T) {
	t.Parallel()
	for _, p := range fixtures.Payloads(t) {
		env, objs, objErr, err := stripe.Decode(p.Raw)
		if err != nil {
			continue // the gateway refuses it: no Event either way
		}
		want, wantErr := DecodeEvent(env)
		if (objErr == nil) != (wantErr == nil) {
			t.Errorf("%s: Decode's object error %v, DecodeEvent's %v; want both or neither", p.Name, objErr, wantErr)
			continue
		}
		if objErr != nil {
			continue // not carried (see gateway): the grain decodes
		}
		if got := eventWith(env, objs); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: eventWith got %+v, DecodeEvent %+v", p.Name, got, want)
		}
	}
}

// decodedEnvelope is a v1 customer event as the gateway decodes it.
func decodedEnvelope(t *testing.T, body string) (*hookdv1.Envelope, stripe.Objects) {
	t.Helper()
	env, objs, objErr, err := stripe.Decode([]byte(body))
	if err != nil || objErr != nil {
		t.Fatalf("Decode(%s): %v, %v", body, err, objErr)
	}
	return env, objs
}

// TestDecodedFindsOnlyWhatItWasGiven: Lookup finds an event's objects on a
// copy of its envelope (the grain's, unmarshaled) while added, and only
// when the copy has the same ID, source, object type and payload; never
// for a thin event, after remove, or in a nil Decoded.
func TestDecodedFindsOnlyWhatItWasGiven(t *testing.T) {
	t.Parallel()
	var d Decoded
	env, objs := decodedEnvelope(t, `{"id":"evt_1","object":"event","type":"customer.updated","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer","email":"a@example.com"}}}`)
	remove := d.Add(env, objs)
	copied := func(change func(*hookdv1.Envelope)) *hookdv1.Envelope {
		c := proto.Clone(env).(*hookdv1.Envelope)
		if change != nil {
			change(c)
		}
		return c
	}
	if got, ok := d.Lookup(copied(nil)); !ok || !reflect.DeepEqual(got, objs) {
		t.Fatalf("Lookup(a copy): got %+v, %v; want the objects", got, ok)
	}
	for name, change := range map[string]func(*hookdv1.Envelope){
		"another event ID":    func(e *hookdv1.Envelope) { e.EventId = "evt_2" },
		"another source":      func(e *hookdv1.Envelope) { e.Source = "other" },
		"another object type": func(e *hookdv1.Envelope) { e.ObjectType = "subscription" },
		"another payload":     func(e *hookdv1.Envelope) { e.Payload = append(e.Payload[:len(e.Payload):len(e.Payload)], ' ') },
		"thin":                func(e *hookdv1.Envelope) { e.Thin = true },
	} {
		if _, ok := d.Lookup(copied(change)); ok {
			t.Errorf("Lookup(%s): got objects, want none", name)
		}
	}

	// A second delivery of the same event ID, another body: each finds its own.
	env2, objs2 := decodedEnvelope(t, `{"id":"evt_1","object":"event","type":"customer.updated","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer","email":"b@example.com"}}}`)
	remove2 := d.Add(env2, objs2)
	if got, ok := d.Lookup(copied(nil)); !ok || got.Customer.Email != "a@example.com" {
		t.Errorf("Lookup(first body) beside a second: got %+v, %v; want the first's objects", got.Customer, ok)
	}
	if got, ok := d.Lookup(proto.Clone(env2).(*hookdv1.Envelope)); !ok || got.Customer.Email != "b@example.com" {
		t.Errorf("Lookup(second body): got %+v, %v; want the second's objects", got.Customer, ok)
	}
	remove()
	if _, ok := d.Lookup(copied(nil)); ok {
		t.Errorf("Lookup(first body) after its remove: got objects, want none")
	}
	if _, ok := d.Lookup(proto.Clone(env2).(*hookdv1.Envelope)); !ok {
		t.Errorf("Lookup(second body) after the first's remove: got none, want its objects")
	}
	remove2()
	if n := d.Len(); n != 0 {
		t.Errorf("Len after every remove: got %d, want 0", n)
	}

	thin := &hookdv1.Envelope{Source: "stripe", EventId: "evt_t", Thin: true}
	d.Add(thin, stripe.Objects{Notes: []string{"x"}})()
	if n := d.Len(); n != 0 {
		t.Errorf("Len after adding a thin event: got %d, want 0", n)
	}
	var none *Decoded
	if _, ok := none.Lookup(env); ok || none.Len() != 0 {
		t.Errorf("a nil Decoded: found objects, want none")
	}
}

// TestDecodedConcurrent: adds, lookups and removes from many goroutines
// (run with -race) leave nothing behind.
func TestDecodedConcurrent(t *testing.T) {
	t.Parallel()
	var d Decoded
	env, objs := decodedEnvelope(t, `{"id":"evt_1","object":"event","type":"customer.updated","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}}}`)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				remove := d.Add(env, objs)
				if _, ok := d.Lookup(env); !ok {
					t.Error("Lookup while added: got none")
				}
				remove()
			}
		})
	}
	wg.Wait()
	if n := d.Len(); n != 0 {
		t.Fatalf("Len: got %d, want 0", n)
	}
}

// inProcessCorpus is every fixture the gateway accepts, as the gateway
// gets it (raw) and as its grain gets it (a copy of the envelope, as the
// grain client's marshaling makes one).
func inProcessCorpus(b *testing.B) (raws [][]byte, grainEnvs []*hookdv1.Envelope) {
	for _, p := range fixtures.Payloads(b) {
		env, err := stripe.DecodeEnvelope(p.Raw)
		if p.Recipe() || err != nil {
			continue
		}
		raws = append(raws, p.Raw)
		grainEnvs = append(grainEnvs, proto.Clone(env).(*hookdv1.Envelope))
	}
	return raws, grainEnvs
}

// BenchmarkInProcessDecodeTwice is the decoding one event cost in one
// process before stripe.Decode: the gateway's DecodeEnvelope, then the
// grain's DecodeEvent of its copy.
func BenchmarkInProcessDecodeTwice(b *testing.B) {
	raws, grainEnvs := inProcessCorpus(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % len(raws)
		i++
		if _, err := stripe.DecodeEnvelope(raws[k]); err != nil {
			b.Fatal(err)
		}
		_, _ = DecodeEvent(grainEnvs[k])
	}
}

// BenchmarkInProcessDecodeOnce is the same with stripe.Decode in the
// gateway, the objects carried (context, Decoded) and taken by the grain
// (Item.event), as the in-process path does now.
func BenchmarkInProcessDecodeOnce(b *testing.B) {
	raws, grainEnvs := inProcessCorpus(b)
	var d Decoded
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % len(raws)
		i++
		env, objs, objErr, err := stripe.Decode(raws[k])
		if err != nil {
			b.Fatal(err)
		}
		ctx := b.Context()
		if objErr == nil {
			ctx = stripe.ContextWithObjects(ctx, env, objs)
		}
		remove := func() {}
		if carried, ok := stripe.ObjectsFrom(ctx, env); ok {
			remove = d.Add(env, carried)
		}
		it := Item{Envelope: grainEnvs[k]}
		if found, ok := d.Lookup(grainEnvs[k]); ok {
			it.Objects = &found
		}
		_, _ = it.event()
		remove()
	}
}
