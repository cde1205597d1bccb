package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hookd/hookd/provider/stripe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

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
	adminURL    string // the admin listener: /metrics, /debug/pprof/
	grpcAddr    string
	conn        *grpc.ClientConn
	http        *http.Client
	proc        *process // the child process
}

func (h *hookd) ingest() hookdv1.IngestServiceClient { return hookdv1.NewIngestServiceClient(h.conn) }
func (h *hookd) customers() hookdv1.CustomerServiceClient {
	return hookdv1.NewCustomerServiceClient(h.conn)
}
func (h *hookd) events() hookdv1.EventServiceClient { return hookdv1.NewEventServiceClient(h.conn) }
func (h *hookd) notifications() hookdv1.NotificationServiceClient {
	return hookdv1.NewNotificationServiceClient(h.conn)
}

// startHookd starts hookd for one test, as a child process (this test
// binary, re-executed as hookd: see runMainEnv). A process of its own keeps
// protoactor's remote.Start, which replaces gRPC's global logger, from
// racing with the gRPC clients of the test; it also makes every test an
// end-to-end test of the binary: flags, start-up and SIGTERM.
func startHookd(t *testing.T, extraArgs ...string) *hookd {
	t.Helper()
	return startHookdOn(t, storePostgres, extraArgs...)
}

// Store kinds for startHookdOn and forEachStore.
const (
	storePostgres = "postgres" // a fresh PostgreSQL database
	storeEmbedded = "embedded" // the embedded store in a fresh --data-dir
)

// forEachStore runs f as a parallel subtest per store kind, each with a
// hookd of its own.
func forEachStore(t *testing.T, f func(t *testing.T, h *hookd), extraArgs ...string) {
	t.Helper()
	for _, kind := range []string{storePostgres, storeEmbedded} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f(t, startHookdOn(t, kind, extraArgs...))
		})
	}
}

// startHookdOn is startHookd on a store of the given kind. For the
// embedded store, hookd.databaseURL is empty.
func startHookdOn(t *testing.T, kind string, extraArgs ...string) *hookd {
	t.Helper()
	switch kind {
	case storePostgres:
		return startHookdOnStore(t, pgtest.NewDatabase(t), "", extraArgs...)
	case storeEmbedded:
		return startHookdOnStore(t, "", t.TempDir(), extraArgs...)
	}
	t.Fatalf("unknown store kind %q", kind)
	return nil
}

// startHookdOnStore is startHookd on an existing store: the PostgreSQL
// database at dbURL, or else the embedded store in dataDir.
func startHookdOnStore(t *testing.T, dbURL, dataDir string, extraArgs ...string) *hookd {
	t.Helper()
	return startHookdWith(t, dbURL, dataDir, harnessOptions{}, extraArgs...)
}

// harnessOptions change how the harness reaches a hookd; the zero value
// is plaintext HTTP and gRPC.
type harnessOptions struct {
	// HTTPS makes the harness use https:// URLs with HTTPClient (which
	// must trust hookd's certificate).
	HTTPS      bool
	HTTPClient *http.Client
	// DialOptions replace the harness's gRPC dial options (insecure
	// credentials).
	DialOptions []grpc.DialOption
}

// startHookdWith is startHookdOnStore reaching hookd as opts say.
func startHookdWith(t *testing.T, dbURL, dataDir string, opts harnessOptions, extraArgs ...string) *hookd {
	t.Helper()
	storeArgs := []string{"--data-dir", dataDir}
	if dbURL != "" {
		storeArgs = []string{"--database-url", dbURL}
	}
	scheme, client := "http", &http.Client{Timeout: 30 * time.Second}
	if opts.HTTPS {
		scheme, client = "https", opts.HTTPClient
	}
	var (
		proc                          *process
		httpAddr, grpcAddr, adminAddr string
	)
	// freeAddr's ports may be taken by another test's server before the
	// child binds them: then start again on others.
	for attempt := 1; ; attempt++ {
		httpAddr, grpcAddr, adminAddr = freeAddr(t), freeAddr(t), freeAddr(t)
		args := append(slices.Clone(storeArgs),
			"--http-addr", httpAddr,
			"--grpc-addr", grpcAddr,
			"--admin-addr", adminAddr,
			"--stripe-webhook-secret", "whsec_old_rotated_out,"+testSecret,
			"--shutdown-timeout", "5s",
			"--log-level", "warn",
		)
		args = append(args, extraArgs...)
		if _, err := parseServe(args, func(string) string { return "" }); err != nil {
			t.Fatalf("config: %v", err)
		}
		var err error
		proc, err = tryStartProcess(t, scheme+"://"+httpAddr+"/readyz", client, args...)
		if err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse) || attempt == 5 {
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v; starting on other ports", attempt, err)
	}
	dialOpts := opts.DialOptions
	if dialOpts == nil {
		dialOpts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(grpcAddr, dialOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		if err := proc.terminate(30 * time.Second); err != nil {
			t.Errorf("hookd did not stop cleanly on SIGTERM: %v\n%s", err, proc.out.String())
		}
		if t.Failed() {
			t.Logf("hookd output:\n%s", proc.out.String())
		}
	})
	return &hookd{
		databaseURL: dbURL,
		webhookURL:  scheme + "://" + httpAddr + "/v1/webhooks/stripe",
		baseURL:     scheme + "://" + httpAddr,
		adminURL:    "http://" + adminAddr,
		grpcAddr:    grpcAddr,
		conn:        conn,
		http:        client,
		proc:        proc,
	}
}

type webhookAnswer struct {
	Code       int
	EventID    string `json:"event_id"`
	Status     string `json:"status"`
	CustomerID string `json:"customer_id"`
	Reason     string `json:"reason"`
	Error      string `json:"error"`
}

// post signs body as Stripe does (now) and posts it.
func (h *hookd) post(t *testing.T, body []byte) webhookAnswer {
	t.Helper()
	return h.postWith(t, body, "application/json", stripe.Sign(body, testSecret, time.Now()))
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
