package stripe

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/internal/fixtures"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// BenchmarkDecodeEnvelopeThenObject is what hookd did per event before
// Decode: the gateway's DecodeEnvelope, then the grain's DecodeObject of
// the same payload.
func BenchmarkDecodeEnvelopeThenObject(b *testing.B) {
	benchmarkDecode(b, func(raw []byte) error {
		env, err := DecodeEnvelope(raw)
		if err != nil || env.GetThin() {
			return err
		}
		_, err = DecodeObject(env.GetObjectType(), raw)
		return err
	})
}

// benchmarkDecode runs decode over the fixtures, one payload per
// iteration in turn, so ns/op is the mean over them. Payloads that are not
// accepted are left out.
func benchmarkDecode(b *testing.B, decode func(raw []byte) error) {
	var corpus [][]byte
	for _, p := range fixtures.Payloads(b) {
		if !p.Recipe() && decode(p.Raw) == nil {
			corpus = append(corpus, p.Raw)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = decode(corpus[i%len(corpus)])
		i++
	}
}

// BenchmarkDecode is Decode over the fixtures, as the gateway decodes
// each webhook now: to compare with BenchmarkDecodeEnvelopeThenObject.
func BenchmarkDecode(b *testing.B) {
	benchmarkDecode(b, func(raw []byte) error {
		_, _, objErr, err := Decode(raw)
		return errors.Join(err, objErr)
	})
}

// BenchmarkDecodeEnvelopeOnly is DecodeEnvelope alone, which is what a
// gateway of its own (hookd gateway --ingest-addr) spent per event before
// Decode: Decode should cost it little more.
func BenchmarkDecodeEnvelopeOnly(b *testing.B) {
	benchmarkDecode(b, func(raw []byte) error {
		_, err := DecodeEnvelope(raw)
		return err
	})
}

// twoPass is what Decode must return: DecodeEnvelope's envelope and
// error, and for a v1 event DecodeObject's objects and error.
func twoPass(raw []byte) (*hookdv1.Envelope, Objects, error, error) {
	env, err := DecodeEnvelope(raw)
	if err != nil || env.GetThin() {
		return env, Objects{}, nil, err
	}
	objs, objErr := DecodeObject(env.GetObjectType(), raw)
	return env, objs, objErr, nil
}

// checkDecode fails t unless Decode(raw) returns what the two passes
// return: the same envelope (proto.Equal), objects (reflect.DeepEqual),
// and errors (by message, the envelope's wrapping ErrMalformed).
func checkDecode(t *testing.T, raw []byte) {
	t.Helper()
	wantEnv, wantObjs, wantObjErr, wantErr := twoPass(raw)
	env, objs, objErr, err := Decode(raw)
	if errText(err) != errText(wantErr) || (err != nil && !errors.Is(err, ErrMalformed)) {
		t.Fatalf("Decode(%q): error %v, want %v", raw, err, wantErr)
	}
	if (env == nil) != (wantEnv == nil) || !proto.Equal(env, wantEnv) {
		t.Fatalf("Decode(%q): envelope\n%v\nwant\n%v", raw, prototext.Format(env), prototext.Format(wantEnv))
	}
	if env != nil && &env.GetPayload()[0] != &raw[0] {
		t.Fatalf("Decode(%q): payload is a copy, want it to alias raw", raw)
	}
	if errText(objErr) != errText(wantObjErr) {
		t.Fatalf("Decode(%q): object error %v, want %v", raw, objErr, wantObjErr)
	}
	if !reflect.DeepEqual(objs, wantObjs) {
		t.Fatalf("Decode(%q): objects\n%s\nwant\n%s", raw, objectsText(objs), objectsText(wantObjs))
	}
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// objectsText shows objects for a failure message, pointers followed.
func objectsText(o Objects) string {
	b, _ := json.Marshal(struct {
		Customer     *Customer
		Subscription *Subscription
		Invoice      *Invoice
		Notes        []string
	}{o.Customer, o.Subscription, o.Invoice, o.Notes})
	return string(b)
}

// decodeEdgeCases are bodies where one pass could go wrong: thin events,
// objects of kinds hookd does not project, objects that do not decode
// into their kind, expanded references, Connect events, repeated keys and
// keys in other cases.
var decodeEdgeCases = []string{
	testEvent,
	// Thin events.
	`{"id":"evt_t","object":"v2.core.event","type":"v1.billing.meter.no_meter_found","created":"2022-02-15T00:27:45.330Z","livemode":true,"context":"acct_1"}`,
	`{"id":"evt_t","object":"v2.core.event","type":"x","related_object":{"id":"cus_1","type":"customer"},"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_t","object":"v2.core.event","created":1700000000,"type":null}`,
	`{"id":"evt_t","object":"v2.core.event","created":"now"}`,
	`{"object":"v2.core.event","id":7}`,
	`{"id":"evt_t","object":"v2.core.event","type":"x","data":{"object":{"object":"invoice","lines":{"data":[{"subscription":5}]}}}}`,
	`{"id":"evt_t","object":"event","object":"v2.core.event","created":"2022-02-15T00:27:45Z"}`,
	`{"id":"evt_t","object":"v2.core.event","object":"event","type":"x","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_t","object":"v2.core.event","data":{"object":{"object":"customer","customer":7}},"object":"event","type":"x"}`,
	// Kinds hookd does not project, and no kind.
	eventWithObject(`{"id":"ch_1","object":"charge","customer":"cus_1","invoice":"in_1","payment_intent":{"id":"pi_1"},"status":"succeeded","metadata":{}}`),
	eventWithObject(`{"id":"dp_1","object":"dispute","charge":"ch_1","payment_intent":null}`),
	eventWithObject(`{"object":"balance","available":[]}`),
	eventWithObject(`{"id":"or_1","object":"order","items":[{"amount":1}],"parent":"x"}`),
	eventWithObject(`{}`),
	eventWithObject(`{"object":""}`),
	eventWithObject(`{"id":"x_1","object":"Customer","email":"a@example.com"}`),
	eventWithObject(`null`),
	`{"id":"evt_1","type":"x","data":{}}`,
	`{"id":"evt_1","type":"x"}`,
	`{"id":"evt_1","type":"x","data":null}`,
	// Objects that do not decode into their kind (the event is still accepted).
	eventWithObject(`{"id":"sub_1","object":"subscription","customer":"cus_1","current_period_end":"soon"}`),
	eventWithObject(`{"id":"sub_1","object":"subscription","customer":"cus_1","items":"x"}`),
	eventWithObject(`{"id":"sub_1","object":"subscription","customer":"cus_1","items":{"data":[{"price":"price_1"}]}}`),
	eventWithObject(`{"id":"in_1","object":"invoice","customer":"cus_1","parent":{"subscription_details":{"subscription":["sub_1"]}}}`),
	eventWithObject(`{"id":"in_1","object":"invoice","customer":"cus_1","lines":{"data":[{"subscription":5}]}}`),
	eventWithObject(`{"id":"in_1","object":"invoice","customer":"cus_1","amount_paid":"1"}`),
	eventWithObject(`{"id":"cus_1","object":"customer","metadata":{"a":1}}`),
	eventWithObject(`{"id":"cus_1","object":"customer","email":5,"name":false}`),
	eventWithObject(`"cus_1"`),
	eventWithObject(`[{"id":"cus_1","object":"customer"}]`),
	// Fields of another kind that do not decode: the object's own does.
	eventWithObject(`{"id":"cus_1","object":"customer","items":"x","lines":5,"current_period_end":"soon"}`),
	eventWithObject(`{"id":"sub_1","object":"subscription","customer":"cus_1","metadata":{"a":1},"email":5,"current_period_end":1}`),
	eventWithObject(`{"id":"ch_1","object":"charge","customer":"cus_1","parent":"x","status":5}`),
	// References the envelope refuses.
	eventWithObject(`{"id":"in_1","object":"invoice","customer":7}`),
	eventWithObject(`{"id":"in_1","object":"invoice","customer":"cus_1","charge":[]}`),
	eventWithObject(`{"id":"in_1","object":"invoice","customer":{"id":5}}`),
	eventWithObject(`{"id":"cus_1","object":"customer","subscription":true}`),
	// Expanded references.
	eventWithObject(`{"id":"in_1","object":"invoice","customer":{"id":"cus_3","object":"customer","metadata":{"id":"not this"}},"subscription":{"id":"sub_1","object":"subscription"}}`),
	eventWithObject(`{"id":"sub_1","object":"subscription","customer":{"object":"customer"},"customer_account":"acct_2","items":{"data":[{"current_period_end":5}]}}`),
	eventWithObject(`{"id":"sub_1","object":"subscription","customer":{"id":"cus_1","id":null},"current_period_end":9}`),
	eventWithObject(`{"id":"in_1","object":"invoice","customer":null,"customer_account":{"id":"acct_3"},"parent":{"type":"subscription_details","subscription_details":{"subscription":{"id":"sub_9"}}}}`),
	// Connect events.
	`{"id":"evt_c","object":"event","account":"acct_1","type":"customer.updated","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer","email":"c@example.com"}}}`,
	`{"id":"evt_c","object":"event","account":null,"type":"x","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_c","object":"event","account":5,"type":"x","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	// Repeated keys.
	eventWithObject(`{"id":"sub_1","object":"subscription","customer":"cus_1","customer":"cus_2"}`),
	eventWithObject(`{"id":"sub_1","object":"subscription","customer":5,"customer":"cus_2"}`),
	eventWithObject(`{"id":"sub_1","object":"subscription","customer":"cus_2","customer":5}`),
	eventWithObject(`{"id":"sub_1","object":"subscription","customer":"cus_1","customer":null}`),
	eventWithObject(`{"id":"ch_1","object":"charge","charge":7,"charge":"ch_2","customer":"cus_1"}`),
	eventWithObject(`{"id":"cus_1","object":"customer","metadata":{"a":"1"},"metadata":{"b":"2"},"metadata":null,"metadata":{"c":"3"}}`),
	eventWithObject(`{"id":"sub_1","object":"subscription","customer":"cus_1","items":{"data":[{"current_period_end":5,"id":"si_1"}]},"items":{"data":[{"current_period_start":3}]}}`),
	eventWithObject(`{"id":"sub_1","object":"subscription","object":"invoice","customer":"cus_1","subscription":"sub_2"}`),
	`{"id":"evt_1","object":"event","type":"x","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer","email":"a"},"object":{"name":"n"}}}`,
	`{"id":"evt_1","object":"event","type":"x","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"},"object":null}}`,
	`{"id":"evt_1","object":"event","type":"x","created":1700000000,"data":{"object":null,"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_1","object":"event","type":"x","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"},"object":null,"object":{"id":"cus_2","object":"customer"}}}`,
	`{"id":"evt_1","object":"event","type":"x","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}},"data":{"previous_attributes":{}}}`,
	`{"id":"evt_1","object":"event","type":"x","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}},"data":null}`,
	`{"id":"evt_1","object":"event","type":"x","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}},"data":[]}`,
	`{"id":"evt_1","id":"evt_2","object":"event","type":"x","type":"","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_1","object":"event","type":"x","created":5,"created":null,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_1","object":"event","type":"x","created":"x","created":5,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_1","object":"event","type":"x","created":5,"created":1.5,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_1","object":"event","object":null,"type":"x","created":1,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	// Keys in other cases, and values that are not what they seem.
	`{"ID":"evt_1","Object":"event","TYPE":"customer.updated","Created":1700000000,"Data":{"OBJECT":{"Id":"cus_1","Object":"customer","EMAIL":"a@example.com","Metadata":{"K":"v"}}}}`,
	eventWithObject(`{"id":"sub_1","object":"subscription","Customer":"cus_1","customer":"cus_2","CURRENT_PERIOD_END":7,"Items":{"DATA":[{"Current_Period_End":8}]}}`),
	eventWithObject(`{"id":"in_1","object":"invoice","cuſtomer":"cus_1","ſubscription":"sub_1","Lines":{"data":[{"Subscription":"sub_2"}]}}`),
	eventWithObject(`{"id":"in_1","object":"invoice","customer":"cus_\u0031","subscription":"sub_\u00e9","status":"pa\u0069d"}`),
	eventWithObject("{\"id\":\"cus_\xff\",\"object\":\"customer\",\"email\":\"\x7f\"}"),
	`{"id":"evt_1","object":"event","type":"x","created":1e9,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_1","object":"event","type":"x","created":-1,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_1","object":"event","type":"x","created":99999999999999999999,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_1","object":"event","type":"x","created":-0,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_1","object":"event","type":"x","created":true,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	`{"id":"evt_1","object":"event","type":"x","created":{},"data":{"object":{"id":"cus_1","object":"customer"}}}`,
	// Not an event.
	``, ` `, `[]`, `null`, `""`, `{}`, "\xef\xbb\xbf{}", ` {"id":"evt_1"`, `{"id":"evt_1",`,
	`{"id":"cus_1","object":"customer"}`,
	`{"id":"evt_1","object":"event","type":"x","created":1,"data":{"object":{"id":"cus_1","object":"customer"}}} x`,
}

// TestDecodeMatchesTwoPass is the property Decode promises: for every
// fixture and edge case, what DecodeEnvelope and DecodeObject return.
func TestDecodeMatchesTwoPass(t *testing.T) {
	t.Parallel()
	for i, raw := range decodeEdgeCases {
		t.Run(fmt.Sprint("edge", i), func(t *testing.T) {
			t.Parallel()
			checkDecode(t, []byte(raw))
		})
	}
	for _, tt := range modernCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkDecode(t, tt.event(t))
		})
	}
	for _, p := range fixtures.Payloads(t) {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			checkDecode(t, p.Raw)
		})
	}
}

