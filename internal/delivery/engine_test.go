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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/internal/startstop"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
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
	st  *memStore
	rc  *receiver
	srv *httptest.Server
	eng *Engine
	reg *prometheus.Registry
	ep  store.Endpoint
}

// setup starts a receiver, a store with one endpoint for it, and an engine
// with cfg over them (defaults for tests filled in).
func setup(t *testing.T, cfg Config, answer func(id string, try int) string) *fixture {
	t.Helper()
	secret := NewSecret()
	f := &fixture{st: newMemStore(), rc: newReceiver(t, secret, answer), reg: prometheus.NewRegistry()}
	f.srv = httptest.NewServer(f.rc)
	t.Cleanup(f.srv.Close)
	ep, err := f.st.CreateEndpoint(context.Background(), store.Endpoint{
		ID: "ep_test", URL: f.srv.URL + "/hook",
		Secrets: []store.Secret{{Value: secret}, {Value: NewSecret(), ExpiresAt: time.Now().Add(-time.Hour)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ep = ep
	cfg.Store, cfg.Wake, cfg.AllowPrivate, cfg.Registerer = f.st, f.st, true, f.reg
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
	return f
}

// waitFor waits until cond holds for the store, or fails the test after d.
func waitFor(t *testing.T, st *memStore, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		ch := st.watch()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("after %v: still waiting for %s", d, what)
		}
	}
}

// ended reports whether the endpoint has n deliveries, all ended.
func ended(st *memStore, endpointID string, n int) bool {
	ds := st.deliveriesOf(endpointID)
	if len(ds) != n {
		return false
	}
	for _, d := range ds {
		if d.Status != store.DeliveryDelivered && d.Status != store.DeliveryFailed {
			return false
		}
	}
	return true
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
// acceptances come in version order, every request verifies, and a
// delivery keeps its webhook-id across retries.
func TestEngineDeliversEverythingInOrder(t *testing.T) {
	t.Parallel()
	const customers, versions = 200, 5
	timeout := 150 * time.Millisecond
	var rmu sync.Mutex
	rnd := rand.New(rand.NewPCG(rand.Uint64(), 1))
	answer := func(id string, try int) string {
		if try > 3 { // at most three failures: the schedule below is never exhausted
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
	f := setup(t, Config{
		Timeout:  timeout,
		Schedule: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 80 * time.Millisecond},
	}, answer)
	for v := int64(1); v <= versions; v++ {
		var batch []store.Notification
		for c := range customers {
			batch = append(batch, note(t, fmt.Sprintf("cus_%03d", c), v))
		}
		f.st.append(batch...)
	}
	waitFor(t, f.st, 60*time.Second, "every delivery to end", func() bool { return ended(f.st, f.ep.ID, customers*versions) })
	// The metrics go with Stop: read them first.
	delivered := counter(t, f.reg, "hookd_deliveries_total", "outcome", "delivered")
	retried := counter(t, f.reg, "hookd_deliveries_total", "outcome", "retry")
	f.eng.Stop()
	f.rc.check(t)

	for _, d := range f.st.deliveriesOf(f.ep.ID) {
		if d.Status != store.DeliveryDelivered {
			t.Errorf("delivery %s of %s v%d is %s, want delivered", d.ID, d.CustomerID, d.Notification.Version, d.Status)
		}
	}
	f.rc.mu.Lock()
	defer f.rc.mu.Unlock()
	if len(f.rc.okIDs) != customers*versions {
		t.Errorf("receiver accepted %d deliveries, want %d", len(f.rc.okIDs), customers*versions)
	}
	for c := range customers {
		id := fmt.Sprintf("cus_%03d", c)
		got := f.rc.accepted[id]
		want := []int64{1, 2, 3, 4, 5}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: first acceptances in order %v, want %v", id, got, want)
		}
	}
	if f.rc.requests <= customers*versions {
		t.Errorf("receiver saw %d requests: the failures were not exercised", f.rc.requests)
	}
	if got := delivered; got != customers*versions {
		t.Errorf("hookd_deliveries_total{outcome=delivered} = %v, want %d", got, customers*versions)
	}
	if got := retried; got == 0 {
		t.Error("hookd_deliveries_total{outcome=retry} = 0, want retries counted")
	}
}

// A customer whose every attempt fails is dead-lettered after the
// schedule; the other customers' deliveries go on meanwhile.
func TestEngineDeadLetter(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{Schedule: []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}}, nil)
	f.rc.answer = func(id string, _ int) string {
		if strings.HasPrefix(f.rc.keyOf[id], "cus_dead/") { // f.rc.mu is held
			return "500"
		}
		return "ok"
	}
	var notes []store.Notification
	for v := int64(1); v <= 2; v++ {
		for _, c := range []string{"cus_dead", "cus_a", "cus_b", "cus_c"} {
			notes = append(notes, note(t, c, v))
		}
	}
	f.st.append(notes...)
	waitFor(t, f.st, 20*time.Second, "every delivery to end", func() bool { return ended(f.st, f.ep.ID, len(notes)) })
	f.rc.check(t)
	for _, d := range f.st.deliveriesOf(f.ep.ID) {
		want := store.DeliveryDelivered
		if d.CustomerID == "cus_dead" {
			want = store.DeliveryFailed
			if d.Attempts != 4 || d.LastStatus != 500 || d.LastError != "HTTP 500" {
				t.Errorf("failed delivery %s: %d attempts, last %d %q; want 4, 500, \"HTTP 500\"", d.ID, d.Attempts, d.LastStatus, d.LastError)
			}
		}
		if d.Status != want {
			t.Errorf("%s v%d: %s, want %s", d.CustomerID, d.Notification.Version, d.Status, want)
		}
	}
	if got := counter(t, f.reg, "hookd_deliveries_total", "outcome", "failed"); got != 2 {
		t.Errorf("hookd_deliveries_total{outcome=failed} = %v, want 2", got)
	}
	ep, err := f.st.GetEndpoint(context.Background(), f.ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !ep.Active() {
		t.Errorf("endpoint disabled (%q) by failures shorter than DisableAfter", ep.DisabledReason)
	}
}

// A 410 disables the endpoint; the delivery stays pending (its 410 attempt
// recorded) and is delivered once the user resumes the endpoint.
func TestEngine410Disables(t *testing.T) {
	t.Parallel()
	goneNow := true // guarded by f.rc.mu, which answer runs under
	f := setup(t, Config{}, func(string, int) string {
		if goneNow {
			return "410"
		}
		return "ok"
	})
	f.st.append(note(t, "cus_1", 1), note(t, "cus_1", 2), note(t, "cus_1", 3))
	ctx := context.Background()
	waitFor(t, f.st, 10*time.Second, "the endpoint to be disabled", func() bool {
		ep, _ := f.st.GetEndpoint(ctx, f.ep.ID)
		return ep.DisabledReason != ""
	})
	ep, _ := f.st.GetEndpoint(ctx, f.ep.ID)
	if ep.DisabledReason != "receiver answered 410 Gone" {
		t.Errorf("DisabledReason %q, want %q", ep.DisabledReason, "receiver answered 410 Gone")
	}
	ds := f.st.deliveriesOf(f.ep.ID)
	waitFor(t, f.st, 10*time.Second, "the delivery to be released", func() bool { return !f.st.leased(ds[0].ID) })
	d, _ := f.st.GetDelivery(ctx, ds[0].ID)
	if d.Status != store.DeliveryPending || d.Step != 1 || d.LastStatus != 410 {
		t.Errorf("after 410: %s at step %d, last status %d; want pending at step 1 after a 410", d.Status, d.Step, d.LastStatus)
	}
	// Resume: the receiver takes them now.
	f.rc.mu.Lock()
	if f.rc.requests != 1 {
		t.Errorf("receiver saw %d requests before the resume, want 1", f.rc.requests)
	}
	goneNow = false
	f.rc.mu.Unlock()
	if _, err := f.st.UpdateEndpoint(ctx, f.ep.ID, store.EndpointUpdate{ClearDisabled: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f.st, 10*time.Second, "the deliveries after the resume", func() bool { return ended(f.st, f.ep.ID, 3) })
	f.rc.check(t)
	f.rc.mu.Lock()
	defer f.rc.mu.Unlock()
	if got := fmt.Sprint(f.rc.accepted["cus_1"]); got != "[1 2 3]" {
		t.Errorf("accepted %s, want [1 2 3]", got)
	}
}

// Stop waits for the attempts in flight and records their results; it is
// safe twice, and before Start.
func TestEngineStopWaitsForInFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	inFlight := make(chan struct{}, 10)
	f := setup(t, Config{Timeout: 10 * time.Second}, nil)
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight <- struct{}{}
		<-release
		f.rc.ServeHTTP(w, r)
	})
	f.rc.answer = func(string, int) string { return "ok" }
	f.st.append(note(t, "cus_1", 1), note(t, "cus_2", 1), note(t, "cus_3", 1), note(t, "cus_1", 2))
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
	for _, d := range f.st.deliveriesOf(f.ep.ID) {
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

	idle := New(Config{Store: newMemStore()})
	idle.Stop()
	idle.Stop()
	if err := idle.Start(context.Background()); !errors.Is(err, startstop.ErrStopped) {
		t.Errorf("Start after Stop = %v, want startstop.ErrStopped", err)
	}
}

// While the store refuses Complete, the results are kept and retried: the
// delivery is recorded without being sent twice.
func TestEngineRetriesComplete(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{}, func(string, int) string { return "ok" })
	f.st.failCompletes(3)
	f.st.append(note(t, "cus_1", 1))
	waitFor(t, f.st, 10*time.Second, "the delivery", func() bool { return ended(f.st, f.ep.ID, 1) })
	f.rc.mu.Lock()
	defer f.rc.mu.Unlock()
	if f.rc.requests != 1 {
		t.Errorf("receiver saw %d requests, want 1 (the result kept while Complete failed)", f.rc.requests)
	}
}

