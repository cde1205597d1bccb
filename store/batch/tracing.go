package batch

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/store"
)

// commitSpanName names the span of one backend transaction.
const commitSpanName = "store.Commit"

// startCommitSpan starts the span of one group commit of writes writes
// for reqs: the child of the one caller's span when the transaction
// carries one caller's writes, else the root of a trace of its own with a
// link to each caller's span (tracing.StartJoined). Called only with
// tracing on.
func startCommitSpan(ctx context.Context, reqs []*request, writes int) (context.Context, trace.Span) {
	scs := make([]trace.SpanContext, len(reqs))
	for i, r := range reqs {
		scs[i] = trace.SpanContextFromContext(r.ctx)
	}
	return tracing.StartJoined(ctx, commitSpanName, scs, trace.WithAttributes(
		attribute.Int("hookd.store.writes", writes),
		attribute.Int("hookd.store.callers", len(reqs)),
	))
}

// endCommitSpan records the outcome of a commit on its span and ends it.
func endCommitSpan(span trace.Span, errs []error) {
	tracing.EndCommit(span, errs, store.ErrUnavailable)
}
