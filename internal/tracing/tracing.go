// Package tracing is hookd's OpenTelemetry tracing: the process-wide
// tracer provider, configured by the standard OTEL_* environment
// variables, and the few helpers the hot path uses to start spans and to
// carry span contexts where a context.Context does not go (into a customer
// grain, into a group commit).
//
// Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. Off, [Setup] installs nothing
// (otel's globals stay no-ops) and [Enabled] is false; every call site in
// hookd checks Enabled before it builds span options or attributes, so
// that tracing costs one atomic load per site when off. See docs/tracing.md.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// InstrumentationName names hookd's tracer (the instrumentation scope of
// its spans).
const InstrumentationName = "github.com/hookd/hookd"

// DefaultServiceName is service.name when OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) does not set it.
const DefaultServiceName = "hookd"

// Environment variables read here; the exporters and the SDK read the
// rest of OTEL_* themselves (headers, timeouts, TLS, OTEL_TRACES_SAMPLER,
// OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES, ...).
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
)

// enabled is set by Setup once a real tracer provider is installed.
var enabled atomic.Bool

// Enabled reports whether spans are recorded and exported: a tracer
// provider was installed by Setup. Call sites check it before they build
// span options, so that tracing off costs nothing else.
func Enabled() bool { return enabled.Load() }

// Tracer is hookd's tracer from the global tracer provider.
func Tracer() trace.Tracer { return otel.Tracer(InstrumentationName) }

// Start starts a span from hookd's tracer; with tracing off it returns ctx
// unchanged and a no-op span, without allocating.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !enabled.Load() {
		return ctx, noop.Span{}
	}
	return Tracer().Start(ctx, name, opts...)
}

// Configured reports whether getenv's OTEL_* variables ask for tracing:
// an OTLP endpoint (the general or the traces one) is set, and neither
// OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none turns it off.
func Configured(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true") ||
		strings.EqualFold(strings.TrimSpace(getenv(EnvTracesExporter)), "none") {
		return false
	}
	return strings.TrimSpace(getenv(EnvEndpoint)) != "" || strings.TrimSpace(getenv(EnvTracesEndpoint)) != ""
}

// Setup installs the process's tracer provider from the environment and
// returns the function that flushes and shuts it down (call it once, on
// exit, with a context bounding the flush). With no endpoint configured
// (see Configured) it installs nothing, leaves tracing off and returns a
// shutdown that does nothing.
//
// On, it exports over OTLP: gRPC unless OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
// or OTEL_EXPORTER_OTLP_PROTOCOL says "http/protobuf"; the exporter reads
// its endpoint, headers, TLS and timeout variables itself. Spans go through
// a batch span processor (OTEL_BSP_*), sampled as OTEL_TRACES_SAMPLER says
// (default: parent-based, always on), with service.name from
// OTEL_SERVICE_NAME (default "hookd"). The W3C trace context and baggage
// propagators become the global text-map propagator.
func Setup(ctx context.Context) (shutdown func(context.Context) error, err error) {
	if !Configured(os.Getenv) {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := newExporter(ctx, os.Getenv)
	if err != nil {
		return nil, err
	}
	res, err := newResource(ctx)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	enabled.Store(true)
	return func(ctx context.Context) error {
		enabled.Store(false)
		return tp.Shutdown(ctx)
	}, nil
}

// Protocol is the OTLP protocol getenv selects for traces: "grpc" or
// "http/protobuf".
func Protocol(getenv func(string) string) (string, error) {
	p := strings.TrimSpace(getenv(EnvTracesProtocol))
	if p == "" {
		p = strings.TrimSpace(getenv(EnvProtocol))
	}
	switch p {
	case "", "grpc":
		return "grpc", nil
	case "http/protobuf":
		return p, nil
	case "http/json":
		return "", fmt.Errorf("%s=http/json is not supported; use grpc or http/protobuf", EnvProtocol)
	}
	return "", fmt.Errorf("unknown %s %q; use grpc or http/protobuf", EnvProtocol, p)
}

func newExporter(ctx context.Context, getenv func(string) string) (*otlptrace.Exporter, error) {
	proto, err := Protocol(getenv)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	var exp *otlptrace.Exporter
	if proto == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP %s exporter: %w", proto, err)
	}
	return exp, nil
}

// newResource describes the process: service.name "hookd" unless the
// environment names it, the SDK, the process and the host.
func newResource(ctx context.Context) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", DefaultServiceName)),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME: override the default
		resource.WithTelemetrySDK(),
		resource.WithProcessPID(),
		resource.WithProcessRuntimeName(),
		resource.WithProcessRuntimeVersion(),
		resource.WithHost(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return res, nil
}
