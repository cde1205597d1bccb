package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hookd/hookd/gateway"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

const testSecret = "whsec_test_secret"

// hookd is one running hookd (gateway and member) on loopback ports, over
// a fresh PostgreSQL database.
type hookd struct {
	databaseURL string
	webhookURL  string
	baseURL     string
	conn        *grpc.ClientConn
	http        *http.Client
}

func (h *hookd) ingest() hookdv1.IngestServiceClient { return hookdv1.NewIngestServiceClient(h.conn) }
func (h *hookd) customers() hookdv1.CustomerServiceClient {
	return hookdv1.NewCustomerServiceClient(h.conn)
}
func (h *hookd) events() hookdv1.EventServiceClient { return hookdv1.NewEventServiceClient(h.conn) }
func (h *hookd) notifications() hookdv1.NotificationServiceClient {
	return hookdv1.NewNotificationServiceClient(h.conn)
}

// startHookd starts hookd for one test. The tests in this package do not
// run in parallel: protoactor's remote.Start replaces gRPC's global logger,
// which races with any other gRPC activity in the process.
func startHookd(t *testing.T, extraArgs ...string) *hookd {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)
	cfg, err := parseServe(append([]string{
		"--database-url", dbURL,
		"--http-addr", "127.0.0.1:0",
		"--grpc-addr", "127.0.0.1:0",
		"--stripe-webhook-secret", "whsec_old_rotated_out," + testSecret,
		"--shutdown-timeout", "5s",
	}, extraArgs...), func(string) string { return "" })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ http, grpc string }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		done <- run(ctx, cfg, log, nil, func(h, g string) { ready <- addrs{h, g} })
	}()
	var a addrs
	select {
	case a = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("hookd exited before serving: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("hookd did not start within 30s")
	}
	conn, err := grpc.NewClient(a.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("hookd run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("hookd did not stop within 30s")
		}
	})
	return &hookd{
		databaseURL: dbURL,
		webhookURL:  "http://" + a.http + "/v1/webhooks/stripe",
		baseURL:     "http://" + a.http,
		conn:        conn,
		http:        &http.Client{Timeout: 30 * time.Second},
	}
}

// testWriter sends logs to t.Log, so they show only for failing tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

type webhookAnswer struct {
	Code       int
	EventID    string `json:"event_id"`
	Status     string `json:"status"`
	CustomerID string `json:"customer_id"`
	Error      string `json:"error"`
}

// post signs body as Stripe does (now) and posts it.
func (h *hookd) post(t *testing.T, body []byte) webhookAnswer {
	t.Helper()
	return h.postWith(t, body, "application/json", gateway.SignStripe(body, testSecret, time.Now()))
}

func (h *hookd) postWith(t *testing.T, body []byte, contentType, signature string) webhookAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.webhookURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		t.Errorf("POST: %v", err)
		return webhookAnswer{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := webhookAnswer{Code: resp.StatusCode}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Errorf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return a
}

// fixtureDir finds ../shared/fixtures/stripe beside the repository, or
// skips the test with a clear message.
func fixtureDir(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "shared", "fixtures", "stripe")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		if filepath.Dir(d) == d {
			t.Skipf("no shared/fixtures/stripe above %s: the shared fixtures are not checked out beside the repo", dir)
		}
	}
}
