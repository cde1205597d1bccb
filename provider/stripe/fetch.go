package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	stripego "github.com/stripe/stripe-go/v76"
)

// FetchObject returns the object of the given type ("customer",
// "subscription", "invoice") as Stripe has it now. stripe-go makes the
// request; the body it got is decoded by DecodeObject, like an event's
// object, so that whatever API version the account answers in (stripe-go
// v76 asks for 2023-10-16; stripe-mock and some accounts answer in the
// newest shape) reads the same. A non-empty account makes the request on
// that Connect account's behalf (Stripe-Account). It returns an error
// wrapping ErrNotFound when Stripe does not know the object, and an error
// for other types.
func (c *Client) FetchObject(ctx context.Context, objectType, id, account string) (Objects, error) {
	params := stripego.Params{Context: ctx}
	if account != "" {
		params.SetStripeAccount(account)
	}
	var (
		resp *stripego.APIResponse
		err  error
	)
	switch objectType {
	case "customer":
		var r *stripego.Customer
		if r, err = c.api.Customers.Get(id, &stripego.CustomerParams{Params: params}); err == nil {
			resp = r.LastResponse
		}
	case "subscription":
		var r *stripego.Subscription
		if r, err = c.api.Subscriptions.Get(id, &stripego.SubscriptionParams{Params: params}); err == nil {
			resp = r.LastResponse
		}
	case "invoice":
		var r *stripego.Invoice
		if r, err = c.api.Invoices.Get(id, &stripego.InvoiceParams{Params: params}); err == nil {
			resp = r.LastResponse
		}
	default:
		return Objects{}, fmt.Errorf("fetch %s %s: hookd does not fetch objects of this type", objectType, id)
	}
	var se *stripego.Error
	switch {
	case errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound:
		return Objects{}, fmt.Errorf("%s %s: %w", objectType, id, ErrNotFound)
	case err != nil:
		return Objects{}, fmt.Errorf("get %s %s: %w", objectType, id, err)
	case resp == nil || len(resp.RawJSON) == 0:
		return Objects{}, fmt.Errorf("get %s %s: empty response", objectType, id)
	}
	payload := make([]byte, 0, len(resp.RawJSON)+24)
	payload = append(append(append(payload, `{"data":{"object":`...), resp.RawJSON...), "}}"...)
	objs, err := DecodeObject(objectType, payload)
	if err != nil {
		return Objects{}, fmt.Errorf("fetched %s %s: %w", objectType, id, err)
	}
	return objs, nil
}
