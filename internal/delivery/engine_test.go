package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/internal/startstop"
	"github.com/hookd/hookd/internal/storetest/backends"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/sqlite"
)

// note returns a notification of version v for customer c.
func note(t *testing.T, c string, v int64) store.Notification {
	t.Helper()
	b, err := proto.Marshal(&hookdv1.Customer{CustomerId: c, Version: v})
	if err != nil {
		t.Fatal(err)
	}
	return store.Notification{CustomerID: c, Version: v, Kind: "customer.updated", EventID: fmt.Sprintf("evt_%s_%d", c, v),
		OccurredAt: time.Now(), Customer: b}
}

// receiver is a test endpoint: it verifies every request with the
// Standard Webhooks library and records what it saw; answer decides each
// answer from the request's delivery ID and its try number (from 1).
type receiver struct {
	wh     *standardwebhooks.Webhook
	answer func(id string, try int) string

	mu       sync.Mutex // guards the fields below
	problems []string
	tries    map[string]int    // by webhook-id
	keyOf    map[string]string // webhook-id → "customer/version"
	idOf     map[string]string // "customer/version" → webhook-id
	accepted map[string][]int64
	okIDs    map[string]bool
	requests int
}

func newReceiver(t *testing.T, secret string, answer func(id string, try int) string) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return &receiver{wh: wh, answer: answer, tries: map[string]int{}, keyOf: map[string]string{},
		idOf: map[string]string{}, accepted: map[string][]int64{}, okIDs: map[string]bool{}}
}

func (rc *receiver) problem(format string, args ...any) {
	rc.problems = append(rc.problems, fmt.Sprintf(format, args...))
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.requests++
	id := r.Header.Get("webhook-id")
	if err != nil {
		rc.problem("read body of %s: %v", id, err)
	}
	if err := rc.wh.Verify(body, r.Header); err != nil {
		rc.problem("request %s does not verify: %v", id, err)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		rc.problem("Content-Type %q", ct)
	}
	if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "hookd/") || !strings.HasSuffix(ua, " (+https://github.com/hookd/hookd)") {
		rc.problem("User-Agent %q", ua)
	}
	var n hookdv1.Notification
	if err := protojson.Unmarshal(body, &n); err != nil {
		rc.problem("body of %s is not a protojson Notification: %v", id, err)
	}
	if !strings.Contains(string(body), `"customerId"`) {
		rc.problem("body %s does not use lowerCamelCase names", body)
	}
	key := fmt.Sprintf("%s/%d", n.GetCustomerId(), n.GetVersion())
	if k, ok := rc.keyOf[id]; ok && k != key {
		rc.problem("webhook-id %s carried %s, then %s", id, k, key)
	}
	if i, ok := rc.idOf[key]; ok && i != id {
		rc.problem("%s came as webhook-id %s, then %s", key, i, id)
	}
	rc.keyOf[id], rc.idOf[key] = key, id
	rc.tries[id]++
	what := rc.answer(id, rc.tries[id])
	if what == "ok" && !rc.okIDs[id] {
		rc.okIDs[id] = true
		rc.accepted[n.GetCustomerId()] = append(rc.accepted[n.GetCustomerId()], n.GetVersion())
	}
	rc.mu.Unlock()

	switch what {
	case "ok":
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "thanks")
	case "500":
		http.Error(w, "boom", http.StatusInternalServerError)
	case "429":
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	case "410":
		w.WriteHeader(http.StatusGone)
	case "slow":
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	case "hijack":
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	default:
		panic("unknown answer " + what)
	}
}

// check reports the receiver's problems.
func (rc *receiver) check(t *testing.T) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i, p := range rc.problems {
		if i == 10 {
			t.Errorf("… and %d more", len(rc.problems)-10)
			break
		}
		t.Error(p)
	}
}

type fixture struct {
	st  backend             // the real store
	ds  store.DeliveryStore // the engine's store: st, or a wrapper of it
	wk  *waker
	rc  *receiver
	srv *httptest.Server
	eng *Engine
	reg *prometheus.Registry
	ep  store.Endpoint
	// gate, when set (before start), runs before the receiver sees each
	// request.
	gate func()
}

