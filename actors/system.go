// Package actors runs hookd's protoactor-go cluster: the actor system, its
// membership provider and identity lookup, and the customer grain kind. The
// ingest service calls System.Apply, which routes an event to the one
// activation of its customer's grain.
package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/k8s"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/hookd/hookd/actors/customer"
	"github.com/hookd/hookd/internal/grainpb"
	"github.com/hookd/hookd/internal/startstop"
	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
)

// ErrNotStarted is returned by Apply before Start or after Stop.
var ErrNotStarted = errors.New("actor system not running")

// Config configures the actor system. Zero values get the defaults noted.
type Config struct {
	// Store is where grains commit. Required.
	Store store.Store
	// Logger receives hookd's and protoactor's logs. Default: slog.Default().
	Logger *slog.Logger
	// Committed is called after a grain commits notifications (wakes
	// subscribers). May be nil; must not block.
	Committed func(customerID string)
	// ClusterName names the cluster. Default "hookd".
	ClusterName string
	// Membership is how members find each other: "local" (one process,
	// in-memory; the default), "etcd" or "k8s" (the pod API; in-cluster).
	Membership string
	// EtcdEndpoints are etcd's client URLs, with Membership "etcd".
	EtcdEndpoints []string
	// Host and Port are where the member's remote endpoint listens; Host
	// is also the address other members reach it at, so it must be
	// routable from them (in Kubernetes, the pod IP). Default 127.0.0.1
	// and 0 (any free port).
	Host string
	Port int
	// RemoteServerOptions and RemoteDialOptions are the gRPC options of
	// the member's remote endpoint (its listener, and its connections to
	// other members): credentials for mutual TLS between members. Nil
	// keeps protoactor's default, plaintext.
	RemoteServerOptions []grpc.ServerOption
	RemoteDialOptions   []grpc.DialOption
	// IdleTimeout passivates a customer grain that received nothing for
	// this long. Default 5 minutes.
	IdleTimeout time.Duration
	// RequestTimeout bounds one Apply when the caller's context has no
	// earlier deadline. Default 10 s.
	RequestTimeout time.Duration
	// AttemptTimeout bounds one attempt to reach a customer's grain;
	// within RequestTimeout an attempt that times out (its member died or
	// stalls) is retried after a fresh placement lookup. Grain calls are
	// idempotent, so a retry never applies an event twice. Default 2 s.
	AttemptTimeout time.Duration
	// ApplyTimeout bounds the store work for one event. Default 10 s.
	ApplyTimeout time.Duration
	// ActorLogLevel is the least level of protoactor's own logs that is
	// kept. Default slog.LevelWarn, so that a quiet process stays quiet.
	ActorLogLevel slog.Level
	// ParkDeadline is how long an event may wait for its prerequisite
	// before it is resolved. Default 30 s.
	ParkDeadline time.Duration
	// SweepInterval is how often the member looks for events parked past
	// the deadline. Default ParkDeadline/4.
	SweepInterval time.Duration
	// Fetcher gets missing subscriptions from the provider when resolving;
	// nil resolves with what hookd knows.
	Fetcher customer.SubscriptionFetcher
	// Objects gets objects from the provider when the data of events
	// created in one second does not decide their order; nil applies them
	// in arrival order.
	Objects customer.ObjectFetcher
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ClusterName == "" {
		c.ClusterName = "hookd"
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Membership == "" {
		c.Membership = "local"
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 2 * time.Second
	}
	if c.ActorLogLevel == 0 {
		c.ActorLogLevel = slog.LevelWarn
	}
	if c.ParkDeadline <= 0 {
		c.ParkDeadline = 30 * time.Second
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = c.ParkDeadline / 4
	}
}

func (c *Config) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("actors: Config.Store is required")
	case c.Membership == "etcd" && len(c.EtcdEndpoints) == 0:
		return errors.New("actors: etcd membership needs EtcdEndpoints")
	case c.Membership != "local" && c.Membership != "etcd" && c.Membership != "k8s":
		return fmt.Errorf("actors: unknown membership %q (want local, etcd or k8s)", c.Membership)
	}
	return nil
}

