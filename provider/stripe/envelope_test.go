package stripe

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
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
