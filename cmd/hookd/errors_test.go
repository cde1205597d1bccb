package main

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookd/hookd/client"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/services"
)

// Every gRPC error hookd answers carries a google.rpc.ErrorInfo reason a
// client can branch on (client.ReasonOf, client.Error), from the services
// and from the auth interceptor alike. (That an INTERNAL answer never
// carries the underlying message is unit-tested in services: nothing a
// caller sends can make one.)
func TestErrorReasonsE2E(t *testing.T) {
	const token = "x"
	h := startHookdOn(t, storeEmbedded, "--admin-token", token)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	auth := grpc.PerRPCCredentials(services.BearerToken(token))

	check := func(name string, err error, code codes.Code, reason string) *client.Error {
		t.Helper()
		e := client.ErrorOf(err)
		if e == nil || e.Code != code || e.Reason != reason || status.Code(err) != code {
			t.Errorf("%s: got %v (%+v), want %v with reason %s", name, err, e, code, reason)
		}
		return e
	}

	_, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "nope"})
	check("no token", err, codes.Unauthenticated, client.ReasonUnauthenticated)

	_, err = h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "nope"}, auth)
	check("unknown customer", err, codes.NotFound, client.ReasonNotFound)

	req := envelope(t, customerEvent("evt_err_1", "customer.created", "cus_err", time.Now().Unix(), "a@example.com"))
	req.Envelope.EventId = ""
	_, err = h.ingest().Ingest(ctx, req, auth)
	if e := check("invalid field", err, codes.InvalidArgument, client.ReasonInvalidField); e != nil && e.Metadata[client.MetadataField] != "event_id" {
		t.Errorf("invalid field: metadata %v, want field=event_id", e.Metadata)
	}

	stream, err := h.notifications().Subscribe(ctx, &hookdv1.SubscribeRequest{AfterCursor: "not-a-cursor"}, auth)
	if err == nil {
		_, err = stream.Recv()
	}
	check("malformed cursor", err, codes.InvalidArgument, client.ReasonInvalidCursor)

	// A method hookd does not have goes through hookd's interceptors too
	// (services.ServerOptions' unknown-service handler), not answered by
	// gRPC bare: it is in no scope, so it is denied, with a reason, with
	// or without tokens configured.
	err = h.conn.Invoke(ctx, "/hookd.v1.CustomerService/NoSuchMethod", &hookdv1.GetCustomerRequest{}, &hookdv1.Customer{}, auth)
	check("unknown method, tokens", err, codes.PermissionDenied, client.ReasonPermissionDenied)
	open := startHookdOn(t, storeEmbedded)
	err = open.conn.Invoke(ctx, "/hookd.v1.CustomerService/NoSuchMethod", &hookdv1.GetCustomerRequest{}, &hookdv1.Customer{})
	check("unknown method, no tokens", err, codes.PermissionDenied, client.ReasonPermissionDenied)
}
