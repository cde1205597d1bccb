package stripe

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/hookd/hookd/internal/fixtures"
)

// scanOK runs the scanner on raw and, when it vouches for its result,
// fails t unless json.Unmarshal decodes raw without error into the very
// same oneEvent: every field, data.object's included, and Data.Object
// still pointing at the event's own object. It reports whether the
// scanner vouched.
func scanOK(t *testing.T, raw []byte) bool {
	t.Helper()
	var got oneEvent
	got.Data.Object = &got.object
	if !got.scan(raw) {
		return false
	}
	var want oneEvent
	want.Data.Object = &want.object
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("scan(%q) vouched, but json.Unmarshal fails: %v", raw, err)
	}
	if p, ok := got.Data.Object.(*oneObject); !ok || p != &got.object {
		t.Fatalf("scan(%q): Data.Object is %#v, want the event's own object", raw, got.Data.Object)
	}
	if p, ok := want.Data.Object.(*oneObject); !ok || p != &want.object {
		t.Fatalf("scan(%q) vouched, but json.Unmarshal sets Data.Object to %#v", raw, want.Data.Object)
	}
	// Data.Object points into each event: compare the rest.
	got.Data.Object, want.Data.Object = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("scan(%q):\n%s\njson.Unmarshal:\n%s", raw, eventText(&got), eventText(&want))
	}
	return true
}

// eventText shows a oneEvent for a failure message, pointers followed.
func eventText(ev *oneEvent) string {
	var object any = ev.Object
	if ev.Object != nil {
		object = *ev.Object
	}
	var end any = ev.object.CurrentPeriodEnd
	if p := ev.object.CurrentPeriodEnd; p != nil {
		end = *p
	}
	o, _ := json.Marshal(ev.object)
	return fmt.Sprintf("id %q object %v type %q created %+v api_version %q livemode %v account %q\nobject %s current_period_end %v (metadata nil %v, items nil %v, lines nil %v)",
		ev.ID, object, ev.Type, ev.Created, ev.APIVersion, ev.Livemode, ev.Account, o, end,
		ev.object.Metadata == nil, ev.object.Items.Data == nil, ev.object.Lines.Data == nil)
}

