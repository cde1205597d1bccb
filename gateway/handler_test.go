package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	client := hookdv1.NewIngestServiceClient(nil) // never called
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" means valid
	}{
		{name: "minimal", cfg: Config{Secrets: []string{"whsec_a"}, Ingest: client}},
		{name: "blank secrets dropped", cfg: Config{Secrets: []string{"", " whsec_a "}, Ingest: client}},
		{name: "no secrets", cfg: Config{Ingest: client}, wantErr: "no stripe webhook secret"},
		{name: "only blank secrets", cfg: Config{Secrets: []string{"", "  "}, Ingest: client}, wantErr: "no stripe webhook secret"},
		{name: "no ingest", cfg: Config{Secrets: []string{"whsec_a"}}, wantErr: "no ingest client"},
		{name: "negative tolerance", cfg: Config{Secrets: []string{"whsec_a"}, Ingest: client, Tolerance: -1}, wantErr: "negative tolerance"},
		{name: "negative body limit", cfg: Config{Secrets: []string{"whsec_a"}, Ingest: client, MaxBodyBytes: -1}, wantErr: "negative max body"},
		{name: "negative timeout", cfg: Config{Secrets: []string{"whsec_a"}, Ingest: client, IngestTimeout: -1}, wantErr: "negative ingest timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || h == nil {
					t.Fatalf("New: got (%v, %v), want a handler and nil", h, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error: got %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	in := Config{Secrets: []string{" whsec_a", "", "whsec_b "}}
	c := in.withDefaults()
	if got, want := strings.Join(c.Secrets, ","), "whsec_a,whsec_b"; got != want {
		t.Errorf("secrets: got %v, want %v", got, want)
	}
	if got, want := in.Secrets[0], " whsec_a"; got != want {
		t.Errorf("caller's secrets modified: got %q, want %q", got, want)
	}
	if c.Tolerance != 300*time.Second || c.MaxBodyBytes != 1<<20 || c.IngestTimeout != 10*time.Second {
		t.Errorf("defaults: got tolerance %v, body %v, timeout %v, want 5m0s, 1048576, 10s", c.Tolerance, c.MaxBodyBytes, c.IngestTimeout)
	}
	if c.Logger == nil || c.Now == nil {
		t.Errorf("defaults: got logger %v, now %v, want both set", c.Logger, c.Now != nil)
	}
}

// TestWebhookRejectsBadInput checks every request the gateway must refuse
// before Ingest: the documented status, a JSON error, and nothing stored.
func TestWebhookRejectsBadInput(t *testing.T) {
	t.Parallel()
	valid := []byte(testEvent)
	withHeader := func(body []byte, header string) func() *http.Request {
		return func() *http.Request {
			req := signedRequest(body, testSecret, testNow)
			req.Header.Set(stripe.SignatureHeaderName, header)
			return req
		}
	}
	big := append([]byte(`{"id":"evt_big","type":"x","data":{"object":{"pad":"`), bytes.Repeat([]byte("a"), 2<<20)...)
	big = append(big, `"}}}`...)

	tests := []struct {
		name      string
		req       func() *http.Request
		wantCode  int
		wantError string // substring of the JSON error
	}{
		{
			name: "missing signature header",
			req: func() *http.Request {
				req := signedRequest(valid, testSecret, testNow)
				req.Header.Del(stripe.SignatureHeaderName)
				return req
			},
			wantCode: http.StatusBadRequest, wantError: "missing Stripe-Signature header",
		},
		{name: "garbled header", req: withHeader(valid, "t=yesterday;v1=0xdeadbeef"), wantCode: http.StatusBadRequest, wantError: "invalid Stripe-Signature header"},
		{name: "wrong signature", req: withHeader(valid, "t=1700000000,v1="+hex64), wantCode: http.StatusBadRequest, wantError: "signature does not match"},
		{name: "wrong secret", req: func() *http.Request { return signedRequest(valid, "whsec_someone_else", testNow) }, wantCode: http.StatusBadRequest, wantError: "signature does not match"},
		{name: "signed for another payload", req: withHeader(valid, stripe.Sign([]byte(`{}`), testSecret, testNow)), wantCode: http.StatusBadRequest, wantError: "signature does not match"},
		{name: "timestamp 301s old", req: func() *http.Request { return signedRequest(valid, testSecret, testNow.Add(-301*time.Second)) }, wantCode: http.StatusBadRequest, wantError: "too old"},
		{name: "timestamp 301s in the future", req: func() *http.Request { return signedRequest(valid, testSecret, testNow.Add(301*time.Second)) }, wantCode: http.StatusBadRequest, wantError: "in the future"},
		{name: "v0 only", req: withHeader(valid, "t=1700000000,v0="+strings.TrimPrefix(stripe.Sign(valid, testSecret, testNow), "t=1700000000,v1=")), wantCode: http.StatusBadRequest, wantError: "no v1 signature"},
		{name: "truncated JSON", req: func() *http.Request { return signedRequest(valid[:len(valid)/2], testSecret, testNow) }, wantCode: http.StatusBadRequest, wantError: "malformed"},
		{name: "not an event", req: func() *http.Request {
			return signedRequest([]byte(`{"id":"cus_1","object":"customer"}`), testSecret, testNow)
		}, wantCode: http.StatusBadRequest, wantError: `not "event"`},
		{name: "2 MiB body", req: func() *http.Request { return signedRequest(big, testSecret, testNow) }, wantCode: http.StatusRequestEntityTooLarge, wantError: "body larger than 1048576 bytes"},
		{
			name: "2 MiB body without Content-Length",
			req: func() *http.Request {
				req := signedRequest(big, testSecret, testNow)
				req.ContentLength = -1
				req.Body = io.NopCloser(bytes.NewReader(big)) // hide the length
				return req
			},
			wantCode: http.StatusRequestEntityTooLarge, wantError: "body larger than",
		},
		{
			name: "wrong content type",
			req: func() *http.Request {
				req := signedRequest(valid, testSecret, testNow)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return req
			},
			wantCode: http.StatusUnsupportedMediaType, wantError: "application/json",
		},
		{
			name: "no content type",
			req: func() *http.Request {
				req := signedRequest(valid, testSecret, testNow)
				req.Header.Del("Content-Type")
				return req
			},
			wantCode: http.StatusUnsupportedMediaType, wantError: "application/json",
		},
		{name: "empty body", req: func() *http.Request { return signedRequest(nil, testSecret, testNow) }, wantCode: http.StatusBadRequest, wantError: "empty body"},
		{
			name:     "GET on webhook route",
			req:      func() *http.Request { return httptest.NewRequest(http.MethodGet, StripeWebhookPath, nil) },
			wantCode: http.StatusMethodNotAllowed, wantError: "use POST",
		},
		{
			name: "PUT on webhook route",
			req: func() *http.Request {
				req := signedRequest(valid, testSecret, testNow)
				req.Method = http.MethodPut
				return req
			},
			wantCode: http.StatusMethodNotAllowed, wantError: "use POST",
		},
		{
			name: "unknown path",
			req: func() *http.Request {
				return httptest.NewRequest(http.MethodPost, StripeWebhookPath+"/extra", bytes.NewReader(valid))
			},
			wantCode: http.StatusNotFound, wantError: "not found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := setup(t, nil)
			rec := serve(env.handler, tt.req())
			if rec.Code != tt.wantCode {
				t.Errorf("status: got %v, want %v (body %s)", rec.Code, tt.wantCode, rec.Body)
			}
			body := decodeBody(t, rec)
			if !strings.Contains(body["error"], tt.wantError) {
				t.Errorf("error: got %q, want it to contain %q", body["error"], tt.wantError)
			}
			if r := body["reason"]; len(body) != 2 || r == "" || strings.ToUpper(r) != r {
				t.Errorf("body: got %v, want an error and an UPPER_SNAKE reason", body)
			}
			if rec.Body.Len() > 512 {
				t.Errorf("body size: got %v bytes, want a small JSON object", rec.Body.Len())
			}
			if strings.Contains(rec.Body.String(), testSecret) || strings.Contains(env.logs.String(), testSecret) {
				t.Errorf("secret leaked into the response or the logs")
			}
			if got := len(env.fake.received()); got != 0 {
				t.Errorf("Ingest calls: got %v, want 0", got)
			}
			if tt.wantCode == http.StatusMethodNotAllowed {
				if got, want := rec.Header().Get("Allow"), http.MethodPost; got != want {
					t.Errorf("Allow: got %q, want %q", got, want)
				}
			}
		})
	}
}

func TestWebhookAccepted(t *testing.T) {
	t.Parallel()
	env := setup(t, nil)
	rec := serve(env.handler, signedRequest([]byte(testEvent), testSecret, testNow))
	if rec.Code != http.StatusOK {
		t.Fatalf("status: got %v, want %v (body %s)", rec.Code, http.StatusOK, rec.Body)
	}
	body := decodeBody(t, rec)
	want := map[string]string{"event_id": "evt_test_1", "status": "applied", "customer_id": "cus_1"}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s: got %q, want %q", k, body[k], v)
		}
	}
	calls := env.fake.received()
	if len(calls) != 1 {
		t.Fatalf("Ingest calls: got %v, want 1", len(calls))
	}
	got := calls[0]
	if got.GetSource() != "stripe" || got.GetEventId() != "evt_test_1" || got.GetType() != "invoice.paid" ||
		got.GetCustomerId() != "cus_1" || got.GetRouting() != "object.customer" || got.GetApiVersion() != "2020-03-02" {
		t.Errorf("envelope: got %v, want stripe evt_test_1 invoice.paid cus_1 object.customer 2020-03-02", got)
	}
	if !bytes.Equal(got.GetPayload(), []byte(testEvent)) {
		t.Errorf("payload: got %q, want %q", got.GetPayload(), testEvent)
	}
	logs := env.logs.String()
	for _, key := range []string{`"event_id":"evt_test_1"`, `"customer_id":"cus_1"`, `"status":"applied"`} {
		if !strings.Contains(logs, key) {
			t.Errorf("logs: got %s, want them to contain %s", logs, key)
		}
	}
	if strings.Contains(logs, testSecret) || strings.Contains(logs, `"subscription":"sub_1"`) {
		t.Errorf("logs: got %s, want no secret and no payload", logs)
	}
}

