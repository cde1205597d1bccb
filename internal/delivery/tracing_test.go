package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/store"
)

// TestTracingDeliveryAttemptSpan: with tracing on, each attempt is a
// client span with its HTTP attributes, and the receiver gets its
// traceparent; with tracing off no traceparent is sent.
func TestTracingDeliveryAttemptSpan(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("traceparent"))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	snd := newSender(5*time.Second, 1, true, "hookd-test", nil)
	defer snd.close()
	ep := store.Endpoint{ID: "ep_trace", URL: srv.URL + "/hook?token=secret"}

	// Off: nothing added.
	if _, _, err := snd.send(context.Background(), ep, "dlv_1", 1, time.Now(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	restore := tracing.UseForTest(tp)
	defer restore()
	resp, _, err := snd.send(context.Background(), ep, "dlv_1", 3, time.Now(), []byte(`{}`))
	if err != nil || resp.status != http.StatusAccepted {
		t.Fatalf("send: %v, status %d", err, resp.status)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "" {
		t.Fatalf("traceparent headers received %q, want none on the first (tracing off), one on the second", seen)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.SpanKind != trace.SpanKindClient || s.Name != "POST" {
		t.Errorf("span %q kind %v, want POST, client", s.Name, s.SpanKind)
	}
	want := "00-" + s.SpanContext.TraceID().String() + "-" + s.SpanContext.SpanID().String() + "-01"
	if seen[1] != want {
		t.Errorf("receiver got traceparent %q, want the attempt span's %q", seen[1], want)
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		attrs[kv.Key] = kv.Value
	}
	checks := map[attribute.Key]string{
		"http.request.method":       "POST",
		"url.full":                  srv.URL + "/hook",
		"http.response.status_code": "202",
		"hookd.delivery_id":         "dlv_1",
		"hookd.endpoint_id":         "ep_trace",
		"http.request.resend_count": "2",
		"server.address":            "127.0.0.1",
	}
	for k, v := range checks {
		if got := attrs[k].Emit(); got != v {
			t.Errorf("attribute %s = %q, want %q", k, got, v)
		}
	}
}
