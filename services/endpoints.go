package services

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookd/hookd/client"
	"github.com/hookd/hookd/internal/delivery"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// Endpoint input limits: what an endpoint may hold, so that the endpoint
// table cannot be made to grow without bound through the API.
const (
	maxURLBytes         = 2048
	maxDescriptionBytes = 1024
	maxFilterValues     = 1000
	maxFilterValueBytes = 255
	maxEndpoints        = 1000
	defaultGrace        = 24 * time.Hour
	maxGrace            = 7 * 24 * time.Hour
)

// EndpointConfig is what EndpointService needs.
type EndpointConfig struct {
	// Store holds endpoints and deliveries; required for the service to be
	// registered.
	Store store.DeliveryStore
	// CheckURL refuses endpoint URLs hookd must not deliver to (the SSRF
	// guard: schemes other than http and https, non-public addresses);
	// required.
	CheckURL func(ctx context.Context, rawURL string) error
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// EndpointServer implements hookd.v1.EndpointService.
type EndpointServer struct {
	hookdv1.UnimplementedEndpointServiceServer
	cfg            EndpointConfig
	validateCursor func(string) error
}

// NewEndpointServer returns the service over cfg.Store. validateCursor
// checks a CreateEndpoint after_cursor (the notification store's
// ValidateCursor).
func NewEndpointServer(cfg EndpointConfig, validateCursor func(string) error) *EndpointServer {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &EndpointServer{cfg: cfg, validateCursor: validateCursor}
}

// NewEndpointID returns a new endpoint ID: "ep_" and 26 base32 characters
// (130 random bits).
func NewEndpointID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "ep_" + strings.ToLower(base32NoPad.EncodeToString(b[:]))
}

var base32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)

// CreateEndpoint registers an endpoint and returns its secret once.
func (s *EndpointServer) CreateEndpoint(ctx context.Context, req *hookdv1.CreateEndpointRequest) (*hookdv1.CreateEndpointResponse, error) {
	if err := s.checkURL(ctx, req.GetUrl()); err != nil {
		return nil, toStatus(err)
	}
	if err := checkEndpointText(req.GetDescription(), req.GetFilter()); err != nil {
		return nil, toStatus(err)
	}
	if c := req.GetAfterCursor(); c != "" {
		if err := s.validateCursor(c); err != nil {
			return nil, toStatus(withReason(client.ReasonInvalidCursor, fmt.Errorf("after_cursor: %w", err)))
		}
	}
	secret := req.GetSecret()
	if secret == "" {
		secret = delivery.NewSecret()
	} else if err := delivery.ValidateSecret(secret); err != nil {
		return nil, toStatus(fmt.Errorf("%w: secret: %v", ErrInvalid, err))
	}
	all, err := s.cfg.Store.ListEndpoints(ctx)
	if err != nil {
		return nil, toStatus(fmt.Errorf("list endpoints: %w", err))
	}
	if len(all) >= maxEndpoints {
		return nil, toStatus(fmt.Errorf("%w: hookd holds its limit of %d endpoints", ErrInvalid, maxEndpoints))
	}
	e, err := s.cfg.Store.CreateEndpoint(ctx, store.Endpoint{
		ID:          NewEndpointID(),
		URL:         req.GetUrl(),
		Description: req.GetDescription(),
		Kinds:       req.GetFilter().GetKinds(),
		CustomerIDs: req.GetFilter().GetCustomerIds(),
		Secrets:     []store.Secret{{Value: secret}},
		Cursor:      req.GetAfterCursor(),
		Origin:      "api",
	})
	if err != nil {
		return nil, toStatus(fmt.Errorf("create endpoint: %w", err))
	}
	return &hookdv1.CreateEndpointResponse{Endpoint: endpointProto(e, s.cfg.Now()), Secret: secret}, nil
}

