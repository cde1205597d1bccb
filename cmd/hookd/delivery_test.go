package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookd/hookd/client"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// deliveryArgs make push delivery fast enough to test: a compressed retry
// schedule long enough that random failures never exhaust it, short
// timeouts and leases, and endpoints on loopback allowed.
var deliveryArgs = []string{
	"--allow-private-endpoints",
	"--delivery-schedule", "50ms,100ms,200ms,300ms,400ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms",
	"--delivery-timeout", "1s",
	"--delivery-lease", "3s",
	"--delivery-poll", "100ms",
}

// failMode is how the receiver answers one request.
type failMode int

const (
	answerOK failMode = iota
	answer500
	answer429          // Retry-After: 1
	answerTimeout      // answers after hookd's --delivery-timeout
	answerReset        // closes the connection without an answer
	answer500Permanent // for the dead-letter test
)

type custVersion struct {
	customer string
	version  int64
}

// receiver is a webhook endpoint on loopback that verifies every request
// with the Standard Webhooks reference library and records, per customer,
// the order in which it first accepted each notification.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	decide func(n *hookdv1.Notification) failMode // nil: always answerOK

	mu       sync.Mutex
	wh       *standardwebhooks.Webhook
	accepted map[string][]int64        // customer → versions, in first-acceptance order
	seen     map[custVersion]bool      // accepted at least once
	ids      map[custVersion]string    // the webhook-id each notification came with
	acceptAt map[custVersion]time.Time // first acceptance
	requests int
	problems []string // bad signatures, changing webhook-ids, bad bodies
	conns    atomic.Int64
}

func newReceiver(t *testing.T, decide func(n *hookdv1.Notification) failMode) *receiver {
	r := &receiver{t: t, decide: decide, accepted: map[string][]int64{}, seen: map[custVersion]bool{},
		ids: map[custVersion]string{}, acceptAt: map[custVersion]time.Time{}}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setSecret(secret string) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		r.t.Fatalf("the reference library refuses hookd's secret %q: %v", secret, err)
	}
	r.mu.Lock()
	r.wh = wh
	r.mu.Unlock()
}

