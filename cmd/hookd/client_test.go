package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookd/hookd/client"
	"github.com/hookd/hookd/internal/certs/certstest"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

const clientTestToken = "client-test-token-0123456789abcdef"

// A client follows 5,000 notifications from 1,000 customers while hookd is
// killed twice with SIGKILL and stopped once with SIGTERM, each time
// restarted on the same database at the same addresses: the handler sees
// every (customer, version) exactly once, in version order per customer,
// and the cursor file ends at the last notification handled.
func TestClientFollowsAcrossRestarts(t *testing.T) {
	const customers, perCustomer = 1000, 5
	const total = customers * perCustomer
	// startHookdOnStore picks new addresses each time (and polls readiness
	// on its own --http-addr), so this test starts the process itself: the
	// same database and addresses on every restart.
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	args := []string{
		"--database-url", pgtest.NewDatabase(t),
		"--http-addr", httpAddr, "--grpc-addr", grpcAddr,
		"--stripe-webhook-secret", testSecret, "--admin-token", clientTestToken,
		"--shutdown-timeout", "5s", "--log-level", "warn",
	}
	proc := startProcess(t, httpAddr, args...)
	defer func() {
		if err := proc.terminate(30 * time.Second); err != nil {
			t.Errorf("hookd did not stop cleanly on SIGTERM: %v\n%s", err, proc.out.String())
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := client.New(grpcAddr, client.WithInsecure(), client.WithToken(clientTestToken),
		client.WithBackoff(client.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	var (
		mu         sync.Mutex
		last       = map[string]int64{} // customer → last version handled
		handled    int
		lastCursor string
		problems   []string
		allSeen    = make(chan struct{})
	)
	handler := func(_ context.Context, n *hookdv1.Notification) error {
		mu.Lock()
		defer mu.Unlock()
		if want := last[n.GetCustomerId()] + 1; n.GetVersion() != want && len(problems) < 20 {
			problems = append(problems, fmt.Sprintf("customer %s: got version %d, want %d (a repeat or a gap)", n.GetCustomerId(), n.GetVersion(), want))
		}
		last[n.GetCustomerId()] = max(last[n.GetCustomerId()], n.GetVersion())
		lastCursor = n.GetCursor()
		handled++
		if handled == total {
			close(allSeen)
		}
		return nil
	}
	cursorFile := filepath.Join(t.TempDir(), "cursor")
	subCtx, stopSub := context.WithCancel(ctx)
	// The subscriber and the senders end before the client closes, also
	// when the test fails early.
	var wg sync.WaitGroup
	defer func() {
		stopSub()
		cancel()
		wg.Wait()
	}()
	subDone := make(chan error, 1)
	wg.Go(func() {
		subDone <- cl.Subscribe(subCtx, client.SubscribeOptions{}, handler, client.NewFileCursor(cursorFile))
	})

	var res loadResult
	loadDone := make(chan error, 1)
	wg.Go(func() {
		loadDone <- sendLoad(ctx, "http://"+httpAddr+"/v1/webhooks/stripe", customers, perCustomer, &res)
	})

	// waitAcked waits until n events were acknowledged.
	waitAcked := func(n int64) {
		t.Helper()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for res.acked.Load() < n {
			select {
			case <-ctx.Done():
				t.Fatalf("only %d of %d events acknowledged before the deadline", res.acked.Load(), n)
			case err := <-loadDone:
				t.Fatalf("load ended early at %d acknowledged: %v", res.acked.Load(), err)
			case <-tick.C:
			}
		}
	}
	for i, at := range []int64{1000, 2200, 3400} {
		waitAcked(at)
		mu.Lock()
		t.Logf("%d notifications handled", handled)
		mu.Unlock()
		if i < 2 {
			proc.kill()
			t.Logf("SIGKILL after %d acknowledged events", res.acked.Load())
		} else {
			if err := proc.terminate(30 * time.Second); err != nil {
				t.Fatalf("hookd did not stop cleanly on SIGTERM: %v\n%s", err, proc.out.String())
			}
			t.Logf("SIGTERM after %d acknowledged events", res.acked.Load())
		}
		proc = startProcess(t, httpAddr, args...)
	}
	if err := <-loadDone; err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Logf("%s", res.summary())
	select {
	case <-allSeen:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("handled %d of %d notifications before the deadline; problems: %v", handled, total, problems)
	}
	stopSub()
	if err := <-subDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe returned %v, want context.Canceled", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("%d notifications out of order or repeated:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	if handled != total || len(last) != customers {
		t.Fatalf("handled %d notifications of %d customers, want %d of %d", handled, len(last), total, customers)
	}
	for c, v := range last {
		if v != perCustomer {
			t.Fatalf("customer %s: last version %d, want %d", c, v, perCustomer)
		}
	}
	saved, err := os.ReadFile(cursorFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(saved)); got != lastCursor {
		t.Fatalf("cursor file holds %q, want the last handled cursor %q", got, lastCursor)
	}
}

// The client's single calls and Subscribe's permanent errors against a
// real hookd: typed errors that still carry their gRPC status, paging, and
// a Subscribe that returns at once instead of retrying forever.
func TestClientCallsAndPermanentErrors(t *testing.T) {
	t.Parallel()
	h := startHookd(t, "--admin-token", clientTestToken)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(token string) *client.Client {
		cl, err := client.New(h.grpcAddr, client.WithInsecure(), client.WithToken(token))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	cl := dial(clientTestToken)

	const n = 7
	for v := range n {
		typ := "customer.updated"
		if v == 0 {
			typ = "customer.created"
		}
		if a := h.post(t, customerEvent(fmt.Sprintf("evt_cli_%d", v), typ, "cus_cli", 1700000000+int64(v), fmt.Sprintf("v%d@example.com", v))); a.Code != 200 {
			t.Fatalf("post %d: %d %s", v, a.Code, a.Error)
		}
	}

	cu, err := cl.GetCustomer(ctx, "cus_cli")
	if err != nil || cu.GetVersion() != n {
		t.Fatalf("GetCustomer: version %d, err %v; want version %d", cu.GetVersion(), err, n)
	}
	_, err = cl.GetCustomer(ctx, "cus_nobody")
	if !errors.Is(err, client.ErrNotFound) || status.Code(err) != codes.NotFound {
		t.Fatalf("GetCustomer of an unknown customer: %v (code %v), want ErrNotFound with code NotFound", err, status.Code(err))
	}

	seen := map[string]int{}
	for e, err := range cl.ListEvents(ctx, client.EventFilter{CustomerID: "cus_cli", PageSize: 2}) {
		if err != nil {
			t.Fatalf("ListEvents: %v", err)
		}
		seen[e.GetEventId()]++
	}
	if len(seen) != n {
		t.Fatalf("ListEvents listed %d distinct events, want %d: %v", len(seen), n, seen)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("ListEvents listed %s %d times, want once", id, k)
		}
	}

	r, err := cl.ReplayEvent(ctx, "evt_cli_0")
	if err != nil || r.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_DUPLICATE {
		t.Fatalf("ReplayEvent: status %v, err %v; want DUPLICATE", r.GetStatus(), err)
	}
	if _, err := cl.ReplayEvent(ctx, "evt_nothing"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("ReplayEvent of an unknown event: %v, want ErrNotFound", err)
	}

	never := func(context.Context, *hookdv1.Notification) error {
		return errors.New("handler called on a stream that should have failed")
	}
	err = dial("wrong-token-0123456789abcdef").Subscribe(ctx, client.SubscribeOptions{}, never, &client.MemoryCursor{})
	if !errors.Is(err, client.ErrUnauthenticated) || status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Subscribe with an unknown token: %v, want ErrUnauthenticated", err)
	}
	if _, err := dial("").GetCustomer(ctx, "cus_cli"); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("GetCustomer without a token: %v, want ErrUnauthenticated", err)
	}
	bad := &client.MemoryCursor{}
	bad.Save(ctx, "not-a-cursor")
	err = cl.Subscribe(ctx, client.SubscribeOptions{}, never, bad)
	if !errors.Is(err, client.ErrInvalidArgument) || status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Subscribe after a malformed cursor: %v, want ErrInvalidArgument", err)
	}

	// A handler error stops Subscribe without saving that cursor.
	mem := &client.MemoryCursor{}
	stop := errors.New("stop here")
	calls := 0
	err = cl.Subscribe(ctx, client.SubscribeOptions{CustomerID: "cus_cli"}, func(_ context.Context, m *hookdv1.Notification) error {
		calls++
		if m.GetVersion() == 3 {
			return stop
		}
		return nil
	}, mem)
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("Subscribe with a failing handler: %v after %d calls, want %v after 3", err, calls, stop)
	}
	var resumed []int64
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	cl.Subscribe(sctx, client.SubscribeOptions{CustomerID: "cus_cli"}, func(_ context.Context, m *hookdv1.Notification) error {
		resumed = append(resumed, m.GetVersion())
		if m.GetVersion() == n {
			scancel()
		}
		return nil
	}, mem)
	if len(resumed) != n-2 || resumed[0] != 3 {
		t.Fatalf("resumed with versions %v, want 3..%d", resumed, n)
	}
}

