package gateway

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// testEngineEnv names the HTTP server setup puts the gateway behind:
// unset, New's handler called directly; engineFastHTTP, Fast served by a
// real fasthttp server on loopback, which every test then reaches over
// HTTP (serveFast). TestEveryTestOnFastHTTP runs the package's tests again
// that way.
const (
	testEngineEnv  = "HOOKD_GATEWAY_TEST_ENGINE"
	engineFastHTTP = "fasthttp"
)

var testEngine = os.Getenv(testEngineEnv)

// TestEveryTestOnFastHTTP runs every other test of the package again with
// the gateway on fasthttp (Fast), so that both servers give every answer
// those tests expect.
func TestEveryTestOnFastHTTP(t *testing.T) {
	if testEngine != "" {
		// Only when run by hand with the variable set: the re-run below
		// leaves this test out (-test.skip) rather than recursing.
		t.Skip("this run is the fasthttp one")
	}
	args := []string{"-test.count=1", "-test.timeout=10m", "-test.skip=^TestEveryTestOnFastHTTP$"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), testEngineEnv+"="+engineFastHTTP)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the package's tests on fasthttp failed (%v):\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("PASS")) {
		t.Fatalf("the package's tests on fasthttp printed no PASS:\n%s", out)
	}
	t.Logf("on fasthttp:\n%s", out)
}

// serveFast serves NewFast(cfg) with its own server (Fast.Server) on
// loopback for the test, and returns a handler that sends each request
// there over HTTP and copies the answer back.
func serveFast(t *testing.T, cfg Config) http.Handler {
	t.Helper()
	f, err := NewFast(cfg)
	if err != nil {
		t.Fatalf("NewFast: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := f.Server(cfg.Logger)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.ShutdownWithContext(ctx); err != nil {
			t.Errorf("fasthttp shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("fasthttp serve: %v", err)
		}
	})
	return &viaHTTP{base: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr}}
}

// viaHTTP is an http.Handler that forwards requests to a server at base.
type viaHTTP struct {
	base   string
	client *http.Client
}

func (v *viaHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	u, err := out.URL.Parse(v.base + r.URL.RequestURI())
	if err != nil {
		http.Error(w, "bad test URL: "+err.Error(), http.StatusTeapot)
		return
	}
	out.URL, out.Host = u, u.Host
	if out.Body == nil || out.Body == http.NoBody {
		out.Body, out.ContentLength = nil, 0
	}
	resp, err := v.client.Do(out)
	if err != nil {
		http.Error(w, "request to the fasthttp server failed: "+err.Error(), http.StatusTeapot)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if k == "Date" || k == "Content-Length" {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// The answers fasthttp's own limits give, which net/http's server gives
// differently (net/http's are plain text, or come from the handler).
func TestFastServerLimits(t *testing.T) {
	var rejected []string
	env := setupFastOnly(t, func(_ *fakeIngest, c *Config) {
		c.MaxBodyBytes = 1024
		c.OnReject = func(r *http.Request, status int, reason string) {
			rejected = append(rejected, r.Method+" "+r.URL.Path+" "+reason)
		}
	})
	post := func(body []byte, header map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, env.base+StripeWebhookPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := env.client.Do(req)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// A body over the limit: the gateway's own 413, counted as a
	// rejection, before Ingest sees anything.
	resp, body := post(bytes.Repeat([]byte("x"), 2048), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, `"reason":"TOO_LARGE"`) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("2 KiB body with a 1 KiB limit: %d %q (%s), want 413 TOO_LARGE as JSON", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("413 without X-Request-Id")
	}
	if len(rejected) != 1 || !strings.HasPrefix(rejected[0], "POST "+StripeWebhookPath+" TOO_LARGE") {
		t.Errorf("rejection hook saw %q, want one POST %s TOO_LARGE", rejected, StripeWebhookPath)
	}

	// Headers over MaxHeaderBytes: 431, as JSON.
	resp, body = post([]byte(testEvent), map[string]string{"X-Filler": strings.Repeat("y", MaxHeaderBytes)})
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(body, `"reason":"HEADER_TOO_LARGE"`) {
		t.Errorf("headers over %d bytes: %d %q, want 431 HEADER_TOO_LARGE", MaxHeaderBytes, resp.StatusCode, body)
	}
	if n := len(env.fake.received()); n != 0 {
		t.Errorf("Ingest called %d times for requests refused by the server", n)
	}

	// Not HTTP at all: 400 and the connection closed.
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("HELLO\r\n\r\n"))
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(conn)
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 400")) || !bytes.Contains(got, []byte(`"reason":"MALFORMED_HTTP"`)) {
		t.Errorf("garbage request: got %q, want a 400 MALFORMED_HTTP and the connection closed", got)
	}
}

// A request that does not arrive within the server's ReadTimeout gets a
// 408 and the connection closed, and holds nothing afterwards.
func TestFastServerReadTimeout(t *testing.T) {
	t.Parallel()
	fake := &fakeIngest{}
	f, err := NewFast(Config{Secrets: []string{testSecret}, Now: func() time.Time { return testNow }, Ingest: startFakeIngest(t, fake)})
	if err != nil {
		t.Fatal(err)
	}
	srv := f.Server(nil)
	srv.ReadTimeout = 300 * time.Millisecond // Server's own is ReadTimeout (30 s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-served
	})
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Half a request line and no more: a sender that stalls.
	_, _ = conn.Write([]byte("POST " + StripeWebhookPath + " HTTP/1.1\r\nHost: x\r\n"))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	got, _ := io.ReadAll(conn)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("stalled request answered after %v, want about the 300 ms read timeout", elapsed)
	}
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 408")) || !bytes.Contains(got, []byte(`"reason":"TIMEOUT"`)) {
		t.Errorf("stalled request: got %q, want a 408 TIMEOUT and the connection closed", got)
	}
	if n := len(fake.received()); n != 0 {
		t.Errorf("Ingest called %d times", n)
	}
}

// A stranger opening connection after connection of garbage cannot fill
// the log: fasthttp's lines about them are sampled like rejections.
func TestFastServerLogsAreSampled(t *testing.T) {
	env := setupFastOnly(t, nil)
	addr := strings.TrimPrefix(env.base, "http://")
	const conns = 40
	for range conns {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write([]byte("HELLO\r\n\r\n"))
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.ReadAll(conn)
		conn.Close()
	}
	// fasthttp logs after answering; give the last ones a moment.
	time.Sleep(100 * time.Millisecond)
	lines := strings.Count(env.logs.String(), "webhook listener:")
	if lines == 0 || lines > rejectLogsPerSecond*2 {
		t.Fatalf("%d garbage connections logged %d lines; want some, at most %d (sampled)\n%s", conns, lines, rejectLogsPerSecond*2, env.logs.String())
	}
}

// fastEnv is a gateway on a fasthttp server, for tests of that server.
type fastEnv struct {
	base   string
	client *http.Client
	fake   *fakeIngest
	logs   *syncBuffer
}

// setupFastOnly is setup on fasthttp whatever the run's engine.
func setupFastOnly(t *testing.T, modify func(*fakeIngest, *Config)) *fastEnv {
	t.Helper()
	prev := testEngine
	testEngine = engineFastHTTP
	defer func() { testEngine = prev }()
	env := setup(t, modify)
	v := env.handler.(*viaHTTP)
	return &fastEnv{base: v.base, client: v.client, fake: env.fake, logs: env.logs}
}
