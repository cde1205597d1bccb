package stripe

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hookd/hookd/internal/fixtures"
)

// eventWithObject wraps a data.object JSON text in an otherwise valid event.
func eventWithObject(object string) string {
	return `{"id":"evt_1","object":"event","type":"test.event","created":1700000000,"api_version":"2020-03-02",` +
		`"livemode":true,"account":"acct_1","data":{"object":` + object + `}}`
}

func TestDecodeEnvelopeRouting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		object       string
		wantObjectID string
		wantType     string
		wantCustomer string
		wantRouting  string
		wantRelated  []string
	}{
		{
			name:         "customer object routes by its id",
			object:       `{"id":"cus_1","object":"customer","email":"a@example.com"}`,
			wantObjectID: "cus_1", wantType: "customer",
			wantCustomer: "cus_1", wantRouting: RoutingObjectID,
		},
		{
			name:         "deleted customer",
			object:       `{"id":"cus_1","object":"customer","deleted":true}`,
			wantObjectID: "cus_1", wantType: "customer",
			wantCustomer: "cus_1", wantRouting: RoutingObjectID,
		},
		{
			name:         "customer as string",
			object:       `{"id":"sub_1","object":"subscription","customer":"cus_2"}`,
			wantObjectID: "sub_1", wantType: "subscription",
			wantCustomer: "cus_2", wantRouting: RoutingObjectCustomer,
		},
		{
			name:         "customer expanded",
			object:       `{"id":"in_1","object":"invoice","customer":{"id":"cus_3","object":"customer","metadata":{"id":"not this"}}}`,
			wantObjectID: "in_1", wantType: "invoice",
			wantCustomer: "cus_3", wantRouting: RoutingObjectCustomer,
		},
		{
			name:         "customer null",
			object:       `{"id":"pi_1","object":"payment_intent","customer":null}`,
			wantObjectID: "pi_1", wantType: "payment_intent",
		},
		{
			name:         "customer absent",
			object:       `{"id":"pi_1","object":"payment_intent"}`,
			wantObjectID: "pi_1", wantType: "payment_intent",
		},
		{
			name:         "customer expanded without id",
			object:       `{"id":"in_1","object":"invoice","customer":{"object":"customer"}}`,
			wantObjectID: "in_1", wantType: "invoice",
		},
		{
			name:         "object without id",
			object:       `{"object":"balance","available":[]}`,
			wantObjectID: "", wantType: "balance",
		},
		{
			name:         "dispute has only a charge",
			object:       `{"id":"dp_1","object":"dispute","charge":"ch_1","payment_intent":null}`,
			wantObjectID: "dp_1", wantType: "dispute",
			wantRelated: []string{"ch_1"},
		},
		{
			name: "related ids expanded and strings in fixed order",
			object: `{"id":"ch_9","object":"charge","subscription":{"id":"sub_1","object":"subscription"},` +
				`"payment_intent":"pi_1","invoice":{"id":"in_1","lines":{"data":[]}},"charge":null,"customer":{"id":"cus_9"}}`,
			wantObjectID: "ch_9", wantType: "charge",
			wantCustomer: "cus_9", wantRouting: RoutingObjectCustomer,
			wantRelated: []string{"in_1", "pi_1", "sub_1"},
		},
		{
			name:         "clover: customer null, customer_account routes",
			object:       `{"id":"sub_1","object":"subscription","customer":null,"customer_account":"acct_1Clover"}`,
			wantObjectID: "sub_1", wantType: "subscription",
			wantCustomer: "acct_1Clover", wantRouting: RoutingObjectCustomerAccount,
		},
		{
			name:         "clover: customer absent, customer_account routes",
			object:       `{"id":"in_1","object":"invoice","customer_account":"acct_1Clover","subscription":null}`,
			wantObjectID: "in_1", wantType: "invoice",
			wantCustomer: "acct_1Clover", wantRouting: RoutingObjectCustomerAccount,
		},
		{
			name:         "clover: customer wins over customer_account",
			object:       `{"id":"pi_1","object":"payment_intent","customer":"cus_1","customer_account":"acct_1Clover"}`,
			wantObjectID: "pi_1", wantType: "payment_intent",
			wantCustomer: "cus_1", wantRouting: RoutingObjectCustomer,
		},
		{
			name:         "clover: expanded customer wins over customer_account",
			object:       `{"id":"sub_1","object":"subscription","customer":{"id":"cus_2","object":"customer"},"customer_account":"acct_1Clover"}`,
			wantObjectID: "sub_1", wantType: "subscription",
			wantCustomer: "cus_2", wantRouting: RoutingObjectCustomer,
		},
		{
			name:         "clover: customer object routes by its id, not customer_account",
			object:       `{"id":"cus_1","object":"customer","customer_account":"acct_1Clover"}`,
			wantObjectID: "cus_1", wantType: "customer",
			wantCustomer: "cus_1", wantRouting: RoutingObjectID,
		},
		{
			name:         "clover: both null",
			object:       `{"id":"cs_1","object":"checkout.session","customer":null,"customer_account":null,"subscription":"sub_1"}`,
			wantObjectID: "cs_1", wantType: "checkout.session",
			wantRelated: []string{"sub_1"},
		},
		{
			name:         "all related ids",
			object:       ` { "id" : "x_1" , "object" : "thing" , "charge":"ch_1","invoice":"in_1","payment_intent":"pi_1","subscription":"sub_1" } `,
			wantObjectID: "x_1", wantType: "thing",
			wantRelated: []string{"ch_1", "in_1", "pi_1", "sub_1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := []byte(eventWithObject(tt.object))
			env, err := DecodeEnvelope(raw)
			if err != nil {
				t.Fatalf("DecodeEnvelope: got %v, want nil", err)
			}
			checks := []struct {
				field     string
				got, want any
			}{
				{"source", env.GetSource(), Source},
				{"event_id", env.GetEventId(), "evt_1"},
				{"type", env.GetType(), "test.event"},
				{"created", env.GetCreated(), int64(1700000000)},
				{"api_version", env.GetApiVersion(), "2020-03-02"},
				{"livemode", env.GetLivemode(), true},
				{"account", env.GetAccount(), "acct_1"},
				{"object_id", env.GetObjectId(), tt.wantObjectID},
				{"object_type", env.GetObjectType(), tt.wantType},
				{"customer_id", env.GetCustomerId(), tt.wantCustomer},
				{"routing", env.GetRouting(), tt.wantRouting},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %v, want %v", c.field, c.got, c.want)
				}
			}
			if !slices.Equal(env.GetRelatedObjectIds(), tt.wantRelated) {
				t.Errorf("related_object_ids: got %v, want %v", env.GetRelatedObjectIds(), tt.wantRelated)
			}
			if !bytes.Equal(env.GetPayload(), raw) {
				t.Errorf("payload: got %q, want the raw bytes", env.GetPayload())
			}
		})
	}
}

func TestDecodeEnvelopeFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		raw            string
		wantAPIVersion string
		wantLivemode   bool
		wantAccount    string
		wantCreated    int64
	}{
		{
			name:           "api_version null",
			raw:            `{"id":"evt_1","object":"event","type":"plan.created","api_version":null,"created":5,"data":{"object":{"id":"p"}}}`,
			wantAPIVersion: "", wantCreated: 5,
		},
		{
			name:           "old api_version, connect account",
			raw:            `{"id":"evt_1","type":"customer.created","api_version":"2017-08-15","account":"acct_9","livemode":true,"data":{"object":{"id":"c","object":"customer"}}}`,
			wantAPIVersion: "2017-08-15", wantLivemode: true, wantAccount: "acct_9",
		},
		{
			name:           "object field absent, account null",
			raw:            `{"id":"evt_1","type":"x","api_version":"2099-01-01.future","account":null,"data":{"object":{}}}`,
			wantAPIVersion: "2099-01-01.future",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := DecodeEnvelope([]byte(tt.raw))
			if err != nil {
				t.Fatalf("DecodeEnvelope: got %v, want nil", err)
			}
			if got := env.GetApiVersion(); got != tt.wantAPIVersion {
				t.Errorf("api_version: got %q, want %q", got, tt.wantAPIVersion)
			}
			if got := env.GetLivemode(); got != tt.wantLivemode {
				t.Errorf("livemode: got %v, want %v", got, tt.wantLivemode)
			}
			if got := env.GetAccount(); got != tt.wantAccount {
				t.Errorf("account: got %q, want %q", got, tt.wantAccount)
			}
			if got := env.GetCreated(); got != tt.wantCreated {
				t.Errorf("created: got %v, want %v", got, tt.wantCreated)
			}
		})
	}
}

func TestDecodeEnvelopeMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		wantMsg string // a substring of the error
	}{
		{"empty", ``, "empty body"},
		{"whitespace", " \n\t", "empty body"},
		{"not json", `hello`, "not a JSON object"},
		{"array", `[{"id":"evt_1"}]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"string", `"evt_1"`, "not a JSON object"},
		{"truncated", eventWithObject(`{"id":"cus_1","object":"customer"}`)[:60], "unexpected end of JSON input"},
		{"trailing garbage", eventWithObject(`{}`) + `}`, "invalid JSON"},
		{"missing id", `{"object":"event","type":"x","data":{"object":{}}}`, "missing id"},
		{"empty id", `{"id":"","type":"x","data":{"object":{}}}`, "missing id"},
		{"missing type", `{"id":"evt_1","data":{"object":{}}}`, "missing type"},
		{"missing data", `{"id":"evt_1","type":"x"}`, "missing data.object"},
		{"missing data.object", `{"id":"evt_1","type":"x","data":{}}`, "missing data.object"},
		{"data.object null", `{"id":"evt_1","type":"x","data":{"object":null}}`, "missing data.object"},
		{"data.object string", `{"id":"evt_1","type":"x","data":{"object":"cus_1"}}`, "data.object"},
		{"data not object", `{"id":"evt_1","type":"x","data":[]}`, "field data"},
		{"resource, not event", `{"id":"cus_1","object":"customer","email":null}`, `object is "customer", not "event"`},
		{"numeric id", `{"id":5,"type":"x","data":{"object":{}}}`, "field id"},
		{"created string", `{"id":"evt_1","type":"x","created":"now","data":{"object":{}}}`, "field created"},
		{"customer number", eventWithObject(`{"customer":42}`), "data.object.customer must be"},
		{"charge array", eventWithObject(`{"charge":["ch_1"]}`), "data.object.charge must be"},
		{"expanded id number", eventWithObject(`{"invoice":{"id":7}}`), "data.object.invoice.id"},
		{"customer_account number", eventWithObject(`{"customer":null,"customer_account":42}`), "data.object.customer_account must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := DecodeEnvelope([]byte(tt.raw))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error: got %v (envelope %v), want %v", err, env, ErrMalformed)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error: got %q, want it to contain %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "stripe.") || strings.Contains(err.Error(), "Go ") {
				t.Errorf("error %q names Go types, want JSON field names", err)
			}
		})
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	raw := []byte(eventWithObject(`{"id":"in_1","object":"invoice","customer":{"id":"cus_3","object":"customer"},"subscription":"sub_1","lines":{"data":[{"id":"il_1","amount":100}]}}`))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEnvelope(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeEnvelopeThin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		raw         string
		wantType    string
		wantCreated int64
		wantAccount string
		wantObject  string // object_id/object_type as "id type"
		wantCust    string
		wantRouting string
		wantRelated []string
		wantLive    bool
	}{
		{
			name: "related customer",
			raw: `{"id":"evt_t1","object":"v2.core.event","type":"v1.customer.updated","created":"2025-10-04T15:13:32.232Z",` +
				`"livemode":true,"context":"acct_9","related_object":{"id":"cus_1","type":"customer","url":"/v1/customers/cus_1"}}`,
			wantType: "v1.customer.updated", wantCreated: 1759590812, wantAccount: "acct_9",
			wantObject: "cus_1 customer", wantCust: "cus_1", wantRouting: RoutingRelatedObject, wantLive: true,
		},
		{
			name: "related v1.customer",
			raw: `{"id":"evt_t2","object":"v2.core.event","type":"x","created":"2025-10-04T15:13:32Z",` +
				`"related_object":{"id":"cus_2","type":"v1.customer","url":"/v1/customers/cus_2"}}`,
			wantType: "x", wantCreated: 1759590812,
			wantObject: "cus_2 v1.customer", wantCust: "cus_2", wantRouting: RoutingRelatedObject,
		},
		{
			name: "related subscription: routed by mapping later",
			raw: `{"id":"evt_t3","object":"v2.core.event","type":"x","created":"2025-10-04T15:13:32.232083866Z",` +
				`"context":null,"related_object":{"id":"sub_1","type":"subscription","url":"/v1/subscriptions/sub_1","stripe_context":"acct_7"}}`,
			wantType: "x", wantCreated: 1759590812, wantAccount: "acct_7",
			wantObject: "sub_1 subscription", wantRelated: []string{"sub_1"},
		},
		{
			name:     "no type, no related object, nanosecond created",
			raw:      `{"id":"evt_t4","object":"v2.core.event","created":"2025-10-04T15:13:32.232083866Z"}`,
			wantType: UntypedThinType, wantCreated: 1759590812, wantObject: " ",
		},
		{
			name:     "type null, reason, extra data",
			raw:      `{"id":"evt_t5","object":"v2.core.event","type":null,"created":"2022-02-15T00:27:45.330Z","reason":{"type":"a.b.c"},"data":{"x":1}}`,
			wantType: UntypedThinType, wantCreated: 1644884865, wantObject: " ",
		},
		{
			name:     "no created",
			raw:      `{"id":"evt_t6","object":"v2.core.event","type":"x"}`,
			wantType: "x", wantObject: " ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := DecodeEnvelope([]byte(tt.raw))
			if err != nil {
				t.Fatalf("DecodeEnvelope: got %v, want nil", err)
			}
			if !env.GetThin() {
				t.Errorf("thin: got false, want true")
			}
			if got := env.GetType(); got != tt.wantType {
				t.Errorf("type: got %q, want %q", got, tt.wantType)
			}
			if got := env.GetCreated(); got != tt.wantCreated {
				t.Errorf("created: got %d, want %d", got, tt.wantCreated)
			}
			if got := env.GetAccount(); got != tt.wantAccount {
				t.Errorf("account: got %q, want %q", got, tt.wantAccount)
			}
			if got := env.GetObjectId() + " " + env.GetObjectType(); got != tt.wantObject {
				t.Errorf("object: got %q, want %q", got, tt.wantObject)
			}
			if env.GetCustomerId() != tt.wantCust || env.GetRouting() != tt.wantRouting {
				t.Errorf("routing: got customer %q by %q, want %q by %q", env.GetCustomerId(), env.GetRouting(), tt.wantCust, tt.wantRouting)
			}
			if !slices.Equal(env.GetRelatedObjectIds(), tt.wantRelated) {
				t.Errorf("related_object_ids: got %q, want %q", env.GetRelatedObjectIds(), tt.wantRelated)
			}
			if env.GetLivemode() != tt.wantLive {
				t.Errorf("livemode: got %v, want %v", env.GetLivemode(), tt.wantLive)
			}
			if env.GetApiVersion() != "" || env.GetEventId() == "" || env.GetSource() != Source {
				t.Errorf("envelope: got api_version %q, id %q, source %q; want none, set, %q",
					env.GetApiVersion(), env.GetEventId(), env.GetSource(), Source)
			}
			if !bytes.Equal(env.GetPayload(), []byte(tt.raw)) {
				t.Errorf("payload: got %q, want the raw bytes", env.GetPayload())
			}
		})
	}
}

// TestDecodeEnvelopeThinFixtures decodes every real thin event: each is
// accepted, as thin, with its id and a type.
func TestDecodeEnvelopeThinFixtures(t *testing.T) {
	t.Parallel()
	dir := fixtures.Dir(t, "stripe-modern")
	paths, err := filepath.Glob(filepath.Join(dir, "*", "v2.core.event__*.json"))
	if err != nil || len(paths) < 9 {
		t.Fatalf("thin fixtures: got %d (%v), want at least 9", len(paths), err)
	}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		env, err := DecodeEnvelope(raw)
		if err != nil {
			t.Errorf("%s: got %v, want it accepted", filepath.Base(p), err)
			continue
		}
		if !env.GetThin() || env.GetEventId() == "" || env.GetType() == "" || env.GetCreated() == 0 {
			t.Errorf("%s: got thin %v, id %q, type %q, created %d; want thin with id, type and created",
				filepath.Base(p), env.GetThin(), env.GetEventId(), env.GetType(), env.GetCreated())
		}
		if strings.Contains(p, "no-type") && env.GetType() != UntypedThinType {
			t.Errorf("%s: type got %q, want the placeholder %q", filepath.Base(p), env.GetType(), UntypedThinType)
		}
	}
}

func TestDecodeEnvelopeThinMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, wantMsg string
	}{
		{"missing id", `{"object":"v2.core.event","type":"x","created":"2022-02-15T00:27:45.330Z"}`, "thin event: missing id"},
		{"created not a time", `{"id":"evt_1","object":"v2.core.event","created":"yesterday"}`, "not an RFC 3339 time"},
		{"created object", `{"id":"evt_1","object":"v2.core.event","created":{}}`, "created must be"},
		{"related_object string", `{"id":"evt_1","object":"v2.core.event","related_object":"cus_1"}`, "field related_object"},
		{"context number", `{"id":"evt_1","object":"v2.core.event","context":5}`, "field context"},
		{"type number", `{"id":"evt_1","object":"v2.core.event","type":5}`, "field type"},
		{"truncated", `{"id":"evt_1","object":"v2.core.event","created":"2022-`, "unexpected end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := DecodeEnvelope([]byte(tt.raw))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error: got %v (envelope %v), want %v", err, env, ErrMalformed)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error: got %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}