// newFixture starts a receiver (whose answer is still to be set) and
// creates an endpoint for it in st; start starts the engine.
func newFixture(t *testing.T, st backend) *fixture {
	t.Helper()
	secret := NewSecret()
	f := &fixture{st: st, ds: st, wk: newWaker(), rc: newReceiver(t, secret, nil), reg: prometheus.NewRegistry()}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.gate != nil {
			f.gate()
		}
		f.rc.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	ep, err := st.CreateEndpoint(context.Background(), store.Endpoint{
		ID: "ep_test", URL: f.srv.URL + "/hook",
		Secrets: []store.Secret{{Value: secret}, {Value: NewSecret(), ExpiresAt: time.Now().Add(-time.Hour)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ep = ep
	return f
}

// start starts an engine with cfg over f.ds (defaults for tests filled in).
func (f *fixture) start(t *testing.T, cfg Config) {
	t.Helper()
	cfg.Store, cfg.Wake, cfg.AllowPrivate, cfg.Registerer = f.ds, f.wk, true, f.reg
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = -1
	}
	if cfg.Schedule == nil {
		cfg.Schedule = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	f.eng = New(cfg)
	if err := f.eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.eng.Stop)
}

// commit commits notifications to the store and wakes the engine.
func (f *fixture) commit(t *testing.T, notes ...store.Notification) {
	t.Helper()
	commit(t, f.st, f.wk, notes...)
}

// setup is newFixture, the receiver's answer, and start.
func setup(t *testing.T, st backend, cfg Config, answer func(id string, try int) string) *fixture {
	t.Helper()
	f := newFixture(t, st)
	f.rc.answer = answer
	f.start(t, cfg)
	return f
}

// settled reports whether the engine has no attempt in flight and every
// result recorded in the store (no direct batch running either).
func (e *Engine) settled() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running == 0 && len(e.queue) == 0 && len(e.direct) == 0
}

// counter returns the value of a counter of the registry with label value.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// Many customers, a receiver that fails at random in every way, and a
// compressed schedule: every notification arrives, each customer's first
// acceptances come in version order, every request verifies, a delivery
// keeps its webhook-id across retries, and the store records every
// attempt.
func TestEngineDeliversEverythingInOrder(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		// SQLite syncs every transaction to disk: fewer customers there.
		customers := 200
		if _, ok := st.(*sqlite.Store); ok {
			customers = 60
		}
		const versions = 5
		testDeliversEverythingInOrder(t, st, customers, versions)
	})
}

