package actors

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/gateway"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/services"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// startSystem starts a System with cfg for one test, over a fresh
// PostgreSQL store unless cfg has a store, logging nowhere unless cfg has
// a logger; the test's cleanup stops it.
func startSystem(t *testing.T, cfg Config) (*System, store.Store) {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = pgtest.NewStore(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	sys, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sys.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Stop)
	return sys, cfg.Store
}

// carriedCustomer is a customer object unlike any payload's, to tell
// whether a grain applied the objects carried to it or decoded its own.
func carriedCustomer(id, marker string) stripe.Objects {
	return stripe.Objects{Customer: &stripe.Customer{ID: id, Email: marker + "@carried.example"}, Notes: []string{"carried " + marker}}
}

// TestApplyHandsDecodedObjectsToItsGrain: objects that Apply's context
// carries for the request's envelope reach the grain of this member,
// which applies them instead of decoding the payload (though the grain
// gets an unmarshaled copy of the request); objects carried for another
// envelope, even an equal one, are not taken; none are left behind, also
// after many events for one customer at once (which its queue batches).
func TestApplyHandsDecodedObjectsToItsGrain(t *testing.T) {
	sys, st := startSystem(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	state := func(customerID string) []byte {
		t.Helper()
		c, err := st.GetCustomer(ctx, customerID)
		if err != nil {
			t.Fatal(err)
		}
		return c.State
	}

	req := customerEvent("evt_carried", "customer.created", "cus_carried", 100)
	resp, err := sys.Apply(stripe.ContextWithObjects(ctx, req.GetEnvelope(), carriedCustomer("cus_carried", "m1")), "cus_carried", req)
	if err != nil || resp.GetStatus() != "applied" || !strings.Contains(resp.GetReason(), "carried m1") {
		t.Fatalf("Apply with carried objects: %v, %v; want applied with the carried note", resp, err)
	}
	if s := state("cus_carried"); !bytes.Contains(s, []byte("m1@carried.example")) {
		t.Errorf("state: got %s, want the carried email", s)
	}

	// Carried for an equal copy of the envelope, not for this one: decoded.
	req = customerEvent("evt_decoded", "customer.updated", "cus_carried", 101)
	other := proto.Clone(req.GetEnvelope()).(*hookdv1.Envelope)
	resp, err = sys.Apply(stripe.ContextWithObjects(ctx, other, carriedCustomer("cus_carried", "m2")), "cus_carried", req)
	if err != nil || resp.GetStatus() != "applied" || strings.Contains(resp.GetReason(), "carried") {
		t.Fatalf("Apply with another envelope's objects: %v, %v; want applied, decoded", resp, err)
	}
	if s := state("cus_carried"); !bytes.Contains(s, []byte("cus_carried@example.com")) {
		t.Errorf("state: got %s, want the payload's email", s)
	}

	// Many at once for one customer: batched, each with its own objects.
	const n = 24
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := customerEvent(fmt.Sprint("evt_many_", i), "customer.updated", "cus_many", int64(200+i))
			marker := fmt.Sprint("many", i)
			resp, err := sys.Apply(stripe.ContextWithObjects(ctx, req.GetEnvelope(), carriedCustomer("cus_many", marker)), "cus_many", req)
			// Arriving in any order, an event may be older than one
			// applied before it: superseded, its reason still says
			// which objects it was decoded to.
			if err != nil || (resp.GetStatus() != "applied" && resp.GetStatus() != "superseded") || !strings.Contains(resp.GetReason(), "carried "+marker) {
				t.Errorf("Apply %d: %v, %v; want applied or superseded, with its own carried note", i, resp, err)
			}
		})
	}
	wg.Wait()
	if left := sys.decoded.Len(); left != 0 {
		t.Errorf("objects left after every Apply returned: %d, want 0", left)
	}
}

// ingestFunc is an IngestServiceClient made of a function.
type ingestFunc func(context.Context, *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error)

func (f ingestFunc) Ingest(ctx context.Context, req *hookdv1.IngestRequest, _ ...grpc.CallOption) (*hookdv1.IngestResponse, error) {
	return f(ctx, req)
}

// inProcess is one process's webhook path: the gateway, the ingest
// service it calls in-process, the actor system and its store.
type inProcess struct {
	handler http.Handler
	store   store.Store
	carried atomic.Int64 // webhooks that reached Ingest with their objects
}