func (r *receiver) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) < 20 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	r.mu.Lock()
	wh := r.wh
	r.requests++
	r.mu.Unlock()
	if wh == nil {
		r.problem("a request before the endpoint's secret was known")
		http.Error(w, "no secret", http.StatusBadRequest)
		return
	}
	if err := wh.Verify(body, req.Header); err != nil {
		r.problem("signature does not verify: %v (headers %v)", err, req.Header)
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	if ct, ua := req.Header.Get("Content-Type"), req.Header.Get("User-Agent"); ct != "application/json" || !strings.HasPrefix(ua, "hookd/") {
		r.problem("Content-Type %q, User-Agent %q", ct, ua)
	}
	var n hookdv1.Notification
	if err := protojson.Unmarshal(body, &n); err != nil {
		r.problem("body is not a Notification: %v: %s", err, body)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	key := custVersion{n.GetCustomerId(), n.GetVersion()}
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	if old, ok := r.ids[key]; ok && old != id {
		r.mu.Unlock()
		r.problem("%v came with webhook-id %s, earlier %s", key, id, old)
		r.mu.Lock()
	}
	r.ids[key] = id
	r.mu.Unlock()

	mode := answerOK
	if r.decide != nil {
		mode = r.decide(&n)
	}
	switch mode {
	case answer500, answer500Permanent:
		http.Error(w, "receiver failure "+strings.Repeat("x", 2000), http.StatusInternalServerError)
		return
	case answer429:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	case answerTimeout:
		time.Sleep(1500 * time.Millisecond) // past --delivery-timeout 1s: hookd gave up
		http.Error(w, "too late", http.StatusInternalServerError)
		return
	case answerReset:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0) // RST, not FIN
				}
				c.Close()
				return
			}
		}
		http.Error(w, "reset", http.StatusInternalServerError)
		return
	}
	r.mu.Lock()
	if !r.seen[key] {
		r.seen[key] = true
		r.accepted[key.customer] = append(r.accepted[key.customer], key.version)
		r.acceptAt[key] = time.Now()
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// acceptedCount is how many distinct notifications were accepted.
func (r *receiver) acceptedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// waitAccepted waits until want distinct notifications were accepted.
func (r *receiver) waitAccepted(t *testing.T, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for r.acceptedCount() < want {
		if time.Now().After(deadline) {
			t.Fatalf("receiver accepted %d distinct notifications within %s, want %d", r.acceptedCount(), within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// check asserts what every delivery test requires: no bad signature, no
// changing webhook-id, and per customer the versions 1…perCustomer first
// accepted in order, each once.
func (r *receiver) check(t *testing.T, customers []string, perCustomer int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.problems {
		t.Error(p)
	}
	for _, c := range customers {
		got := r.accepted[c]
		ok := len(got) == perCustomer
		for i := 0; ok && i < perCustomer; i++ {
			ok = got[i] == int64(i+1)
		}
		if !ok {
			t.Fatalf("customer %s: first acceptances in the order %v, want versions 1…%d in order", c, got, perCustomer)
		}
	}
	ids := map[string]custVersion{}
	for k, id := range r.ids {
		if other, dup := ids[id]; dup {
			t.Errorf("webhook-id %s used for %v and %v", id, k, other)
		}
		ids[id] = k
	}
}

// randomFailures fails about a third of requests, in every way a receiver
// can: 500, 429 with Retry-After, a timeout, a connection reset.
func randomFailures(seed uint64) func(*hookdv1.Notification) failMode {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(*hookdv1.Notification) failMode {
		mu.Lock()
		p := rng.Float64()
		mu.Unlock()
		switch {
		case p < 0.16:
			return answer500
		case p < 0.20:
			return answer429
		case p < 0.22:
			return answerTimeout
		case p < 0.28:
			return answerReset
		}
		return answerOK
	}
}

func endpoints(conn *grpc.ClientConn) hookdv1.EndpointServiceClient {
	return hookdv1.NewEndpointServiceClient(conn)
}

// createEndpoint registers r with hookd and gives r the secret.
func createEndpoint(t *testing.T, conn *grpc.ClientConn, r *receiver, filter *hookdv1.EndpointFilter) *hookdv1.Endpoint {
	t.Helper()
	resp, err := endpoints(conn).CreateEndpoint(t.Context(), &hookdv1.CreateEndpointRequest{
		Url: r.srv.URL + "/hooks", Description: "test receiver", Filter: filter,
	})
	if err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	if !strings.HasPrefix(resp.GetSecret(), "whsec_") || !strings.HasPrefix(resp.GetEndpoint().GetId(), "ep_") {
		t.Fatalf("CreateEndpoint = %v, want an ep_ id and a whsec_ secret", resp)
	}
	r.setSecret(resp.GetSecret())
	return resp.GetEndpoint()
}

func customerIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("cus_cl_%05d", i)
	}
	return ids
}

// 1,000 customers × 3 events, a receiver that fails a third of its
// requests at random: every notification reaches it, per customer in
// version order, each request signed as Standard Webhooks and with one
// webhook-id across its retries. On both stores.
func TestDeliveryToAFlakyReceiverKeepsOrder(t *testing.T) {
	const customers, perCustomer = 1000, 3
	forEachStore(t, func(t *testing.T, h *hookd) {
		r := newReceiver(t, randomFailures(uint64(len(h.databaseURL))))
		ep := createEndpoint(t, h.conn, r, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		var res loadResult
		if err := sendLoad(ctx, h.webhookURL, customers, perCustomer, &res); err != nil {
			t.Fatal(err)
		}
		r.waitAccepted(t, customers*perCustomer, 2*time.Minute)
		r.check(t, customerIDs(customers), perCustomer)
		r.mu.Lock()
		t.Logf("%d requests for %d notifications", r.requests, customers*perCustomer)
		r.mu.Unlock()

		// The attempts are visible: a delivery that was retried lists each
		// attempt, newest first, with the receiver's answer.
		ds, err := endpoints(h.conn).ListDeliveries(ctx, &hookdv1.ListDeliveriesRequest{EndpointId: ep.GetId(), PageSize: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds.GetDeliveries() {
			if d.GetStatus() != hookdv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED {
				continue // a later duplicate acceptance can still be completing
			}
			if d.GetAttempts() < 2 {
				continue
			}
			as, err := endpoints(h.conn).ListAttempts(ctx, &hookdv1.ListAttemptsRequest{DeliveryId: d.GetId()})
			if err != nil {
				t.Fatal(err)
			}
			if len(as.GetAttempts()) < 2 || as.GetAttempts()[0].GetStatusCode() != 204 || as.GetAttempts()[0].GetAttempt() <= as.GetAttempts()[1].GetAttempt() {
				t.Fatalf("attempts of %s (%d attempts): %v, want newest first, the last answered 204", d.GetId(), d.GetAttempts(), as.GetAttempts())
			}
			for _, a := range as.GetAttempts()[1:] {
				if a.GetStatusCode() == 500 && len(a.GetResponseBody()) != 1024 {
					t.Fatalf("a 500 attempt keeps %d bytes of the body, want the first 1024", len(a.GetResponseBody()))
				}
			}
			return
		}
		t.Fatal("no delivery needed a second attempt in the first page: the receiver's failures did not take effect")
	}, deliveryArgs...)
}

// kill -9 of hookd mid-run, and then the database going away mid-run
// (connections refused and every session terminated, as in a restart):
// every notification still reaches the receiver, in order per customer.
func TestDeliverySurvivesKill9AndDatabaseRestart(t *testing.T) {
	const customers, perCustomer = 300, 4
	db := pgtest.NewDatabase(t)
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	args := append([]string{"--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--admin-addr", "off",
		"--stripe-webhook-secret", testSecret, "--log-level", "warn", "--database-url", db}, deliveryArgs...)
	proc := startProcess(t, httpAddr, args...)
	defer func() { proc.kill() }()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := newReceiver(t, randomFailures(7))
	createEndpoint(t, conn, r, nil)

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	var res loadResult
	done := make(chan error, 1)
	go func() { done <- sendLoad(ctx, "http://"+httpAddr+"/v1/webhooks/stripe", customers, perCustomer, &res) }()
	for r.acceptedCount() < 150 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	proc.kill()
	t.Logf("killed hookd after %d acknowledged events, %d notifications accepted", res.acked.Load(), r.acceptedCount())
	proc = startProcess(t, httpAddr, args...)

	for r.acceptedCount() < 500 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	outage := databaseOutage(t, db)
	t.Logf("database down after %d notifications accepted", r.acceptedCount())
	time.Sleep(2 * time.Second)
	outage()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.waitAccepted(t, customers*perCustomer, 2*time.Minute)
	r.check(t, customerIDs(customers), perCustomer)
}

// databaseOutage refuses new connections to the database and terminates
// every session, as a PostgreSQL restart does to its clients (a real
// restart would take down the other tests' databases too). It returns the
// function that ends the outage.
func databaseOutage(t *testing.T, db string) (end func()) {
	t.Helper()
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := os.Getenv(pgtest.EnvURL)
	if admin == "" {
		admin = pgtest.DefaultURL
	}
	conn, err := pgx.Connect(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	set := func(allowed bool) {
		if _, err := conn.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH ALLOW_CONNECTIONS "+fmt.Sprint(allowed)); err != nil {
			t.Error(err)
		}
	}
	set(false)
	if _, err := conn.Exec(t.Context(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	end = func() {
		once.Do(func() {
			set(true)
			conn.Close(context.Background())
		})
	}
	t.Cleanup(end)
	return end
}

// Two members over one database, one killed mid-run: the other takes over
// its leased deliveries, and order per customer holds.
func TestDeliveryTwoMembersOneKilled(t *testing.T) {
	const customers, perCustomer = 200, 4
	c := startClusterWith(t, 2, func(int) []string { return deliveryArgs })
	conn, err := grpc.NewClient(c.grpc[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := newReceiver(t, randomFailures(11))
	createEndpoint(t, conn, r, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	var res loadResult
	done := make(chan error, 1)
	go func() { done <- sendLoad(ctx, c.webhook, customers, perCustomer, &res) }()
	for r.acceptedCount() < 200 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	c.members[1].signal(syscall.SIGKILL)
	t.Logf("killed member 2 after %d notifications accepted", r.acceptedCount())
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.waitAccepted(t, customers*perCustomer, 2*time.Minute)
	r.check(t, customerIDs(customers), perCustomer)
}

// One customer whose deliveries always fail is dead-lettered after the
// schedule while the other customers' deliveries to the same endpoint go
// on; once the receiver recovers, RedeliverFailed sends its failed ones,
// in order, with their original webhook-ids.
func TestDeliveryDeadLetterAndRedeliver(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *hookd) {
		var recovered atomic.Bool
		r := newReceiver(t, func(n *hookdv1.Notification) failMode {
			if n.GetCustomerId() == "cus_cl_00000" && !recovered.Load() {
				return answer500Permanent
			}
			return answerOK
		})
		ep := createEndpoint(t, h.conn, r, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		var res loadResult
		if err := sendLoad(ctx, h.webhookURL, 20, 3, &res); err != nil {
			t.Fatal(err)
		}
		r.waitAccepted(t, 19*3, time.Minute) // every other customer's

		// cus_cl_00000's three deliveries fail, one after the other.
		var failed []*hookdv1.Delivery
		for deadline := time.Now().Add(time.Minute); ; {
			ds, err := endpoints(h.conn).ListDeliveries(ctx, &hookdv1.ListDeliveriesRequest{
				EndpointId: ep.GetId(), CustomerId: "cus_cl_00000", Status: hookdv1.DeliveryStatus_DELIVERY_STATUS_FAILED})
			if err != nil {
				t.Fatal(err)
			}
			if failed = ds.GetDeliveries(); len(failed) == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d failed deliveries of cus_cl_00000 after a minute, want 3", len(failed))
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, d := range failed {
			if d.GetAttempts() != 2 || d.GetLastStatusCode() != 500 || d.GetEndedAt() == nil {
				t.Errorf("failed delivery %v: want 2 attempts (schedule 50ms), last 500, an end time", d)
			}
		}
		if r.acceptedCount() != 19*3 {
			t.Fatalf("accepted %d, want %d", r.acceptedCount(), 19*3)
		}
		// Redeliver of one that did not fail is refused with a reason.
		ok, err := endpoints(h.conn).ListDeliveries(ctx, &hookdv1.ListDeliveriesRequest{EndpointId: ep.GetId(), Status: hookdv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, PageSize: 1})
		if err != nil || len(ok.GetDeliveries()) != 1 {
			t.Fatalf("ListDeliveries delivered: %v %v", ok, err)
		}
		if _, err := endpoints(h.conn).Redeliver(ctx, &hookdv1.RedeliverRequest{DeliveryId: ok.GetDeliveries()[0].GetId()}); status.Code(err) != codes.FailedPrecondition || client.ReasonOf(err) != client.ReasonNotRedeliverable {
			t.Errorf("Redeliver of a delivered one: %v, want FAILED_PRECONDITION %s", err, client.ReasonNotRedeliverable)
		}

		recovered.Store(true)
		n, err := endpoints(h.conn).RedeliverFailed(ctx, &hookdv1.RedeliverFailedRequest{EndpointId: ep.GetId(), Since: timestamppb.New(time.Now().Add(-time.Hour))})
		if err != nil || n.GetRedelivered() != 3 {
			t.Fatalf("RedeliverFailed = %v, %v; want 3", n, err)
		}
		r.waitAccepted(t, 20*3, time.Minute)
		r.check(t, customerIDs(20), 3)
		// The metrics tell the same story: 3 dead letters, a backlog of 0
		// once the redelivered ones are through.
		if n := metricValue(t, h, `hookd_deliveries_total{outcome="failed"}`); n != 3 {
			t.Errorf(`hookd_deliveries_total{outcome="failed"} = %v, want 3`, n)
		}
		if n := metricValue(t, h, `hookd_deliveries_total{outcome="delivered"}`); n < 60 {
			t.Errorf(`hookd_deliveries_total{outcome="delivered"} = %v, want at least 60`, n)
		}
		for deadline := time.Now().Add(10 * time.Second); metricValue(t, h, `hookd_delivery_backlog{endpoint="`+ep.GetId()+`"}`) != 0; {
			if time.Now().After(deadline) {
				t.Fatal("delivery backlog not 0 after everything was accepted")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}, append(slicesClone(deliveryArgs), "--delivery-schedule", "50ms")...)
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// Without --allow-private-endpoints, endpoints on internal addresses are
// refused when they are created, before anything connects to them; and
// EndpointService needs the admin scope.
func TestDeliveryRefusesPrivateEndpointsAndStrangers(t *testing.T) {
	h := startHookd(t, "--admin-token", "tok_admin_0123456789", "--tokens", "read tok_read_0123456789")
	r := newReceiver(t, nil)
	ctx := t.Context()
	call := func(token, u string) error {
		ctx := ctx
		if token != "" {
			ctx = withToken(ctx, token)
		}
		_, err := endpoints(h.conn).CreateEndpoint(ctx, &hookdv1.CreateEndpointRequest{Url: u})
		return err
	}
	for _, u := range []string{"http://169.254.169.254/latest/meta-data", "http://10.0.0.1/hooks", r.srv.URL + "/hooks", "http://localhost:1/x", "ftp://example.com/x", "http://[::1]/x"} {
		err := call("tok_admin_0123456789", u)
		if status.Code(err) != codes.InvalidArgument || client.ReasonOf(err) != client.ReasonEndpointRefused {
			t.Errorf("CreateEndpoint %s = %v, want INVALID_ARGUMENT %s", u, err, client.ReasonEndpointRefused)
		}
	}
	if n := r.conns.Load(); n != 0 {
		t.Errorf("the refused loopback receiver got %d connections, want 0", n)
	}
	if err := call("", "https://example.com/hooks"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("without a token: %v, want UNAUTHENTICATED", err)
	}
	if err := call("tok_read_0123456789", "https://example.com/hooks"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("with a read token: %v, want PERMISSION_DENIED", err)
	}
	if _, err := endpoints(h.conn).ListEndpoints(withToken(ctx, "tok_read_0123456789"), &hookdv1.ListEndpointsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("ListEndpoints with a read token: %v, want PERMISSION_DENIED", err)
	}
}

// An endpoints file configures delivery with no API call: its endpoint is
// delivered to, signed with the file's secret; a file naming a private
// address is refused at start.
func TestDeliveryEndpointsFile(t *testing.T) {
	r := newReceiver(t, nil)
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	r.setSecret(secret)
	dir := t.TempDir()
	file := filepath.Join(dir, "endpoints.yaml")
	write := func(u string) {
		if err := os.WriteFile(file, []byte(fmt.Sprintf("endpoints:\n  - id: billing\n    url: %s/hooks\n    secret_env: HOOKD_TEST_BILLING_SECRET\n    kinds: [customer.created, customer.updated]\n", u)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(r.srv.URL)
	t.Setenv("HOOKD_TEST_BILLING_SECRET", secret)
	h := startHookdOn(t, storeEmbedded, append(slicesClone(deliveryArgs), "--endpoints-file", file)...)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var res loadResult
	if err := sendLoad(ctx, h.webhookURL, 5, 2, &res); err != nil {
		t.Fatal(err)
	}
	r.waitAccepted(t, 10, 30*time.Second)
	r.check(t, customerIDs(5), 2)
	ep, err := endpoints(h.conn).GetEndpoint(ctx, &hookdv1.GetEndpointRequest{Id: "billing"})
	if err != nil || ep.GetOrigin() != "config" || ep.GetState() != hookdv1.EndpointState_ENDPOINT_STATE_ACTIVE {
		t.Fatalf("GetEndpoint billing = %v, %v; want an active endpoint of origin config", ep, err)
	}

	write("http://10.0.0.1")
	out, err := runHookdOnce(t, "--data-dir", t.TempDir(), "--endpoints-file", file, "--http-addr", freeAddr(t), "--grpc-addr", freeAddr(t), "--admin-addr", "off")
	if err == nil || !strings.Contains(out, "private") {
		t.Fatalf("start with an endpoint on 10.0.0.1: %v\n%s\nwant a refusal naming the private address", err, out)
	}
}

var errNotExited = errors.New("hookd did not exit")

// runHookdOnce runs hookd with args until it exits (within 30 s) and
// returns its output and exit error.
func runHookdOnce(t *testing.T, args ...string) (string, error) {
	t.Helper()
	p := spawnProcess(t, args...)
	deadline := time.Now().Add(30 * time.Second)
	for p.alive() {
		if time.Now().After(deadline) {
			p.kill()
			return p.out.String(), errNotExited
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p.out.String(), p.cmd.Wait()
}

// RotateSecret: during the grace period each request carries a signature
// by the new secret and one by the old, so receivers on either verify; a
// rotation with grace 0s leaves only the newest. Pause holds deliveries
// back without losing them; Resume sends them; a filter selects kinds.
func TestDeliveryRotatePauseFilter(t *testing.T) {
	type request struct {
		body []byte
		hdr  http.Header
	}
	got := make(chan request, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- request{b, r.Header.Clone()}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	h := startHookdOn(t, storeEmbedded, deliveryArgs...)
	ctx := t.Context()
	es := endpoints(h.conn)
	created, err := es.CreateEndpoint(ctx, &hookdv1.CreateEndpointRequest{Url: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	id, first := created.GetEndpoint().GetId(), created.GetSecret()
	rotated, err := es.RotateSecret(ctx, &hookdv1.RotateSecretRequest{Id: id})
	if err != nil || rotated.GetSecret() == first || rotated.GetEndpoint().GetActiveSecrets() != 2 {
		t.Fatalf("RotateSecret = %v, %v; want a new secret and 2 active", rotated, err)
	}
	second := rotated.GetSecret()
	verifies := func(r request, secret string) bool {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		return wh.Verify(r.body, r.hdr) == nil
	}
	next := func(what string) request {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("no delivery of %s", what)
		}
		return request{}
	}
	h.post(t, customerEvent("evt_rot_1", "customer.created", "cus_rot", 1700000000, "a@example.com"))
	r := next("evt_rot_1")
	if !verifies(r, first) || !verifies(r, second) || len(strings.Fields(r.hdr.Get("webhook-signature"))) != 2 {
		t.Fatalf("during the grace period: signature %q; want two, by the old and the new secret", r.hdr.Get("webhook-signature"))
	}

	third, err := es.RotateSecret(ctx, &hookdv1.RotateSecretRequest{Id: id, Grace: durationpb.New(0)})
	if err != nil || third.GetEndpoint().GetActiveSecrets() != 2 {
		// The second secret stops at once; the first keeps its grace.
		t.Fatalf("RotateSecret grace 0s = %v, %v; want 2 active (the newest, and the first in its grace)", third, err)
	}
	if _, err := es.PauseEndpoint(ctx, &hookdv1.PauseEndpointRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	h.post(t, customerEvent("evt_rot_2", "customer.updated", "cus_rot", 1700000001, "b@example.com"))
	select {
	case r := <-got:
		t.Fatalf("a paused endpoint got %s", r.body)
	case <-time.After(time.Second):
	}
	if ep, err := es.ResumeEndpoint(ctx, &hookdv1.ResumeEndpointRequest{Id: id}); err != nil || ep.GetState() != hookdv1.EndpointState_ENDPOINT_STATE_ACTIVE {
		t.Fatalf("ResumeEndpoint = %v, %v", ep, err)
	}
	r = next("evt_rot_2 after the resume")
	if !verifies(r, third.GetSecret()) || verifies(r, second) || !strings.Contains(string(r.body), "evt_rot_2") {
		t.Fatalf("after a rotation with grace 0s: %s signed %q; want the newest secret's signature and not the previous one's", r.body, r.hdr.Get("webhook-signature"))
	}

	if _, err := es.UpdateEndpoint(ctx, &hookdv1.UpdateEndpointRequest{Id: id, Filter: &hookdv1.EndpointFilter{Kinds: []string{"customer.deleted"}}}); err != nil {
		t.Fatal(err)
	}
	h.post(t, customerEvent("evt_rot_3", "customer.updated", "cus_rot", 1700000002, "c@example.com"))
	h.post(t, customerEvent("evt_rot_4", "customer.deleted", "cus_rot", 1700000003, "c@example.com"))
	if r := next("evt_rot_4"); !strings.Contains(string(r.body), "evt_rot_4") {
		t.Fatalf("with a customer.deleted filter, got %s", r.body)
	}
}