func testDeliversEverythingInOrder(t *testing.T, st backend, customers, versions int) {
	timeout := 150 * time.Millisecond
	var rmu sync.Mutex
	rnd := rand.New(rand.NewPCG(rand.Uint64(), 1))
	answer := func(id string, try int) string {
		if try > 3 { // at most three failures by design; the schedule below leaves room for as many timeouts of a loaded machine
			return "ok"
		}
		rmu.Lock()
		x := rnd.IntN(100)
		rmu.Unlock()
		switch {
		case x < 55:
			return "ok"
		case x < 75:
			return "500"
		case x < 78:
			return "429"
		case x < 88:
			return "slow"
		default:
			return "hijack"
		}
	}
	f := setup(t, st, Config{
		Timeout: timeout,
		Schedule: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond,
			80 * time.Millisecond, 80 * time.Millisecond, 80 * time.Millisecond, 80 * time.Millisecond},
	}, answer)
	for v := range int64(versions) {
		var batch []store.Notification
		for c := range customers {
			batch = append(batch, note(t, fmt.Sprintf("cus_%03d", c), v+1))
		}
		f.commit(t, batch...)
	}
	total := customers * versions
	waitFor(t, 60*time.Second, "every delivery to end", func() bool { return ended(t, f.st, f.ep.ID, total) })
	// The metrics go with Stop: read them first.
	delivered := counter(t, f.reg, "hookd_deliveries_total", "outcome", "delivered")
	retried := counter(t, f.reg, "hookd_deliveries_total", "outcome", "retry")
	f.eng.Stop()
	f.rc.check(t)

	f.rc.mu.Lock()
	defer f.rc.mu.Unlock()
	ds := deliveries(t, f.st, f.ep.ID)
	for i, d := range ds {
		key := fmt.Sprintf("%s/%d", d.CustomerID, d.Notification.Version)
		if d.Status != store.DeliveryDelivered {
			t.Errorf("delivery %s of %s is %s, want delivered", d.ID, key, d.Status)
		}
		if id := f.rc.idOf[key]; id != d.ID {
			t.Errorf("%s: stored as delivery %s, received as webhook-id %s", key, d.ID, id)
		}
		if d.Attempts < f.rc.tries[d.ID] || d.Attempts != d.Step {
			t.Errorf("%s: %d attempts at step %d, receiver saw %d tries", key, d.Attempts, d.Step, f.rc.tries[d.ID])
		}
		if i%10 != 0 {
			continue // the attempt records of a sample
		}
		as := attempts(t, f.st, d.ID)
		if len(as) != d.Attempts {
			t.Errorf("%s: %d attempts recorded, want %d", key, len(as), d.Attempts)
			continue
		}
		for j, a := range as {
			last := j == len(as)-1
			if a.Attempt != j+1 || (last && (a.StatusCode != 200 || a.Error != "" || string(a.Body) != "thanks")) ||
				(!last && a.Error == "") {
				t.Errorf("%s: attempt %d recorded as %d, status %d, error %q, body %q", key, j+1, a.Attempt, a.StatusCode, a.Error, a.Body)
			}
		}
	}
	if len(ds) != total || len(f.rc.okIDs) != total {
		t.Errorf("%d deliveries stored, receiver accepted %d, want %d", len(ds), len(f.rc.okIDs), total)
	}
	want := fmt.Sprint([]int64{1, 2, 3, 4, 5}[:versions])
	for c := range customers {
		id := fmt.Sprintf("cus_%03d", c)
		if got := fmt.Sprint(f.rc.accepted[id]); got != want {
			t.Errorf("%s: first acceptances in order %v, want %v", id, got, want)
		}
	}
	if f.rc.requests <= total {
		t.Errorf("receiver saw %d requests: the failures were not exercised", f.rc.requests)
	}
	if got := delivered; got != float64(total) {
		t.Errorf("hookd_deliveries_total{outcome=delivered} = %v, want %d", got, total)
	}
	if got := retried; got == 0 {
		t.Error("hookd_deliveries_total{outcome=retry} = 0, want retries counted")
	}
}

// A customer whose every attempt fails is dead-lettered after the
// schedule; the other customers' deliveries go on meanwhile.
func TestEngineDeadLetter(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		f := newFixture(t, st)
		f.rc.answer = func(id string, _ int) string {
			if strings.HasPrefix(f.rc.keyOf[id], "cus_dead/") { // f.rc.mu is held
				return "500"
			}
			return "ok"
		}
		f.start(t, Config{Schedule: []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}})
		var notes []store.Notification
		for v := int64(1); v <= 2; v++ {
			for _, c := range []string{"cus_dead", "cus_a", "cus_b", "cus_c"} {
				notes = append(notes, note(t, c, v))
			}
		}
		f.commit(t, notes...)
		waitFor(t, 20*time.Second, "every delivery to end", func() bool { return ended(t, f.st, f.ep.ID, len(notes)) })
		f.rc.check(t)
		for _, d := range deliveries(t, f.st, f.ep.ID) {
			want := store.DeliveryDelivered
			if d.CustomerID == "cus_dead" {
				want = store.DeliveryFailed
				if d.Attempts != 4 || d.Step != 4 || d.LastStatus != 500 || d.LastError != "HTTP 500" || d.EndedAt.IsZero() {
					t.Errorf("failed delivery %s: %d attempts at step %d, last %d %q, ended %v; want 4 at 4, 500, \"HTTP 500\", ended",
						d.ID, d.Attempts, d.Step, d.LastStatus, d.LastError, d.EndedAt)
				}
				if as := attempts(t, f.st, d.ID); len(as) != 4 || as[3].StatusCode != 500 || as[3].Error != "HTTP 500" {
					t.Errorf("failed delivery %s: attempts recorded %+v, want 4 answered 500", d.ID, as)
				}
			}
			if d.Status != want {
				t.Errorf("%s v%d: %s, want %s", d.CustomerID, d.Notification.Version, d.Status, want)
			}
		}
		if got := counter(t, f.reg, "hookd_deliveries_total", "outcome", "failed"); got != 2 {
			t.Errorf("hookd_deliveries_total{outcome=failed} = %v, want 2", got)
		}
		if ep := getEndpoint(t, f.st, f.ep.ID); !ep.Active() {
			t.Errorf("endpoint disabled (%q) by failures shorter than DisableAfter", ep.DisabledReason)
		}
	})
}