// provider returns the cluster membership provider the config selects.
func (c *Config) provider() (cluster.ClusterProvider, error) {
	switch c.Membership {
	case "etcd":
		p, err := etcd.NewWithConfig("/hookd/"+c.ClusterName, clientv3.Config{
			Endpoints:   c.EtcdEndpoints,
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			return nil, fmt.Errorf("etcd membership: %w", err)
		}
		return p, nil
	case "k8s":
		p, err := k8s.New()
		if err != nil {
			return nil, fmt.Errorf("kubernetes membership (needs to run in a pod with the RBAC in deploy/k8s): %w", err)
		}
		return p, nil
	default:
		return test.NewTestProvider(test.NewInMemAgent()), nil
	}
}

// startMu serializes starting actor systems in one process: the generated
// grain kind keeps a package-global factory, and protoactor's remote.Start
// replaces gRPC's global logger.
var startMu sync.Mutex

// System is one cluster member hosting customer grains.
type System struct {
	cfg Config

	mu         sync.Mutex // guards the fields below
	cluster    *cluster.Cluster
	unregister func()
	stopped    bool
	dispatcher *workerDispatcher // runs the customer actors' mailboxes
	deps       *customer.Deps    // set by Start

	// life owns the parked-event sweeper and every grain call's attempt
	// goroutine (request); Stop cancels and waits for them.
	life     startstop.Group
	stopOnce sync.Once

	queues applyQueues // Apply calls waiting for their customer's grain; owns its drain goroutines

	// decoded holds the objects of the events Apply is sending whose
	// caller decoded them (stripe.ContextWithObjects), for this member's
	// grains to take instead of decoding the payload again.
	decoded customer.Decoded
}

// New returns a System; call Start to join the cluster.
func New(cfg Config) (*System, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &System{cfg: cfg}, nil
}

// Actors returns how many customer grains this member holds now (they
// are passivated after Config.IdleTimeout without a message) and how many
// activations there have been since Start.
func (s *System) Actors() (resident, activations int64) {
	s.mu.Lock()
	d := s.deps
	s.mu.Unlock()
	if d == nil {
		return 0, 0
	}
	return d.Actors()
}

// Start starts the actor system and joins the cluster. protoactor's
// StartMember takes about a second.
func (s *System) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cluster != nil || s.stopped {
		return errors.New("actors: Start called twice")
	}
	logger := s.cfg.Logger
	actorLog := slog.New(minLevel{Handler: logger.Handler(), min: s.cfg.ActorLogLevel}).With("component", "protoactor")
	system := actor.NewActorSystemWithConfig(actor.Configure(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return actorLog }),
	))
	s.deps = &customer.Deps{
		Store:        s.cfg.Store,
		Logger:       logger,
		Committed:    s.cfg.Committed,
		ApplyTimeout: s.cfg.ApplyTimeout,
		Fetcher:      s.cfg.Fetcher,
		Objects:      s.cfg.Objects,
		Decoded:      &s.decoded,
	}
	s.unregister = customer.Register(system, s.deps)
	startMu.Lock()
	defer startMu.Unlock()
	provider, err := s.cfg.provider()
	if err != nil {
		s.unregister()
		return err
	}
	s.dispatcher = newWorkerDispatcher()
	if err := s.dispatcher.Start(ctx); err != nil {
		s.unregister()
		return err
	}
	var remoteOpts []remote.ConfigOption
	if s.cfg.RemoteServerOptions != nil {
		remoteOpts = append(remoteOpts, remote.WithServerOptions(s.cfg.RemoteServerOptions...))
	}
	if s.cfg.RemoteDialOptions != nil {
		// Replaces protoactor's default (insecure) dial options.
		remoteOpts = append(remoteOpts, remote.WithDialOptions(s.cfg.RemoteDialOptions...))
	}
	remoteCfg := remote.Configure(s.cfg.Host, s.cfg.Port, remoteOpts...)
	clusterCfg := cluster.Configure(s.cfg.ClusterName, provider, disthash.New(), remoteCfg,
		cluster.WithKinds(customer.Kind(s.cfg.IdleTimeout,
			actor.WithDispatcher(s.dispatcher), actor.WithMailbox(newCompactMailbox))),
		cluster.WithRequestTimeout(s.cfg.RequestTimeout),
	)
	c := cluster.New(system, clusterCfg)
	if err := s.startMember(ctx, c); err != nil {
		s.dispatcher.Stop()
		s.unregister()
		return err
	}
	s.cluster = c
	// The sweeper, attempts and drains run until Stop, not until ctx
	// ends (serve's ctx ends at SIGTERM, before the member stops).
	if err := s.life.Start(context.WithoutCancel(ctx)); err != nil {
		return err // not reached: Start runs this once (s.cluster was nil)
	}
	if err := s.queues.Start(context.WithoutCancel(ctx)); err != nil {
		return err // likewise
	}
	if err := s.life.Go(s.sweep); err != nil {
		return err // likewise
	}
	logger.InfoContext(ctx, "cluster member started", "address", system.Address(), "cluster", s.cfg.ClusterName, "membership", s.cfg.Membership)
	return nil
}