// realEvents returns the bodies Stripe would send: the shared fixtures'
// events (not their recipes) and the modern cases.
func realEvents(t *testing.T) []fixtures.Payload {
	t.Helper()
	var out []fixtures.Payload
	for _, p := range fixtures.Payloads(t) {
		if !p.Recipe() {
			out = append(out, p)
		}
	}
	for _, tt := range modernCases() {
		out = append(out, fixtures.Payload{Name: tt.name, Raw: tt.event(t)})
	}
	return out
}

// TestDecodeRealEventsInOnePass: every fixture Stripe would send takes
// the one pass, not the two-pass fallback, or Decode would save nothing.
func TestDecodeRealEventsInOnePass(t *testing.T) {
	t.Parallel()
	for _, p := range realEvents(t) {
		if _, _, ok, err := decodeOnce(p.Raw); !ok || err != nil {
			t.Errorf("%s: one pass got ok %v, error %v; want it decoded in one pass", p.Name, ok, err)
		}
	}
}

// FuzzDecodeMatchesTwoPass checks the property of
// TestDecodeMatchesTwoPass on any input.
func FuzzDecodeMatchesTwoPass(f *testing.F) {
	for _, raw := range decodeEdgeCases {
		f.Add([]byte(raw))
	}
	if _, err := fixtures.Find("stripe"); err == nil {
		for _, p := range fixtures.Payloads(f) {
			f.Add(p.Raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkDecode(t, raw)
	})
}
