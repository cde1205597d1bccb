package stripe

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/hookd/hookd/internal/fixtures"
)

// event renders a snapshot event with the given data block.
func event(id, typ string, created int64, data string) []byte {
	return []byte(`{"id":"` + id + `","object":"event","type":"` + typ + `","created":` + jsonInt(created) +
		`,"data":` + data + `}`)
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestChangeHashTwinsAndDistinctChanges(t *testing.T) {
	t.Parallel()
	const (
		toPastDue = `{"object":{"id":"sub_1","object":"subscription","status":"past_due","metadata":{"a":"1","b":"2"}},"previous_attributes":{"status":"active"}}`
		// The same change in the same bytes: what a twin is.
		toPastDueTwin = toPastDue
		toActive      = `{"object":{"id":"sub_1","object":"subscription","status":"active","metadata":{"a":"1","b":"2"}},"previous_attributes":{"status":"past_due"}}`
		// Same object as toPastDue, reached from another state.
		toPastDueFromTrial = `{"object":{"id":"sub_1","object":"subscription","status":"past_due","metadata":{"a":"1","b":"2"}},"previous_attributes":{"status":"trialing"}}`
	)
	h := ChangeHash(event("evt_1", "customer.subscription.updated", 1700000000, toPastDue))
	if h == "" || len(h) != 64 {
		t.Fatalf("ChangeHash = %q, want 64 hex digits", h)
	}
	// A twin is another Event object: another ID, other envelope fields.
	twin := []byte(`{"id":"evt_2","object":"event","api_version":"2025-08-27.basil","type":"customer.subscription.updated",` +
		`"created":1700000000,"pending_webhooks":3,"request":{"id":"req_2"},"data":` + toPastDueTwin + `}`)
	if got := ChangeHash(twin); got != h {
		t.Errorf("a twin (other event ID and envelope, same data) hashes %s, want %s", got, h)
	}
	for name, data := range map[string]string{"another change": toActive, "same object, other previous_attributes": toPastDueFromTrial} {
		if got := ChangeHash(event("evt_3", "customer.subscription.updated", 1700000000, data)); got == h {
			t.Errorf("%s hashes like the first change", name)
		}
	}
	// Numbers keep their text: a float round trip must not merge 2^53+1
	// with 2^53.
	a := ChangeHash(event("e", "t", 1, `{"object":{"id":"x","n":9007199254740993}}`))
	b := ChangeHash(event("e", "t", 1, `{"object":{"id":"x","n":9007199254740992}}`))
	if a == b {
		t.Error("large integers that differ hash alike")
	}
	for _, payload := range []string{`{"id":"evt_thin","object":"v2.core.event"}`, `not json`, `{"data":null}`, `{"data":[1]}`} {
		if got := ChangeHash([]byte(payload)); got != "" {
			t.Errorf("ChangeHash(%s) = %q, want \"\" (no data block)", payload, got)
		}
	}
}

func TestSameSecondOrder(t *testing.T) {
	t.Parallel()
	const (
		// Three changes to one customer in one second: email a→b, then
		// metadata plan free→pro.
		emailAB  = `{"object":{"id":"cus_1","email":"b@x","metadata":{"plan":"free"}},"previous_attributes":{"email":"a@x"}}`
		planPro  = `{"object":{"id":"cus_1","email":"b@x","metadata":{"plan":"pro"}},"previous_attributes":{"metadata":{"plan":"free"}}}`
		emailBA  = `{"object":{"id":"cus_1","email":"a@x","metadata":{"plan":"free"}},"previous_attributes":{"email":"b@x"}}`
		noPrev   = `{"object":{"id":"cus_1","email":"b@x"}}`
		addedKey = `{"object":{"id":"cus_1","metadata":{"plan":"pro","seats":"3"}},"previous_attributes":{"metadata":{"seats":null}}}`
		// basil: a renewal moves the period on the items.
		renewed  = `{"object":{"id":"sub_1","items":{"data":[{"id":"si_1","current_period_end":200}]}},"previous_attributes":{"items":{"data":[{"id":"si_1","current_period_end":100}]}}}`
		current  = `{"object":{"id":"sub_1","items":{"data":[{"id":"si_1","current_period_end":100}]},"status":"active"},"previous_attributes":{"status":"trialing"}}`
		twoItems = `{"object":{"id":"sub_1","items":{"data":[{"id":"si_1","current_period_end":100},{"id":"si_2"}]}},"previous_attributes":{"status":"trialing"}}`
	)
	tests := []struct {
		name string
		a, b string
		want Order
	}{
		{"a's previous values are b's new values", planPro, emailAB, After},
		{"mirror", emailAB, planPro, Before},
		{"a change and its revert decide nothing", emailAB, emailBA, Undecided},
		{"no previous_attributes decides nothing", noPrev, planPro, Undecided},
		{"twins decide nothing", emailAB, emailAB, Undecided},
		{"a key added reads as null before", addedKey, planPro, After},
		{"nested arrays compare element by element", renewed, current, After},
		{"arrays of another length differ", renewed, twoItems, Undecided},
		{"unparsable data decides nothing", planPro, `{"object":`, Undecided},
		{"missing data decides nothing", planPro, ``, Undecided},
	}
	for _, tt := range tests {
		if got := SameSecondOrder(json.RawMessage(tt.a), json.RawMessage(tt.b)); got != tt.want {
			t.Errorf("%s: SameSecondOrder = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// SameSecondOrder is a strict order where it decides: swapping its
// arguments swaps After and Before, and it never panics.
func FuzzSameSecondOrder(f *testing.F) {
	f.Add(`{"object":{"a":1,"b":{"c":[1,2]}},"previous_attributes":{"a":0}}`, `{"object":{"a":0,"b":{"c":[1,2]}},"previous_attributes":{"b":{"c":[1]}}}`)
	f.Add(`{"object":{"id":"x"}}`, `{"object":{"id":"x"},"previous_attributes":{}}`)
	f.Add(`{"object":{"s":"b"},"previous_attributes":{"s":"a"}}`, `{"object":{"s":"a"},"previous_attributes":{"s":"b"}}`)
	f.Fuzz(func(t *testing.T, a, b string) {
		ab := SameSecondOrder(json.RawMessage(a), json.RawMessage(b))
		ba := SameSecondOrder(json.RawMessage(b), json.RawMessage(a))
		want := map[Order]Order{After: Before, Before: After, Undecided: Undecided}[ab]
		if ba != want {
			t.Fatalf("SameSecondOrder(a, b) = %v but SameSecondOrder(b, a) = %v", ab, ba)
		}
		if a == b && ab != Undecided {
			t.Fatalf("an event ordered against itself: %v", ab)
		}
	})
}

// ChangeHash runs once per applied event (the twin key): its cost on a
// real, 2025-era subscription event.
func BenchmarkChangeHash(b *testing.B) {
	obj := fixtures.Read(b, "stripe-modern", "stripe-openapi/object.subscription.json")
	payload := event("evt_1", "customer.subscription.updated", 1700000000,
		`{"object":`+string(obj)+`,"previous_attributes":{"status":"trialing"}}`)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if ChangeHash(payload) == "" {
			b.Fatal("no hash")
		}
	}
}

// Data finds the data block as encoding/json does, for any JSON object:
// the scan that replaces a decode per event reads the same value.
func FuzzData(f *testing.F) {
	f.Add([]byte(testEvent))
	f.Add([]byte(`{"data":{"a":1},"data":{"b":"}"}}`))
	f.Add([]byte(`{"x":"\"data\"","y":[{"data":1}],"data":{"object":{"s":"a\\\"b"}}}`))
	f.Add([]byte(`{"data":null}`))
	f.Add([]byte(`{"id":"evt","object":"v2.core.event"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		got := Data(payload)
		var ev struct {
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(payload, &ev) != nil {
			return // not valid JSON: Data only must not panic
		}
		var want json.RawMessage
		if firstNonSpace(ev.Data) == '{' {
			want = ev.Data
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Data(%q) = %q, encoding/json reads %q", payload, got, want)
		}
	})
}