// sweep periodically asks the actors of customers with parked events to
// resolve those parked past the deadline. Parked events live in the store,
// so this also covers events parked before a restart.
func (s *System) sweep(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.SweepOnce(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.WarnContext(ctx, "sweep parked events", "err", err)
		}
	}
}

// SweepOnce asks every customer with parked events to resolve those parked
// for longer than the deadline.
func (s *System) SweepOnce(ctx context.Context) error {
	customers := map[string]bool{}
	token := ""
	for {
		events, next, err := s.cfg.Store.ListEvents(ctx, store.ListEventsFilter{Status: store.StatusParked, PageSize: 500, PageToken: token})
		if err != nil {
			return fmt.Errorf("list parked events: %w", err)
		}
		for _, e := range events {
			customers[e.CustomerID] = true
		}
		if next == "" {
			break
		}
		token = next
	}
	var errs []error
	for id := range customers {
		if id == "" {
			continue
		}
		if _, err := s.resolve(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *System) resolve(ctx context.Context, customerID string) (*grainpb.ResolveResponse, error) {
	return s.resolveParkedFor(ctx, customerID, int64(s.cfg.ParkDeadline/time.Second))
}

// ResolveNow asks the customer's actor to resolve every one of its parked
// events now, without waiting for the park deadline (the console's
// "Resolve now"), and returns how many it released. The grain releases
// the events parked at or before now minus DeadlineSeconds (whole
// seconds, see customer.Resolve); 0 has no special meaning there, so it
// is "everything parked before now".
func (s *System) ResolveNow(ctx context.Context, customerID string) (int, error) {
	resp, err := s.resolveParkedFor(ctx, customerID, 0)
	return int(resp.GetReleased()), err
}

// resolveParkedFor asks the customer's actor to resolve its events parked
// for at least deadlineSeconds.
func (s *System) resolveParkedFor(ctx context.Context, customerID string, deadlineSeconds int64) (*grainpb.ResolveResponse, error) {
	c := s.current()
	if c == nil {
		return nil, ErrNotStarted
	}
	client := grainpb.GetCustomerGrainGrainClient(c, customerID)
	resp, err := request(ctx, &s.life, c, customerID, s.cfg.RequestTimeout, s.cfg.AttemptTimeout, func(timeout time.Duration) (*grainpb.ResolveResponse, error) {
		return client.Resolve(&grainpb.ResolveRequest{DeadlineSeconds: deadlineSeconds}, callOptions(timeout)...)
	})
	if err != nil {
		return nil, fmt.Errorf("resolve customer %s: %w", customerID, err)
	}
	if resp.GetError() != "" {
		return resp, fmt.Errorf("resolve customer %s: %s", customerID, resp.GetError())
	}
	return resp, nil
}

func (s *System) current() *cluster.Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cluster
}

// currentWithDeps is current, with the grains' dependencies of its actor
// system.
func (s *System) currentWithDeps() (*cluster.Cluster, *customer.Deps) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cluster, s.deps
}

// startMember turns protoactor's panics on start into an error.
func startMember(c *cluster.Cluster) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("start cluster member: %v", r)
		}
	}()
	c.StartMember()
	return nil
}

// memberWaitReport is how often a member still waiting to join says so.
const memberWaitReport = 5 * time.Second

