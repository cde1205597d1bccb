package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's: the Date header's clock, one per process for good,
		// and a stopped server's idle-worker sweeper, which sees the stop
		// at its next tick (10 s).
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
}

const (
	testSecret = "whsec_test_primary_0123456789"
	// A minimal valid event, routed by data.object.customer.
	testEvent = `{"id":"evt_test_1","object":"event","type":"invoice.paid","created":1699999990,` +
		`"api_version":"2020-03-02","livemode":false,` +
		`"data":{"object":{"id":"in_1","object":"invoice","customer":"cus_1","subscription":"sub_1"}}}`
)

// testNow is the pinned clock of every handler built by setup.
var testNow = time.Unix(1_700_000_000, 0)

// fakeIngest is an IngestService that records every envelope it receives
// and answers with respond (default: APPLIED, echoing the envelope).
type fakeIngest struct {
	hookdv1.UnimplementedIngestServiceServer

	// respond, if set, produces the answer; it must return once ctx is
	// done. Set before the server starts, read-only after.
	respond func(context.Context, *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error)

	mu    sync.Mutex          // guards the fields below
	calls []*hookdv1.Envelope // envelopes received, in order
}

func (f *fakeIngest) Ingest(ctx context.Context, req *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req.GetEnvelope())
	f.mu.Unlock()
	if f.respond != nil {
		return f.respond(ctx, req)
	}
	env := req.GetEnvelope()
	return &hookdv1.IngestResponse{
		EventId:    env.GetEventId(),
		Status:     hookdv1.EventStatus_EVENT_STATUS_APPLIED,
		CustomerId: env.GetCustomerId(),
		Version:    1,
	}, nil
}

// received returns a copy of the envelopes received so far.
func (f *fakeIngest) received() []*hookdv1.Envelope {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*hookdv1.Envelope(nil), f.calls...)
}

// startFakeIngest serves fake over a real gRPC connection on 127.0.0.1 and
// returns a client for it. Both are torn down when the test ends.
func startFakeIngest(t *testing.T, fake *fakeIngest) hookdv1.IngestServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	hookdv1.RegisterIngestServiceServer(srv, fake)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Stop()
		<-served
		t.Fatalf("grpc client: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-served
	})
	return hookdv1.NewIngestServiceClient(conn)
}

// testEnv is what setup builds: a gateway handler in front of a fake
// IngestService.
type testEnv struct {
	handler http.Handler
	fake    *fakeIngest
	logs    *syncBuffer // everything the handler logged
}

// setup builds a gateway with testSecret, the pinned clock testNow and a
// fake IngestService over gRPC. modify, if non-nil, may change the fake
// (before it serves) and the config (before New).
func setup(t *testing.T, modify func(*fakeIngest, *Config)) *testEnv {
	t.Helper()
	fake := &fakeIngest{}
	cfg := Config{Secrets: []string{testSecret}, Now: func() time.Time { return testNow }}
	if modify != nil {
		modify(fake, &cfg)
	}
	cfg.Ingest = startFakeIngest(t, fake)
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("handler logs:\n%s", logs.String())
		}
	})
	if testEngine == engineFastHTTP {
		return &testEnv{handler: serveFast(t, cfg), fake: fake, logs: logs}
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testEnv{handler: h, fake: fake, logs: logs}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// signedRequest returns a POST of body to the webhook route, signed with
// secret at time at, with Content-Type application/json.
func signedRequest(body []byte, secret string, at time.Time) *http.Request {
	req := httptest.NewRequest(http.MethodPost, StripeWebhookPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(stripe.SignatureHeaderName, stripe.Sign(body, secret, at))
	return req
}

// serve runs req through h and returns the recorded response.
func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// decodeBody decodes a JSON object response body, failing the test if the
// response is not JSON.
func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]string {
	t.Helper()
	if got, want := rec.Header().Get("Content-Type"), "application/json"; got != want {
		t.Errorf("Content-Type: got %q, want %q", got, want)
	}
	// writeBody's other headers, which fasthttp's answers set on their own
	// path (fastWriter.writeBody).
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not a JSON object of strings: %v", rec.Body.String(), err)
	}
	return body
}

// hex64 is a well-formed but wrong v1 signature.
var hex64 = strings.Repeat("ab", 32)
