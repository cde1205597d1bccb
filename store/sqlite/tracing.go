package sqlite

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/store"
)

// commitTraced is commitIsolated in a span: one per group commit, the
// child of the caller's span when the transaction carries one caller's
// writes, else the root of a trace of its own linked to every caller's
// span (tracing.StartJoined). The caller owns the writer.
func (s *Store) commitTraced(reqs []*commitRequest) {
	scs := make([]trace.SpanContext, len(reqs))
	writes := 0
	for i, r := range reqs {
		scs[i] = trace.SpanContextFromContext(r.ctx)
		writes += len(r.writes)
	}
	_, span := tracing.StartJoined(context.Background(), "store.Commit", scs, trace.WithAttributes(
		attribute.String("db.system.name", "sqlite"),
		attribute.Int("hookd.store.writes", writes),
		attribute.Int("hookd.store.callers", len(reqs)),
	))
	s.commitIsolated(reqs)
	var errs []error
	for _, r := range reqs {
		errs = append(errs, r.errs...)
	}
	tracing.EndCommit(span, errs, store.ErrUnavailable)
}
