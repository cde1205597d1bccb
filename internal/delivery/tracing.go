package delivery

import (
	"context"
	"net"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/store"
)

// tracedDo is do in a client span, one per attempt, whose traceparent
// the request carries to the receiver. A delivery is made from the
// outbox, long after the webhook's request has ended, so the span starts
// a trace of its own; hookd.delivery_id ties it to the delivery (and
// through it to the notification and the event). The URL is recorded without its query, which may hold a
// token.
func (s *sender) tracedDo(ctx context.Context, t target, h []header, ep store.Endpoint, id string, attempt int, body []byte) (response, []byte, error) {
	u, _ := url.Parse(t.raw) // parsed before, by parseTarget
	u.RawQuery, u.Fragment, u.User = "", "", nil
	port, _ := strconv.Atoi(u.Port())
	if port == 0 && t.https {
		port = 443
	} else if port == 0 {
		port = 80
	}
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", "POST"),
		attribute.String("url.full", u.String()),
		attribute.String("server.address", t.serverName),
		attribute.Int("server.port", port),
		attribute.String("hookd.delivery_id", id),
		attribute.String("hookd.endpoint_id", ep.ID),
		attribute.Int("http.request.resend_count", max(attempt-1, 0)),
		attribute.Int64("http.request.body.size", int64(len(body))),
	}
	ctx, span := tracing.Start(ctx, "POST", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	for _, k := range carrier.Keys() {
		h = append(h, header{k, carrier.Get(k)})
	}
	resp, start, err := s.cl.post(ctx, t, h, body)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		errType := "transport"
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			errType = "timeout"
		}
		span.SetAttributes(attribute.String("error.type", errType))
		return resp, start, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.status))
	if resp.status < 200 || resp.status >= 300 {
		// Any answer but 2xx fails the attempt (a 3xx is not followed).
		span.SetStatus(codes.Error, "HTTP "+strconv.Itoa(resp.status))
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(resp.status)))
	}
	return resp, start, nil
}
