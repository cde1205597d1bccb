package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hookd/hookd/internal/fixtures"

	"github.com/hookd/hookd/provider/stripe"
)

// stripeFixture is one JSON file from shared/fixtures/stripe.
type stripeFixture struct {
	name    string // path relative to the fixture directory
	raw     []byte
	isEvent bool // top-level "object" is "event"
}

// loadStripeFixtures reads every .json file under the fixture directory,
// skipping the test when there is none.
func loadStripeFixtures(t *testing.T) []stripeFixture {
	t.Helper()
	dir := fixtures.Dir(t, "stripe")
	var fixtures []stripeFixture
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var top struct {
			Object string `json:"object"`
		}
		if err := json.Unmarshal(raw, &top); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fixtures = append(fixtures, stripeFixture{name: filepath.ToSlash(rel), raw: raw, isEvent: top.Object == "event"})
		return nil
	})
	if err != nil {
		t.Fatalf("read fixtures: %v", err)
	}
	if len(fixtures) == 0 {
		t.Skipf("no .json fixtures under %s", dir)
	}
	return fixtures
}

// oracleRouting computes an event's expected customer and routing from a
// generic decoding of the fixture, independently of stripe.DecodeEnvelope.
func oracleRouting(t *testing.T, raw []byte) (customerID, routing, apiVersion string) {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("oracle: %v", err)
	}
	if v, ok := ev["api_version"].(string); ok {
		apiVersion = v
	}
	obj := ev["data"].(map[string]any)["object"].(map[string]any)
	if obj["object"] == "customer" {
		return obj["id"].(string), "object.id", apiVersion
	}
	switch c := obj["customer"].(type) {
	case string:
		return c, "object.customer", apiVersion
	case map[string]any:
		return c["id"].(string), "object.customer", apiVersion
	}
	return "", "", apiVersion
}

// TestStripeFixtures posts every real Stripe event fixture, signed, and
// checks the envelope Ingest receives; every non-event fixture must be
// refused as malformed.
func TestStripeFixtures(t *testing.T) {
	t.Parallel()
	fixtures := loadStripeFixtures(t)

	// Spot checks, by value, read from the fixtures by hand.
	type want struct {
		eventID, customerID, routing, apiVersion string
		related                                  []string
	}
	spot := map[string]want{
		"supabase-stripe-sync-engine/customer_updated.json": {
			eventID: "evt_1IlZRsJDPojXS6LN2AbFmnR4", customerID: "cus_IhGfebO16cMIGN", routing: "object.id", apiVersion: "2020-03-02",
		},
		"supabase-stripe-sync-engine/invoice_paid.json": {
			eventID: "evt_1KJrGtJDPojXS6LN15fcthM3", customerID: "cus_JsuO3bmrj0QlAw", routing: "object.customer", apiVersion: "2020-03-02",
			related: []string{"sub_JsuPyCPhXWfZar"},
		},
		"supabase-stripe-sync-engine/charge_succeeded.json": {
			eventID: "evt_3KtQThJDPojXS6LN0E06aNxq", customerID: "cus_J7Mkgr8mvbl1eK", routing: "object.customer", apiVersion: "2020-03-02",
			related: []string{"in_1KJdKkJDPojXS6LNSwSWkZSN", "pi_3KtQThJDPojXS6LN0H9EfsjV"},
		},
		"supabase-stripe-sync-engine/charge_dispute_created.json": {
			eventID: "evt_3KtQThJDPojXS6LN0E06aNxq", customerID: "", routing: "", apiVersion: "2020-03-02",
			related: []string{"ch_1IqtGAJDPojXS6LNstgEfUji", "pi_1IqtG9JDPojXS6LNOGnYrIqq"},
		},
		"stripe-java/customer_created.json": {
			eventID: "evt_00000000000000", customerID: "cus_00000000000000", routing: "object.id", apiVersion: "2017-08-15",
		},
		"stripe-openapi/event_plan_created.json": {
			eventID: "evt_1Pgc76B7WZ01zgkWwyRHS12y", customerID: "", routing: "", apiVersion: "",
		},
	}
	found := map[string]bool{} // spot-checked fixtures present
	events, others := 0, 0

	for _, fx := range fixtures {
		if fx.isEvent {
			events++
		} else {
			others++
		}
		w, isSpot := spot[fx.name]
		found[fx.name] = isSpot
		t.Run(fx.name, func(t *testing.T) {
			t.Parallel()
			env := setup(t, nil)
			rec := serve(env.handler, signedRequest(fx.raw, testSecret, testNow))

			if !fx.isEvent {
				if _, err := stripe.DecodeEnvelope(fx.raw); !errors.Is(err, stripe.ErrMalformed) {
					t.Errorf("stripe.DecodeEnvelope: got %v, want %v", err, stripe.ErrMalformed)
				}
				if rec.Code != http.StatusBadRequest {
					t.Errorf("status: got %v, want %v (body %s)", rec.Code, http.StatusBadRequest, rec.Body)
				}
				if got := len(env.fake.received()); got != 0 {
					t.Errorf("Ingest calls: got %v, want 0", got)
				}
				return
			}

			if rec.Code != http.StatusOK {
				t.Fatalf("status: got %v, want %v (body %s)", rec.Code, http.StatusOK, rec.Body)
			}
			calls := env.fake.received()
			if len(calls) != 1 {
				t.Fatalf("Ingest calls: got %v, want 1", len(calls))
			}
			got := calls[0]
			customerID, routing, apiVersion := oracleRouting(t, fx.raw)
			if got.GetCustomerId() != customerID || got.GetRouting() != routing {
				t.Errorf("routing: got (%q, %q), want (%q, %q)", got.GetCustomerId(), got.GetRouting(), customerID, routing)
			}
			if got.GetApiVersion() != apiVersion {
				t.Errorf("api_version: got %q, want %q", got.GetApiVersion(), apiVersion)
			}
			if got.GetEventId() == "" || got.GetType() == "" || got.GetSource() != "stripe" {
				t.Errorf("envelope: got id %q type %q source %q, want id, type and source stripe", got.GetEventId(), got.GetType(), got.GetSource())
			}
			if !bytes.Equal(got.GetPayload(), fx.raw) {
				t.Errorf("payload: got %d bytes, want the %d raw bytes unchanged", len(got.GetPayload()), len(fx.raw))
			}
			if body := decodeBody(t, rec); body["event_id"] != got.GetEventId() || body["status"] != "applied" {
				t.Errorf("body: got %v, want event_id %q and status applied", body, got.GetEventId())
			}
			if !isSpot {
				return
			}
			if got.GetEventId() != w.eventID || got.GetCustomerId() != w.customerID ||
				got.GetRouting() != w.routing || got.GetApiVersion() != w.apiVersion {
				t.Errorf("envelope: got (%q, %q, %q, %q), want (%q, %q, %q, %q)",
					got.GetEventId(), got.GetCustomerId(), got.GetRouting(), got.GetApiVersion(),
					w.eventID, w.customerID, w.routing, w.apiVersion)
			}
			if !slices.Equal(got.GetRelatedObjectIds(), w.related) {
				t.Errorf("related_object_ids: got %v, want %v", got.GetRelatedObjectIds(), w.related)
			}
		})
	}

	for name := range spot {
		if !found[name] {
			t.Errorf("fixture %s: not found, want it checked by value", name)
		}
	}
	if events == 0 || others == 0 {
		t.Errorf("fixtures: got %d events and %d non-events, want some of each", events, others)
	}
	t.Logf("%d event fixtures, %d non-event fixtures", events, others)
}