func TestWebhookSecretRotation(t *testing.T) {
	t.Parallel()
	const oldSecret, newSecret = "whsec_old_secret", "whsec_new_secret"
	payload := []byte(testEvent)
	newSig := strings.TrimPrefix(stripe.Sign(payload, newSecret, testNow), "t=1700000000,v1=")
	tests := []struct {
		name     string
		header   string
		wantCode int
	}{
		{name: "signed with the first secret", header: stripe.Sign(payload, oldSecret, testNow), wantCode: http.StatusOK},
		{name: "signed with the second secret", header: stripe.Sign(payload, newSecret, testNow), wantCode: http.StatusOK},
		{name: "several v1, one matches", header: "t=1700000000,v1=" + hex64 + ",v1=" + newSig + ",v0=" + hex64, wantCode: http.StatusOK},
		{name: "v0 only", header: "t=1700000000,v0=" + newSig, wantCode: http.StatusBadRequest},
		{name: "retired secret", header: stripe.Sign(payload, "whsec_retired", testNow), wantCode: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := setup(t, func(_ *fakeIngest, cfg *Config) {
				cfg.Secrets = []string{oldSecret, " " + newSecret} // as split from "old, new"
			})
			req := signedRequest(payload, oldSecret, testNow)
			req.Header.Set(stripe.SignatureHeaderName, tt.header)
			rec := serve(env.handler, req)
			if rec.Code != tt.wantCode {
				t.Errorf("status: got %v, want %v (body %s)", rec.Code, tt.wantCode, rec.Body)
			}
			wantCalls := 0
			if tt.wantCode == http.StatusOK {
				wantCalls = 1
			}
			if got := len(env.fake.received()); got != wantCalls {
				t.Errorf("Ingest calls: got %v, want %v", got, wantCalls)
			}
		})
	}
}

