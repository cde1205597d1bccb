package tracing

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// UseForTest installs tp as the global tracer provider, the W3C
// propagators, and turns tracing on, as Setup does, for a test in any
// package (with an SDK provider over an in-memory exporter, say). The
// returned function puts back what was there and turns tracing off. Tests
// that use it must not run in parallel with others that trace.
func UseForTest(tp trace.TracerProvider) (restore func()) {
	prevTP, prevProp, prevOn := otel.GetTracerProvider(), otel.GetTextMapPropagator(), enabled.Load()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	enabled.Store(true)
	return func() {
		enabled.Store(prevOn)
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	}
}
