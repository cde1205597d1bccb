package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookd/hookd/provider/stripe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// hookdBinary builds the hookd binary once (without -race: the cluster
// tests run four processes on two cores).
var hookdBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "hookd-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "hookd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// node is one hookd or etcd process of a test cluster.
type node struct {
	name     string
	args     []string
	bin      string
	readyURL string
	cmd      *exec.Cmd
	log      *os.File
}

func (n *node) start(t *testing.T) {
	t.Helper()
	n.cmd = exec.Command(n.bin, n.args...)
	n.cmd.Env = append(os.Environ(), "HOOKD_ADMIN_ADDR=127.0.0.1:0") // not all on the default 9091
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", n.name, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(n.readyURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 60s; see %s", n.name, n.log.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *node) signal(sig syscall.Signal) { n.cmd.Process.Signal(sig) }

func (n *node) stop() {
	if n.cmd == nil || n.cmd.ProcessState != nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGCONT)
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		<-done
	}
}

// testCluster is etcd, three members and a gateway over one PostgreSQL,
// all real processes on 127.0.0.1.
type testCluster struct {
	etcd    *node
	members []*node
	gateway *node
	grpc    []string // the members' gRPC addresses
	webhook string
	logDir  string
}

func startCluster(t *testing.T, members int) *testCluster {
	t.Helper()
	return startClusterWith(t, members, nil)
}

