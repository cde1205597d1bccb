// Package services implements hookd's gRPC API: IngestService (called by
// the HTTP gateway, or by hand with grpcurl), CustomerService,
// EventService, NotificationService and EndpointService (push delivery).
// Register installs them, with the gRPC health service and server
// reflection, on a grpc.Server.
package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/hookd/hookd/client"
	"github.com/hookd/hookd/internal/envelope"
	"github.com/hookd/hookd/internal/grainpb"
	"github.com/hookd/hookd/internal/loglimit"
	"github.com/hookd/hookd/internal/tracing"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
)

// ErrInvalid marks a request that can never succeed as sent; it maps to
// INVALID_ARGUMENT.
var ErrInvalid = errors.New("invalid request")

// Applier routes an event to its customer's actor (actors.System).
type Applier interface {
	Apply(ctx context.Context, customerID string, req *grainpb.ApplyRequest) (*grainpb.ApplyResponse, error)
}

// Config holds what the services need.
type Config struct {
	Store  store.Store // required
	Actors Applier     // required for IngestService
	Wakeup *Wakeup     // wakes Subscribe streams after commits; required
	Logger *slog.Logger
	// PollInterval bounds how long a Subscribe stream waits before looking
	// for new notifications without a wake-up. Default 100 ms.
	PollInterval time.Duration
	// MaxPayloadBytes bounds an Ingest request's payload, as the gateway
	// bounds a webhook body (--max-body-bytes); pair it with
	// MaxRecvMsgSize. Default envelope.DefaultMaxPayloadBytes (1 MiB).
	MaxPayloadBytes int64
	// Tolerance is how far past now an Ingest request's created may lie
	// (--tolerance). Default stripe.DefaultTolerance (300 s).
	Tolerance time.Duration
	// MaxStreams caps the Subscribe streams open at once; the next is
	// answered RESOURCE_EXHAUSTED. Default DefaultMaxStreams.
	MaxStreams int
	// Endpoints, when set, registers EndpointService (push delivery).
	Endpoints *EndpointConfig
	// Admin, when set, registers AdminService (backfill, re-projection).
	// Its Backfill may be set later, with Registered.Admin.UseBackfill
	// (it needs Registered.IngestRaw).
	Admin *AdminConfig
}

// DefaultMaxStreams is Config.MaxStreams when it is not set.
const DefaultMaxStreams = 10000

// Registered is what Register installed that the process needs again.
type Registered struct {
	// Health lets the caller mark the process NOT_SERVING while it shuts
	// down.
	Health *health.Server
	// LocalIngest calls the IngestService just registered directly, for an
	// HTTP gateway in the same process: same code, same answers and status
	// errors as over gRPC, without encoding each event twice more and
	// crossing a loopback socket (a sixth of the process's CPU at load).
	LocalIngest hookdv1.IngestServiceClient
	// Broadcaster is the one reader of the outbox that the process's
	// Subscribe streams share. Until it is started (and after it stops)
	// each stream polls the store itself; the caller starts it, and stops
	// it after the gRPC server.
	Broadcaster *Broadcaster
	// Admin is the AdminService registered (nil without Config.Admin).
	Admin *AdminServer

	notify     *NotificationServer // for Subscribers (opsmetrics.go)
	deliverer  deliverer
	maxPayload int64
	tolerance  time.Duration
}

