package customer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/hookd/hookd/store"
)

// StripeFetcher fetches subscriptions from the Stripe API with stripe-go,
// to resolve events parked past their deadline.
type StripeFetcher struct {
	api *client.API
}

// NewStripeFetcher returns a fetcher using key; apiURL, when not empty,
// replaces https://api.stripe.com (tests, stripe-mock).
func NewStripeFetcher(key, apiURL string, log *slog.Logger) *StripeFetcher {
	cfg := &stripe.BackendConfig{
		HTTPClient:        &http.Client{Timeout: 10 * time.Second},
		LeveledLogger:     stripeLogger{log},
		MaxNetworkRetries: stripe.Int64(1),
	}
	if apiURL != "" {
		cfg.URL = stripe.String(apiURL)
	}
	return &StripeFetcher{api: client.New(key, &stripe.Backends{
		API: stripe.GetBackendWithConfig(stripe.APIBackend, cfg),
	})}
}

// FetchSubscription returns the subscription as Stripe has it now, or
// store.ErrNotFound when Stripe does not know it.
func (f *StripeFetcher) FetchSubscription(ctx context.Context, id string) (*SubscriptionObject, error) {
	params := &stripe.SubscriptionParams{}
	params.Context = ctx
	sub, err := f.api.Subscriptions.Get(id, params)
	if err != nil {
		var se *stripe.Error
		if errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("subscription %s: %w", id, store.ErrNotFound)
		}
		return nil, fmt.Errorf("get subscription %s: %w", id, err)
	}
	obj := &SubscriptionObject{
		ID:                sub.ID,
		Status:            string(sub.Status),
		CancelAtPeriodEnd: sub.CancelAtPeriodEnd,
		CurrentPeriodEnd:  sub.CurrentPeriodEnd,
	}
	if sub.Items != nil {
		for _, it := range sub.Items.Data {
			if it.Price != nil {
				var item SubscriptionItem
				item.Price.ID = it.Price.ID
				obj.Items.Data = append(obj.Items.Data, item)
			}
		}
	}
	return obj, nil
}

// stripeLogger routes stripe-go's logs into slog, quietly.
type stripeLogger struct{ log *slog.Logger }

func (l stripeLogger) Debugf(string, ...any) {}
func (l stripeLogger) Infof(string, ...any)  {}
func (l stripeLogger) Warnf(f string, v ...any) {
	l.log.Warn(fmt.Sprintf(f, v...), "component", "stripe-go")
}
func (l stripeLogger) Errorf(f string, v ...any) {
	l.log.Error(fmt.Sprintf(f, v...), "component", "stripe-go")
}