// scanEdgeCases are bodies where the scanner could go wrong; each is
// also in the fuzz corpus. Those it must vouch for are in
// scanAcceptCases.
var scanEdgeCases = []string{
	// Repeated keys, at each level.
	`{"id":"evt_1","id":"evt_2","data":{"object":{"object":"customer"}}}`,
	`{"data":{"object":{"object":"customer"}},"data":{"object":{"id":"cus_1"}}}`,
	`{"data":{"object":{"object":"customer"},"object":{"id":"cus_1"}}}`,
	eventWithObject(`{"object":"customer","id":"a","id":"b"}`),
	eventWithObject(`{"object":"customer","metadata":{"a":"1"},"metadata":{"b":"2"}}`),
	eventWithObject(`{"object":"customer","metadata":{"a":"1","a":"2","b":null}}`),
	eventWithObject(`{"object":"subscription","items":{"data":[{"id":"si_1","id":"si_2"}]}}`),
	eventWithObject(`{"object":"subscription","items":{"data":[{"price":{"id":"p1"},"price":{"id":"p2"}}]}}`),
	eventWithObject(`{"object":"subscription","items":{"data":[{"price":{"id":"p1","id":"p2"}}]}}`),
	eventWithObject(`{"object":"subscription","items":{"data":[],"data":[{"id":"si_1"}]}}`),
	eventWithObject(`{"object":"invoice","lines":{"data":[{"subscription":"sub_1","subscription":"sub_2"}]}}`),
	eventWithObject(`{"object":"invoice","lines":{"data":[{"parent":{"subscription_item_details":{"subscription":"a","subscription":"b"}}}]}}`),
	eventWithObject(`{"object":"invoice","parent":{"type":"a","type":"b"}}`),
	eventWithObject(`{"object":"invoice","parent":{"type":"a"},"parent":{"subscription_details":{"subscription":"sub_1"}}}`),
	eventWithObject(`{"object":"customer","x":1,"x":2,"x":{}}`),
	// Keys in other cases, folded, escaped.
	`{"ID":"evt_1","data":{"object":{"object":"customer"}}}`,
	`{"Object":"event","data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","Data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","data":{"Object":{"object":"customer"}}}`,
	eventWithObject(`{"object":"customer","Email":"a@example.com"}`),
	eventWithObject(`{"object":"subscription","items":{"DATA":[{"id":"si_1"}]}}`),
	eventWithObject(`{"object":"subscription","items":{"data":[{"ID":"si_1","Price":{"Id":"p"}}]}}`),
	eventWithObject(`{"object":"invoice","lines":{"data":[{"Subscription":"sub_1","PARENT":null}]}}`),
	eventWithObject(`{"object":"invoice","parent":{"Type":"x","Subscription_Details":{"Subscription":"s"}}}`),
	eventWithObject(`{"object":"invoice","ſubscription":"sub_1","cuſtomer":"cus_1"}`),
	eventWithObject(`{"object":"customer","\u212aey":"v","\u017f":"s","K":1,"ſ":2}`),
	eventWithObject(`{"object":"customer","\u0069d":"cus_1"}`),
	eventWithObject(`{"object":"customer","i\u0064":"cus_1","\u006fbject":"invoice"}`),
	`{"\u0069d":"evt_1","data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","d\u0061ta":{"object":{"object":"customer"}}}`,
	eventWithObject(`{"object":"customer","x\u00e9":1,"\u00e9":2,"é":3,"\ud800":4}`),
	eventWithObject("{\"object\":\"customer\",\"\xff\":1,\"id\xff\":2}"),
	eventWithObject(`{"object":"customer","ide":1,"i":2,"objects":3,"customerx":4,"CUSTOMERX":5,"ID_":6}`),
	eventWithObject(`{"object":"customer","metadata":{"Key":"v","\u00e9":"\u00e9","\ud800x":"\ud800","a\"b":"c\\d"}}`),
	// Invalid escapes, control characters, unterminated strings in
	// skipped fields.
	eventWithObject(`{"object":"customer","x":"\q"}`),
	eventWithObject(`{"object":"customer","x":"\u12"}`),
	eventWithObject(`{"object":"customer","x":"\u12G4"}`),
	eventWithObject(`{"object":"customer","x":"\u00E9\uD83D\uDE00\/\b\f\n\r\t\"\\"}`),
	eventWithObject(`{"object":"customer","x":"\`),
	eventWithObject("{\"object\":\"customer\",\"x\":\"a\x01b\"}"),
	eventWithObject("{\"object\":\"customer\",\"x\":\"a\tb\"}"),
	eventWithObject("{\"object\":\"customer\",\"x\":\"a\x1fb\"}"),
	eventWithObject("{\"object\":\"customer\",\"x\":\"a\x7fb\x80\xff\"}"),
	eventWithObject("{\"object\":\"customer\",\"x\":[\"\x00\"]}"),
	eventWithObject("{\"object\":\"customer\",\"x\x01\":1}"),
	eventWithObject(`{"object":"customer","x":{"a":"\x"}}`),
	`{"id":"evt_1","x":"\a","data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","data":{"x":"\u","object":{"object":"customer"}}}`,
	// Trailing bytes, whitespace, BOM, truncation.
	eventWithObject(`{"object":"customer"}`) + " x",
	eventWithObject(`{"object":"customer"}`) + "}",
	eventWithObject(`{"object":"customer"}`) + ",",
	eventWithObject(`{"object":"customer"}`) + " \t\r\n",
	eventWithObject(`{"object":"customer"}`) + "\f",
	eventWithObject(`{"object":"customer"}`) + "\x00",
	eventWithObject(`{"object":"customer"}`) + "{}",
	" \t\r\n" + eventWithObject(`{"object":"customer"}`),
	"\xef\xbb\xbf" + eventWithObject(`{"object":"customer"}`),
	"\v" + eventWithObject(`{"object":"customer"}`),
	"{ \"id\" : \"evt_1\" ,\n\t\"data\" :\r{ \"object\" : { \"object\" : \"customer\" , \"x\" : [ 1 , { } , [ ] ] } } }",
	"{\"id\"\f:\"evt_1\"}",
	"{\"id\":\"evt_1\"\u00a0}",
	`{"id":"evt_1","data":{"object":{"object":"customer"}}`,
	`{"id":"evt_1","data":{"object":{"object":"customer"},}}`,
	`{"id":"evt_1",,"data":{}}`,
	`{"id":"evt_1" "data":{}}`,
	`{"id" "evt_1"}`,
	`{"id":}`,
	`{,}`,
	`{"id":"evt_1","x":[1,]}`,
	`{"id":"evt_1","x":[,1]}`,
	`{"id":"evt_1","x":[1 2]}`,
	`{"id":"evt_1","x":{"a" 1}}`,
	`{"id":"evt_1","x":{1:1}}`,
	`{"id":"evt_1","x":'a'}`,
	`{id:"evt_1"}`,
	`{}`, `{ }`, `{"data":{}}`, `{"data":{"object":{}}}`, `{"data":{"object":{"object":""}}}`,
	// Numbers.
	eventWithObject(`{"object":"invoice","amount_paid":-0,"amount_due":0,"x":-0.0e-0}`),
	eventWithObject(`{"object":"invoice","amount_paid":1e5}`),
	eventWithObject(`{"object":"invoice","amount_paid":1E5}`),
	eventWithObject(`{"object":"invoice","amount_paid":1.0}`),
	eventWithObject(`{"object":"invoice","amount_paid":1.5}`),
	eventWithObject(`{"object":"invoice","amount_paid":01}`),
	eventWithObject(`{"object":"invoice","amount_paid":-01}`),
	eventWithObject(`{"object":"invoice","amount_paid":00}`),
	eventWithObject(`{"object":"invoice","amount_paid":+1}`),
	eventWithObject(`{"object":"invoice","amount_paid":-}`),
	eventWithObject(`{"object":"invoice","amount_paid":1.}`),
	eventWithObject(`{"object":"invoice","amount_paid":.5}`),
	eventWithObject(`{"object":"invoice","amount_paid":1e}`),
	eventWithObject(`{"object":"invoice","amount_paid":1e+}`),
	eventWithObject(`{"object":"invoice","amount_paid":0x10}`),
	eventWithObject(`{"object":"invoice","amount_paid":NaN}`),
	eventWithObject(`{"object":"invoice","amount_paid":1_000}`),
	eventWithObject(`{"object":"invoice","amount_paid":9223372036854775807,"amount_due":-9223372036854775808}`),
	eventWithObject(`{"object":"invoice","amount_paid":9223372036854775808}`),
	eventWithObject(`{"object":"invoice","amount_due":-9223372036854775809}`),
	eventWithObject(`{"object":"invoice","amount_due":99999999999999999999999999999}`),
	eventWithObject(`{"object":"subscription","current_period_end":-0}`),
	eventWithObject(`{"object":"subscription","current_period_end":1e3}`),
	eventWithObject(`{"object":"subscription","current_period_end":9223372036854775808}`),
	eventWithObject(`{"object":"subscription","items":{"data":[{"current_period_start":1.5}]}}`),
	eventWithObject(`{"object":"subscription","items":{"data":[{"current_period_end":12345678901234567890}]}}`),
	eventWithObject(`{"object":"customer","x":[01]}`),
	eventWithObject(`{"object":"customer","x":[-0,0.5e+7,1E-2,123456789012345678901234567890,-1.25e-300]}`),
	eventWithObject(`{"object":"customer","x":1.e5}`),
	eventWithObject(`{"object":"customer","x":-a}`),
	`{"id":"evt_1","created":-0,"data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","created":1e5,"data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","created":01,"data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","created":9223372036854775808,"data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","created":"2022-02-15T00:27:45Z","data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","created":[1],"data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","created":{"a":[}},"data":{"object":{"object":"customer"}}}`,
	// Literals.
	eventWithObject(`{"object":"subscription","cancel_at_period_end":tru}`),
	eventWithObject(`{"object":"subscription","cancel_at_period_end":True}`),
	eventWithObject(`{"object":"subscription","cancel_at_period_end":truex}`),
	eventWithObject(`{"object":"subscription","cancel_at_period_end":nul}`),
	eventWithObject(`{"object":"subscription","x":falsey}`),
	eventWithObject(`{"object":"subscription","x":[true,false,null]}`),
	`{"id":"evt_1","livemode":false,"livemode":true}`,
	`{"id":"evt_1","livemode":nulll}`,
	// Deep nesting.
	eventWithObject(`{"object":"customer","x":` + strings.Repeat("[", 400) + strings.Repeat("]", 400) + `}`),
	eventWithObject(`{"object":"customer","x":` + strings.Repeat(`{"a":`, 300) + "1" + strings.Repeat("}", 300) + `}`),
	eventWithObject(`{"object":"customer","x":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`),
	eventWithObject(`{"object":"customer","x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`),
	eventWithObject(`{"object":"customer","x":` + strings.Repeat("[", 400) + strings.Repeat("]", 399) + `}`),
	eventWithObject(`{"object":"customer","customer":` + strings.Repeat(`{"id":`, 300) + `"cus_1"` + strings.Repeat("}", 300) + `}`),
	// Invalid UTF-8 and escapes in the values of known fields.
	"{\"id\":\"evt_\xff\",\"type\":\"a\xc3\",\"data\":{\"object\":{\"object\":\"customer\",\"email\":\"\xed\xa0\x80\",\"name\":\"\xf4\x90\x80\x80\"}}}",
	`{"id":"evt_\u0000","type":"\ud800","api_version":"\udc00\ud800","account":"\u00e9","data":{"object":{"object":"cus\u0074omer","id":"\"\\\/"}}}`,
	"{\"id\":\"evt_1\",\"object\":\"ev\xffent\",\"data\":{\"object\":{\"object\":\"customer\",\"customer\":\"\xff\",\"charge\":{\"id\":\"\xfe\"}}}}",
	eventWithObject("{\"object\":\"customer\",\"metadata\":{\"\xff\":\"\xfe\",\"a\":\"\\ud83d\\ude00\"}}"),
	eventWithObject("{\"object\":\"customer\",\"email\":\"a\x7f\"}"),
	// References.
	eventWithObject(`{"object":"invoice","customer":{"id":"cus_1","id":"cus_2"},"charge":{"ID":"ch_1"},"invoice":{},"subscription":{"id":null}}`),
	eventWithObject(`{"object":"invoice","customer":{"id":5}}`),
	eventWithObject(`{"object":"invoice","customer":[]}`),
	eventWithObject(`{"object":"invoice","customer":true}`),
	eventWithObject(`{"object":"invoice","customer":1}`),
	eventWithObject(`{"object":"invoice","payment_intent":{"id":"pi_1","x":{"y":[1,"\u00e9"]}}}`),
	eventWithObject(`{"object":"invoice","customer_account":"\u0061cct_1"}`),
	// data and data.object themselves.
	`{"id":"evt_1","data":null}`,
	`{"id":"evt_1","data":[]}`,
	`{"id":"evt_1","data":"x"}`,
	`{"id":"evt_1","data":{"object":null}}`,
	`{"id":"evt_1","data":{"object":"x"}}`,
	`{"id":"evt_1","data":{"object":[]}}`,
	`{"id":"evt_1","data":{"object":5}}`,
	`{"id":"evt_1","data":{"previous_attributes":{"a":1},"object":{"object":"customer"}}}`,
	// Thin events.
	`{"id":"evt_t","object":"v2.core.event","type":"x","created":"2022-02-15T00:27:45.330Z","related_object":{"id":"cus_1","type":"customer"},"data":{"reason":{"a":[1]}}}`,
	`{"id":"evt_t","object":null,"data":{"object":{"object":"customer"}}}`,
}

// scanAcceptCases are bodies the scanner must vouch for: what real
// traffic has, and the corners it decodes itself (nulls, escapes, -0).
var scanAcceptCases = []string{
	testEvent,
	`{}`, `{"data":{}}`, `{"data":{"object":{}}}`,
	eventWithObject(`{"object":"customer","metadata":{"a":"1","a":"2","b":null}}`),
	eventWithObject(`{"object":"customer","x":1,"x":2,"x":{}}`),
	eventWithObject(`{"object":"customer","ide":1,"i":2,"objects":3,"customerx":4,"CUSTOMERX":5,"ID_":6}`),
	eventWithObject(`{"object":"customer","metadata":{"Key":"v","\u00e9":"\u00e9","\ud800x":"\ud800","a\"b":"c\\d"}}`),
	eventWithObject(`{"object":"customer","x":"\u00E9\uD83D\uDE00\/\b\f\n\r\t\"\\"}`),
	eventWithObject("{\"object\":\"customer\",\"x\":\"a\x7fb\x80\xff\"}"),
	eventWithObject(`{"object":"customer"}`) + " \t\r\n",
	" \t\r\n" + eventWithObject(`{"object":"customer"}`),
	"{ \"id\" : \"evt_1\" ,\n\t\"data\" :\r{ \"object\" : { \"object\" : \"customer\" , \"x\" : [ 1 , { } , [ ] ] } } }",
	eventWithObject(`{"object":"invoice","amount_paid":-0,"amount_due":0,"x":-0.0e-0}`),
	eventWithObject(`{"object":"invoice","amount_paid":9223372036854775807,"amount_due":-9223372036854775808}`),
	eventWithObject(`{"object":"subscription","current_period_end":-0}`),
	eventWithObject(`{"object":"customer","x":[-0,0.5e+7,1E-2,123456789012345678901234567890,-1.25e-300]}`),
	`{"id":"evt_1","created":-0,"data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","created":1e5,"data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","created":9223372036854775808,"data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","created":"2022-02-15T00:27:45Z","data":{"object":{"object":"customer"}}}`,
	`{"id":"evt_1","created":[1],"data":{"object":{"object":"customer"}}}`,
	eventWithObject(`{"object":"subscription","x":[true,false,null]}`),
	eventWithObject(`{"object":"customer","x":` + strings.Repeat("[", 400) + strings.Repeat("]", 400) + `}`),
	eventWithObject(`{"object":"customer","customer":{"id":"cus_1","x":` + strings.Repeat(`{"id":`, 300) + `"cus_1"` + strings.Repeat("}", 300) + `}}`),
	"{\"id\":\"evt_\xff\",\"type\":\"a\xc3\",\"data\":{\"object\":{\"object\":\"customer\",\"email\":\"\xed\xa0\x80\",\"name\":\"\xf4\x90\x80\x80\"}}}",
	`{"id":"evt_\u0000","type":"\ud800","api_version":"\udc00\ud800","account":"\u00e9","data":{"object":{"object":"cus\u0074omer","id":"\"\\\/"}}}`,
	"{\"id\":\"evt_1\",\"object\":\"ev\xffent\",\"data\":{\"object\":{\"object\":\"customer\",\"customer\":\"\xff\",\"charge\":{\"id\":\"\xfe\"}}}}",
	eventWithObject(`{"object":"invoice","customer":{"id":"cus_1","id":"cus_2"},"charge":{"ID":"ch_1"},"invoice":{},"subscription":{"id":null}}`),
	eventWithObject(`{"object":"invoice","payment_intent":{"id":"pi_1","x":{"y":[1,"\u00e9"]}}}`),
	`{"id":"evt_1","data":{"previous_attributes":{"a":1},"object":{"object":"customer"}}}`,
	`{"id":"evt_t","object":"v2.core.event","type":"x","created":"2022-02-15T00:27:45.330Z","related_object":{"id":"cus_1","type":"customer"},"data":{"reason":{"a":[1]}}}`,
	`{"id":"evt_t","object":null,"data":{"object":{"object":"customer"}}}`,
}

// scanFieldPaths are the fields the scanner decodes, as the event of
// value at each: each is tried with each of scanFieldValues.
var scanFieldPaths = []func(v string) string{
	func(v string) string { return `{"id":` + v + `,"data":{"object":{"object":"customer"}}}` },
	func(v string) string { return `{"object":` + v + `,"data":{"object":{"object":"customer"}}}` },
	func(v string) string { return `{"type":` + v + `,"data":{"object":{"object":"customer"}}}` },
	func(v string) string { return `{"created":` + v + `,"data":{"object":{"object":"customer"}}}` },
	func(v string) string { return `{"api_version":` + v + `,"data":{"object":{"object":"customer"}}}` },
	func(v string) string { return `{"livemode":` + v + `,"data":{"object":{"object":"customer"}}}` },
	func(v string) string { return `{"account":` + v + `,"data":{"object":{"object":"customer"}}}` },
	func(v string) string { return `{"id":"evt_1","data":` + v + `}` },
	func(v string) string { return `{"id":"evt_1","data":{"object":` + v + `}}` },
	func(v string) string { return `{"id":"evt_1","data":{"object":{"object":"customer"},"x":` + v + `}}` },
	func(v string) string { return `{"id":"evt_1","x":` + v + `,"data":{"object":{"object":"customer"}}}` },
	objectAt("id"), objectAt("object"), objectAt("customer"), objectAt("customer_account"), objectAt("charge"),
	objectAt("invoice"), objectAt("payment_intent"), objectAt("subscription"), objectAt("email"), objectAt("name"),
	objectAt("metadata"), objectAt("status"), objectAt("cancel_at_period_end"), objectAt("current_period_end"),
	objectAt("items"), objectAt("amount_paid"), objectAt("amount_due"), objectAt("currency"), objectAt("parent"),
	objectAt("lines"), objectAt("x"),
	func(v string) string { return eventWithObject(`{"object":"customer","metadata":{"a":` + v + `}}`) },
	func(v string) string { return eventWithObject(`{"object":"subscription","items":{"data":` + v + `}}`) },
	func(v string) string {
		return eventWithObject(`{"object":"subscription","items":{"data":[` + v + `]}}`)
	},
	func(v string) string {
		return eventWithObject(`{"object":"subscription","items":{"data":[{},` + v + `]}}`)
	},
	itemAt("id"), itemAt("price"), itemAt("current_period_start"), itemAt("current_period_end"), itemAt("x"),
	func(v string) string {
		return eventWithObject(`{"object":"subscription","items":{"data":[{"price":{"id":` + v + `}}]}}`)
	},
	func(v string) string { return eventWithObject(`{"object":"invoice","lines":{"data":` + v + `}}`) },
	func(v string) string { return eventWithObject(`{"object":"invoice","lines":{"data":[` + v + `]}}`) },
	func(v string) string {
		return eventWithObject(`{"object":"invoice","lines":{"data":[{"subscription":` + v + `}]}}`)
	},
	func(v string) string {
		return eventWithObject(`{"object":"invoice","lines":{"data":[{"parent":` + v + `}]}}`)
	},
	func(v string) string {
		return eventWithObject(`{"object":"invoice","lines":{"data":[{"parent":{"subscription_item_details":` + v + `}}]}}`)
	},
	func(v string) string {
		return eventWithObject(`{"object":"invoice","lines":{"data":[{"parent":{"invoice_item_details":{"subscription":` + v + `}}}]}}`)
	},
	func(v string) string { return eventWithObject(`{"object":"invoice","parent":{"type":` + v + `}}`) },
	func(v string) string {
		return eventWithObject(`{"object":"invoice","parent":{"subscription_details":` + v + `}}`)
	},
	func(v string) string {
		return eventWithObject(`{"object":"invoice","parent":{"subscription_details":{"subscription":` + v + `}}}`)
	},
}

func objectAt(key string) func(string) string {
	return func(v string) string { return eventWithObject(`{"object":"invoice","` + key + `":` + v + `}`) }
}

func itemAt(key string) func(string) string {
	return func(v string) string {
		return eventWithObject(`{"object":"subscription","items":{"data":[{"` + key + `":` + v + `}]}}`)
	}
}

var scanFieldValues = []string{
	`null`, `true`, `false`, `0`, `-0`, `-1`, `1.5`, `1e3`, `9223372036854775808`, `""`, `"s"`, `"\u00e9"`,
	"\"\xff\"", `"\ud800"`, `{}`, `[]`, `[null]`, `[{}]`, `{"id":"x"}`, `{"id":null}`, `{"ID":"x"}`, `{"data":[]}`,
	`{"data":null}`, `{"data":[{}]}`, `{"data":[{"id":"si_1"}]}`, `{"subscription":"s"}`, `{"a":"b"}`, `{"a":1}`,
	`{"id":"x","id":"y"}`, `nul`, `01`, `"\q"`,
}

// scanCorpus is every body the tests try: the edge cases here and
// Decode's, the field values, and the fixtures (those of modernCases
// when t is set).
func scanCorpus(tb testing.TB, t *testing.T) [][]byte {
	var out [][]byte
	for _, list := range [][]string{scanEdgeCases, scanAcceptCases, decodeEdgeCases} {
		for _, raw := range list {
			out = append(out, []byte(raw))
		}
	}
	for _, at := range scanFieldPaths {
		for _, v := range scanFieldValues {
			out = append(out, []byte(at(v)))
		}
	}
	if _, err := fixtures.Find("stripe"); err == nil {
		for _, p := range fixtures.Payloads(tb) {
			out = append(out, p.Raw)
		}
		if t != nil {
			for _, tt := range modernCases() {
				out = append(out, tt.event(t))
			}
		}
	}
	return out
}

// TestScanMatchesUnmarshal is the scanner's property: whatever it vouches
// for, json.Unmarshal decodes alike. It tries the corpus, and mutations
// of it made with a fixed seed.
func TestScanMatchesUnmarshal(t *testing.T) {
	t.Parallel()
	corpus := scanCorpus(t, t)
	rng := rand.New(rand.NewPCG(1, 2))
	tried, vouched := 0, 0
	for _, raw := range corpus {
		for i := 0; i < 60; i++ {
			b := raw
			if i > 0 {
				b = mutateJSON(rng, raw)
			}
			tried++
			if scanOK(t, b) {
				vouched++
			}
		}
	}
	t.Logf("%d bodies, %d vouched for", tried, vouched)
	if vouched < tried/10 {
		t.Errorf("the scanner vouched for %d of %d bodies: the test hardly tests it", vouched, tried)
	}
}

// mutateJSON returns raw with a few edits of the kinds that break or
// bend JSON: a byte deleted, replaced or inserted (from JSON's
// punctuation and other telling bytes), a letter's case flipped, a span
// repeated, or a known member inserted after a '{'.
func mutateJSON(rng *rand.Rand, raw []byte) []byte {
	const bytes = "{}[],:\"\\ \t\r\n0123456789-+.eEtfnul\x00\x01\x1f\x7f\x80\xc3\xa9\xff"
	members := []string{`"id":"x",`, `"object":null,`, `"data":{},`, `"metadata":{"a":"b"},`, `"customer":{"id":"c"},`,
		`"items":{"data":[{"id":"si"}]},`, `"lines":{"data":[{"subscription":"s"}]},`, `"amount_paid":7,`,
		`"Customer":"c",`, `"parent":null,`, `"object":{"object":"customer"},`, `"current_period_end":null,`}
	b := append([]byte(nil), raw...)
	for n := 1 + rng.IntN(3); n > 0; n-- {
		if len(b) == 0 {
			b = append(b, bytes[rng.IntN(len(bytes))])
			continue
		}
		i := rng.IntN(len(b))
		switch rng.IntN(6) {
		case 0:
			b = append(b[:i], b[i+1:]...)
		case 1:
			b[i] = bytes[rng.IntN(len(bytes))]
		case 2:
			b = append(b[:i], append([]byte{bytes[rng.IntN(len(bytes))]}, b[i:]...)...)
		case 3:
			if c := b[i]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
				b[i] ^= 0x20
			}
		case 4:
			j := i + rng.IntN(min(len(b)-i, 40)+1)
			b = append(b[:j], append(append([]byte(nil), b[i:j]...), b[j:]...)...)
		case 5:
			if k := strings.IndexByte(string(b[i:]), '{'); k >= 0 {
				at := i + k + 1
				m := members[rng.IntN(len(members))]
				b = append(b[:at], append([]byte(m), b[at:]...)...)
			}
		}
	}
	return b
}

// TestScanEdgeCases: the edge cases hold the property, and those the
// scanner must vouch for, it does.
func TestScanEdgeCases(t *testing.T) {
	t.Parallel()
	for _, raw := range scanEdgeCases {
		scanOK(t, []byte(raw))
	}
	for _, raw := range scanAcceptCases {
		if !scanOK(t, []byte(raw)) {
			t.Errorf("scan(%q) does not vouch, want it to", raw)
		}
	}
}

// TestScanTakesRealEvents: every body of TestDecodeRealEventsInOnePass
// takes the scanner, not encoding/json, or Decode would gain nothing.
func TestScanTakesRealEvents(t *testing.T) {
	t.Parallel()
	for _, p := range realEvents(t) {
		if !scanOK(t, p.Raw) {
			t.Errorf("%s: the scanner does not vouch for it", p.Name)
		}
	}
}

// TestScanFieldNames: the scanner's lists of field names are the JSON
// names of the structs' fields, in their order, and its indexes find
// them: a field added to oneEvent or oneObject (or to what they hold)
// fails it until the scanner decodes it, as it would otherwise skip its
// key.
func TestScanFieldNames(t *testing.T) {
	t.Parallel()
	var ev oneEvent
	var line wireInvoiceLine
	var parent wireInvoiceParent
	for _, tt := range []struct {
		typ   reflect.Type
		names []string
		index func([]byte) int
	}{
		{reflect.TypeOf(ev), eventNames, eventIndex},
		{reflect.TypeOf(ev.Data), dataNames, nil},
		{reflect.TypeOf(ev.object), objectNames, objectIndex},
		{reflect.TypeOf(ev.object.Items), listNames, nil},
		{reflect.TypeOf(ev.object.Lines), listNames, nil},
		{reflect.TypeOf(SubscriptionItem{}), itemNames, nil},
		{reflect.TypeOf(SubscriptionItem{}.Price), idNames, nil},
		{reflect.TypeOf(line), lineNames, nil},
		{reflect.TypeOf(line.Parent).Elem(), lineParentNames, nil},
		{reflect.TypeOf(line.Parent).Elem().Field(0).Type.Elem(), subscriptionName, nil},
		{reflect.TypeOf(line.Parent).Elem().Field(1).Type.Elem(), subscriptionName, nil},
		{reflect.TypeOf(parent), parentNames, nil},
		{reflect.TypeOf(parent.SubscriptionDetails).Elem(), subscriptionName, nil},
	} {
		var names []string
		for i := range tt.typ.NumField() {
			f := tt.typ.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous || name == "" || name == "-" {
				t.Fatalf("%v.%s: want a JSON name, not embedded", tt.typ, f.Name)
			}
			names = append(names, name)
		}
		if !reflect.DeepEqual(names, tt.names) {
			t.Errorf("%v: the scanner's names are %q, the struct's %q", tt.typ, tt.names, names)
		}
		for i, name := range tt.names {
			if got := fieldOf(keyBytes{[]byte(`"` + name + `"`), true}, tt.names, tt.index); got != i {
				t.Errorf("%v: %q is field %d, want %d", tt.typ, name, got, i)
			}
			if got := fieldOf(keyBytes{[]byte(`"` + strings.ToUpper(name) + `"`), true}, tt.names, tt.index); got != keyFolds {
				t.Errorf("%v: %q is field %d, want it to fold", tt.typ, strings.ToUpper(name), got)
			}
		}
	}
}

// FuzzScanMatchesUnmarshal checks the property of TestScanMatchesUnmarshal
// on any input.
func FuzzScanMatchesUnmarshal(f *testing.F) {
	for _, raw := range scanCorpus(f, nil) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		scanOK(t, raw)
	})
}