// startInProcess builds the webhook path of one process. With carry
// false, the gateway's context does not reach Ingest (only its deadline
// does), so every grain decodes its payload, as before stripe.Decode.
func startInProcess(t *testing.T, carry bool) *inProcess {
	t.Helper()
	sys, st := startSystem(t, Config{})
	srv := grpc.NewServer()
	t.Cleanup(srv.Stop)
	reg, err := services.Register(srv, services.Config{Store: st, Actors: sys, Wakeup: services.NewWakeup(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p := &inProcess{store: st}
	ingest := ingestFunc(func(ctx context.Context, req *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
		if _, ok := stripe.ObjectsFrom(ctx, req.GetEnvelope()); ok {
			p.carried.Add(1)
		}
		if !carry {
			dl, _ := ctx.Deadline()
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(context.Background(), dl)
			defer cancel()
		}
		return reg.LocalIngest.Ingest(ctx, req)
	})
	p.handler, err = gateway.New(gateway.Config{Secrets: []string{"whsec_carried"}, Ingest: ingest, Now: func() time.Time { return time.Unix(1_700_000_000, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// post sends body to the gateway, signed, and returns the answer.
func (p *inProcess) post(body string) (int, string) {
	req := httptest.NewRequest(http.MethodPost, gateway.StripeWebhookPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(stripe.SignatureHeaderName, stripe.Sign([]byte(body), "whsec_carried", time.Unix(1_700_000_000, 0)))
	rec := httptest.NewRecorder()
	p.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestInProcessWebhooksAnswerAsDecodedInTheGrain sends the same webhooks
// through two in-process paths, one whose grains take the objects the
// gateway decoded and one whose grains decode the payload as before, and
// requires the same answers and the same stored events and state. Among
// them are events whose object does not decode into its kind: the
// gateway still accepts them, the grain records them ignored as
// malformed, and nothing is carried for them.
func TestInProcessWebhooksAnswerAsDecodedInTheGrain(t *testing.T) {
	carried, decoded := startInProcess(t, true), startInProcess(t, false)
	event := func(id, typ, object string) string {
		return fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"created":1699999900,"api_version":"2024-06-20","livemode":false,"data":{"object":%s}}`, id, typ, object)
	}
	malformed := map[string]bool{"evt_6": true, "evt_7": true, "evt_8": true}
	bodies := []string{
		event("evt_1", "customer.created", `{"id":"cus_1","object":"customer","email":"a@example.com","name":"A","metadata":{"k":"v"}}`),
		event("evt_2", "customer.subscription.created", `{"id":"sub_1","object":"subscription","customer":"cus_1","status":"active","current_period_end":1702000000,"items":{"data":[{"id":"si_1","price":{"id":"price_1"}}]}}`),
		event("evt_3", "invoice.paid", `{"id":"in_1","object":"invoice","customer":{"id":"cus_1","object":"customer"},"subscription":"sub_1","status":"paid","amount_paid":2000,"amount_due":2000,"currency":"usd"}`),
		event("evt_4", "customer.subscription.updated", `{"id":"sub_1","object":"subscription","customer":"cus_1","status":"past_due","items":{"data":[{"id":"si_1","price":{"id":"price_2"},"current_period_end":1703000000},{"id":"si_2","price":{"id":"price_3"},"current_period_end":1704000000}]}}`),
		event("evt_5", "invoice.payment_failed", `{"id":"in_2","object":"invoice","customer":"cus_1","status":"open","amount_due":2000,"currency":"usd","parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_1"}}}`),
		// Objects that do not decode into their kind.
		event("evt_6", "customer.subscription.updated", `{"id":"sub_1","object":"subscription","customer":"cus_1","status":"active","current_period_end":"soon"}`),
		event("evt_7", "invoice.paid", `{"id":"in_3","object":"invoice","customer":"cus_1","lines":{"data":[{"subscription":5}]}}`),
		event("evt_8", "customer.updated", `{"id":"cus_1","object":"customer","metadata":{"n":1}}`),
		// Nothing to decode: a charge, a thin event.
		event("evt_9", "charge.succeeded", `{"id":"ch_1","object":"charge","customer":"cus_1","invoice":"in_1"}`),
		`{"id":"evt_10","object":"v2.core.event","type":"v1.customer.updated","created":"2023-11-14T22:10:00Z","related_object":{"id":"cus_1","type":"customer"}}`,
		// A redelivery.
		event("evt_1", "customer.created", `{"id":"cus_1","object":"customer","email":"a@example.com","name":"A","metadata":{"k":"v"}}`),
	}
	for _, body := range bodies {
		code, answer := carried.post(body)
		wantCode, want := decoded.post(body)
		if code != wantCode || answer != want {
			t.Errorf("webhook %.60s…: got %d %s, want %d %s (as decoded in the grain)", body, code, answer, wantCode, want)
		}
	}
	if n := carried.carried.Load(); n != 5+1 { // evt_1 to evt_5, and evt_1's redelivery
		t.Errorf("webhooks that reached Ingest with objects: got %d, want 6 (not the malformed, the charge, the thin event)", n)
	}

	ctx := context.Background()
	for _, body := range bodies[:len(bodies)-1] {
		var head struct{ ID string }
		if err := json.Unmarshal([]byte(body), &head); err != nil {
			t.Fatal(err)
		}
		got, err := carried.store.GetEvent(ctx, "stripe", head.ID)
		if err != nil {
			t.Fatal(err)
		}
		want, err := decoded.store.GetEvent(ctx, "stripe", head.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != want.Status || got.Reason != want.Reason || got.Version != want.Version || got.CustomerID != want.CustomerID {
			t.Errorf("stored %s: got %s v%d %q, want %s v%d %q", head.ID, got.Status, got.Version, got.Reason, want.Status, want.Version, want.Reason)
		}
		if malformed[head.ID] && (got.Status != store.StatusIgnored || !strings.Contains(got.Reason, "malformed")) {
			t.Errorf("stored %s: got %s %q, want ignored as malformed", head.ID, got.Status, got.Reason)
		}
	}
	got, err := carried.store.GetCustomer(ctx, "cus_1")
	if err != nil {
		t.Fatal(err)
	}
	want, err := decoded.store.GetCustomer(ctx, "cus_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != want.Version || !bytes.Equal(got.State, want.State) {
		t.Errorf("cus_1: got v%d %s, want v%d %s", got.Version, got.State, want.Version, want.State)
	}
}
