package customer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookd/hookd/actors/customer"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func envelope(eventID, typ, customerID string, created int64, email string) *hookdv1.Envelope {
	payload := fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"created":%d,"data":{"object":{"id":%q,"object":"customer","email":%q}}}`,
		eventID, typ, created, customerID, email)
	return &hookdv1.Envelope{Source: "stripe", EventId: eventID, Type: typ, Created: created,
		ObjectId: customerID, ObjectType: "customer", CustomerId: customerID, Routing: "object.id", Payload: []byte(payload)}
}

func subscriptionEnvelope(eventID, customerID, subID string, created int64) *hookdv1.Envelope {
	payload := fmt.Sprintf(`{"id":%q,"object":"event","type":"customer.subscription.created","created":%d,"data":{"object":{"id":%q,"object":"subscription","customer":%q,"status":"active"}}}`,
		eventID, created, subID, customerID)
	return &hookdv1.Envelope{Source: "stripe", EventId: eventID, Type: "customer.subscription.created", Created: created,
		ObjectId: subID, ObjectType: "subscription", CustomerId: customerID, Routing: "object.customer", Payload: []byte(payload)}
}

// faultyStore fails the next N commits before they reach the database, as a
// store that goes away between reduce and commit would.
type faultyStore struct {
	store.Store
	failNext atomic.Int32
}

func (f *faultyStore) Commit(ctx context.Context, ws []store.Write) []error {
	if f.failNext.Add(-1) >= 0 {
		errs := make([]error, len(ws))
		for i := range errs {
			errs[i] = fmt.Errorf("injected: %w", store.ErrUnavailable)
		}
		return errs
	}
	return f.Store.Commit(ctx, ws)
}

// waitNotifications reads a customer's notifications until at least want
// are visible: a notification becomes readable only once every older
// transaction in the cluster has ended (store contract), which other tests
// running in parallel can delay a little.
func waitNotifications(t *testing.T, st store.Store, customerID string, want int) []store.Notification {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		notes, err := st.ReadNotifications(context.Background(), "", customerID, 1000)
		if err != nil {
			t.Fatalf("ReadNotifications: %v", err)
		}
		if len(notes) >= want || time.Now().After(deadline) {
			return notes
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStoreFailureLeavesNothingAndRetryAppliesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := pgtest.NewStore(t)
	fs := &faultyStore{Store: pg}
	var wakes atomic.Int32
	p := customer.NewProcessor("cus_f", fs, quiet, func(string) { wakes.Add(1) })

	env := envelope("evt_f1", "customer.created", "cus_f", 100, "a@example.com")
	fs.failNext.Store(1)
	if _, err := p.Apply(ctx, env, "object.id"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Apply with failing store: err = %v, want ErrUnavailable", err)
	}
	if _, err := pg.GetCustomer(ctx, "cus_f"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetCustomer after failed commit: err = %v, want ErrNotFound", err)
	}
	if _, err := pg.GetEvent(ctx, "stripe", "evt_f1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetEvent after failed commit: err = %v, want ErrNotFound", err)
	}
	if wakes.Load() != 0 {
		t.Fatalf("subscribers woken %d times for an uncommitted event, want 0", wakes.Load())
	}

	// The sender retries: applied once; a further retry is answered for
	// what the event did (applied, version 1), without a second effect.
	for i, want := range []string{"", "already received"} {
		res, err := p.Apply(ctx, env, "object.id")
		if err != nil {
			t.Fatalf("retry %d: %v", i, err)
		}
		if res.Status != store.StatusApplied || res.Version != 1 || !strings.HasPrefix(res.Reason, want) {
			t.Fatalf("retry %d: %+v, want applied v1 with reason %q", i, res, want)
		}
	}
	// A fresh activation (no in-memory dedup) reads the stored answer.
	res, err := customer.NewProcessor("cus_f", pg, quiet, nil).Apply(ctx, env, "object.id")
	if err != nil || res.Status != store.StatusApplied || res.Version != 1 || !strings.HasPrefix(res.Reason, "already received") {
		t.Fatalf("fresh activation: %+v %v, want applied v1, already received", res, err)
	}
	c, err := pg.GetCustomer(ctx, "cus_f")
	if err != nil || c.Version != 1 {
		t.Fatalf("customer version = %d (%v), want 1", c.Version, err)
	}
	// Only the retried commit's notification exists (the failed attempt's
	// would be older, and visible with it).
	if n := waitNotifications(t, pg, "cus_f", 1); len(n) != 1 || n[0].Version != 1 {
		t.Fatalf("notifications = %+v, want one at version 1", n)
	}
}

// recordingStore records the result of every write by the version it read.
type recordingStore struct {
	store.Store
	mu      sync.Mutex
	results map[int64][]error
}

func (r *recordingStore) Commit(ctx context.Context, ws []store.Write) []error {
	errs := r.Store.Commit(ctx, ws)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, w := range ws {
		if w.State != nil {
			r.results[w.ReadVersion] = append(r.results[w.ReadVersion], errs[i])
		}
	}
	return errs
}

// Two activations of one customer (the cluster allows this briefly) that
// both read the same version: exactly one commit from that version
// succeeds; the other is fenced, reloads, and applies on top.
func TestDoubleActivationCommitsOncePerVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := pgtest.NewStore(t)
	for round := 0; round < 20; round++ {
		id := fmt.Sprintf("cus_d%d", round)
		rec := &recordingStore{Store: pg, results: map[int64][]error{}}
		a := customer.NewProcessor(id, rec, quiet, nil)
		b := customer.NewProcessor(id, rec, quiet, nil)
		// a writes version 1; then b activates and reads it too.
		if _, err := a.Apply(ctx, envelope(id+"_seed", "customer.created", id, 1, ""), "object.id"); err != nil {
			t.Fatal(err)
		}
		if err := b.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if a.Version() != 1 || b.Version() != 1 {
			t.Fatalf("round %d: versions %d and %d, want both 1", round, a.Version(), b.Version())
		}
		// Both hold version 1; race two different events.
		var wg sync.WaitGroup
		res := make([]customer.Result, 2)
		errs := make([]error, 2)
		for i, p := range []*customer.Processor{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i], errs[i] = p.Apply(ctx, subscriptionEnvelope(fmt.Sprintf("%s_e%d", id, i), id, fmt.Sprintf("sub_%s_%d", id, i), int64(10+i)), "object.customer")
			}()
		}
		wg.Wait()
		for i := range errs {
			if errs[i] != nil || res[i].Status != store.StatusApplied {
				t.Fatalf("round %d activation %d: %v %v, want applied", round, i, res[i].Status, errs[i])
			}
		}
		c, err := pg.GetCustomer(ctx, id)
		if err != nil || c.Version != 3 {
			t.Fatalf("round %d: version %d (%v), want 3 (three applied events)", round, c.Version, err)
		}
		if n := len(rec.results[1]); n != 2 {
			t.Fatalf("round %d: %d commits from read version 1, want 2 (one fenced)", round, n)
		}
		for v, results := range rec.results {
			ok := 0
			for _, err := range results {
				if err == nil {
					ok++
				} else if !errors.Is(err, store.ErrFenced) {
					t.Fatalf("round %d: commit from version %d: %v, want nil or ErrFenced", round, v, err)
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d commits succeeded from read version %d, want exactly 1 (results %v)", round, ok, v, results)
			}
		}
		notes := waitNotifications(t, pg, id, 3)
		if len(notes) != 3 {
			t.Fatalf("round %d: %d notifications, want 3 (customer.created and two subscription.created)", round, len(notes))
		}
		for i, n := range notes {
			if n.Version != int64(i+1) {
				t.Fatalf("round %d: notification %d has version %d, want %d", round, i, n.Version, i+1)
			}
		}
	}
}

// routeRecorder records the routes each write carries, by event ID.
type routeRecorder struct {
	store.Store
	mu     sync.Mutex
	routes map[string][]string
}

func (r *routeRecorder) Commit(ctx context.Context, ws []store.Write) []error {
	r.mu.Lock()
	for _, w := range ws {
		r.routes[w.Event.EventID] = w.Routes
	}
	r.mu.Unlock()
	return r.Store.Commit(ctx, ws)
}

// A write records the routes of objects the customer has not applied an
// event for, and only those: an object it knows was routed when it first
// applied one (in that transaction), also after a restart. Every object
// still routes to the customer.
func TestRoutesRecordedOncePerObject(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := pgtest.NewStore(t)
	rec := &routeRecorder{Store: pg, routes: map[string][]string{}}
	invoice := func(eventID, invoiceID, subID string, created int64) *hookdv1.Envelope {
		payload := fmt.Sprintf(`{"id":%q,"object":"event","type":"invoice.paid","created":%d,"data":{"object":{"id":%q,"object":"invoice","customer":"cus_r","subscription":%q,"status":"paid","amount_paid":100,"amount_due":100,"currency":"usd"}}}`,
			eventID, created, invoiceID, subID)
		return &hookdv1.Envelope{Source: "stripe", EventId: eventID, Type: "invoice.paid", Created: created,
			ObjectId: invoiceID, ObjectType: "invoice", CustomerId: "cus_r", Routing: "object.customer",
			RelatedObjectIds: []string{subID}, Payload: []byte(payload)}
	}
	updated := func(eventID string, created int64) *hookdv1.Envelope {
		env := subscriptionEnvelope(eventID, "cus_r", "sub_r", created)
		env.Type = "customer.subscription.updated"
		env.Payload = []byte(strings.Replace(string(env.Payload), "customer.subscription.created", env.Type, 1))
		return env
	}
	steps := []struct {
		env  *hookdv1.Envelope
		want []string
	}{
		{envelope("evt_r1", "customer.created", "cus_r", 100, "r@example.com"), nil},
		{subscriptionEnvelope("evt_r2", "cus_r", "sub_r", 101), []string{"sub_r"}},
		{updated("evt_r3", 102), nil},
		{invoice("evt_r4", "in_r1", "sub_r", 103), []string{"in_r1"}},
		{invoice("evt_r5", "in_r2", "sub_r", 104), []string{"in_r2"}},
		{updated("evt_r6", 105), nil}, // by a new activation, which loads the state
	}
	p := customer.NewProcessor("cus_r", rec, quiet, nil)
	for i, s := range steps {
		if i == len(steps)-1 {
			p = customer.NewProcessor("cus_r", rec, quiet, nil)
		}
		res, err := p.Apply(ctx, s.env, s.env.GetRouting())
		if err != nil || res.Status != store.StatusApplied {
			t.Fatalf("%s: %+v, %v", s.env.GetEventId(), res, err)
		}
		rec.mu.Lock()
		got := rec.routes[s.env.GetEventId()]
		rec.mu.Unlock()
		if !slices.Equal(got, s.want) {
			t.Errorf("%s wrote routes %q, want %q", s.env.GetEventId(), got, s.want)
		}
	}
	for _, id := range []string{"sub_r", "in_r1", "in_r2"} {
		if c, err := pg.LookupRoute(ctx, id); err != nil || c != "cus_r" {
			t.Errorf("LookupRoute(%s) = %q, %v; want cus_r", id, c, err)
		}
	}
}
