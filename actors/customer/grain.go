// Package customer is the virtual actor (protoactor-go cluster grain) that
// owns one customer: its pure reducer, and the Processor that dedups,
// reduces and commits each event — state, outbox rows and inbox row in one
// version-fenced transaction — before answering.
package customer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/internal/grainpb"
	"github.com/hookd/hookd/internal/loglimit"
	"github.com/hookd/hookd/internal/tracing"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// Deps is what a customer grain needs from its process.
type Deps struct {
	Store  store.Store
	Logger *slog.Logger
	// Committed is called after each commit that wrote notifications.
	Committed func(customerID string)
	// ApplyTimeout bounds the store work for one event.
	ApplyTimeout time.Duration
	// Fetcher gets missing subscriptions from the provider when resolving
	// parked events; nil resolves with what hookd knows.
	Fetcher SubscriptionFetcher
	// Objects gets objects from the provider when the data of events
	// created in one second does not decide their order; nil applies them
	// in arrival order.
	Objects ObjectFetcher
	// Decoded holds the objects of events the process decoded already,
	// which grains take instead of decoding the payload; nil: grains
	// decode every event.
	Decoded *Decoded

	resident, activations atomic.Int64 // counted by the grains
	local                 sync.Map     // customer ID → *actor.PID of its grain while active here, from Init to Terminate
}

// LocalPID returns the PID of the customer's grain while it is active in
// this actor system (from its Init to its Terminate), else nil: callers
// in the process can send to it directly (LocalApply). Cheaper than the
// cluster's PID cache and process registry together, which are keyed by
// strings built per call and sharded maps behind locks.
func (d *Deps) LocalPID(customerID string) *actor.PID {
	if v, ok := d.local.Load(customerID); ok {
		return v.(*actor.PID)
	}
	return nil
}

// ForgetLocal drops pid as the customer's local grain, if it still is: a
// caller whose LocalApply went unanswered calls it, so that the next try
// goes through the cluster (which activates the grain again) should the
// grain have stopped without its Terminate.
func (d *Deps) ForgetLocal(customerID string, pid *actor.PID) {
	d.local.CompareAndDelete(customerID, pid)
}

// Actors returns how many customer grains are active now and how many
// activations there have been.
func (d *Deps) Actors() (resident, activations int64) {
	return d.resident.Load(), d.activations.Load()
}

// The generated grain code keeps one package-global factory, so the
// dependencies are found per actor system: several systems (members in one
// test process) can each have their own store.
var registry sync.Map // *actor.ActorSystem → *Deps

// Register makes deps available to the grains of an actor system; it
// returns a function that removes them.
func Register(system *actor.ActorSystem, deps *Deps) (unregister func()) {
	registry.Store(system, deps)
	return func() { registry.Delete(system) }
}

// KindName is the cluster kind of customer grains.
const KindName = "CustomerGrain"

// Kind returns the cluster kind for customer grains, passivated after
// idle; opts set their actors' props (a dispatcher, for one).
func Kind(idle time.Duration, opts ...actor.PropsOption) *cluster.Kind {
	return grainpb.NewCustomerGrainKind(func() grainpb.CustomerGrain { return &grain{} }, idle, opts...)
}

// grain adapts a Processor to the generated grain interface. The actor
// runtime calls it one message at a time. It holds the Processor itself,
// not a pointer: one object less for each resident customer.
type grain struct {
	deps *Deps
	proc Processor
	self *actor.PID // this activation's (Deps.LocalPID)
}

func (g *grain) Init(ctx cluster.GrainContext) {
	d, ok := registry.Load(ctx.Cluster().ActorSystem)
	if !ok {
		panic("customer grain: no dependencies registered for this actor system")
	}
	g.deps = d.(*Deps)
	g.proc = *NewProcessor(ctx.Identity(), g.deps.Store, g.deps.Logger, g.deps.Committed)
	g.proc.FetchObjectsWith(g.deps.Objects)
	g.deps.activations.Add(1)
	g.deps.resident.Add(1)
	g.self = ctx.Self()
	g.deps.local.Store(g.proc.id, g.self)
}

// Terminate is called when the grain stops: passivated after idle, or its
// member leaving.
func (g *grain) Terminate(cluster.GrainContext) {
	if g.deps != nil {
		g.deps.resident.Add(-1)
		g.deps.local.CompareAndDelete(g.proc.id, g.self)
	}
}

// LocalApply is an ApplyBatch sent by a caller in the grain's own process
// (see actors.System): the requests as Go values, which the generated
// client would encode to bytes for the grain to decode again. It is not a
// protobuf message and never leaves the process; the grain answers it
// with an *grainpb.ApplyBatchResponse, exactly as ApplyBatch: on Reply
// when it is set (a buffered channel: the grain never waits for the
// sender), else to the sender (a request future). The grain reads the
// requests and never modifies them; neither may the sender while the
// request may still be in the grain's mailbox.
type LocalApply struct {
	Requests []*grainpb.ApplyRequest
	Reply    chan<- *grainpb.ApplyBatchResponse
}

// ReceiveDefault takes the messages that are not generated grain calls:
// LocalApply; anything else is ignored.
func (g *grain) ReceiveDefault(ctx cluster.GrainContext) {
	if m, ok := ctx.Message().(*LocalApply); ok {
		resp, _ := g.ApplyBatch(&grainpb.ApplyBatchRequest{Requests: m.Requests}, ctx) // never an error
		if m.Reply != nil {
			m.Reply <- resp
			return
		}
		ctx.Respond(resp)
	}
}