// WithTLS and WithToken against a hookd that wants client certificates
// and a bearer token.
func TestClientOverMutualTLS(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t, "hookd")
	server, pair := ca.Server(t, "hookd"), ca.Client(t, "client")
	h := startHookdWith(t, "", t.TempDir(), tlsClient(t, ca, &pair),
		"--tls-cert", server.CertFile, "--tls-key", server.KeyFile, "--grpc-client-ca", ca.File, "--admin-token", clientTestToken)
	if a := h.post(t, customerEvent("evt_cli_tls", "customer.created", "cus_cli_tls", 1700000000, "tls@example.com")); a.Code != 200 {
		t.Fatalf("post: %d %s", a.Code, a.Error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.New(h.grpcAddr, client.WithToken(clientTestToken), client.WithTLS(&tls.Config{
		RootCAs: ca.Pool(), Certificates: []tls.Certificate{pair.TLS(t)}, MinVersion: tls.VersionTLS12,
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if cu, err := cl.GetCustomer(ctx, "cus_cli_tls"); err != nil || cu.GetVersion() != 1 {
		t.Fatalf("GetCustomer over mTLS: version %d, %v; want version 1", cu.GetVersion(), err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var got []string
	err = cl.Subscribe(sctx, client.SubscribeOptions{}, func(_ context.Context, n *hookdv1.Notification) error {
		got = append(got, n.GetEventId())
		stop()
		return nil
	}, &client.MemoryCursor{})
	if !errors.Is(err, context.Canceled) || len(got) != 1 || got[0] != "evt_cli_tls" {
		t.Fatalf("Subscribe over mTLS: %v after %v, want evt_cli_tls then context.Canceled", err, got)
	}
}
