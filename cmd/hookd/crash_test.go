package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hookd/hookd/gateway"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// runMainEnv makes the test binary act as the hookd binary, so that tests
// can start (and kill -9) real hookd processes without building one.
const runMainEnv = "HOOKD_TEST_RUN_MAIN"

func init() {
	if os.Getenv(runMainEnv) == "1" {
		os.Args = append([]string{"hookd"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// process is a hookd child process.
type process struct {
	cmd *exec.Cmd
	out *lockedBuffer
}

// lockedBuffer collects a child's output; exec copies into it from its
// own goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startProcess(t *testing.T, httpAddr string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, out: out}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("hookd not ready within 30s; output:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *process) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// terminate sends SIGTERM and waits for a clean exit (status 0).
func (p *process) terminate(timeout time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("still running %v after SIGTERM", timeout)
	}
}

// kill -9 during a burst of 1,000 events from a sender that retries on
// anything but 2xx: after a restart, nothing acknowledged is lost and
// nothing is applied twice.
func TestKill9DuringBurstLosesNothing(t *testing.T) {
	for _, backend := range []string{"embedded", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
			args := []string{"--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--stripe-webhook-secret", testSecret, "--log-level", "warn"}
			if backend == "embedded" {
				args = append(args, "--data-dir", t.TempDir())
			} else {
				args = append(args, "--database-url", pgtest.NewDatabase(t))
			}
			proc := startProcess(t, httpAddr, args...)
			defer func() { proc.kill() }()

			const customers, perCustomer = 100, 10
			var acked atomic.Int64
			killAt := int64(300)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			client := &http.Client{Timeout: 10 * time.Second}
			send := func(body []byte) error {
				for {
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+"/v1/webhooks/stripe", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Stripe-Signature", gateway.SignStripe(body, testSecret, time.Now()))
					resp, err := client.Do(req)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == 200 {
							return nil
						}
						if resp.StatusCode != 503 {
							return fmt.Errorf("answered %d", resp.StatusCode)
						}
					}
					if ctx.Err() != nil {
						return ctx.Err()
					}
					time.Sleep(20 * time.Millisecond) // the sender's retry back-off
				}
			}
			jobs := make(chan int)
			errs := make(chan error, customers)
			var wg sync.WaitGroup
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for c := range jobs {
						for v := range perCustomer {
							typ := "customer.updated"
							if v == 0 {
								typ = "customer.created"
							}
							body := customerEvent(fmt.Sprintf("evt_k9_%03d_%02d", c, v), typ, fmt.Sprintf("cus_k9_%03d", c), 1700000000+int64(v), fmt.Sprintf("v%d@example.com", v))
							if err := send(body); err != nil {
								errs <- fmt.Errorf("customer %d event %d: %w", c, v, err)
								return
							}
							acked.Add(1)
						}
					}
				}()
			}
			go func() {
				for c := range customers {
					jobs <- c
				}
				close(jobs)
			}()
			// Kill -9 mid-burst, then restart on the same data.
			for acked.Load() < killAt && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			proc.kill()
			t.Logf("killed hookd after %d acknowledged events", acked.Load())
			proc = startProcess(t, httpAddr, args...)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if got := acked.Load(); got != customers*perCustomer {
				t.Fatalf("acknowledged %d, want %d", got, customers*perCustomer)
			}

			conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			cc := hookdv1.NewCustomerServiceClient(conn)
			for c := range customers {
				cu, err := cc.GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: fmt.Sprintf("cus_k9_%03d", c)})
				if err != nil {
					t.Fatal(err)
				}
				// Every event applied exactly once: one version each.
				if cu.GetVersion() != perCustomer || cu.GetEmail() != fmt.Sprintf("v%d@example.com", perCustomer-1) {
					t.Fatalf("customer %d: version %d email %q, want %d and the last email", c, cu.GetVersion(), cu.GetEmail(), perCustomer)
				}
			}
			// And every notification exists once, in version order.
			stream, err := hookdv1.NewNotificationServiceClient(conn).Subscribe(ctx, &hookdv1.SubscribeRequest{})
			if err != nil {
				t.Fatal(err)
			}
			last := map[string]int64{}
			for n := 0; n < customers*perCustomer; n++ {
				m, err := stream.Recv()
				if err != nil {
					t.Fatalf("after %d notifications: %v", n, err)
				}
				if m.GetVersion() != last[m.GetCustomerId()]+1 {
					t.Fatalf("customer %s: version %d after %d", m.GetCustomerId(), m.GetVersion(), last[m.GetCustomerId()])
				}
				last[m.GetCustomerId()] = m.GetVersion()
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Fatal("ran out of time")
			}
		})
	}
}
