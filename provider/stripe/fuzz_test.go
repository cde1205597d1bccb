package stripe

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hookd/hookd/internal/envelope"
	"github.com/hookd/hookd/internal/fixtures"

	"github.com/stripe/stripe-go/v76/webhook"
)

func FuzzParseSignatureHeader(f *testing.F) {
	sig := Sign([]byte(testEvent), testSecret, testNow)
	for _, seed := range []string{
		"",
		sig,
		sig + ",v1=" + hex64 + ",v0=" + hex64,
		"t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
		"t=,v1=",
		"t=1,t=2",
		"=,=,=",
		",,,",
		"t=99999999999999999999999,v1=00",
		"t=1 , v1 = " + hex64,
		"v1=" + strings.ToUpper(hex64),
		"t=1\x00,v1=\xff",
	} {
		f.Add(seed)
	}
	sentinels := []error{ErrNoSignature, ErrInvalidHeader, ErrNoV1Signature}
	f.Fuzz(func(t *testing.T, h string) {
		sh, err := ParseSignatureHeader(h)
		if err != nil {
			if !slicesContainsIs(sentinels, err) {
				t.Fatalf("error: got %v, want one of %v", err, sentinels)
			}
			if sh.V1 != nil || !sh.Timestamp.IsZero() {
				t.Fatalf("header on error: got %+v, want zero", sh)
			}
			return
		}
		if len(sh.V1) == 0 {
			t.Fatalf("v1 signatures: got none, want at least one without error")
		}
		for _, s := range sh.V1 {
			if len(s) != 32 {
				t.Fatalf("signature length: got %v, want 32", len(s))
			}
		}
		if u := sh.Timestamp.Unix(); u < 0 || u > maxUnixSeconds {
			t.Fatalf("timestamp: got %v, want within [0, %v]", u, maxUnixSeconds)
		}
		// Verification of an arbitrary header never panics either.
		_ = Verify([]byte(testEvent), h, []string{testSecret}, 0, testNow)
	})
}

