package services

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookd/hookd/actors/customer"
	"github.com/hookd/hookd/internal/eventstatus"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
)

// CustomerServer implements hookd.v1.CustomerService.
type CustomerServer struct {
	hookdv1.UnimplementedCustomerServiceServer
	store store.Store
}

// GetCustomer returns the customer's committed state.
func (s *CustomerServer) GetCustomer(ctx context.Context, req *hookdv1.GetCustomerRequest) (*hookdv1.Customer, error) {
	if req.GetCustomerId() == "" {
		return nil, toStatus(fmt.Errorf("%w: customer_id is required", ErrInvalid))
	}
	c, err := s.store.GetCustomer(ctx, req.GetCustomerId())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, toStatus(err) // the store's error names the customer
	case err != nil:
		return nil, toStatus(fmt.Errorf("customer %s: %w", req.GetCustomerId(), err))
	}
	var st customer.State
	if err := json.Unmarshal(c.State, &st); err != nil {
		return nil, toStatus(fmt.Errorf("decode customer %s: %w", req.GetCustomerId(), err))
	}
	return st.Proto(), nil
}

// EventServer implements hookd.v1.EventService.
type EventServer struct {
	hookdv1.UnimplementedEventServiceServer
	store     store.Store
	deliverer deliverer
}

const (
	defaultPageSize = 50
	maxPageSize     = 500
	// maxPageBytes bounds the payloads of one ListEvents page, so that a
	// page of large events neither swells the process (four concurrent
	// pages of 500 large payloads took it from 147 MiB to 1.9 GiB) nor
	// exceeds the 4 MiB that gRPC clients accept by default; it leaves
	// room for the events' other fields.
	maxPageBytes = 3 << 20
)

// ListEvents lists stored events, newest first, in pages bounded by count
// and by the bytes of their payloads (see event.proto).
func (s *EventServer) ListEvents(ctx context.Context, req *hookdv1.ListEventsRequest) (*hookdv1.ListEventsResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, toStatus(fmt.Errorf("%w: page_size must not be negative", ErrInvalid))
	case size == 0:
		size = defaultPageSize
	case size > maxPageSize:
		size = maxPageSize
	}
	f := store.ListEventsFilter{
		CustomerID: req.GetCustomerId(),
		Status:     listStatus(req.GetStatus()),
		Type:       req.GetType(),
		PageSize:   size,
		PageToken:  req.GetPageToken(),
		MaxBytes:   maxPageBytes,
	}
	for _, b := range []struct {
		name string
		ts   *timestamppb.Timestamp
		to   *time.Time
	}{{"received_from", req.GetReceivedFrom(), &f.ReceivedFrom}, {"received_before", req.GetReceivedBefore(), &f.ReceivedBefore}} {
		if b.ts == nil {
			continue
		}
		if err := b.ts.CheckValid(); err != nil {
			return nil, toStatus(fmt.Errorf("%w: %s: %v", ErrInvalid, b.name, err))
		}
		*b.to = b.ts.AsTime()
	}
	events, next, err := s.store.ListEvents(ctx, f)
	if err != nil {
		return nil, toStatus(fmt.Errorf("list events: %w", err))
	}
	resp := &hookdv1.ListEventsResponse{NextPageToken: next}
	for _, e := range events {
		resp.Events = append(resp.Events, eventProto(e))
	}
	return resp, nil
}

// GetEvent returns one stored event with its raw payload.
func (s *EventServer) GetEvent(ctx context.Context, req *hookdv1.GetEventRequest) (*hookdv1.Event, error) {
	if req.GetEventId() == "" {
		return nil, toStatus(fmt.Errorf("%w: event_id is required", ErrInvalid))
	}
	source := req.GetSource()
	if source == "" {
		source = stripe.Source
	}
	e, err := s.store.GetEvent(ctx, source, req.GetEventId())
	if err != nil {
		return nil, toStatus(fmt.Errorf("event %s: %w", req.GetEventId(), err))
	}
	return eventProto(e), nil
}

// ReplayEvent delivers a stored event again through its customer's actor.
func (s *EventServer) ReplayEvent(ctx context.Context, req *hookdv1.ReplayEventRequest) (*hookdv1.ReplayEventResponse, error) {
	if req.GetEventId() == "" {
		return nil, toStatus(fmt.Errorf("%w: event_id is required", ErrInvalid))
	}
	source := cmp.Or(req.GetSource(), stripe.Source)
	e, err := s.store.GetEvent(ctx, source, req.GetEventId())
	if err != nil {
		return nil, toStatus(fmt.Errorf("event %s: %w", req.GetEventId(), err))
	}
	if source != stripe.Source {
		return nil, toStatus(errorf(errFailedPrecondition, "events from %q cannot be replayed", source))
	}
	env, err := stripe.DecodeEnvelope(e.Payload)
	if err != nil {
		return nil, toStatus(errorf(errFailedPrecondition, "stored payload of %s does not decode: %v", e.EventID, err))
	}
	out, err := s.deliverer.deliver(ctx, env, true)
	if err != nil {
		return nil, toStatus(err)
	}
	after, err := s.store.GetEvent(ctx, source, req.GetEventId())
	if err != nil {
		return nil, toStatus(fmt.Errorf("event %s: %w", req.GetEventId(), err))
	}
	return &hookdv1.ReplayEventResponse{Status: out.GetStatus(), Event: eventProto(after)}, nil
}

func eventProto(e store.Event) *hookdv1.Event {
	return &hookdv1.Event{
		Source:     e.Source,
		EventId:    e.EventID,
		Type:       e.Type,
		CustomerId: e.CustomerID,
		Status:     eventstatus.Proto(e.Status),
		Reason:     e.Reason,
		Routing:    e.Routing,
		Created:    timestamppb.New(e.Created),
		ReceivedAt: timestamppb.New(e.ReceivedAt),
		ApiVersion: e.APIVersion,
		ObjectId:   e.ObjectID,
		Version:    e.Version,
		Payload:    e.Payload,
		Account:    e.Account,
	}
}

// listStatus is the stored status a ListEvents filter names ("" for all).
func listStatus(p hookdv1.EventStatus) store.Status {
	s, _ := eventstatus.FromProto(p)
	return s
}
