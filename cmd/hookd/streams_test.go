package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/hookd/hookd/internal/bench"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
)

// cpuTicks returns the user plus system CPU time of process pid, in clock
// ticks, from /proc/<pid>/stat.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc to measure CPU with: %v", err)
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'. utime and stime are fields 14 and 15 of the
	// line, 12 and 13 after the name.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("parse /proc/%d/stat %q: %v %v", pid, raw, err1, err2)
	}
	return utime + stime
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's
// times: 100 on every Linux architecture Go supports.
const clockTicks = 100

// idleCPU measures the share of one core that process pid uses over d.
func idleCPU(t *testing.T, pid int, d time.Duration) float64 {
	t.Helper()
	start, began := cpuTicks(t, pid), time.Now()
	time.Sleep(d)
	used, elapsed := cpuTicks(t, pid)-start, time.Since(began)
	return float64(used) / clockTicks / elapsed.Seconds()
}

// openStreams opens n from_now Subscribe streams over a few connections
// of their own and waits until each has its headers (its start is fixed).
// The streams end when the test does.
func openStreams(t *testing.T, h *hookd, n int) []hookdv1.NotificationService_SubscribeClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before hookd's cleanup: SIGTERM waits for open streams
	var clients []hookdv1.NotificationServiceClient
	for range 4 {
		conn, err := grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		clients = append(clients, hookdv1.NewNotificationServiceClient(conn))
	}
	streams := make([]hookdv1.NotificationService_SubscribeClient, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := clients[i%len(clients)].Subscribe(ctx, &hookdv1.SubscribeRequest{FromNow: true})
			if err == nil {
				err = bench.AwaitStreamStart(s, 30*time.Second)
			}
			streams[i], errs[i] = s, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("open %d streams: %v", n, err)
	}
	return streams
}

// Idle Subscribe streams share one reader of the outbox: 2,000 of them
// cost a process at rest a small fraction of a core, and webhooks are
// answered (and reach every stream) while they are open. The bound is
// against streams that each poll the store (2,000 of them every 100 ms
// would take several cores); a process at rest already spends about 5 %
// of a core without any stream (protoactor's gossip, the shared reader's
// poll, the readiness probe, the delivery engine and the outbox stall
// sampler, each a query a second or less; more under -race), which made
// a 10 % bound fail now and then on a loaded CI machine.
func TestIdleStreamsShareOneReader(t *testing.T) {
	const n = 2000
	h := startHookd(t)
	streams := openStreams(t, h, n)

	time.Sleep(time.Second) // let start-up work settle
	cpu := idleCPU(t, h.proc.pid(), 3*time.Second)
	t.Logf("idle CPU with %d open streams: %.1f%% of a core", n, 100*cpu)
	if cpu > 0.20 {
		t.Errorf("idle CPU with %d open streams: %.1f%% of a core, want under 20%%", n, 100*cpu)
	}

	began := time.Now()
	a := h.post(t, customerEvent("evt_idle_1", "customer.created", "cus_idle", 1700000000, "i@example.com"))
	if a.Code != 200 {
		t.Fatalf("webhook with %d open streams answered %d %q, want 200", n, a.Code, a.Error)
	}
	t.Logf("webhook answered in %v with %d open streams", time.Since(began).Round(time.Millisecond), n)

	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := make(chan error, 1)
			go func() {
				m, err := s.Recv()
				if err == nil && m.GetEventId() != "evt_idle_1" {
					err = fmt.Errorf("notification of %s, want evt_idle_1", m.GetEventId())
				}
				got <- err
			}()
			select {
			case errs[i] = <-got:
			case <-time.After(20 * time.Second):
				errs[i] = fmt.Errorf("stream %d: no notification within 20s", i)
			}
		}()
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			if failed < 5 {
				t.Error(err)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d streams did not get the notification", failed, n)
	}
	t.Logf("all %d streams got the notification %v after the post", n, time.Since(began).Round(time.Millisecond))
}