// slicesContainsIs reports whether err matches any of targets.
func slicesContainsIs(targets []error, err error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// FuzzDecodeEnvelope checks that DecodeEnvelope never panics, fails only
// with ErrMalformed and a short message, and decodes what it accepts
// consistently; and that DecodeEnvelope followed by envelope.Check (the
// input limits both entry points apply) either rejects an input, naming
// the field, or yields an envelope every store accepts: each text field
// at most 255 bytes of valid UTF-8 without control characters or U+FFFD,
// which is the text internal/envelope's TestAcceptedTextRoundTripsThroughBothStores
// stores in PostgreSQL and SQLite and reads back byte for byte, distinct
// IDs staying distinct; created within [2009, the latest allowed]; the
// payload within the body limit (bytea/blob either way). The oracle here
// is written apart from Check, so a rule dropped from Check fails it.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, seed := range []string{
		testEvent,
		eventWithObject(`{"id":"cus_1","object":"customer"}`),
		eventWithObject(`{"id":"in_1","object":"invoice","customer":{"id":"cus_2"},"charge":{"id":"ch_1"},"subscription":null}`),
		eventWithObject(`{"id":"sub_1","object":"subscription","customer":null,"customer_account":"acct_1"}`),
		`{"id":"evt_1","type":"x","api_version":null,"data":{"object":{}}}`,
		`{"id":"cus_1","object":"customer"}`,
		`{"id":"evt_1","type":"x","data":{"object":null}}`,
		`{"id":"evt_1","type":"x","data":{"object":{"customer":7}}}`,
		`{"id":"evt_1",`,
		`[]`, `null`, `""`, ``, `{}`, "\xef\xbb\xbf{}", `{"id":"\ud800","type":"\u0000","data":{"object":{"customer":"\u00e9"}}}`,
		// Thin events (v2.core.event).
		`{"id":"evt_t","object":"v2.core.event","type":"v1.billing.meter.no_meter_found","created":"2022-02-15T00:27:45.330Z","livemode":true,"context":"acct_1"}`,
		`{"id":"evt_t","object":"v2.core.event","created":"2025-10-04T15:13:32.232083866Z"}`,
		`{"id":"evt_t","object":"v2.core.event","type":"x","created":"2022-02-15T00:27:45Z","context":null,"related_object":{"id":"cus_1","type":"customer","url":"/v1/customers/cus_1"}}`,
		`{"id":"evt_t","object":"v2.core.event","type":"x","related_object":{"id":"sub_1","type":"v1.subscription","stripe_context":"acct_2"}}`,
		`{"id":"evt_t","object":"v2.core.event","type":"x","related_object":{"id":"","type":"customer"},"data":{"object":{"id":"cus_1","object":"customer"}}}`,
		`{"id":"evt_t","object":"v2.core.event","created":1700000000,"type":null}`,
		`{"id":"evt_t","object":"v2.core.event","created":"now","related_object":"cus_1"}`,
		`{"object":"v2.core.event","id":7}`,
		// Poison for the input limits.
		`{"id":"evt_\u0000","object":"event","type":"x","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
		"{\"id\":\"evt_1\",\"object\":\"event\",\"type\":\"x\",\"created\":1700000000,\"data\":{\"object\":{\"id\":\"cus_\xff\xfe\",\"object\":\"customer\"}}}",
		`{"id":"evt_1","object":"event","type":"x","created":1700000000,"data":{"object":{"id":"sub_1","customer":"cus_\ud800"}}}`,
		`{"id":"evt_1","object":"event","type":"x","created":1700000000,"data":{"object":{"id":"in_1","customer":"cus_1","charge":"ch_\u0085"}}}`,
		`{"id":"` + strings.Repeat("e", 256) + `","object":"event","type":"x","created":1700000000,"data":{"object":{}}}`,
		`{"id":"evt_1","object":"event","type":"x","created":99999999999,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
		`{"id":"evt_1","object":"event","type":"x","created":1000000000,"data":{"object":{"id":"cus_1","object":"customer"}}}`,
		`{"id":"evt_1","object":"event","type":"x","created":-9223372036854775808,"data":{"object":{}}}`,
		`{"id":"evt_t","object":"v2.core.event","type":"x","created":"9999-12-31T23:59:59Z","related_object":{"id":"cus_\n1","type":"customer"}}`,
	} {
		f.Add([]byte(seed))
	}
	// The real fixtures, when present, are the best seeds; stripe-modern
	// has the real thin events.
	for _, name := range []string{"stripe", "stripe-modern"} {
		if dir, err := fixtures.Find(name); err == nil {
			paths, _ := filepath.Glob(filepath.Join(dir, "*", "*.json"))
			for _, p := range paths {
				if raw, err := os.ReadFile(p); err == nil {
					f.Add(raw)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		env, err := DecodeEnvelope(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error: got %v, want it to wrap %v", err, ErrMalformed)
			}
			if env != nil {
				t.Fatalf("envelope on error: got %v, want nil", env)
			}
			if len(err.Error()) > 512 {
				t.Fatalf("error length: got %v, want a short message", len(err.Error()))
			}
			return
		}
		if env.GetEventId() == "" || env.GetType() == "" {
			t.Fatalf("envelope: got id %q type %q, want both non-empty", env.GetEventId(), env.GetType())
		}
		if env.GetSource() != Source {
			t.Fatalf("source: got %q, want %q", env.GetSource(), Source)
		}
		if !bytes.Equal(env.GetPayload(), raw) {
			t.Fatalf("payload: got %q, want the raw bytes", env.GetPayload())
		}
		switch env.GetRouting() {
		case RoutingObjectID:
			if env.GetObjectType() != "customer" || env.GetCustomerId() != env.GetObjectId() || env.GetCustomerId() == "" {
				t.Fatalf("object.id routing: got customer %q, object %q (%q)", env.GetCustomerId(), env.GetObjectId(), env.GetObjectType())
			}
		case RoutingObjectCustomer, RoutingObjectCustomerAccount:
			if env.GetCustomerId() == "" {
				t.Fatalf("%s routing: got empty customer_id, want one", env.GetRouting())
			}
		case RoutingRelatedObject:
			if !env.GetThin() || !IsCustomerType(env.GetObjectType()) || env.GetCustomerId() != env.GetObjectId() || env.GetCustomerId() == "" {
				t.Fatalf("related_object routing: got thin %v, customer %q, object %q (%q)",
					env.GetThin(), env.GetCustomerId(), env.GetObjectId(), env.GetObjectType())
			}
		case "":
			if env.GetCustomerId() != "" {
				t.Fatalf("no routing: got customer_id %q, want empty", env.GetCustomerId())
			}
		default:
			t.Fatalf("routing: got %q, want object.id, object.customer, object.customer_account or empty", env.GetRouting())
		}
		if env.GetThin() && env.GetApiVersion() != "" {
			t.Fatalf("thin event: got api_version %q, want none", env.GetApiVersion())
		}
		for _, id := range env.GetRelatedObjectIds() {
			if id == "" {
				t.Fatalf("related_object_ids: got an empty id in %q", env.GetRelatedObjectIds())
			}
		}

		// The input limits, against an oracle of their own.
		latest := testNow.Add(DefaultTolerance)
		if err := envelope.Check(env, envelope.Limits{Latest: latest}); err != nil {
			var fe *envelope.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, envelope.ErrInvalid) || fe.Field == "" || len(err.Error()) > 200 {
				t.Fatalf("Check: got %v, want a short *FieldError naming the field", err)
			}
			return
		}
		texts := append([]string{env.GetSource(), env.GetEventId(), env.GetType(), env.GetCustomerId(), env.GetObjectId(),
			env.GetObjectType(), env.GetAccount(), env.GetApiVersion(), env.GetRouting()}, env.GetRelatedObjectIds()...)
		for _, s := range texts {
			if !storable(s) {
				t.Fatalf("Check accepted %q, which not every store keeps as is", s)
			}
		}
		// A thin event may lack created (it is then 0): accepted, as Stripe
		// disables endpoints that refuse thin events.
		if c := time.Unix(env.GetCreated(), 0); !(env.GetThin() && env.GetCreated() == 0) && (c.Year() < 2009 || c.After(latest)) {
			t.Fatalf("Check accepted created %v, want within [2009, %v]", c, latest)
		}
	})
}

