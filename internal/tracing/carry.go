package tracing

import (
	"context"
	"encoding/hex"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Traceparent is ctx's span context as a W3C traceparent header value
// ("00-<trace id>-<span id>-<flags>"), to carry it across a hop that has
// no context.Context (a grain request). It is "" when tracing is off or
// ctx holds no valid span context; only then is nothing formatted.
func Traceparent(ctx context.Context) string {
	if !enabled.Load() {
		return ""
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	copy(b[:], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags())})
	return string(b[:])
}

// SpanContextFromTraceparent parses a traceparent made by [Traceparent]
// (or any W3C version-00 value) into a remote span context; it returns an
// invalid span context for "" or anything malformed.
func SpanContextFromTraceparent(tp string) trace.SpanContext {
	if len(tp) != 55 || tp[0] != '0' || tp[1] != '0' || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return trace.SpanContext{}
	}
	var (
		tid   trace.TraceID
		sid   trace.SpanID
		flags [1]byte
	)
	if _, err := hex.Decode(tid[:], []byte(tp[3:35])); err != nil {
		return trace.SpanContext{}
	}
	if _, err := hex.Decode(sid[:], []byte(tp[36:52])); err != nil {
		return trace.SpanContext{}
	}
	if _, err := hex.Decode(flags[:], []byte(tp[53:55])); err != nil {
		return trace.SpanContext{}
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    tid,
		SpanID:     sid,
		TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled,
		Remote:     true,
	})
	if !sc.IsValid() {
		return trace.SpanContext{}
	}
	return sc
}

// StartJoined starts a span for work done once for several callers (a
// batch of events, a group commit) whose span contexts are scs (invalid
// ones are ignored). With exactly one valid span context the span is its
// child, so a lone event's trace stays one; with several it starts a trace
// of its own and links to each of them (a span has one parent). ctx gives
// the span its deadline and values only: its own span is not the parent.
// With tracing off it returns ctx and a no-op span.
func StartJoined(ctx context.Context, name string, scs []trace.SpanContext, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !enabled.Load() {
		return ctx, noop.Span{}
	}
	var (
		first trace.SpanContext
		links []trace.Link
		n     int
	)
	for _, sc := range scs {
		if !sc.IsValid() {
			continue
		}
		n++
		if n == 1 {
			first = sc
		}
		links = append(links, trace.Link{SpanContext: sc})
	}
	switch n {
	case 0:
		ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	case 1:
		ctx = trace.ContextWithSpanContext(ctx, first)
	default:
		ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
		opts = append(opts, trace.WithNewRoot(), trace.WithLinks(links...))
	}
	opts = append(opts, trace.WithAttributes(attribute.Int("hookd.batch.traced", n)))
	return Tracer().Start(ctx, name, opts...)
}

// EndCommit ends the span of a store commit given its per-write results:
// it counts the writes that did not succeed (hookd.store.failed), marks
// the span an error when every write failed with unavailable (the
// transaction itself failed), and ends it.
func EndCommit(span trace.Span, errs []error, unavailable error) {
	failed, down := 0, 0
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		failed++
		if errors.Is(err, unavailable) {
			down++
			if first == nil {
				first = err
			}
		}
	}
	span.SetAttributes(attribute.Int("hookd.store.failed", failed))
	if len(errs) > 0 && down == len(errs) {
		span.RecordError(first)
		span.SetStatus(codes.Error, "commit failed")
	}
	span.End()
}