// A 410 disables the endpoint; the delivery stays pending with its 410
// attempt recorded, and is delivered once the user resumes the endpoint.
func TestEngine410Disables(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		goneNow := true // guarded by f.rc.mu, which answer runs under
		f := setup(t, st, Config{}, func(string, int) string {
			if goneNow {
				return "410"
			}
			return "ok"
		})
		f.commit(t, note(t, "cus_1", 1), note(t, "cus_1", 2), note(t, "cus_1", 3))
		waitFor(t, 10*time.Second, "the endpoint to be disabled", func() bool {
			return getEndpoint(t, f.st, f.ep.ID).DisabledReason != ""
		})
		if ep := getEndpoint(t, f.st, f.ep.ID); ep.DisabledReason != "receiver answered 410 Gone" || ep.DisabledAt.IsZero() {
			t.Errorf("DisabledReason %q at %v, want %q, set", ep.DisabledReason, ep.DisabledAt, "receiver answered 410 Gone")
		}
		waitFor(t, 10*time.Second, "the 410 to be recorded", f.eng.settled)
		ds := deliveries(t, f.st, f.ep.ID)
		if len(ds) != 3 {
			t.Fatalf("%d deliveries, want 3", len(ds))
		}
		// Pending, due now, its 410 attempt recorded (a retry that never
		// fails the delivery), waiting for the resume.
		d := ds[0]
		if d.Status != store.DeliveryPending || d.Step != 1 || d.Attempts != 1 || d.LastStatus != 410 || d.NextAttemptAt.After(time.Now()) {
			t.Errorf("after 410: %s at step %d, %d attempts, last %d, due %v; want pending at step 1 after one 410, due", d.Status, d.Step, d.Attempts, d.LastStatus, d.NextAttemptAt)
		}
		if as := attempts(t, f.st, d.ID); len(as) != 1 || as[0].StatusCode != 410 {
			t.Errorf("after 410: attempts recorded %+v, want the one answered 410", as)
		}
		for _, d := range ds[1:] {
			if d.Status != store.DeliveryQueued {
				t.Errorf("v%d after 410: %s, want queued", d.Notification.Version, d.Status)
			}
		}
		// Resume: the receiver takes them now. The result gave the lease
		// back: nothing waits for it to expire.
		f.rc.mu.Lock()
		if f.rc.requests != 1 {
			t.Errorf("receiver saw %d requests before the resume, want 1", f.rc.requests)
		}
		goneNow = false
		f.rc.mu.Unlock()
		if _, err := f.st.UpdateEndpoint(context.Background(), f.ep.ID, store.EndpointUpdate{ClearDisabled: true}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the deliveries after the resume", func() bool { return ended(t, f.st, f.ep.ID, 3) })
		f.rc.check(t)
		f.rc.mu.Lock()
		defer f.rc.mu.Unlock()
		if got := fmt.Sprint(f.rc.accepted["cus_1"]); got != "[1 2 3]" {
			t.Errorf("accepted %s, want [1 2 3]", got)
		}
		d, err := f.st.GetDelivery(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != store.DeliveryDelivered || d.Attempts != 2 || d.Step != 2 || d.LastStatus != 200 {
			t.Errorf("after the resume: %s, %d attempts at step %d, last %d; want delivered, 2 at step 2, 200", d.Status, d.Attempts, d.Step, d.LastStatus)
		}
		if as := attempts(t, f.st, d.ID); len(as) != 2 || as[0].StatusCode != 410 || as[1].Attempt != 2 || as[1].StatusCode != 200 {
			t.Errorf("after the resume: attempts recorded %+v, want attempt 2 answered 200 after attempt 1 answered 410", as)
		}
		if ep := getEndpoint(t, f.st, f.ep.ID); !ep.Active() || !ep.FailingSince.IsZero() {
			t.Errorf("after the resume: endpoint disabled %q, failing since %v; want active and healthy", ep.DisabledReason, ep.FailingSince)
		}
	})
}

