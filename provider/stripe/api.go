package stripe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// ErrNotFound is returned (wrapped) by the Client's fetches when Stripe
// answers that the object does not exist (HTTP 404).
var ErrNotFound = errors.New("not found at Stripe")

// Client reads objects from the Stripe API with stripe-go, to resolve
// events parked past their deadline. It is safe for concurrent use.
type Client struct {
	api *client.API
	key string
	// list makes the list calls (list.go): the same configuration as
	// api's backend but without stripe-go's own retries, which ListEvents
	// and ListObjects do themselves (rate limit, Retry-After).
	list stripego.Backend
	lim  listLimiter
}

// NewClient returns a client using key; apiURL, when not empty, replaces
// https://api.stripe.com (tests, stripe-mock).
func NewClient(key, apiURL string, log *slog.Logger) *Client {
	cfg := &stripego.BackendConfig{
		HTTPClient:        &http.Client{Timeout: 10 * time.Second},
		LeveledLogger:     stripeLogger{log},
		MaxNetworkRetries: stripego.Int64(1),
	}
	if apiURL != "" {
		cfg.URL = stripego.String(apiURL)
	}
	listCfg := *cfg
	listCfg.MaxNetworkRetries = stripego.Int64(0)
	return &Client{
		api: client.New(key, &stripego.Backends{
			API: stripego.GetBackendWithConfig(stripego.APIBackend, cfg),
		}),
		key:  key,
		list: stripego.GetBackendWithConfig(stripego.APIBackend, &listCfg),
	}
}

// FetchSubscription returns the subscription as Stripe has it now (see
// FetchObject). A non-empty account (a Connect account ID, acct_...) makes
// the request on that account's behalf (the Stripe-Account header). It
// returns an error wrapping ErrNotFound when Stripe does not know the
// subscription.
func (c *Client) FetchSubscription(ctx context.Context, id, account string) (*Subscription, error) {
	objs, err := c.FetchObject(ctx, "subscription", id, account)
	if err != nil {
		return nil, err
	}
	return objs.Subscription, nil
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
