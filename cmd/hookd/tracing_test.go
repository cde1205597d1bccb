package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	collectortracev1 "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/hookd/hookd/provider/stripe"
)

// otlpReceiver is an OTLP/gRPC trace collector on loopback that keeps
// every span it is sent.
type otlpReceiver struct {
	collectortracev1.UnimplementedTraceServiceServer
	addr string

	mu       sync.Mutex
	spans    []*tracev1.Span
	services map[string]bool // service.name of the resources seen
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{addr: ln.Addr().String(), services: map[string]bool{}}
	srv := grpc.NewServer()
	collectortracev1.RegisterTraceServiceServer(srv, r)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return r
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortracev1.ExportTraceServiceRequest) (*collectortracev1.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				r.services[kv.GetValue().GetStringValue()] = true
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	return &collectortracev1.ExportTraceServiceResponse{}, nil
}

// trace returns the spans received in the trace, and those elsewhere that
// link to it.
func (r *otlpReceiver) trace(traceID []byte) (in, linking []*tracev1.Span) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		if bytes.Equal(s.GetTraceId(), traceID) {
			in = append(in, s)
			continue
		}
		for _, l := range s.GetLinks() {
			if bytes.Equal(l.GetTraceId(), traceID) {
				linking = append(linking, s)
			}
		}
	}
	return in, linking
}

func spanNamed(spans []*tracev1.Span, name string) *tracev1.Span {
	for _, s := range spans {
		if s.GetName() == name {
			return s
		}
	}
	return nil
}

func spanNames(spans []*tracev1.Span) []string {
	var names []string
	for _, s := range spans {
		names = append(names, fmt.Sprintf("%s(%x←%x)", s.GetName(), s.GetSpanId(), s.GetParentSpanId()))
	}
	return names
}

// TestTracingWebhookTrace runs hookd with OTLP export to an in-process
// collector and posts a webhook that carries a traceparent: the collector
// must get the webhook's trace, continued from the caller's span, with a
// span for each step — the HTTP request, the ingest call, the actor's
// apply, the grain, and the store commit — each the child of the one
// before.
func TestTracingWebhookTrace(t *testing.T) {
	rcv := startOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+rcv.addr)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "")

	for i, kind := range []string{storePostgres, storeEmbedded} {
		t.Run(kind, func(t *testing.T) {
			h := startHookdOn(t, kind)
			traceID := []byte(fmt.Sprintf("tr%014d", i)) // 16 bytes
			parentID := []byte(fmt.Sprintf("sp%06d", i)) // 8 bytes
			traceparent := "00-" + hex.EncodeToString(traceID) + "-" + hex.EncodeToString(parentID) + "-01"

			body := customerEvent(fmt.Sprintf("evt_trace_%d", i), "customer.created", fmt.Sprintf("cus_trace_%d", i), 1700000000, "t@example.com")
			req, err := http.NewRequest(http.MethodPost, h.webhookURL, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Stripe-Signature", stripe.Sign(body, testSecret, time.Now()))
			req.Header.Set("traceparent", traceparent)
			resp, err := h.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("webhook answered %d, want 200", resp.StatusCode)
			}

			want := []string{"POST /v1/webhooks/stripe", "hookd.v1.IngestService/Ingest", "actors.Apply", "customer.ApplyBatch", "store.Commit"}
			var in, linking []*tracev1.Span
			deadline := time.Now().Add(15 * time.Second)
			for {
				in, linking = rcv.trace(traceID)
				all := append(append([]*tracev1.Span(nil), in...), linking...)
				missing := false
				for _, name := range want {
					if spanNamed(all, name) == nil {
						missing = true
					}
				}
				if !missing {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 15 s the collector has, in trace %x: %v; linking to it: %v; want %v",
						traceID, spanNames(in), spanNames(linking), want)
				}
				time.Sleep(50 * time.Millisecond)
			}

			httpSpan := spanNamed(in, want[0])
			if httpSpan == nil {
				t.Fatalf("no %q span in the trace: %v", want[0], spanNames(in))
			}
			if httpSpan.GetKind() != tracev1.Span_SPAN_KIND_SERVER {
				t.Errorf("HTTP span kind %v, want SERVER", httpSpan.GetKind())
			}
			if !bytes.Equal(httpSpan.GetParentSpanId(), parentID) {
				t.Errorf("HTTP span's parent %x, want the traceparent's span %x", httpSpan.GetParentSpanId(), parentID)
			}
			if !hasAttr(httpSpan, "http.response.status_code", "200") || !hasAttr(httpSpan, "http.request.method", "POST") {
				t.Errorf("HTTP span attributes %v lack the method and status code", httpSpan.GetAttributes())
			}
			parent := httpSpan
			for _, name := range want[1:4] {
				s := spanNamed(in, name)
				if s == nil {
					t.Fatalf("no %q span in the trace: %v", name, spanNames(in))
				}
				if !bytes.Equal(s.GetParentSpanId(), parent.GetSpanId()) {
					t.Errorf("span %q's parent is %x, want %q (%x); trace: %v", name, s.GetParentSpanId(), parent.GetName(), parent.GetSpanId(), spanNames(in))
				}
				parent = s
			}
			if !hasAttr(spanNamed(in, "actors.Apply"), "hookd.customer_id", fmt.Sprintf("cus_trace_%d", i)) {
				t.Errorf("actors.Apply lacks the customer ID: %v", spanNamed(in, "actors.Apply").GetAttributes())
			}
			// The commit of one event is the grain span's child; a commit
			// shared with other callers' writes links to each of them.
			if commit := spanNamed(in, "store.Commit"); commit != nil {
				if !bytes.Equal(commit.GetParentSpanId(), parent.GetSpanId()) {
					t.Errorf("store.Commit's parent is %x, want customer.ApplyBatch (%x)", commit.GetParentSpanId(), parent.GetSpanId())
				}
			} else {
				commit := spanNamed(linking, "store.Commit")
				linked := false
				for _, l := range commit.GetLinks() {
					linked = linked || bytes.Equal(l.GetSpanId(), parent.GetSpanId())
				}
				if !linked {
					t.Errorf("store.Commit in trace %x does not link to customer.ApplyBatch (%x)", commit.GetTraceId(), parent.GetSpanId())
				}
			}
			rcv.mu.Lock()
			services := rcv.services
			rcv.mu.Unlock()
			if !services["hookd"] {
				t.Errorf("service names %v, want hookd", services)
			}
		})
	}
}

func hasAttr(s *tracev1.Span, key, value string) bool {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() != key {
			continue
		}
		switch v := kv.GetValue().GetValue().(type) {
		case *commonv1.AnyValue_StringValue:
			return v.StringValue == value
		case *commonv1.AnyValue_IntValue:
			return strconv.FormatInt(v.IntValue, 10) == value
		}
		return false
	}
	return false
}
