package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	stripego "github.com/stripe/stripe-go/v76"
)

// FetchObject returns the object of the given type ("customer",
// "subscription", "invoice") as Stripe has it now, decoded as DecodeObject
// decodes an event's object. A non-empty account makes the request on that
// Connect account's behalf (Stripe-Account). It returns an error wrapping
// ErrNotFound when Stripe does not know the object, and an error for other
// types.
func (c *Client) FetchObject(ctx context.Context, objectType, id, account string) (Objects, error) {
	params := stripego.Params{Context: ctx}
	if account != "" {
		params.SetStripeAccount(account)
	}
	notFound := func(err error) error {
		var se *stripego.Error
		if errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound {
			return fmt.Errorf("%s %s: %w", objectType, id, ErrNotFound)
		}
		return fmt.Errorf("get %s %s: %w", objectType, id, err)
	}
	switch objectType {
	case "customer":
		cus, err := c.api.Customers.Get(id, &stripego.CustomerParams{Params: params})
		if err != nil {
			return Objects{}, notFound(err)
		}
		return Objects{Customer: &Customer{ID: cus.ID, Email: cus.Email, Name: cus.Name, Metadata: cus.Metadata}}, nil
	case "subscription":
		sub, err := c.FetchSubscription(ctx, id, account)
		if err != nil {
			return Objects{}, err
		}
		return Objects{Subscription: sub}, nil
	case "invoice":
		in, err := c.api.Invoices.Get(id, &stripego.InvoiceParams{Params: params})
		if err != nil {
			return Objects{}, notFound(err)
		}
		inv := &Invoice{ID: in.ID, Status: string(in.Status), AmountPaid: in.AmountPaid, AmountDue: in.AmountDue, Currency: string(in.Currency)}
		if in.Subscription != nil {
			inv.Subscription = ID(in.Subscription.ID)
		}
		return Objects{Invoice: inv}, nil
	}
	return Objects{}, fmt.Errorf("fetch %s %s: hookd does not fetch objects of this type", objectType, id)
}
