package services

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/status"

	"github.com/hookd/hookd/internal/tracing"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// tracedIngest is the in-process Ingest call in a span named like the one
// otelgrpc gives the call over gRPC (hookd.v1.IngestService/Ingest), so
// that a webhook's trace has the same steps whether the gateway reaches
// its IngestService in-process or over the network. The span travels in
// ctx to the actors.
func (l localIngest) tracedIngest(ctx context.Context, req *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
	ctx, span := tracing.Start(ctx, "hookd.v1.IngestService/Ingest", trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			attribute.String("rpc.system.name", "hookd.local"),
			attribute.String("rpc.method", hookdv1.IngestService_Ingest_FullMethodName),
			attribute.String("hookd.event_id", req.GetEnvelope().GetEventId()),
		))
	defer span.End()
	resp, err := l.srv.Ingest(ctx, req)
	if err != nil {
		err = finish(ctx, l.log, hookdv1.IngestService_Ingest_FullMethodName, err)
		st := status.Convert(err)
		span.SetAttributes(attribute.String("rpc.response.status_code", st.Code().String()))
		span.SetStatus(codes.Error, st.Message())
		return nil, err
	}
	span.SetAttributes(attribute.String("rpc.response.status_code", "OK"),
		attribute.String("hookd.status", resp.GetStatus().String()))
	return resp, nil
}