// startClusterWith is startCluster with more flags for member i (from 0)
// from memberArgs, when not nil.
func startClusterWith(t *testing.T, members int, memberArgs func(i int) []string) *testCluster {
	t.Helper()
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd is not installed (apt-get install etcd-server; .ci/test does): %v", err)
	}
	bin, err := hookdBinary()
	if err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	c := &testCluster{logDir: logDir}
	logFile := func(name string) *os.File {
		f, err := os.Create(filepath.Join(logDir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	t.Cleanup(func() {
		for _, n := range append(append([]*node{c.gateway}, c.members...), c.etcd) {
			if n != nil {
				n.stop()
			}
		}
		if t.Failed() {
			for _, n := range append(append([]*node{c.gateway}, c.members...), c.etcd) {
				if n != nil {
					b, _ := os.ReadFile(n.log.Name())
					t.Logf("---- %s log (last 3000 bytes):\n%s", n.name, tail(b, 3000))
				}
			}
		}
	})

	client, peer := freeAddr(t), freeAddr(t)
	c.etcd = &node{name: "etcd", bin: etcdBin, log: logFile("etcd"), readyURL: "http://" + client + "/health", args: []string{
		"--name", "hookd-test", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", "http://" + client, "--advertise-client-urls", "http://" + client,
		"--listen-peer-urls", "http://" + peer, "--initial-advertise-peer-urls", "http://" + peer,
		"--initial-cluster", "hookd-test=http://" + peer, "--log-level", "warn",
	}}
	c.etcd.start(t)

	db := pgtest.NewDatabase(t)
	for i := range members {
		grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
		c.grpc = append(c.grpc, grpcAddr)
		m := &node{name: fmt.Sprintf("member%d", i+1), bin: bin, log: logFile(fmt.Sprintf("member%d", i+1)),
			readyURL: "http://" + httpAddr + "/readyz", args: []string{
				"--roles", "member", "--cluster", "etcd", "--etcd-endpoints", "http://" + client,
				"--database-url", db, "--grpc-addr", grpcAddr, "--http-addr", httpAddr,
				"--cluster-host", "127.0.0.1", "--log-level", "warn", "--drain-delay", "300ms",
			}}
		if memberArgs != nil {
			m.args = append(m.args, memberArgs(i)...)
		}
		m.start(t)
		c.members = append(c.members, m)
	}
	httpAddr := freeAddr(t)
	c.gateway = &node{name: "gateway", bin: bin, log: logFile("gateway"), readyURL: "http://" + httpAddr + "/readyz", args: []string{
		"--roles", "gateway", "--ingest-addr", strings.Join(c.grpc, ","), "--http-addr", httpAddr,
		"--stripe-webhook-secret", testSecret, "--log-level", "warn",
	}}
	c.gateway.start(t)
	c.webhook = "http://" + httpAddr + "/v1/webhooks/stripe"
	return c
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// loadResult is what a retrying sender saw.
type loadResult struct {
	retries atomic.Int64 // deliveries answered non-2xx or failed, then retried
	byCode  sync.Map     // answer code → *atomic.Int64
	acked   atomic.Int64

	mu   sync.Mutex  // guards slow
	slow []slowEvent // events that took over 200 ms from first attempt to 2xx
}

type slowEvent struct {
	start time.Time
	took  time.Duration
}

// slowest returns the longest time to acknowledge one event among events
// first sent in [from, to).
func (r *loadResult) slowest(from, to time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var worst time.Duration
	for _, e := range r.slow {
		if !e.start.Before(from) && e.start.Before(to) {
			worst = max(worst, e.took)
		}
	}
	return worst
}

// sendLoad sends perCustomer events to each of customers, each customer's
// in order, from 32 senders that retry anything but a 2xx.
func sendLoad(ctx context.Context, webhook string, customers, perCustomer int, res *loadResult) error {
	client := &http.Client{Timeout: 15 * time.Second}
	send := func(body []byte) error {
		first := time.Now()
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Stripe-Signature", stripe.Sign(body, testSecret, time.Now()))
			resp, err := client.Do(req)
			code := "transport"
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					if took := time.Since(first); took > 200*time.Millisecond {
						res.mu.Lock()
						res.slow = append(res.slow, slowEvent{first, took})
						res.mu.Unlock()
					}
					return nil
				}
				if resp.StatusCode != 503 {
					return fmt.Errorf("answered %d", resp.StatusCode)
				}
				code = fmt.Sprint(resp.StatusCode)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			res.retries.Add(1)
			n, _ := res.byCode.LoadOrStore(code, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			time.Sleep(50 * time.Millisecond)
		}
	}
	jobs := make(chan int)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				for v := range perCustomer {
					typ := "customer.updated"
					if v == 0 {
						typ = "customer.created"
					}
					body := customerEvent(fmt.Sprintf("evt_cl_%05d_%02d", c, v), typ, fmt.Sprintf("cus_cl_%05d", c), 1700000000+int64(v), fmt.Sprintf("v%d@example.com", v))
					if err := send(body); err != nil {
						errs <- fmt.Errorf("customer %d event %d: %w", c, v, err)
						return
					}
					res.acked.Add(1)
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for c := range customers {
			select {
			case jobs <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	return <-errs
}

// verify checks, through a live member, that every event took effect
// exactly once: each customer's state is the in-order state, and its
// notifications carry versions 1..perCustomer, each once, in order.
func verify(t *testing.T, grpcAddr string, customers, perCustomer int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cc := hookdv1.NewCustomerServiceClient(conn)
	for c := range customers {
		cu, err := cc.GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: fmt.Sprintf("cus_cl_%05d", c)})
		if err != nil {
			t.Fatalf("customer %d: %v", c, err)
		}
		if cu.GetVersion() != int64(perCustomer) || cu.GetEmail() != fmt.Sprintf("v%d@example.com", perCustomer-1) {
			t.Fatalf("customer %d: version %d email %q, want %d and the last email", c, cu.GetVersion(), cu.GetEmail(), perCustomer)
		}
	}
	stream, err := hookdv1.NewNotificationServiceClient(conn).Subscribe(ctx, &hookdv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	for n := range customers * perCustomer {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("after %d notifications: %v", n, err)
		}
		if m.GetVersion() != last[m.GetCustomerId()]+1 {
			t.Fatalf("customer %s: notification version %d after %d (a version committed twice, or a gap)", m.GetCustomerId(), m.GetVersion(), last[m.GetCustomerId()])
		}
		last[m.GetCustomerId()] = m.GetVersion()
	}
}

func (r *loadResult) summary() string {
	var codes []string
	r.byCode.Range(func(k, v any) bool {
		codes = append(codes, fmt.Sprintf("%v: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(codes)
	return fmt.Sprintf("retried deliveries %d (%s), slowest event %v",
		r.retries.Load(), strings.Join(codes, ", "), r.slowest(time.Time{}, time.Now().Add(time.Hour)).Round(time.Millisecond))
}

// 3 members and a gateway take 20,000 events for 2,000 customers while one
// member is killed with SIGKILL and another is paused for 6 s: nothing
// acknowledged is lost, nothing applies twice, every customer ends in its
// in-order state with contiguous notification versions.
func TestClusterSurvivesKillAndPause(t *testing.T) {
	customers, perCustomer := 2000, 10
	if testing.Short() {
		customers = 200
	}
	c := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var res loadResult
	total := int64(customers * perCustomer)
	chaos := make(chan string, 1)
	var killedAt, pausedAt, resumedAt time.Time
	go func() {
		defer close(chaos)
		waitAcked := func(n int64) bool {
			for res.acked.Load() < n {
				if ctx.Err() != nil {
					return false
				}
				time.Sleep(10 * time.Millisecond)
			}
			return true
		}
		if !waitAcked(total / 4) {
			return
		}
		c.members[0].signal(syscall.SIGKILL)
		killedAt = time.Now()
		killAcks := res.acked.Load()
		if !waitAcked(total / 2) {
			return
		}
		c.members[1].signal(syscall.SIGSTOP)
		pausedAt = time.Now()
		time.Sleep(6 * time.Second)
		c.members[1].signal(syscall.SIGCONT)
		resumedAt = time.Now()
		chaos <- fmt.Sprintf("member1 killed after %d acks; member2 paused 6s after %d", killAcks, total/2)
	}()
	start := time.Now()
	if err := sendLoad(ctx, c.webhook, customers, perCustomer, &res); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	t.Logf("%s", <-chaos)
	t.Logf("%d events acknowledged in %v (%.0f/s); %s", total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), res.summary())
	t.Logf("failover: slowest event first sent within 10 s after the SIGKILL took %v; during the 6 s pause, %v; before any fault, %v",
		res.slowest(killedAt, killedAt.Add(10*time.Second)).Round(time.Millisecond),
		res.slowest(pausedAt, resumedAt).Round(time.Millisecond),
		res.slowest(start, killedAt).Round(time.Millisecond))
	verify(t, c.grpc[2], customers, perCustomer)
}

// A rolling restart of every member (SIGTERM, then start again) under
// load loses nothing and applies nothing twice.
func TestClusterRollingRestart(t *testing.T) {
	customers, perCustomer := 2000, 10
	if testing.Short() {
		customers = 100
	}
	c := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var res loadResult
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- sendLoad(ctx, c.webhook, customers, perCustomer, &res) }()
	for i, m := range c.members {
		for res.acked.Load() < int64((i+1)*customers*perCustomer/5) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		m.stop()
		m.start(t)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	t.Logf("%d events acknowledged in %v (%.0f/s) across a rolling restart; %s", customers*perCustomer, elapsed.Round(time.Millisecond),
		float64(customers*perCustomer)/elapsed.Seconds(), res.summary())
	verify(t, c.grpc[0], customers, perCustomer)
}
