package bench

import "testing"

// The receiver reads the event ID of hookd's delivery bodies without
// decoding them, and decodes any other body.
func TestEventID(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"cursor":"1-2","customerId":"cus_1","eventId":"evt_123","customer":{"id":"cus_1"}}`, "evt_123"},
		{`{"eventId" : "evt_spaced"}`, "evt_spaced"},
		{`{"eventId":"evt_\u0031"}`, "evt_1"},
		{`{"customerId":"cus_1"}`, ""},
	} {
		got, err := eventID([]byte(c.body))
		if err != nil || got != c.want {
			t.Errorf("eventID(%s) = %q, %v; want %q", c.body, got, err, c.want)
		}
	}
	if _, err := eventID([]byte(`{"eventId":`)); err == nil {
		t.Error("eventID of a cut body: no error")
	}
}