// Register installs every hookd.v1 service, grpc.health.v1 and server
// reflection on srv.
func Register(srv *grpc.Server, cfg Config) (*Registered, error) {
	if cfg.Store == nil || cfg.Actors == nil || cfg.Wakeup == nil {
		return nil, errors.New("services: Store, Actors and Wakeup are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.MaxPayloadBytes <= 0 {
		cfg.MaxPayloadBytes = envelope.DefaultMaxPayloadBytes
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = stripe.DefaultTolerance
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	d := deliverer{store: cfg.Store, actors: cfg.Actors, log: cfg.Logger}
	ingest := &IngestServer{deliverer: d, maxPayload: cfg.MaxPayloadBytes, tolerance: cfg.Tolerance,
		now: time.Now, limit: loglimit.NewLimiter(rejectLogsPerSecond)}
	hookdv1.RegisterIngestServiceServer(srv, ingest)
	hookdv1.RegisterCustomerServiceServer(srv, &CustomerServer{store: cfg.Store})
	hookdv1.RegisterEventServiceServer(srv, &EventServer{store: cfg.Store, deliverer: d})
	bc := NewBroadcaster(cfg.Store, cfg.Wakeup, cfg.PollInterval, cfg.Logger)
	notify := &NotificationServer{
		store: cfg.Store, wakeup: cfg.Wakeup, bc: bc, poll: cfg.PollInterval,
		maxStreams: int64(cfg.MaxStreams), log: cfg.Logger,
	}
	hookdv1.RegisterNotificationServiceServer(srv, notify)
	if e := cfg.Endpoints; e != nil {
		if e.Store == nil || e.CheckURL == nil {
			return nil, errors.New("services: Endpoints needs Store and CheckURL")
		}
		hookdv1.RegisterEndpointServiceServer(srv, NewEndpointServer(*e, cfg.Store.ValidateCursor))
	}
	var admin *AdminServer
	if a := cfg.Admin; a != nil {
		if a.Reproject == nil || a.Customers == nil {
			return nil, errors.New("services: Admin needs Reproject and Customers")
		}
		admin = &AdminServer{cfg: *a}
		hookdv1.RegisterAdminServiceServer(srv, admin)
	}
	hs := health.NewServer()
	setServing(hs, true)
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return &Registered{Health: hs, LocalIngest: localIngest{ingest, cfg.Logger}, Broadcaster: bc, Admin: admin,
		notify: notify, deliverer: d, maxPayload: cfg.MaxPayloadBytes, tolerance: cfg.Tolerance}, nil
}

// localIngest is an IngestServiceClient that calls the server in-process.
// The request is not copied: the server only reads it.
// Its errors leave through finish, as over gRPC.
type localIngest struct {
	srv hookdv1.IngestServiceServer
	log *slog.Logger
}

func (l localIngest) Ingest(ctx context.Context, req *hookdv1.IngestRequest, _ ...grpc.CallOption) (*hookdv1.IngestResponse, error) {
	if tracing.Enabled() {
		return l.tracedIngest(ctx, req)
	}
	resp, err := l.srv.Ingest(ctx, req)
	if err != nil {
		return nil, finish(ctx, l.log, hookdv1.IngestService_Ingest_FullMethodName, err)
	}
	return resp, nil
}

// ServerOptions returns the interceptors every hookd gRPC server uses: a
// panic in a handler becomes INTERNAL instead of killing the process,
// every error a handler returns leaves through toStatus (an INTERNAL one
// is logged with the method, its caller told only "internal error"), and
// auth checks every call's bearer token and scope (see Auth; a nil auth
// lets every known method through). A call's x-request-id metadata goes
// into its context first (reqid.go).
func ServerOptions(log *slog.Logger, auth *Auth) []grpc.ServerOption {
	return []grpc.ServerOption{
		// An unknown method goes through hookd's interceptors rather than
		// being answered by gRPC bare: authentication denies it (it is in
		// no scope) and the error mapping gives the answer its reason.
		// UNIMPLEMENTED, with a reason, is what a method the scope table
		// lets through but no service has would get.
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			method, _ := grpc.MethodFromServerStream(stream)
			return build(codes.Unimplemented, client.ReasonUnimplemented, nil, "unknown method "+method)
		}),
		grpc.ChainUnaryInterceptor(requestIDUnary, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
			defer func() {
				if r := recover(); r != nil {
					log.ErrorContext(ctx, "grpc handler panicked", "method", info.FullMethod, "err", fmt.Sprint(r), "stack", string(debug.Stack()))
					err = toStatus(fmt.Errorf("panic: %v", r))
				}
			}()
			resp, err = h(ctx, req)
			return resp, finish(ctx, log, info.FullMethod, err)
		}, auth.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(requestIDStream, func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
			defer func() {
				if r := recover(); r != nil {
					log.ErrorContext(ss.Context(), "grpc stream panicked", "method", info.FullMethod, "err", fmt.Sprint(r), "stack", string(debug.Stack()))
					err = toStatus(fmt.Errorf("panic: %v", r))
				}
			}()
			return finish(ss.Context(), log, info.FullMethod, h(srv, ss))
		}, auth.StreamInterceptor()),
	}
}

// MaxRecvMsgSize returns the server option that bounds every request
// message by the payload limit plus room for the envelope's other fields
// (at most about 6 KiB under envelope.Check's limits), so that an Ingest
// request cannot make the server read more than a webhook could, instead
// of gRPC's default 4 MiB. A payload just over maxPayloadBytes is still
// read and answered INVALID_ARGUMENT naming the field; a message over the
// bound gets RESOURCE_EXHAUSTED. maxPayloadBytes <= 0 means
// envelope.DefaultMaxPayloadBytes.
func MaxRecvMsgSize(maxPayloadBytes int64) grpc.ServerOption {
	if maxPayloadBytes <= 0 {
		maxPayloadBytes = envelope.DefaultMaxPayloadBytes
	}
	return grpc.MaxRecvMsgSize(int(maxPayloadBytes) + 64<<10)
}