// Apply never returns an error: a failure to make the event durable is an
// answer (ApplyResponse.Error), which the ingest service maps to
// UNAVAILABLE so that the sender retries.
func (g *grain) Apply(req *grainpb.ApplyRequest, gctx cluster.GrainContext) (*grainpb.ApplyResponse, error) {
	resp, err := g.ApplyBatch(&grainpb.ApplyBatchRequest{Requests: []*grainpb.ApplyRequest{req}}, gctx)
	if err != nil {
		return nil, err
	}
	return resp.GetResponses()[0], nil
}

// ApplyBatch applies the events in order, committed together (see
// Processor.ApplyBatch), and answers each as Apply would have.
func (g *grain) ApplyBatch(req *grainpb.ApplyBatchRequest, _ cluster.GrainContext) (*grainpb.ApplyBatchResponse, error) {
	timeout := g.deps.ApplyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	items := make([]Item, len(req.GetRequests()))
	for i, r := range req.GetRequests() {
		items[i] = Item{Envelope: r.GetEnvelope(), Routing: r.GetRouting(), Replay: r.GetReplay()}
		if objs, ok := g.deps.Decoded.Lookup(r.GetEnvelope()); ok {
			items[i].Objects = &objs
		}
	}
	if tracing.Enabled() {
		var span trace.Span
		ctx, span = g.startSpan(ctx, req.GetRequests())
		defer span.End()
	}
	outs := g.proc.ApplyBatch(ctx, items)
	resp := &grainpb.ApplyBatchResponse{Responses: make([]*grainpb.ApplyResponse, len(outs))}
	for i, o := range outs {
		if o.Err != nil {
			g.deps.Logger.ErrorContext(ctx, "apply event failed",
				"customer_id", loglimit.String(g.proc.id), "event_id", loglimit.String(items[i].Envelope.GetEventId()), "err", loglimit.Err(o.Err))
			resp.Responses[i] = &grainpb.ApplyResponse{Error: o.Err.Error(), Permanent: errors.Is(o.Err, store.ErrInvalidArgument)}
			continue
		}
		resp.Responses[i] = &grainpb.ApplyResponse{Status: string(o.Result.Status), Version: o.Result.Version, Reason: o.Result.Reason}
	}
	return resp, nil
}

// startSpan starts the span of one ApplyBatch in the grain: the child of
// the caller's span (carried as ApplyRequest.traceparent) when the batch
// holds one event, else a span of its own linked to each event's (see
// tracing.StartJoined). Its context reaches the store's Commit.
func (g *grain) startSpan(ctx context.Context, reqs []*grainpb.ApplyRequest) (context.Context, trace.Span) {
	scs := make([]trace.SpanContext, len(reqs))
	for i, r := range reqs {
		scs[i] = tracing.SpanContextFromTraceparent(r.GetTraceparent())
	}
	attrs := []attribute.KeyValue{
		attribute.String("hookd.customer_id", g.proc.id),
		attribute.Int("hookd.batch.events", len(reqs)),
	}
	if len(reqs) == 1 {
		attrs = append(attrs, attribute.String("hookd.event_id", reqs[0].GetEnvelope().GetEventId()))
	}
	return tracing.StartJoined(ctx, "customer.ApplyBatch", scs, trace.WithAttributes(attrs...))
}

// Resolve releases events parked past the deadline (see Processor.Resolve).
func (g *grain) Resolve(req *grainpb.ResolveRequest, _ cluster.GrainContext) (*grainpb.ResolveResponse, error) {
	timeout := g.deps.ApplyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	now := time.Now()
	n, err := g.proc.Resolve(ctx, now.Add(-time.Duration(req.GetDeadlineSeconds())*time.Second), now, g.deps.Fetcher)
	if err != nil {
		g.deps.Logger.WarnContext(ctx, "resolve parked events failed", "customer_id", loglimit.String(g.proc.id), "err", loglimit.Err(err))
		return &grainpb.ResolveResponse{Error: err.Error()}, nil
	}
	if n > 0 {
		g.deps.Logger.InfoContext(ctx, "parked events resolved after deadline", "customer_id", loglimit.String(g.proc.id), "released", n)
	}
	return &grainpb.ResolveResponse{Released: int32(n)}, nil
}

// ReprojectTimeout bounds the store work of one Reproject (reading every
// event of the customer), or Deps.ApplyTimeout if that is longer.
const ReprojectTimeout = time.Minute

// Reproject recomputes the customer's state from its stored events and,
// unless dry_run, repairs it (see Processor.Reproject). It runs from the
// grain's mailbox, like Apply, so it never races with the customer's live
// events. A failure is an answer (ReprojectResponse.Error).
func (g *grain) Reproject(req *grainpb.ReprojectRequest, _ cluster.GrainContext) (*grainpb.ReprojectResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), max(g.deps.ApplyTimeout, ReprojectTimeout))
	defer cancel()
	res, err := g.proc.Reproject(ctx, req.GetDryRun())
	if err != nil {
		g.deps.Logger.WarnContext(ctx, "reproject failed", "customer_id", loglimit.String(g.proc.id), "err", loglimit.Err(err))
		return &grainpb.ReprojectResponse{Error: err.Error()}, nil
	}
	if res.NewVersion != res.Version {
		g.deps.Logger.InfoContext(ctx, "customer reprojected", "customer_id", loglimit.String(g.proc.id),
			"version", res.NewVersion, "changes", len(res.Changes))
	}
	resp := &grainpb.ReprojectResponse{Changed: res.Changed, Version: res.Version, NewVersion: res.NewVersion}
	for _, c := range res.Changes {
		resp.Changes = append(resp.Changes, &hookdv1.FieldChange{Path: c.Path, Live: c.Live, Recomputed: c.Recomputed})
	}
	return resp, nil
}