// An endpoint failing for longer than DisableAfter is disabled.
func TestEngineDisablesLongFailing(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{}, func(string, int) string { return "ok" })
	ctx := context.Background()
	f.st.mu.Lock()
	f.st.endpoints[f.ep.ID].FailingSince = time.Now().Add(-6 * 24 * time.Hour)
	f.st.notify()
	f.st.mu.Unlock()
	waitFor(t, f.st, 10*time.Second, "the endpoint to be disabled", func() bool {
		ep, _ := f.st.GetEndpoint(ctx, f.ep.ID)
		return ep.DisabledReason != ""
	})
	ep, _ := f.st.GetEndpoint(ctx, f.ep.ID)
	if want := "every attempt failed for 5 days"; ep.DisabledReason != want {
		t.Errorf("DisabledReason %q, want %q", ep.DisabledReason, want)
	}
}

// A claim whose attempt starts after its endpoint was paused is released
// where it stood in the schedule, with nothing sent.
func TestAttemptAfterPauseReleases(t *testing.T) {
	t.Parallel()
	e := New(Config{Store: newMemStore()})
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

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := New(Config{}).Start(context.Background()); err == nil {
		t.Error("Start without a Store succeeded")
	}
	if err := New(Config{Store: newMemStore(), Timeout: time.Minute, Lease: time.Second}).Start(context.Background()); err == nil {
		t.Error("Start with Lease < Timeout succeeded")
	}
}

// The backlog gauges are read from Store.Backlog at each scrape.
func TestBacklogMetrics(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	ctx := context.Background()
	if _, err := st.CreateEndpoint(ctx, store.Endpoint{ID: "ep_1", URL: "http://example.com/"}); err != nil {
		t.Fatal(err)
	}
	st.append(note(t, "cus_1", 1), note(t, "cus_1", 2), note(t, "cus_2", 1))
	if _, _, err := st.Enqueue(ctx, "ep_1", 10); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := newMetrics(st).register(reg); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, reg, "hookd_delivery_backlog", "endpoint", "ep_1"); got != 3 {
		t.Errorf("hookd_delivery_backlog{endpoint=ep_1} = %v, want 3", got)
	}
	if got := counter(t, reg, "hookd_delivery_oldest_undelivered_seconds", "endpoint", "ep_1"); got < 0 || got > 60 {
		t.Errorf("hookd_delivery_oldest_undelivered_seconds{endpoint=ep_1} = %v, want a few seconds at most", got)
	}
}
