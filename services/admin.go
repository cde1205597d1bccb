package services

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookd/hookd/client"
	"github.com/hookd/hookd/internal/envelope"
	"github.com/hookd/hookd/internal/eventstatus"
	"github.com/hookd/hookd/internal/grainpb"
	"github.com/hookd/hookd/internal/loglimit"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
)

// Backfiller runs one backfill or import (internal/backfill, adapted by
// the binary), calling progress as it goes; its last call has Done set.
type Backfiller interface {
	Backfill(ctx context.Context, req *hookdv1.BackfillRequest, progress func(*hookdv1.BackfillProgress)) error
}

// Reprojector recomputes one customer's state through its actor
// (actors.System).
type Reprojector interface {
	Reproject(ctx context.Context, customerID string, dryRun bool) (*grainpb.ReprojectResponse, error)
}

// AdminConfig is what AdminService needs.
type AdminConfig struct {
	// Backfill is nil when the member has no --stripe-api-key: Backfill is
	// then FAILED_PRECONDITION.
	Backfill Backfiller
	// Reproject and Customers serve Reproject; required.
	Reproject Reprojector
	Customers store.CustomerLister
}

// AdminServer implements hookd.v1.AdminService.
type AdminServer struct {
	hookdv1.UnimplementedAdminServiceServer
	cfg      AdminConfig
	backfill atomic.Pointer[Backfiller] // set by UseBackfill, else cfg.Backfill
}

// UseBackfill sets the Backfiller (before the server serves, or at any
// time: calls in progress keep the one they started with).
func (s *AdminServer) UseBackfill(b Backfiller) {
	if b != nil {
		s.backfill.Store(&b)
	}
}

func (s *AdminServer) backfiller() Backfiller {
	if b := s.backfill.Load(); b != nil {
		return *b
	}
	return s.cfg.Backfill
}

const (
	defaultBackfillWindow = 72 * time.Hour
	// maxBackfillWindow is past Stripe's 30-day retention on purpose: the
	// backfill clamps it and says so, rather than refusing.
	maxBackfillWindow = 90 * 24 * time.Hour
)

// importKinds are the objects Backfill imports.
var importKinds = []string{"customers", "subscriptions"}

// Backfill streams a backfill's progress until it finishes.
func (s *AdminServer) Backfill(req *hookdv1.BackfillRequest, stream hookdv1.AdminService_BackfillServer) error {
	if req.GetSince() != nil {
		if d := req.GetSince().AsDuration(); d <= 0 || d > maxBackfillWindow {
			return toStatus(fmt.Errorf("%w: since must be positive and at most %s", ErrInvalid, maxBackfillWindow))
		}
	}
	for _, o := range req.GetObjects() {
		if !slices.Contains(importKinds, o) {
			return toStatus(fmt.Errorf("%w: objects: unknown %q (want %s)", ErrInvalid, loglimit.String(o), strings.Join(importKinds, ", ")))
		}
	}
	// Checked after the request, so that a bad request is answered as
	// such on any member.
	b := s.backfiller()
	if b == nil {
		return toStatus(withReason(client.ReasonNotConfigured, errorf(errFailedPrecondition, "backfill needs the Stripe API: start the member with --stripe-api-key")))
	}
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	err := b.Backfill(ctx, req, func(p *hookdv1.BackfillProgress) {
		if err := stream.Send(p); err != nil {
			cancel(err) // the caller went away: stop (the run resumes later)
		}
	})
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return toStatus(cause)
	}
	return toStatus(err)
}

// Reproject checks every customer (or one), streaming progress and each
// customer whose state differs.
func (s *AdminServer) Reproject(req *hookdv1.ReprojectRequest, stream hookdv1.AdminService_ReprojectServer) error {
	ctx := stream.Context()
	ids := []string{req.GetCustomerId()}
	if req.GetCustomerId() == "" {
		var err error
		if ids, err = s.allCustomers(ctx); err != nil {
			return toStatus(err)
		}
	}
	p := &hookdv1.ReprojectProgress{Total: int64(len(ids)), DryRun: req.GetDryRun()}
	last := time.Now()
	for _, id := range ids {
		out, err := s.cfg.Reproject.Reproject(ctx, id, req.GetDryRun())
		if err != nil {
			return toStatus(fmt.Errorf("reproject customer %s: %w", id, err))
		}
		p.Checked++
		p.Change = nil
		if out.GetChanged() {
			p.Changed++
			p.Change = &hookdv1.CustomerChange{CustomerId: id, Version: out.GetVersion(), NewVersion: out.GetNewVersion(), Changes: out.GetChanges()}
		}
		if p.Change != nil || time.Since(last) > time.Second {
			if err := stream.Send(p); err != nil {
				return err
			}
			last = time.Now()
		}
	}
	p.Change, p.Done = nil, true
	return stream.Send(p)
}

func (s *AdminServer) allCustomers(ctx context.Context) ([]string, error) {
	var ids []string
	after := ""
	for {
		page, err := s.cfg.Customers.ListCustomerIDs(ctx, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("list customers: %w", err)
		}
		ids = append(ids, page...)
		if len(page) < 1000 {
			return ids, nil
		}
		after = page[len(page)-1]
	}
}

// IngestRaw feeds one event as the provider's API returned it (a backfill
// or an import) through the same path as a webhook, and says what it did:
// "applied", "parked", "superseded", "ignored", or "duplicate" when the
// event was already stored (a webhook, or an earlier run, brought it). Its
// error wraps store.ErrUnavailable when retrying may help.
func (r *Registered) IngestRaw(ctx context.Context, payload []byte) (string, error) {
	env, err := stripe.DecodeEnvelope(payload)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := envelope.Check(env, envelope.Limits{MaxPayloadBytes: r.maxPayload, Latest: time.Now().Add(r.tolerance)}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := r.deliverer.store.GetEvent(ctx, env.GetSource(), env.GetEventId()); err == nil {
		return "duplicate", nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	resp, err := r.deliverer.deliver(ctx, env, false)
	if err != nil {
		return "", err
	}
	// A webhook of the same event that won the race: the actor answers
	// with the stored outcome, marked.
	if strings.HasPrefix(resp.GetReason(), alreadyReceived("")) {
		return "duplicate", nil
	}
	st, _ := eventstatus.FromProto(resp.GetStatus())
	return string(st), nil
}