// storable is the oracle for the text both stores keep byte for byte and
// apart: at most 255 bytes of UTF-8, no control character, no U+FFFD.
func storable(s string) bool {
	if len(s) > 255 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// FuzzSignVerify checks that Verify accepts Sign's output
// for any payload, secret and time, that stripe-go computes the same
// signature, and that changing the payload or secret breaks it.
func FuzzSignVerify(f *testing.F) {
	f.Add([]byte(testEvent), testSecret, int64(1_700_000_000))
	f.Add([]byte{}, "s", int64(0))
	f.Add([]byte("\x00\xff,t=1,v1="), "whsec_,=", int64(maxUnixSeconds))
	f.Fuzz(func(t *testing.T, payload []byte, secret string, sec int64) {
		if sec < 0 {
			sec = -(sec + 1)
		}
		at := time.Unix(sec%(maxUnixSeconds+1), 0)
		header := Sign(payload, secret, at)
		err := Verify(payload, header, []string{secret}, time.Second, at)
		if secret == "" {
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("empty secret: got %v, want %v", err, ErrBadSignature)
			}
			return
		}
		if err != nil {
			t.Fatalf("Verify(Sign(...)): got %v, want nil", err)
		}
		sh, err := ParseSignatureHeader(header)
		if err != nil {
			t.Fatalf("ParseSignatureHeader: got %v, want nil", err)
		}
		if want := webhook.ComputeSignature(at, payload, secret); !bytes.Equal(sh.V1[0], want) {
			t.Fatalf("signature: got %x, want stripe-go's %x", sh.V1[0], want)
		}
		tampered := append(bytes.Clone(payload), 'x')
		if err := Verify(tampered, header, []string{secret}, time.Second, at); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("tampered payload: got %v, want %v", err, ErrBadSignature)
		}
		if err := Verify(payload, header, []string{secret + "x"}, time.Second, at); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("other secret: got %v, want %v", err, ErrBadSignature)
		}
	})
}