func TestWebhookIngestStatusMapping(t *testing.T) {
	t.Parallel()
	ok := func(s hookdv1.EventStatus) func(context.Context, *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
		return func(_ context.Context, req *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
			return &hookdv1.IngestResponse{EventId: req.GetEnvelope().GetEventId(), Status: s, CustomerId: "cus_from_member"}, nil
		}
	}
	fail := func(c codes.Code) func(context.Context, *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
		return func(context.Context, *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
			return nil, status.Error(c, "internal detail: db at 10.0.0.5 refused")
		}
	}
	tests := []struct {
		name           string
		respond        func(context.Context, *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error)
		wantCode       int
		wantStatus     string // for 200
		wantRetryAfter bool
	}{
		{name: "applied", respond: ok(hookdv1.EventStatus_EVENT_STATUS_APPLIED), wantCode: 200, wantStatus: "applied"},
		{name: "duplicate", respond: ok(hookdv1.EventStatus_EVENT_STATUS_DUPLICATE), wantCode: 200, wantStatus: "duplicate"},
		{name: "parked", respond: ok(hookdv1.EventStatus_EVENT_STATUS_PARKED), wantCode: 200, wantStatus: "parked"},
		{name: "ignored", respond: ok(hookdv1.EventStatus_EVENT_STATUS_IGNORED), wantCode: 200, wantStatus: "ignored"},
		{name: "superseded", respond: ok(hookdv1.EventStatus_EVENT_STATUS_SUPERSEDED), wantCode: 200, wantStatus: "superseded"},
		{name: "unspecified status", respond: ok(hookdv1.EventStatus_EVENT_STATUS_UNSPECIFIED), wantCode: 503, wantRetryAfter: true},
		{name: "unknown status", respond: ok(hookdv1.EventStatus(99)), wantCode: 503, wantRetryAfter: true},
		{name: "InvalidArgument", respond: fail(codes.InvalidArgument), wantCode: 400},
		{name: "Unavailable", respond: fail(codes.Unavailable), wantCode: 503, wantRetryAfter: true},
		{name: "DeadlineExceeded", respond: fail(codes.DeadlineExceeded), wantCode: 503, wantRetryAfter: true},
		{name: "Internal", respond: fail(codes.Internal), wantCode: 503, wantRetryAfter: true},
		{name: "Unknown", respond: fail(codes.Unknown), wantCode: 503, wantRetryAfter: true},
		{name: "ResourceExhausted", respond: fail(codes.ResourceExhausted), wantCode: 503, wantRetryAfter: true},
		{name: "Aborted", respond: fail(codes.Aborted), wantCode: 503, wantRetryAfter: true},
		{name: "Canceled", respond: fail(codes.Canceled), wantCode: 503, wantRetryAfter: true},
		{name: "Unimplemented", respond: fail(codes.Unimplemented), wantCode: 503, wantRetryAfter: true},
		{
			name: "plain error",
			respond: func(context.Context, *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
				return nil, errors.New("not a status")
			},
			wantCode: 503, wantRetryAfter: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := setup(t, func(f *fakeIngest, _ *Config) { f.respond = tt.respond })
			rec := serve(env.handler, signedRequest([]byte(testEvent), testSecret, testNow))
			if rec.Code != tt.wantCode {
				t.Errorf("status: got %v, want %v (body %s)", rec.Code, tt.wantCode, rec.Body)
			}
			body := decodeBody(t, rec)
			if tt.wantCode == http.StatusOK {
				if body["status"] != tt.wantStatus || body["event_id"] != "evt_test_1" || body["customer_id"] != "cus_from_member" {
					t.Errorf("body: got %v, want status %q, event_id evt_test_1, customer_id cus_from_member", body, tt.wantStatus)
				}
			} else if body["error"] == "" {
				t.Errorf("body: got %v, want an error", body)
			}
			if tt.wantCode == http.StatusServiceUnavailable && strings.Contains(body["error"], "10.0.0.5") {
				t.Errorf("error: got %q, want no internal detail in a 503", body["error"])
			}
			gotRetry := rec.Header().Get("Retry-After")
			if (gotRetry == "1") != tt.wantRetryAfter {
				t.Errorf("Retry-After: got %q, want set to 1: %v", gotRetry, tt.wantRetryAfter)
			}
			if got := len(env.fake.received()); got != 1 {
				t.Errorf("Ingest calls: got %v, want 1", got)
			}
		})
	}
}

