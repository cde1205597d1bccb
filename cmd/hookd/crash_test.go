package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

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
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var res loadResult
			done := make(chan error, 1)
			go func() { done <- sendLoad(ctx, "http://"+httpAddr+"/v1/webhooks/stripe", customers, perCustomer, &res) }()
			// Kill -9 mid-burst, then restart on the same data.
			for res.acked.Load() < 300 && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			proc.kill()
			t.Logf("killed hookd after %d acknowledged events", res.acked.Load())
			proc = startProcess(t, httpAddr, args...)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", res.summary())
			verify(t, grpcAddr, customers, perCustomer)
		})
	}
}
