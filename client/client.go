// Package client is the Go client internal services use to read hookd's
// state and follow its notifications over gRPC.
//
// A Client wraps one gRPC connection to hookd (grpc.NewClient: it connects
// lazily and reconnects on its own). GetCustomer, ListEvents and
// ReplayEvent are single calls; Subscribe follows NotificationService
// across disconnects, hookd restarts and stream limits, resuming after the
// last notification it delivered, and commits each notification's cursor
// to a CursorStore once the handler has accepted it.
//
// Errors from hookd come back as errors that wrap both a sentinel
// (ErrNotFound, ErrUnauthenticated, ...) for errors.Is and the original
// gRPC status error, so that status.FromError and status.Code still work.
//
// The package imports only the public API (hookdv1), gRPC and the standard
// library: importing it pulls in no actor runtime, etcd or Kubernetes code.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// Client is a connection to hookd. It is safe for concurrent use; Close it
// when done.
type Client struct {
	conn      *grpc.ClientConn
	customers hookdv1.CustomerServiceClient
	events    hookdv1.EventServiceClient
	notes     hookdv1.NotificationServiceClient
	backoff   Backoff
	log       *slog.Logger
}

// Option configures New.
type Option func(*options)

type options struct {
	token    string
	tls      *tls.Config
	insecure bool
	dialOpts []grpc.DialOption
	backoff  Backoff
	log      *slog.Logger
}

// WithToken sends token as "authorization: Bearer <token>" with every
// call. Over TLS (the default) only; with WithInsecure the token crosses
// the network in the clear, which is for loopback and private networks.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS connects over TLS with cfg (for mTLS, set its Certificates; for a
// private CA, its RootCAs). Without WithTLS or WithInsecure the client uses
// TLS with the system's roots.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithInsecure connects in plaintext, and lets WithToken send its token
// over it. It cannot be combined with WithTLS.
func WithInsecure() Option { return func(o *options) { o.insecure = true } }

// WithDialOptions adds gRPC dial options after the client's own, so that
// they win where gRPC lets a later option replace an earlier one.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// WithBackoff sets how long Subscribe waits between reconnects (and how
// long the connection waits between dials). Zero fields take
// DefaultBackoff's.
func WithBackoff(b Backoff) Option { return func(o *options) { o.backoff = b } }

// WithLogger logs Subscribe's reconnects to log. By default nothing is
// logged.
func WithLogger(log *slog.Logger) Option { return func(o *options) { o.log = log } }

// New returns a Client for target (host:port, or any gRPC target). It does
// not connect: the first call does, and later calls reconnect as needed.
func New(target string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.insecure && o.tls != nil {
		return nil, errors.New("hookd client: WithInsecure and WithTLS exclude each other")
	}
	o.backoff = o.backoff.withDefaults()
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	var tc credentials.TransportCredentials
	switch {
	case o.insecure:
		tc = insecure.NewCredentials()
	case o.tls != nil:
		tc = credentials.NewTLS(o.tls)
	default:
		tc = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(tc),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  o.backoff.Initial,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   o.backoff.Max,
			},
			MinConnectTimeout: 5 * time.Second,
		}),
	}
	if o.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearerToken{header: "Bearer " + o.token, secure: !o.insecure}))
	}
	dial = append(dial, o.dialOpts...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("hookd client %s: %w", target, err)
	}
	return &Client{
		conn:      conn,
		customers: hookdv1.NewCustomerServiceClient(conn),
		events:    hookdv1.NewEventServiceClient(conn),
		notes:     hookdv1.NewNotificationServiceClient(conn),
		backoff:   o.backoff,
		log:       o.log,
	}, nil
}

// Close closes the connection; calls in flight fail. Safe to call twice.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil && !isClosing(err) {
		return err
	}
	return nil
}

// bearerToken is per-call credentials that require transport security
// unless the caller chose plaintext (WithInsecure).
type bearerToken struct {
	header string
	secure bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": b.header}, nil
}

func (b bearerToken) RequireTransportSecurity() bool { return b.secure }

// GetCustomer returns a customer's current state; ErrNotFound when hookd
// has none by that ID.
func (c *Client) GetCustomer(ctx context.Context, customerID string) (*hookdv1.Customer, error) {
	cu, err := c.customers.GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: customerID})
	if err != nil {
		return nil, fmt.Errorf("get customer %s: %w", customerID, convert(err))
	}
	return cu, nil
}

// EventFilter says which events ListEvents lists. The zero value lists all.
type EventFilter struct {
	// CustomerID, when set, lists only this customer's events.
	CustomerID string
	// Status, when not EVENT_STATUS_UNSPECIFIED, lists only events with it.
	Status hookdv1.EventStatus
	// Type, when set, lists only events of this type ("invoice.paid").
	Type string
	// ReceivedFrom and ReceivedBefore, when not zero, list only events
	// hookd received in [ReceivedFrom, ReceivedBefore).
	ReceivedFrom, ReceivedBefore time.Time
	// PageSize is how many events each call fetches (hookd's default when
	// 0, at most 500).
	PageSize int32
}

// ListEvents iterates over every stored event that matches filter, newest
// first, fetching pages as the loop needs them. An error ends the
// iteration: it is yielded once, with a nil event.
func (c *Client) ListEvents(ctx context.Context, filter EventFilter) iter.Seq2[*hookdv1.Event, error] {
	return func(yield func(*hookdv1.Event, error) bool) {
		token := ""
		for {
			req := &hookdv1.ListEventsRequest{
				CustomerId: filter.CustomerID,
				Status:     filter.Status,
				Type:       filter.Type,
				PageSize:   filter.PageSize,
				PageToken:  token,
			}
			if !filter.ReceivedFrom.IsZero() {
				req.ReceivedFrom = timestamppb.New(filter.ReceivedFrom)
			}
			if !filter.ReceivedBefore.IsZero() {
				req.ReceivedBefore = timestamppb.New(filter.ReceivedBefore)
			}
			resp, err := c.events.ListEvents(ctx, req)
			if err != nil {
				yield(nil, fmt.Errorf("list events: %w", convert(err)))
				return
			}
			for _, e := range resp.GetEvents() {
				if !yield(e, nil) {
					return
				}
			}
			token = resp.GetNextPageToken()
			if token == "" {
				return
			}
		}
	}
}

// ReplayEvent delivers a stored Stripe event again through its customer's
// actor (idempotent: see EventService.ReplayEvent). It needs the admin
// scope; ErrNotFound when no such event is stored.
func (c *Client) ReplayEvent(ctx context.Context, eventID string) (*hookdv1.ReplayEventResponse, error) {
	resp, err := c.events.ReplayEvent(ctx, &hookdv1.ReplayEventRequest{EventId: eventID})
	if err != nil {
		return nil, fmt.Errorf("replay event %s: %w", eventID, convert(err))
	}
	return resp, nil
}