// Stop waits for the attempts in flight and records their results; it is
// safe twice, and before Start.
func TestEngineStopWaitsForInFlight(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		release := make(chan struct{})
		inFlight := make(chan struct{}, 10)
		f := newFixture(t, st)
		f.gate = func() {
			inFlight <- struct{}{}
			<-release
		}
		f.rc.answer = func(string, int) string { return "ok" }
		f.start(t, Config{Timeout: 10 * time.Second})
		// One Commit (cus_1's two chained): the four are enqueued together.
		f.commit(t, note(t, "cus_1", 1), note(t, "cus_1", 2), note(t, "cus_2", 1), note(t, "cus_3", 1))
		for range 3 {
			select {
			case <-inFlight:
			case <-time.After(10 * time.Second):
				t.Fatal("the attempts did not reach the receiver")
			}
		}
		stopped := make(chan struct{})
		go func() { f.eng.Stop(); close(stopped) }()
		select {
		case <-stopped:
			t.Fatal("Stop returned with attempts in flight")
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		select {
		case <-stopped:
		case <-time.After(15 * time.Second):
			t.Fatal("Stop did not return after the attempts finished")
		}
		f.eng.Stop() // twice
		ds := deliveries(t, f.st, f.ep.ID)
		if len(ds) != 4 {
			t.Fatalf("%d deliveries, want 4", len(ds))
		}
		for _, d := range ds {
			want := store.DeliveryDelivered
			if d.CustomerID == "cus_1" && d.Notification.Version == 2 {
				want = store.DeliveryPending // promoted by the last Complete, not claimed
			}
			if d.Status != want {
				t.Errorf("%s v%d: %s, want %s (results of in-flight attempts completed at Stop)", d.CustomerID, d.Notification.Version, d.Status, want)
			}
		}
		if err := f.eng.Start(context.Background()); !errors.Is(err, startstop.ErrStopped) {
			t.Errorf("Start after Stop = %v, want startstop.ErrStopped", err)
		}

		idle := New(Config{Store: st})
		idle.Stop()
		idle.Stop()
		if err := idle.Start(context.Background()); !errors.Is(err, startstop.ErrStopped) {
			t.Errorf("Start after Stop = %v, want startstop.ErrStopped", err)
		}
	})
}

// While the store refuses Complete, the results are kept and retried: the
// delivery is recorded without being sent twice.
func TestEngineRetriesComplete(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		f := newFixture(t, st)
		fc := &failingComplete{backend: st}
		fc.fails.Store(3)
		f.ds = fc
		f.rc.answer = func(string, int) string { return "ok" }
		f.start(t, Config{})
		f.commit(t, note(t, "cus_1", 1))
		waitFor(t, 10*time.Second, "the delivery", func() bool { return ended(t, f.st, f.ep.ID, 1) })
		if got := fc.calls.Load(); got != 3 {
			t.Errorf("%d Complete calls refused, want 3", got)
		}
		f.rc.mu.Lock()
		defer f.rc.mu.Unlock()
		if f.rc.requests != 1 {
			t.Errorf("receiver saw %d requests, want 1 (the result kept while Complete failed)", f.rc.requests)
		}
		d := deliveries(t, f.st, f.ep.ID)[0]
		if d.Status != store.DeliveryDelivered || d.Attempts != 1 {
			t.Errorf("delivery %s, %d attempts; want delivered at the first", d.Status, d.Attempts)
		}
		if as := attempts(t, f.st, d.ID); len(as) != 1 || as[0].StatusCode != 200 {
			t.Errorf("attempts recorded %+v, want one answered 200", as)
		}
	})
}