// GetEndpoint returns one endpoint, without its secrets.
func (s *EndpointServer) GetEndpoint(ctx context.Context, req *hookdv1.GetEndpointRequest) (*hookdv1.Endpoint, error) {
	e, err := s.get(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return endpointProto(e, s.cfg.Now()), nil
}

// ListEndpoints returns every endpoint, without secrets.
func (s *EndpointServer) ListEndpoints(ctx context.Context, _ *hookdv1.ListEndpointsRequest) (*hookdv1.ListEndpointsResponse, error) {
	all, err := s.cfg.Store.ListEndpoints(ctx)
	if err != nil {
		return nil, toStatus(fmt.Errorf("list endpoints: %w", err))
	}
	resp := &hookdv1.ListEndpointsResponse{}
	now := s.cfg.Now()
	for _, e := range all {
		resp.Endpoints = append(resp.Endpoints, endpointProto(e, now))
	}
	return resp, nil
}

// UpdateEndpoint changes the URL, description or filter.
func (s *EndpointServer) UpdateEndpoint(ctx context.Context, req *hookdv1.UpdateEndpointRequest) (*hookdv1.Endpoint, error) {
	if req.GetId() == "" {
		return nil, toStatus(fmt.Errorf("%w: id is required", ErrInvalid))
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		if req.GetUrl() != "" {
			paths = append(paths, "url")
		}
		if req.GetDescription() != "" {
			paths = append(paths, "description")
		}
		if req.GetFilter() != nil {
			paths = append(paths, "filter")
		}
	}
	if len(paths) == 0 {
		return nil, toStatus(fmt.Errorf("%w: nothing to update: set url, description or filter, or update_mask", ErrInvalid))
	}
	var u store.EndpointUpdate
	for _, p := range paths {
		switch p {
		case "url":
			if err := s.checkURL(ctx, req.GetUrl()); err != nil {
				return nil, toStatus(err)
			}
			u.URL = ptr(req.GetUrl())
		case "description":
			u.Description = ptr(req.GetDescription())
		case "filter":
			u.Kinds, u.CustomerIDs = ptr(req.GetFilter().GetKinds()), ptr(req.GetFilter().GetCustomerIds())
		default:
			return nil, toStatus(fmt.Errorf("%w: update_mask: unknown field %q (want url, description or filter)", ErrInvalid, p))
		}
	}
	if err := checkEndpointText(req.GetDescription(), req.GetFilter()); err != nil {
		return nil, toStatus(err)
	}
	e, err := s.cfg.Store.UpdateEndpoint(ctx, req.GetId(), u)
	if err != nil {
		return nil, toStatus(fmt.Errorf("update endpoint %s: %w", req.GetId(), err))
	}
	return endpointProto(e, s.cfg.Now()), nil
}

// DeleteEndpoint removes an endpoint and its deliveries.
func (s *EndpointServer) DeleteEndpoint(ctx context.Context, req *hookdv1.DeleteEndpointRequest) (*hookdv1.DeleteEndpointResponse, error) {
	if req.GetId() == "" {
		return nil, toStatus(fmt.Errorf("%w: id is required", ErrInvalid))
	}
	if err := s.cfg.Store.DeleteEndpoint(ctx, req.GetId()); err != nil {
		return nil, toStatus(fmt.Errorf("delete endpoint %s: %w", req.GetId(), err))
	}
	return &hookdv1.DeleteEndpointResponse{}, nil
}

// PauseEndpoint stops delivery to an endpoint until Resume.
func (s *EndpointServer) PauseEndpoint(ctx context.Context, req *hookdv1.PauseEndpointRequest) (*hookdv1.Endpoint, error) {
	return s.update(ctx, req.GetId(), store.EndpointUpdate{Paused: ptr(true)})
}

// ResumeEndpoint undoes a pause and re-enables a disabled endpoint.
func (s *EndpointServer) ResumeEndpoint(ctx context.Context, req *hookdv1.ResumeEndpointRequest) (*hookdv1.Endpoint, error) {
	return s.update(ctx, req.GetId(), store.EndpointUpdate{Paused: ptr(false), ClearDisabled: true})
}

// RotateSecret adds a new current secret; the previous current one keeps
// signing for the grace period. Secrets whose grace ended are dropped.
func (s *EndpointServer) RotateSecret(ctx context.Context, req *hookdv1.RotateSecretRequest) (*hookdv1.RotateSecretResponse, error) {
	grace := defaultGrace
	if req.GetGrace() != nil {
		grace = req.GetGrace().AsDuration()
		if grace < 0 || grace > maxGrace {
			return nil, toStatus(fmt.Errorf("%w: grace must be between 0s and %s", ErrInvalid, maxGrace))
		}
	}
	e, err := s.get(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	now := s.cfg.Now()
	secret := delivery.NewSecret()
	secrets := []store.Secret{{Value: secret}}
	for _, old := range e.Secrets {
		switch {
		case old.ExpiresAt.IsZero() && grace > 0:
			secrets = append(secrets, store.Secret{Value: old.Value, ExpiresAt: now.Add(grace)})
		case !old.ExpiresAt.IsZero() && old.ExpiresAt.After(now):
			secrets = append(secrets, old)
		}
	}
	e, err = s.cfg.Store.UpdateEndpoint(ctx, e.ID, store.EndpointUpdate{Secrets: &secrets})
	if err != nil {
		return nil, toStatus(fmt.Errorf("rotate secret of %s: %w", req.GetId(), err))
	}
	return &hookdv1.RotateSecretResponse{Endpoint: endpointProto(e, now), Secret: secret}, nil
}

// ListDeliveries lists deliveries newest first.
func (s *EndpointServer) ListDeliveries(ctx context.Context, req *hookdv1.ListDeliveriesRequest) (*hookdv1.ListDeliveriesResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, toStatus(err)
	}
	st, err := deliveryStatus(req.GetStatus())
	if err != nil {
		return nil, toStatus(err)
	}
	ds, next, err := s.cfg.Store.ListDeliveries(ctx, store.DeliveryFilter{
		EndpointID: req.GetEndpointId(), CustomerID: req.GetCustomerId(), Status: st,
		PageSize: size, PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, toStatus(fmt.Errorf("list deliveries: %w", err))
	}
	resp := &hookdv1.ListDeliveriesResponse{NextPageToken: next}
	for _, d := range ds {
		resp.Deliveries = append(resp.Deliveries, deliveryProto(d))
	}
	return resp, nil
}

// GetDelivery returns one delivery.
func (s *EndpointServer) GetDelivery(ctx context.Context, req *hookdv1.GetDeliveryRequest) (*hookdv1.Delivery, error) {
	if req.GetId() == "" {
		return nil, toStatus(fmt.Errorf("%w: id is required", ErrInvalid))
	}
	d, err := s.cfg.Store.GetDelivery(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(fmt.Errorf("delivery %s: %w", req.GetId(), err))
	}
	return deliveryProto(d), nil
}

// ListAttempts lists a delivery's attempts, newest first.
func (s *EndpointServer) ListAttempts(ctx context.Context, req *hookdv1.ListAttemptsRequest) (*hookdv1.ListAttemptsResponse, error) {
	if req.GetDeliveryId() == "" {
		return nil, toStatus(fmt.Errorf("%w: delivery_id is required", ErrInvalid))
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, toStatus(err)
	}
	as, next, err := s.cfg.Store.ListAttempts(ctx, req.GetDeliveryId(), size, req.GetPageToken())
	if err != nil {
		return nil, toStatus(fmt.Errorf("attempts of %s: %w", req.GetDeliveryId(), err))
	}
	resp := &hookdv1.ListAttemptsResponse{NextPageToken: next}
	for _, a := range as {
		resp.Attempts = append(resp.Attempts, &hookdv1.Attempt{
			DeliveryId: a.DeliveryID, Attempt: int32(a.Attempt), StartedAt: timestamppb.New(a.StartedAt),
			Latency: durationpb.New(a.Latency), StatusCode: int32(a.StatusCode), Error: a.Error, ResponseBody: a.Body,
		})
	}
	return resp, nil
}

// Redeliver sends a failed delivery again.
func (s *EndpointServer) Redeliver(ctx context.Context, req *hookdv1.RedeliverRequest) (*hookdv1.Delivery, error) {
	id := req.GetDeliveryId()
	if id == "" {
		return nil, toStatus(fmt.Errorf("%w: delivery_id is required", ErrInvalid))
	}
	ok, err := s.cfg.Store.Redeliver(ctx, id)
	if err != nil {
		return nil, toStatus(fmt.Errorf("redeliver %s: %w", id, err))
	}
	d, err := s.cfg.Store.GetDelivery(ctx, id)
	if err != nil {
		return nil, toStatus(fmt.Errorf("delivery %s: %w", id, err))
	}
	if !ok {
		return nil, toStatus(withReason(client.ReasonNotRedeliverable,
			errorf(errFailedPrecondition, "delivery %s is %s; only failed deliveries are redelivered", id, d.Status)))
	}
	return deliveryProto(d), nil
}

// RedeliverFailed redelivers an endpoint's failed deliveries since a time.
func (s *EndpointServer) RedeliverFailed(ctx context.Context, req *hookdv1.RedeliverFailedRequest) (*hookdv1.RedeliverFailedResponse, error) {
	if req.GetEndpointId() == "" {
		return nil, toStatus(fmt.Errorf("%w: endpoint_id is required", ErrInvalid))
	}
	var since time.Time
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	n, err := s.cfg.Store.RedeliverFailed(ctx, req.GetEndpointId(), since)
	if err != nil {
		return nil, toStatus(fmt.Errorf("redeliver failed deliveries of %s: %w", req.GetEndpointId(), err))
	}
	return &hookdv1.RedeliverFailedResponse{Redelivered: n}, nil
}

func (s *EndpointServer) get(ctx context.Context, id string) (store.Endpoint, error) {
	if id == "" {
		return store.Endpoint{}, fmt.Errorf("%w: id is required", ErrInvalid)
	}
	e, err := s.cfg.Store.GetEndpoint(ctx, id)
	if err != nil {
		return store.Endpoint{}, fmt.Errorf("endpoint %s: %w", id, err)
	}
	return e, nil
}

func (s *EndpointServer) update(ctx context.Context, id string, u store.EndpointUpdate) (*hookdv1.Endpoint, error) {
	if id == "" {
		return nil, toStatus(fmt.Errorf("%w: id is required", ErrInvalid))
	}
	e, err := s.cfg.Store.UpdateEndpoint(ctx, id, u)
	if err != nil {
		return nil, toStatus(fmt.Errorf("endpoint %s: %w", id, err))
	}
	return endpointProto(e, s.cfg.Now()), nil
}

// checkURL applies the length limit and the SSRF guard.
func (s *EndpointServer) checkURL(ctx context.Context, raw string) error {
	switch {
	case raw == "":
		return fmt.Errorf("%w: url is required", ErrInvalid)
	case len(raw) > maxURLBytes:
		return fmt.Errorf("%w: url is %d bytes, at most %d", ErrInvalid, len(raw), maxURLBytes)
	}
	if _, err := url.Parse(raw); err != nil {
		return withReason(client.ReasonEndpointRefused, fmt.Errorf("%w: url: %v", ErrInvalid, err))
	}
	if err := s.cfg.CheckURL(ctx, raw); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return withReason(client.ReasonEndpointRefused, fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	return nil
}

func checkEndpointText(description string, f *hookdv1.EndpointFilter) error {
	if len(description) > maxDescriptionBytes {
		return fmt.Errorf("%w: description is %d bytes, at most %d", ErrInvalid, len(description), maxDescriptionBytes)
	}
	for name, vs := range map[string][]string{"filter.kinds": f.GetKinds(), "filter.customer_ids": f.GetCustomerIds()} {
		if len(vs) > maxFilterValues {
			return fmt.Errorf("%w: %s has %d values, at most %d", ErrInvalid, name, len(vs), maxFilterValues)
		}
		for _, v := range vs {
			if v == "" || len(v) > maxFilterValueBytes {
				return fmt.Errorf("%w: %s: values must be 1 to %d bytes", ErrInvalid, name, maxFilterValueBytes)
			}
		}
	}
	return nil
}

func pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("%w: page_size must not be negative", ErrInvalid)
	case n == 0:
		return defaultPageSize, nil
	}
	return min(int(n), maxPageSize), nil
}

var deliveryStatuses = []struct {
	p hookdv1.DeliveryStatus
	s store.DeliveryStatus
}{
	{hookdv1.DeliveryStatus_DELIVERY_STATUS_QUEUED, store.DeliveryQueued},
	{hookdv1.DeliveryStatus_DELIVERY_STATUS_PENDING, store.DeliveryPending},
	{hookdv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, store.DeliveryDelivered},
	{hookdv1.DeliveryStatus_DELIVERY_STATUS_FAILED, store.DeliveryFailed},
}

func deliveryStatus(p hookdv1.DeliveryStatus) (store.DeliveryStatus, error) {
	if p == hookdv1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED {
		return "", nil
	}
	for _, s := range deliveryStatuses {
		if s.p == p {
			return s.s, nil
		}
	}
	return "", fmt.Errorf("%w: unknown delivery status %d", ErrInvalid, p)
}

func deliveryStatusProto(s store.DeliveryStatus) hookdv1.DeliveryStatus {
	for _, ds := range deliveryStatuses {
		if ds.s == s {
			return ds.p
		}
	}
	return hookdv1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED
}

func endpointProto(e store.Endpoint, now time.Time) *hookdv1.Endpoint {
	p := &hookdv1.Endpoint{
		Id: e.ID, Url: e.URL, Description: e.Description,
		Filter:         &hookdv1.EndpointFilter{Kinds: e.Kinds, CustomerIds: e.CustomerIDs},
		State:          hookdv1.EndpointState_ENDPOINT_STATE_ACTIVE,
		DisabledReason: e.DisabledReason,
		CreatedAt:      timestamppb.New(e.CreatedAt), UpdatedAt: timestamppb.New(e.UpdatedAt),
		Origin: e.Origin,
	}
	switch {
	case e.DisabledReason != "":
		p.State = hookdv1.EndpointState_ENDPOINT_STATE_DISABLED
	case e.Paused:
		p.State = hookdv1.EndpointState_ENDPOINT_STATE_PAUSED
	}
	if !e.DisabledAt.IsZero() {
		p.DisabledAt = timestamppb.New(e.DisabledAt)
	}
	if !e.FailingSince.IsZero() {
		p.FailingSince = timestamppb.New(e.FailingSince)
	}
	p.ActiveSecrets = int32(len(slices.DeleteFunc(slices.Clone(e.Secrets), func(s store.Secret) bool {
		return !s.ExpiresAt.IsZero() && !s.ExpiresAt.After(now)
	})))
	return p
}

func deliveryProto(d store.Delivery) *hookdv1.Delivery {
	p := &hookdv1.Delivery{
		Id: d.ID, EndpointId: d.EndpointID, CustomerId: d.CustomerID,
		Cursor: d.Notification.Cursor, Kind: d.Notification.Kind, Version: d.Notification.Version,
		EventId: d.Notification.EventID, Status: deliveryStatusProto(d.Status), Attempts: int32(d.Attempts),
		LastStatusCode: int32(d.LastStatus), LastError: d.LastError, CreatedAt: timestamppb.New(d.CreatedAt),
	}
	if d.Status == store.DeliveryPending || d.Status == store.DeliveryQueued {
		p.NextAttemptAt = timestamppb.New(d.NextAttemptAt)
	}
	if !d.EndedAt.IsZero() {
		p.EndedAt = timestamppb.New(d.EndedAt)
	}
	return p
}

func ptr[T any](v T) *T { return &v }