// startMember joins the cluster, which waits for the membership service:
// protoactor's StartMember blocks, without a context, while etcd (or the
// Kubernetes API) cannot be reached. Meanwhile the member logs, every
// memberWaitReport, that it is waiting and why (the membership service's
// own error, where it can be asked), and it gives up when ctx is done
// (SIGTERM). Given up, the join goes on in the background until the
// process exits; the process is expected to exit.
func (s *System) startMember(ctx context.Context, c *cluster.Cluster) error {
	done := make(chan error, 1)
	go func() { done <- startMember(c) }()
	t := time.NewTicker(memberWaitReport)
	defer t.Stop()
	waited := time.Now()
	for {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return fmt.Errorf("joining the cluster (%s membership) was still waiting after %s when hookd was asked to stop: %w",
				s.cfg.Membership, time.Since(waited).Round(time.Second), ctx.Err())
		case <-t.C:
			attrs := []any{"membership", s.cfg.Membership, "waited", time.Since(waited).Round(time.Second)}
			if s.cfg.Membership == "etcd" {
				attrs = append(attrs, "etcd_endpoints", s.cfg.EtcdEndpoints, "etcd_err", probeEtcd(ctx, s.cfg.EtcdEndpoints))
			}
			s.cfg.Logger.WarnContext(ctx, "still waiting to join the cluster: is the membership service reachable?", attrs...)
		}
	}
}

// probeEtcd asks etcd for its status with a short timeout and returns the
// error, or nil when every endpoint answered.
func probeEtcd(ctx context.Context, endpoints []string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	for _, ep := range endpoints {
		if _, err := cli.Status(ctx, ep); err != nil {
			return fmt.Errorf("%s: %w", ep, err)
		}
	}
	return nil
}

// Stop leaves the cluster and stops every grain. It is safe to call twice,
// concurrently, and before Start; every call returns once the first has
// finished.
func (s *System) Stop() {
	s.stopOnce.Do(s.stop)
}

func (s *System) stop() {
	// Take what Start set up and mark the system stopped, then let go of
	// s.mu: the goroutines waited for below take it (current()), and
	// Apply and SweepOnce see ErrNotStarted from here on.
	s.mu.Lock()
	s.stopped = true
	c, dispatcher, unregister := s.cluster, s.dispatcher, s.unregister
	s.cluster = nil
	s.mu.Unlock()

	// Queued Apply calls are answered ErrNotStarted, the drains and the
	// sweeper return at once; an attempt already calling a grain ends by
	// its own timeout (protoactor's calls take no context).
	s.queues.Stop()
	s.life.Stop()
	if c == nil {
		return // stopped before Start, or Start failed
	}
	// A graceful leave waits 2 s for other members to take over this
	// member's actors; with local membership there are none.
	c.Shutdown(s.cfg.Membership == "etcd" || s.cfg.Membership == "k8s")
	dispatcher.Stop()
	unregister()
}

// Apply routes an event to its customer's grain and waits for the answer.
// The request never outlives ctx: its timeout is ctx's deadline (at most
// RequestTimeout), and Apply returns when ctx is done.
//
// This process sends at most one request at a time to each customer's
// grain; events for the customer that arrive meanwhile wait and go
// together in one ApplyBatch (see applyQueues), which the grain commits
// in one transaction.
//
// When ctx carries the objects of req's envelope (stripe.ContextWithObjects:
// the gateway of this process decoded them), a grain of this member
// takes them instead of decoding the payload again, until Apply returns; a
// grain elsewhere decodes it.
func (s *System) Apply(ctx context.Context, customerID string, req *grainpb.ApplyRequest) (*grainpb.ApplyResponse, error) {
	if s.current() == nil {
		return nil, ErrNotStarted
	}
	if objs, ok := stripe.ObjectsFrom(ctx, req.GetEnvelope()); ok {
		remove := s.decoded.Add(req.GetEnvelope(), objs)
		defer remove()
	}
	if !tracing.Enabled() {
		return s.queues.apply(ctx, customerID, req, s.send)
	}
	return s.tracedApply(ctx, customerID, req)
}