// An endpoint failing for longer than DisableAfter is disabled.
func TestEngineDisablesLongFailing(t *testing.T) {
	t.Parallel()
	// Failing for 6 days, as another member recorded: the default 5 days.
	t.Run("history", func(t *testing.T) {
		t.Parallel()
		eachStore(t, func(t *testing.T, st backend) {
			ctx := context.Background()
			f := newFixture(t, st)
			f.rc.answer = func(string, int) string { return "ok" }
			commit(t, st, nil, note(t, "cus_1", 1))
			waitFor(t, 10*time.Second, "the enqueue", func() bool {
				_, created, err := st.Enqueue(ctx, f.ep.ID, 10)
				if err != nil {
					t.Fatal(err)
				}
				return created == 1
			})
			cs, err := st.Claim(ctx, f.ep.ID, "other-member", 10, time.Minute)
			if err != nil || len(cs) != 1 {
				t.Fatalf("Claim: %d, %v; want 1", len(cs), err)
			}
			since := time.Now().Add(-6 * 24 * time.Hour).Truncate(time.Millisecond)
			if err := st.Complete(ctx, []store.Result{{
				Lease: cs[0].Lease, Outcome: store.OutcomeRetry, NextAttemptAt: time.Now().Add(time.Hour),
				Attempt: store.Attempt{DeliveryID: cs[0].ID, Attempt: cs[0].Lease.Attempt, StartedAt: since,
					Latency: time.Millisecond, StatusCode: 503, Error: "HTTP 503"},
			}}); err != nil {
				t.Fatal(err)
			}
			if got := getEndpoint(t, st, f.ep.ID).FailingSince; !got.Equal(since) {
				t.Fatalf("FailingSince %v, want %v", got, since)
			}
			f.start(t, Config{DisableAfter: DefaultDisableAfter})
			waitFor(t, 10*time.Second, "the endpoint to be disabled", func() bool {
				return getEndpoint(t, st, f.ep.ID).DisabledReason != ""
			})
			if got, want := getEndpoint(t, st, f.ep.ID).DisabledReason, "every attempt failed for 5 days"; got != want {
				t.Errorf("DisabledReason %q, want %q", got, want)
			}
			f.rc.mu.Lock()
			defer f.rc.mu.Unlock()
			if f.rc.requests != 0 {
				t.Errorf("receiver saw %d requests, want none (the retry is not due)", f.rc.requests)
			}
		})
	})
	// Every attempt the engine makes fails, for longer than a short
	// DisableAfter.
	t.Run("live", func(t *testing.T) {
		t.Parallel()
		eachStore(t, func(t *testing.T, st backend) {
			const disableAfter = 300 * time.Millisecond
			schedule := slices.Repeat([]time.Duration{50 * time.Millisecond}, 100)
			f := setup(t, st, Config{DisableAfter: disableAfter, Schedule: schedule}, func(string, int) string { return "500" })
			f.commit(t, note(t, "cus_1", 1), note(t, "cus_2", 1))
			waitFor(t, 10*time.Second, "the endpoint to be disabled", func() bool {
				return getEndpoint(t, st, f.ep.ID).DisabledReason != ""
			})
			ep := getEndpoint(t, st, f.ep.ID)
			if want := "every attempt failed for 300ms"; ep.DisabledReason != want {
				t.Errorf("DisabledReason %q, want %q", ep.DisabledReason, want)
			}
			if ep.FailingSince.IsZero() || ep.DisabledAt.Sub(ep.FailingSince) < disableAfter-50*time.Millisecond {
				t.Errorf("disabled at %v, failing since %v: want failing for %v", ep.DisabledAt, ep.FailingSince, disableAfter)
			}
			waitFor(t, 10*time.Second, "the last results to be recorded", f.eng.settled)
			for _, d := range deliveries(t, st, f.ep.ID) {
				if d.Status != store.DeliveryPending || d.Attempts == 0 || d.LastStatus != 500 {
					t.Errorf("%s: %s, %d attempts, last %d; want pending after failed attempts", d.CustomerID, d.Status, d.Attempts, d.LastStatus)
				}
			}
		})
	})
}

