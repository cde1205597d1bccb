package tracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func clearOTELEnv(t *testing.T) {
	for _, k := range []string{EnvEndpoint, EnvTracesEndpoint, EnvProtocol, EnvTracesProtocol, EnvSDKDisabled, EnvTracesExporter} {
		t.Setenv(k, "")
	}
}

// TestTracingOffIsNoop: with no OTEL_* endpoint Setup installs nothing,
// and the helpers hookd's hot path calls neither record nor allocate.
func TestTracingOffIsNoop(t *testing.T) {
	clearOTELEnv(t)
	before := otel.GetTracerProvider()
	shutdown, err := Setup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if Enabled() {
		t.Fatal("tracing on with no endpoint configured")
	}
	if tp := otel.GetTracerProvider(); tp != before {
		t.Fatalf("Setup installed tracer provider %T with no endpoint configured", tp)
	}
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		t.Fatal("an SDK tracer provider is installed")
	}
	ctx := context.Background()
	sctx, span := Start(ctx, "x")
	if sctx != ctx || span.IsRecording() || span.SpanContext().IsValid() {
		t.Fatal("Start with tracing off changed the context or made a real span")
	}
	if tp := Traceparent(ctx); tp != "" {
		t.Fatalf("Traceparent = %q with tracing off", tp)
	}
	allocs := testing.AllocsPerRun(100, func() {
		c, s := Start(ctx, "x")
		s.End()
		_ = Traceparent(c)
		_, s = StartJoined(ctx, "y", nil)
		s.End()
		_ = HTTPHandler("z", nil)
		_ = GRPCServerOptions()
		_ = GRPCDialOptions()
	})
	if allocs != 0 {
		t.Fatalf("tracing off allocates %v times per call", allocs)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestTracingConfigured(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{EnvEndpoint: "http://c:4317"}, true},
		{map[string]string{EnvTracesEndpoint: "http://c:4318/v1/traces"}, true},
		{map[string]string{EnvEndpoint: "http://c:4317", EnvSDKDisabled: "true"}, false},
		{map[string]string{EnvEndpoint: "http://c:4317", EnvTracesExporter: "none"}, false},
		{map[string]string{EnvEndpoint: "  "}, false},
	} {
		if got := Configured(env(tc.env)); got != tc.want {
			t.Errorf("Configured(%v) = %v, want %v", tc.env, got, tc.want)
		}
	}
	for _, tc := range []struct {
		env     map[string]string
		want    string
		wantErr bool
	}{
		{map[string]string{}, "grpc", false},
		{map[string]string{EnvProtocol: "http/protobuf"}, "http/protobuf", false},
		{map[string]string{EnvProtocol: "grpc", EnvTracesProtocol: "http/protobuf"}, "http/protobuf", false},
		{map[string]string{EnvProtocol: "http/json"}, "", true},
		{map[string]string{EnvProtocol: "carrier-pigeon"}, "", true},
	} {
		got, err := Protocol(env(tc.env))
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("Protocol(%v) = %q, %v; want %q, error %v", tc.env, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestTracingSetupOn: an endpoint turns tracing on with an SDK provider
// (the exporter connects lazily, so none need listen); shutdown turns it
// off again.
func TestTracingSetupOn(t *testing.T) {
	clearOTELEnv(t)
	t.Setenv(EnvEndpoint, "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "100")
	prev, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	defer func() { otel.SetTracerProvider(prev); otel.SetTextMapPropagator(prevProp) }()
	for _, proto := range []string{"grpc", "http/protobuf"} {
		t.Setenv(EnvProtocol, proto)
		shutdown, err := Setup(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !Enabled() {
			t.Fatalf("%s: tracing off with an endpoint", proto)
		}
		if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); !ok {
			t.Fatalf("%s: tracer provider %T, want the SDK's", proto, otel.GetTracerProvider())
		}
		_ = shutdown(context.Background()) // nothing exported: no error expected, but none matters
		if Enabled() {
			t.Fatalf("%s: tracing still on after shutdown", proto)
		}
	}
}

func TestTracingTraceparentRoundTrip(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	defer UseForTest(tp)()

	ctx, span := Start(context.Background(), "parent")
	tpv := Traceparent(ctx)
	sc := span.SpanContext()
	if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; tpv != want {
		t.Fatalf("Traceparent = %q, want %q", tpv, want)
	}
	got := SpanContextFromTraceparent(tpv)
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsSampled() || !got.IsRemote() {
		t.Fatalf("round trip gave %+v, want %+v", got, sc)
	}
	for _, bad := range []string{"", "junk", "01-" + tpv[3:], tpv[:54] + "x", "00-00000000000000000000000000000000-" + tpv[36:]} {
		if SpanContextFromTraceparent(bad).IsValid() {
			t.Errorf("SpanContextFromTraceparent(%q) is valid", bad)
		}
	}
	if Traceparent(context.Background()) != "" {
		t.Error("Traceparent of a context without a span is not empty")
	}
	span.End()

	// One caller: a child. Several: a new root linked to each.
	_, a := Start(context.Background(), "a")
	_, b := Start(context.Background(), "b")
	_, one := StartJoined(context.Background(), "one", []trace.SpanContext{{}, a.SpanContext()})
	_, many := StartJoined(context.Background(), "many", []trace.SpanContext{a.SpanContext(), b.SpanContext()})
	one.End()
	many.End()
	a.End()
	b.End()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		byName[s.Name] = s
	}
	if p := byName["one"].Parent; p.SpanID() != a.SpanContext().SpanID() {
		t.Errorf("joined span of one caller has parent %v, want %v", p.SpanID(), a.SpanContext().SpanID())
	}
	m := byName["many"]
	if m.Parent.IsValid() || len(m.Links) != 2 || m.Links[0].SpanContext.SpanID() != a.SpanContext().SpanID() ||
		m.Links[1].SpanContext.SpanID() != b.SpanContext().SpanID() {
		t.Errorf("joined span of two callers: parent %v, links %v; want a root linked to both", m.Parent, m.Links)
	}
	if m.SpanContext.TraceID() == a.SpanContext().TraceID() || m.SpanContext.TraceID() == b.SpanContext().TraceID() {
		t.Error("joined span of two callers is in a caller's trace")
	}
}