// --max-streams: the limit+1th Subscribe stream is answered
// RESOURCE_EXHAUSTED, and a slot frees when a stream ends.
func TestMaxStreams(t *testing.T) {
	const limit = 5
	h := startHookd(t, "--max-streams", fmt.Sprint(limit))
	// open opens a from_now stream and waits for its headers, or for the
	// status it ended with before sending any.
	open := func(ctx context.Context) error {
		s, err := h.notifications().Subscribe(ctx, &hookdv1.SubscribeRequest{FromNow: true})
		if err != nil {
			return err
		}
		md, err := s.Header()
		if err == nil && md == nil {
			_, err = s.Recv()
		}
		return err
	}
	var cancels []context.CancelFunc
	for i := range limit {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel) // before hookd's cleanup: SIGTERM waits for open streams
		cancels = append(cancels, cancel)
		if err := open(ctx); err != nil {
			t.Fatalf("stream %d of %d: %v", i+1, limit, err)
		}
	}
	err := open(t.Context())
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "--max-streams") {
		t.Fatalf("stream %d with --max-streams %d: got %v, want RESOURCE_EXHAUSTED naming --max-streams", limit+1, limit, err)
	}
	t.Logf("stream %d: %v", limit+1, err)

	cancels[0]() // the server sees the stream end a moment later
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := open(ctx)
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted || time.Now().After(deadline) {
			t.Fatalf("stream after one of %d ended: got %v, want it served", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --max-http-conns: while the limit's worth of connections is open, a
// further one is not served; it is when one of them closes.
func TestMaxHTTPConns(t *testing.T) {
	h := startHookd(t, "--max-http-conns", "2")
	http.DefaultClient.CloseIdleConnections() // the readiness probes' connection holds a slot
	addr := strings.TrimPrefix(h.baseURL, "http://")
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	body := customerEvent("evt_conns_1", "customer.created", "cus_conns", 1700000000, "c@example.com")
	post := func(timeout time.Duration) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, h.webhookURL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", stripe.Sign(body, testSecret, time.Now()))
		resp, err := (&http.Client{Timeout: timeout, Transport: &http.Transport{}}).Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// Held connections send nothing; time for the listener to take both.
	time.Sleep(200 * time.Millisecond)
	if code, err := post(time.Second); err == nil {
		t.Fatalf("POST with 2 of --max-http-conns 2 held: answered %d, want no answer", code)
	}
	held[0].Close()
	if code, err := post(10 * time.Second); err != nil || code != 200 {
		t.Fatalf("POST after a held connection closed: got %d, %v; want 200", code, err)
	}
}

// ListEvents over large payloads returns pages bounded by bytes (3 MiB of
// payloads, the default gRPC client limit being 4 MiB) and pages through
// every event exactly once.
func TestListEventsPagesByBytes(t *testing.T) {
	h := startHookd(t)
	const n, size = 10, 900 << 10
	want := map[string]int{}
	for i := range n {
		id := fmt.Sprint("evt_big_", i)
		body := customerEvent(id, "customer.created", fmt.Sprint("cus_big_", i), 1700000000, "b@example.com")
		// Pad the object with a field hookd does not read.
		pad := `{"description": "` + strings.Repeat("d", size-len(body)) + `", "id"`
		body = []byte(strings.Replace(string(body), `{"id"`, pad, 1))
		if a := h.post(t, body); a.Code != 200 {
			t.Fatalf("post %s (%d bytes): %d %q", id, len(body), a.Code, a.Error)
		}
		want[id] = len(body)
	}
	seen := map[string]int{}
	token := ""
	pages := 0
	for {
		resp, err := h.events().ListEvents(t.Context(), &hookdv1.ListEventsRequest{PageSize: 500, PageToken: token})
		if err != nil {
			t.Fatalf("ListEvents page %d: %v", pages+1, err)
		}
		pages++
		total := 0
		for _, e := range resp.GetEvents() {
			seen[e.GetEventId()]++
			total += len(e.GetPayload())
		}
		t.Logf("page %d: %d events, %d payload bytes", pages, len(resp.GetEvents()), total)
		if len(resp.GetEvents()) == 0 || (len(resp.GetEvents()) > 1 && total > 3<<20) {
			t.Fatalf("page %d: %d events with %d payload bytes, want 1 or more within 3 MiB", pages, len(resp.GetEvents()), total)
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
		if pages > n {
			t.Fatalf("more pages than events")
		}
	}
	if pages < 3 {
		t.Errorf("%d events of %d KiB in %d pages, want at least 3 (3 MiB a page)", n, size>>10, pages)
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("%s listed %d times, want once", id, seen[id])
		}
	}
	if len(seen) != n {
		t.Errorf("listed %d distinct events, want %d", len(seen), n)
	}
}