// A claim whose attempt starts after its endpoint was paused is released
// where it stood in the schedule, with nothing sent.
func TestAttemptAfterPauseReleases(t *testing.T) {
	t.Parallel()
	e := New(Config{Store: backends.OpenSQLite(t)})
	e.endpoints["ep_1"] = store.Endpoint{ID: "ep_1", URL: "http://127.0.0.1:1/", Paused: true}
	e.inflight["ep_1"], e.running = 1, 1
	due := time.Now().Add(time.Minute)
	c := store.Claimed{
		Delivery: store.Delivery{ID: "msg_1", EndpointID: "ep_1", Step: 2, NextAttemptAt: due},
		Lease:    store.Lease{DeliveryID: "msg_1", Owner: "o", Attempt: 3},
	}
	e.attempt(context.Background(), c)
	if len(e.queue) != 1 {
		t.Fatalf("queued %d results, want 1", len(e.queue))
	}
	r := e.queue[0]
	if r.Outcome != store.OutcomeReleased || !r.NextAttemptAt.Equal(due) || r.Lease != c.Lease {
		t.Errorf("result %+v, want released under the claim's lease, due %v", r, due)
	}
	if e.running != 0 || e.inflight["ep_1"] != 0 {
		t.Errorf("in flight after the release: %d (endpoint %d), want 0", e.running, e.inflight["ep_1"])
	}
}

// An endpoint paused in the store while its attempts wait is not sent to:
// the engine releases its claims, and delivers once it is resumed.
func TestEnginePauseResume(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		ctx := context.Background()
		f := setup(t, st, Config{}, func(string, int) string { return "ok" })
		paused := true
		if _, err := st.UpdateEndpoint(ctx, f.ep.ID, store.EndpointUpdate{Paused: &paused}); err != nil {
			t.Fatal(err)
		}
		// The engine sees the pause at its next poll.
		waitFor(t, 10*time.Second, "the engine to see the pause", func() bool {
			_, ok := f.eng.activeEndpoint(f.ep.ID)
			return !ok
		})
		f.commit(t, note(t, "cus_1", 1), note(t, "cus_2", 1))
		time.Sleep(100 * time.Millisecond) // a few polls
		if ds := deliveries(t, st, f.ep.ID); len(ds) != 0 {
			t.Errorf("%d deliveries enqueued while paused, want none", len(ds))
		}
		paused = false
		if _, err := st.UpdateEndpoint(ctx, f.ep.ID, store.EndpointUpdate{Paused: &paused}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the deliveries after the resume", func() bool { return ended(t, st, f.ep.ID, 2) })
		f.rc.check(t)
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := New(Config{}).Start(context.Background()); err == nil {
		t.Error("Start without a Store succeeded")
	}
	if err := New(Config{Store: backends.OpenSQLite(t), Timeout: time.Minute, Lease: time.Second}).Start(context.Background()); err == nil {
		t.Error("Start with Lease < Timeout succeeded")
	}
	if err := New(Config{Store: backends.OpenSQLite(t), Schedule: []time.Duration{time.Second, -time.Second}}).Start(context.Background()); err == nil {
		t.Error("Start with a negative Schedule wait succeeded")
	}
	if err := New(Config{Store: backends.OpenSQLite(t), Jitter: 1}).Start(context.Background()); err == nil {
		t.Error("Start with Jitter 1 succeeded")
	}
}

// The backlog gauges are read from Store.Backlog at each scrape.
func TestBacklogMetrics(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		ctx := context.Background()
		if _, err := st.CreateEndpoint(ctx, store.Endpoint{ID: "ep_1", URL: "http://example.com/"}); err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		if err := newMetrics(st).register(reg); err != nil {
			t.Fatal(err)
		}
		if got := counter(t, reg, "hookd_delivery_backlog", "endpoint", "ep_1"); got != 0 {
			t.Errorf("hookd_delivery_backlog{endpoint=ep_1} = %v before any notification, want 0", got)
		}
		commit(t, st, nil, note(t, "cus_1", 1), note(t, "cus_1", 2), note(t, "cus_2", 1))
		read := 0
		waitFor(t, 10*time.Second, "the enqueue", func() bool {
			r, _, err := st.Enqueue(ctx, "ep_1", 10)
			if err != nil {
				t.Fatal(err)
			}
			read += r
			return read == 3
		})
		if got := counter(t, reg, "hookd_delivery_backlog", "endpoint", "ep_1"); got != 3 {
			t.Errorf("hookd_delivery_backlog{endpoint=ep_1} = %v, want 3", got)
		}
		if got := counter(t, reg, "hookd_delivery_oldest_undelivered_seconds", "endpoint", "ep_1"); got < 0 || got > 60 {
			t.Errorf("hookd_delivery_oldest_undelivered_seconds{endpoint=ep_1} = %v, want a few seconds at most", got)
		}
	})
}
