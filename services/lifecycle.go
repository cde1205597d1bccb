package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hookd/hookd/internal/startstop"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// serviceNames are the names grpc.health.v1 answers for: the whole server
// ("") and each hookd.v1 service.
var serviceNames = []string{"",
	hookdv1.IngestService_ServiceDesc.ServiceName,
	hookdv1.CustomerService_ServiceDesc.ServiceName,
	hookdv1.EventService_ServiceDesc.ServiceName,
	hookdv1.NotificationService_ServiceDesc.ServiceName,
}

func setServing(hs *health.Server, serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, name := range serviceNames {
		hs.SetServingStatus(name, st)
	}
}

// Defaults of StoreProbe.
const (
	DefaultProbeInterval  = time.Second
	DefaultProbeTimeout   = time.Second
	DefaultProbeFailAfter = 2
)

// probeCustomerID is the customer the probe reads: never written, so the
// read is a cheap index lookup that answers ErrNotFound.
const probeCustomerID = "hookd-readiness-probe"

// StoreProbe keeps the gRPC health status (and so /readyz, and the
// gateways that balance on it) honest about the store: every Interval it
// reads from the store, bounded by Timeout; after FailAfter failures in a
// row every service goes NOT_SERVING, and the first success brings them
// back to SERVING. Once Health.Shutdown has been called (SIGTERM), its
// updates are ignored by the health server.
type StoreProbe struct {
	Store     store.Store
	Health    *health.Server
	Logger    *slog.Logger
	Interval  time.Duration // 0: DefaultProbeInterval
	Timeout   time.Duration // 0: DefaultProbeTimeout
	FailAfter int           // 0: DefaultProbeFailAfter

	group startstop.Group // runs the prober
}

// Start starts probing. It returns an error if already started or
// stopped.
func (p *StoreProbe) Start() error {
	if p.Interval <= 0 {
		p.Interval = DefaultProbeInterval
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultProbeTimeout
	}
	if p.FailAfter <= 0 {
		p.FailAfter = DefaultProbeFailAfter
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if err := p.group.Start(context.Background()); err != nil {
		return fmt.Errorf("store probe: %w", err)
	}
	return p.group.Go(p.run)
}

// Stop stops probing and waits for the prober. It is safe to call twice
// and before Start.
func (p *StoreProbe) Stop() { p.group.Stop() }

func (p *StoreProbe) run(ctx context.Context) {
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	failures, serving := 0, true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := p.probe(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			failures = 0
			if !serving {
				serving = true
				setServing(p.Health, true)
				p.Logger.InfoContext(ctx, "store reachable again: serving")
			}
		default:
			failures++
			if serving && failures >= p.FailAfter {
				serving = false
				setServing(p.Health, false)
				p.Logger.ErrorContext(ctx, "store unreachable: not serving until it answers", "failed_probes", failures, "err", err)
			}
		}
	}
}

func (p *StoreProbe) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	_, err := p.Store.GetCustomer(ctx, probeCustomerID)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// StreamDrain ends the server's open streams when the process shuts down,
// so that a graceful stop does not wait for subscribers that never leave
// by themselves (NotificationService/Subscribe). Streams started after
// Drain end at once. Their callers get UNAVAILABLE and resume from their
// last cursor, on this member when it is back or on another.
type StreamDrain struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

// NewStreamDrain returns a StreamDrain not yet drained.
func NewStreamDrain() *StreamDrain {
	ctx, cancel := context.WithCancel(context.Background())
	return &StreamDrain{ctx: ctx, cancel: cancel}
}

// Drain ends every stream; it is safe to call more than once.
func (d *StreamDrain) Drain() { d.once.Do(d.cancel) }

// ServerOption installs the drain as a stream interceptor.
func (d *StreamDrain) ServerOption() grpc.ServerOption {
	return grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		stop := context.AfterFunc(d.ctx, cancel)
		defer stop()
		err := h(srv, drainedStream{ServerStream: ss, ctx: ctx})
		if d.ctx.Err() != nil && ss.Context().Err() == nil {
			return toStatus(errorf(errShuttingDown, "hookd is shutting down: resume from your last cursor"))
		}
		return err
	})
}

// drainedStream is a ServerStream whose context also ends with the drain.
type drainedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s drainedStream) Context() context.Context { return s.ctx }