func TestWebhookIngestTimeout(t *testing.T) {
	t.Parallel()
	sawDeadline := make(chan bool, 1)
	env := setup(t, func(f *fakeIngest, cfg *Config) {
		cfg.IngestTimeout = 100 * time.Millisecond
		f.respond = func(ctx context.Context, _ *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
			_, ok := ctx.Deadline()
			sawDeadline <- ok
			<-ctx.Done() // a member that never answers in time
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	})
	start := time.Now()
	rec := serve(env.handler, signedRequest([]byte(testEvent), testSecret, testNow))
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("elapsed: got %v, want about the 100ms ingest timeout", elapsed)
	}
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status: got %v, want %v", rec.Code, http.StatusServiceUnavailable)
	}
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After: got %q, want %q", got, "1")
	}
	if body := decodeBody(t, rec); !strings.Contains(body["error"], "DeadlineExceeded") {
		t.Errorf("error: got %q, want it to mention DeadlineExceeded", body["error"])
	}
	if ok := <-sawDeadline; !ok {
		t.Errorf("server-side deadline: got none, want the ingest timeout propagated")
	}
}

// A sender that hangs up mid-Ingest: on net/http the Ingest call ends at
// once (its context is the request's); fasthttp does not watch an idle
// connection while its handler runs, so there the call ends by the ingest
// timeout instead.
func TestWebhookRequestCanceled(t *testing.T) {
	t.Parallel()
	started, ended := make(chan struct{}), make(chan struct{})
	env := setup(t, func(f *fakeIngest, c *Config) {
		if testEngine == engineFastHTTP {
			c.IngestTimeout = 300 * time.Millisecond
		}
		f.respond = func(ctx context.Context, _ *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
			close(started)
			<-ctx.Done()
			close(ended)
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	req := signedRequest([]byte(testEvent), testSecret, testNow).WithContext(ctx)
	go func() {
		<-started
		cancel() // the sender hangs up
	}()
	rec := serve(env.handler, req)
	if testEngine != engineFastHTTP && rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status: got %v, want %v", rec.Code, http.StatusServiceUnavailable)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Errorf("Ingest still running 5 s after the sender hung up")
	}
}

// TestWebhookOverHTTP runs one event through a real HTTP server, as Stripe
// would send it.
func TestWebhookOverHTTP(t *testing.T) {
	t.Parallel()
	env := setup(t, nil)
	srv := httptest.NewServer(env.handler)
	t.Cleanup(srv.Close)
	payload := []byte(testEvent)
	req, err := http.NewRequest(http.MethodPost, srv.URL+StripeWebhookPath, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	req.Header.Set(stripe.SignatureHeaderName, stripe.Sign(payload, testSecret, testNow))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status: got %v, want %v (body %s)", resp.StatusCode, http.StatusOK, body)
	}
	if got, want := strings.TrimSpace(string(body)), `{"event_id":"evt_test_1","status":"applied","customer_id":"cus_1"}`; got != want {
		t.Errorf("body: got %s, want %s", got, want)
	}
}

func TestHealthReadyNoMetrics(t *testing.T) {
	t.Parallel()
	notReady := errors.New("store not migrated")
	tests := []struct {
		name     string
		modify   func(*fakeIngest, *Config)
		method   string
		path     string
		wantCode int
		wantBody string // exact, trimmed
	}{
		{name: "healthz", method: "GET", path: "/healthz", wantCode: 200, wantBody: `{"status":"ok"}`},
		{name: "healthz POST", method: "POST", path: "/healthz", wantCode: 405, wantBody: `{"error":"method POST not allowed; use GET","reason":"METHOD"}`},
		{name: "readyz without check", method: "GET", path: "/readyz", wantCode: 200, wantBody: `{"status":"ok"}`},
		{
			name:   "readyz ready",
			modify: func(_ *fakeIngest, c *Config) { c.Ready = func(context.Context) error { return nil } },
			method: "GET", path: "/readyz", wantCode: 200, wantBody: `{"status":"ok"}`,
		},
		{
			name:   "readyz not ready",
			modify: func(_ *fakeIngest, c *Config) { c.Ready = func(context.Context) error { return notReady } },
			method: "GET", path: "/readyz", wantCode: 503, wantBody: `{"error":"store not migrated","status":"unavailable"}`,
		},
		// /metrics and pprof live on hookd's admin listener, never here.
		{name: "no metrics", method: "GET", path: "/metrics", wantCode: 404, wantBody: `{"error":"not found","reason":"NOT_FOUND"}`},
		{name: "no pprof", method: "GET", path: "/debug/pprof/", wantCode: 404, wantBody: `{"error":"not found","reason":"NOT_FOUND"}`},
		{name: "no pprof profile", method: "GET", path: "/debug/pprof/heap", wantCode: 404, wantBody: `{"error":"not found","reason":"NOT_FOUND"}`},
		{name: "root", method: "GET", path: "/", wantCode: 404, wantBody: `{"error":"not found","reason":"NOT_FOUND"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := setup(t, tt.modify)
			rec := serve(env.handler, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Errorf("status: got %v, want %v", rec.Code, tt.wantCode)
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tt.wantBody {
				t.Errorf("body: got %s, want %s", got, tt.wantBody)
			}
		})
	}
}

func TestIsJSONContentType(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"application/json":                  true,
		"application/json; charset=utf-8":   true,
		"Application/JSON; charset=UTF-8":   true,
		"application/json;charset=utf-8":    true,
		"":                                  false,
		"text/plain":                        false,
		"application/jsonx":                 false,
		"application/json; charset":         true, // malformed parameter tolerated
		"application/x-www-form-urlencoded": false,
	}
	for ct, want := range tests {
		if got := isJSONContentType(ct); got != want {
			t.Errorf("isJSONContentType(%q): got %v, want %v", ct, got, want)
		}
	}
}

// FuzzIngestResultJSON: the webhook answer written by hand is what
// json.Marshal writes for it, whatever the IDs and reason hold.
func FuzzIngestResultJSON(f *testing.F) {
	f.Add("evt_1", "applied", "cus_1", "")
	f.Add("evt_<&>", "duplicate", "cus_\"q\"", "already received\n\xff")
	f.Fuzz(func(t *testing.T, eventID, status, customerID, reason string) {
		r := ingestResult{EventID: eventID, Status: status, CustomerID: customerID, Reason: reason}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON = %s, want %s", got, want)
		}
	})
}
