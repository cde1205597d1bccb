// Package stripemock runs stripe-mock (github.com/stripe/stripe-mock), a
// real server for the Stripe API, on loopback for a test: hookd's Stripe
// client is tested against it rather than against a hand-made fake.
package stripemock

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Start runs stripe-mock for the test on a free loopback port and returns
// its base URL (for --stripe-api-url); it is stopped when the test ends.
// When the binary is not installed the test is skipped, or failed if
// HOOKD_REQUIRE_STRIPE_MOCK is set (CI installs it: .ci/tools.sh).
func Start(t testing.TB) string {
	t.Helper()
	bin, err := find()
	if err != nil {
		msg := "stripe-mock is not installed (go install github.com/stripe/stripe-mock@v0.203.0): " + err.Error()
		if os.Getenv("HOOKD_REQUIRE_STRIPE_MOCK") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for attempt := 0; ; attempt++ {
		url, err := start(t, bin)
		if err == nil {
			return url
		}
		if attempt == 2 {
			t.Fatalf("start stripe-mock: %v", err)
		}
	}
}

func find() (string, error) {
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p, nil
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return "", err
	}
	p := filepath.Join(string(trimNewline(gopath)), "bin", "stripe-mock")
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// start runs one stripe-mock on a port that was free a moment ago and
// waits until it answers, or until it exits (the port was taken since).
func start(t testing.TB, bin string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-http-addr", addr)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	url := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-exited:
			exited <- err
			stop()
			return "", fmt.Errorf("stripe-mock exited: %v", err)
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, url+"/v1/customers/cus_ready", nil)
		req.SetBasicAuth("sk_test_ready", "")
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Cleanup(stop)
				return url, nil
			}
		}
	}
	stop()
	return "", errors.New("stripe-mock did not answer within 20s")
}
