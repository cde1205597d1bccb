package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd/hookd/internal/envelope"
	"github.com/hookd/hookd/internal/eventstatus"
	"github.com/hookd/hookd/internal/grainpb"
	"github.com/hookd/hookd/internal/loglimit"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
)

// IngestServer implements hookd.v1.IngestService.
type IngestServer struct {
	hookdv1.UnimplementedIngestServiceServer
	deliverer
	maxPayload int64            // see Config.MaxPayloadBytes
	tolerance  time.Duration    // see Config.Tolerance
	now        func() time.Time // the clock created is checked against
	limit      *loglimit.Limiter
}

// rejectLogsPerSecond is how many lines per second rejected Ingest
// requests may write; the rest are counted in
// hookd_ingest_rejections_total and in the next line's "suppressed".
const rejectLogsPerSecond = 5

// ingestRejections counts Ingest requests refused by envelope.Check.
var ingestRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "hookd_ingest_rejections_total",
	Help: "IngestService.Ingest requests answered INVALID_ARGUMENT without storing anything, by reason (invalid_field: an input limit, see internal/envelope).",
}, []string{"reason"})

func init() { prometheus.MustRegister(ingestRejections) }

// deliverer routes events to their customers' actors; IngestService and
// EventService.ReplayEvent share it.
type deliverer struct {
	store  store.Store
	actors Applier
	log    *slog.Logger
}

// Ingest routes the event to its customer's actor and answers once the
// event is durable. Events that name no customer, directly or through an
// object hookd has seen before, are stored as ignored.
func (s *IngestServer) Ingest(ctx context.Context, req *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
	env := req.GetEnvelope()
	limits := envelope.Limits{MaxPayloadBytes: s.maxPayload, Latest: s.now().Add(s.tolerance)}
	if err := envelope.Check(env, limits); err != nil {
		ingestRejections.WithLabelValues("invalid_field").Inc()
		if ok, suppressed := s.limit.Allow("invalid_field"); ok {
			s.log.WarnContext(ctx, "ingest rejected envelope",
				"event_id", loglimit.String(env.GetEventId()), "err", loglimit.Err(err), "suppressed", suppressed)
		}
		return nil, toStatus(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	resp, err := s.deliver(ctx, env, false)
	return resp, toStatus(err)
}

// deliver makes one event durable through its customer's actor, or stores
// it as ignored when it has no customer. A replay replaces an ignored row
// and is a duplicate for any other.
func (s *deliverer) deliver(ctx context.Context, env *hookdv1.Envelope, replay bool) (*hookdv1.IngestResponse, error) {
	customerID, routing, err := s.route(ctx, env)
	if err != nil {
		return nil, err
	}
	resp := &hookdv1.IngestResponse{EventId: env.GetEventId(), CustomerId: customerID}
	if customerID == "" && replay {
		resp.Status, resp.Reason = hookdv1.EventStatus_EVENT_STATUS_DUPLICATE, "still no customer to route the event to"
		return resp, nil
	}
	if customerID == "" {
		reason := unroutedReason(env)
		err := s.store.RecordEvent(ctx, store.Event{
			Source:     env.GetSource(),
			EventID:    env.GetEventId(),
			Type:       env.GetType(),
			Status:     store.StatusIgnored,
			Reason:     reason,
			Routing:    "none",
			Created:    time.Unix(env.GetCreated(), 0).UTC(),
			APIVersion: env.GetApiVersion(),
			ObjectID:   env.GetObjectId(),
			Account:    env.GetAccount(),
			Payload:    env.GetPayload(),
		})
		switch {
		case errors.Is(err, store.ErrDuplicate):
			// A retry of this request: answer what the first one did.
			resp.Status, resp.Reason = hookdv1.EventStatus_EVENT_STATUS_DUPLICATE, "event already received"
			if prev, err := s.store.GetEvent(ctx, env.GetSource(), env.GetEventId()); err == nil {
				resp.Status, resp.Version = eventstatus.Proto(prev.Status), prev.Version
				resp.CustomerId, resp.Reason = prev.CustomerID, alreadyReceived(prev.Reason)
			}
		case err != nil:
			return nil, fmt.Errorf("record event %s: %w", env.GetEventId(), err)
		default:
			resp.Status, resp.Reason = hookdv1.EventStatus_EVENT_STATUS_IGNORED, reason
		}
		return resp, nil
	}
	out, err := s.actors.Apply(ctx, customerID, &grainpb.ApplyRequest{Envelope: env, Routing: routing, Replay: replay})
	if err != nil {
		s.log.WarnContext(ctx, "event not applied", "event_id", loglimit.String(env.GetEventId()),
			"customer_id", loglimit.String(customerID), "err", loglimit.Err(err))
		return nil, fmt.Errorf("apply event %s: %w: %w", env.GetEventId(), store.ErrUnavailable, err)
	}
	if err := applyError(out); err != nil {
		return nil, fmt.Errorf("apply event %s: %w", env.GetEventId(), err)
	}
	resp.Status = eventstatus.Proto(store.Status(out.GetStatus()))
	resp.Version = out.GetVersion()
	resp.Reason = out.GetReason()
	return resp, nil
}

// alreadyReceived is the reason of an answer to a repeated delivery: the
// stored event's reason, marked (as the customer actor marks it).
func alreadyReceived(reason string) string {
	if reason == "" {
		return "already received"
	}
	return "already received; " + reason
}

// unroutedReason says why an event that no customer was found for is
// stored as ignored.
func unroutedReason(env *hookdv1.Envelope) string {
	switch {
	case !env.GetThin():
		return "no customer in the event and no earlier event named its objects"
	case env.GetObjectId() == "":
		return stripe.ThinReason(env, "it names no related object, so there is no customer to route it to; stored")
	default:
		return stripe.ThinReason(env, fmt.Sprintf("its related object %s (%s) is not a customer and no earlier event linked it to one; stored",
			env.GetObjectId(), env.GetObjectType()))
	}
}

// route finds the customer an event belongs to: the one the gateway found
// in the payload, else the customer an earlier event linked one of its
// objects to.
func (s *deliverer) route(ctx context.Context, env *hookdv1.Envelope) (customerID, routing string, err error) {
	if env.GetCustomerId() != "" {
		return env.GetCustomerId(), env.GetRouting(), nil
	}
	ids := append([]string{env.GetObjectId()}, env.GetRelatedObjectIds()...)
	for i, id := range ids {
		if id == "" || slices.Contains(ids[:i], id) { // a thin event names its object twice
			continue
		}
		c, err := s.store.LookupRoute(ctx, id)
		switch {
		case err == nil:
			return c, "mapping:" + id, nil
		case !errors.Is(err, store.ErrNotFound):
			return "", "", fmt.Errorf("look up route for %s: %w", id, err)
		}
	}
	return "", "", nil
}