// tracedApply is Apply in a span of its own, whose traceparent the
// request carries to the grain (which runs elsewhere: another goroutine,
// perhaps another member).
func (s *System) tracedApply(ctx context.Context, customerID string, req *grainpb.ApplyRequest) (*grainpb.ApplyResponse, error) {
	ctx, span := tracing.Start(ctx, "actors.Apply", trace.WithAttributes(
		attribute.String("hookd.customer_id", customerID),
		attribute.String("hookd.event_id", req.GetEnvelope().GetEventId()),
		attribute.String("hookd.event_type", req.GetEnvelope().GetType()),
		attribute.Bool("hookd.replay", req.GetReplay()),
	))
	defer span.End()
	req.Traceparent = tracing.Traceparent(ctx)
	resp, err := s.queues.apply(ctx, customerID, req, s.send)
	switch {
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	case resp.GetError() != "":
		span.SetStatus(codes.Error, resp.GetError())
	default:
		span.SetAttributes(attribute.String("hookd.status", resp.GetStatus()), attribute.Int64("hookd.version", resp.GetVersion()))
	}
	return resp, err
}

// Reproject asks a customer's grain to recompute its state from its
// stored events and, unless dryRun, to repair what differs (see
// customer.Processor.Reproject); it runs in the grain's turn, after the
// customer's events before it. It bypasses the apply queue. The request
// may run until ctx's deadline, or RequestTimeout when that is later or
// ctx has none, all of it in one attempt, so that a slow recomputation
// is not sent again (a second request would find nothing left to change
// and report so). An error the grain answers becomes the returned error.
func (s *System) Reproject(ctx context.Context, customerID string, dryRun bool) (*grainpb.ReprojectResponse, error) {
	c := s.current()
	if c == nil {
		return nil, ErrNotStarted
	}
	overall := s.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		overall = max(overall, time.Until(dl))
	}
	client := grainpb.GetCustomerGrainGrainClient(c, customerID)
	resp, err := request(ctx, &s.life, c, customerID, overall, overall, func(timeout time.Duration) (*grainpb.ReprojectResponse, error) {
		return client.Reproject(&grainpb.ReprojectRequest{DryRun: dryRun}, callOptions(timeout)...)
	})
	if err != nil {
		return nil, fmt.Errorf("reproject customer %s: %w", customerID, err)
	}
	if resp.GetError() != "" {
		return resp, fmt.Errorf("reproject customer %s: %s", customerID, resp.GetError())
	}
	return resp, nil
}

// send delivers queued events to their customer's grain: one as Apply,
// several as ApplyBatch, or, when the grain lives in this process, as one
// customer.LocalApply (see customer.Deps.LocalPID). It returns one answer
// per event.
//
// It runs on the goroutine of the caller that found the customer idle,
// or in the customer's drain goroutine (applyQueues), and calls the grain
// from there, not from an attempt goroutine of its own as request does:
// callers that queued return when their own context ends, and each
// attempt ends by its timeout, which never outlasts the batch's deadline
// or RequestTimeout.
func (s *System) send(ctx context.Context, deadline time.Time, customerID string, reqs []*grainpb.ApplyRequest) ([]*grainpb.ApplyResponse, error) {
	c, deps := s.currentWithDeps()
	if c == nil {
		return nil, ErrNotStarted
	}
	client := grainpb.GetCustomerGrainGrainClient(c, customerID)
	resps, err := requestInline(ctx, deadline, c, customerID, s.cfg.RequestTimeout, s.cfg.AttemptTimeout, func(timeout time.Duration) ([]*grainpb.ApplyResponse, error) {
		var resp *grainpb.ApplyBatchResponse
		switch pid := deps.LocalPID(customerID); {
		case pid != nil:
			var err error
			if resp, err = applyLocal(ctx, c, pid, reqs, timeout); err != nil {
				deps.ForgetLocal(customerID, pid)
				return nil, err
			}
		case len(reqs) == 1:
			resp, err := client.Apply(reqs[0], callOptions(timeout)...)
			if err != nil {
				return nil, err
			}
			return []*grainpb.ApplyResponse{resp}, nil
		default:
			var err error
			if resp, err = client.ApplyBatch(&grainpb.ApplyBatchRequest{Requests: reqs}, callOptions(timeout)...); err != nil {
				return nil, err
			}
		}
		if len(resp.GetResponses()) != len(reqs) {
			return nil, fmt.Errorf("grain answered %d of %d events", len(resp.GetResponses()), len(reqs))
		}
		return resp.GetResponses(), nil
	})
	if err != nil {
		return nil, fmt.Errorf("request customer %s: %w", customerID, err)
	}
	return resps, nil
}

// The grain a customer.Deps.LocalPID names is active in this process
// (from its Init to its Terminate), and a customer.LocalApply reaches it
// as Go values: the generated grain client encodes every request to
// bytes and the grain decodes them again even in one process (for an
// event, its whole payload copied twice). A LocalApply to a grain that
// stopped between the lookup and the send is a dead letter nobody
// answers: the attempt times out, send forgets the PID, and the next
// attempt activates the grain through the generated client.

// applyLocal sends reqs to the local grain pid as a customer.LocalApply
// and waits at most timeout for its answer, on a channel of its own
// rather than through a request future: a future registers a process,
// arms a timer and is answered through the registry, for every batch.
// A grain that stops with the request still in its mailbox never
// answers; then the timeout ends the attempt, as it would a future's.
func applyLocal(ctx context.Context, c *cluster.Cluster, pid *actor.PID, reqs []*grainpb.ApplyRequest, timeout time.Duration) (*grainpb.ApplyBatchResponse, error) {
	reply := make(chan *grainpb.ApplyBatchResponse, 1) // the grain never waits
	c.ActorSystem.Root.Send(pid, &customer.LocalApply{Requests: reqs, Reply: reply})
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case resp := <-reply:
		return resp, nil
	case <-timer.C:
		return nil, actor.ErrTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// requestInline is request without the attempt goroutine, for a caller
// that may block until an attempt times out (see send): each attempt runs
// here, at most AttemptTimeout and never past until (when not zero) or
// RequestTimeout, and a failed one is retried after dropping the cached
// placement until time runs out or ctx ends.
func requestInline[T any](ctx context.Context, until time.Time, c *cluster.Cluster, identity string, overall, attempt time.Duration, call func(timeout time.Duration) (T, error)) (T, error) {
	var zero T
	deadline := time.Now().Add(overall)
	if !until.IsZero() && until.Before(deadline) {
		deadline = until
	}
	var lastErr error
	for {
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			if lastErr == nil {
				lastErr = context.DeadlineExceeded
			}
			return zero, lastErr
		}
		v, err := call(min(attempt, remaining))
		if err == nil {
			return v, nil
		}
		lastErr = err
		c.PidCache.Remove(identity, customer.KindName)
	}
}

// request calls a customer's grain so that the call never outlives ctx:
// protoactor's requests take no context, so each attempt runs with a
// timeout (at most AttemptTimeout, never past ctx's deadline or
// RequestTimeout) and request returns as soon as ctx is done. An attempt
// that fails — typically because the grain's member died or stalls — is
// retried after dropping the cached placement, until time runs out; grain
// calls are idempotent. An attempt's goroutine belongs to life (the
// System's: Stop waits for it) and ends by its own timeout; once life is
// stopped, request returns ErrNotStarted.
func request[T any](ctx context.Context, life *startstop.Group, c *cluster.Cluster, identity string, overall, attempt time.Duration, call func(timeout time.Duration) (T, error)) (T, error) {
	var zero T
	deadline := time.Now().Add(overall)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	type result struct {
		v   T
		err error
	}
	var lastErr error
	for {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			if lastErr == nil {
				lastErr = context.DeadlineExceeded
			}
			return zero, lastErr
		}
		done := make(chan result, 1) // buffered: the attempt never waits for request
		if err := life.Go(func(context.Context) {
			v, err := call(min(attempt, remaining))
			done <- result{v, err}
		}); err != nil {
			return zero, fmt.Errorf("%w (%w)", ErrNotStarted, err)
		}
		select {
		case r := <-done:
			if r.err == nil {
				return r.v, nil
			}
			lastErr = r.err
			c.PidCache.Remove(identity, customer.KindName)
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
}

// callOptions are the options of every grain call: the timeout, and a
// retry back-off in milliseconds (protoactor's default is in nanoseconds).
func callOptions(timeout time.Duration) []cluster.GrainCallOption {
	return []cluster.GrainCallOption{
		cluster.WithTimeout(timeout),
		cluster.WithRetryCount(5),
		cluster.WithRetryAction(retryBackoff),
	}
}

// retryBackoff waits 10 ms, 20 ms, 40 ms, ... (protoactor's default is in
// nanoseconds).
func retryBackoff(i int) int {
	time.Sleep(time.Duration(10<<min(i, 6)) * time.Millisecond)
	return i + 1
}

// minLevel drops records below min: protoactor logs at Info freely.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
