package stripe

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/hookd/hookd/internal/stripemock"
)

// TestFetchSubscriptionSendsStripeAccount checks, against a fake Stripe
// API, that a fetch for a connected account carries its Stripe-Account
// header and one for the platform none, and that the subscription's
// customer comes back for the caller to check.
func TestFetchSubscriptionSendsStripeAccount(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		headers []string // Stripe-Account of each request, "-" when absent
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if v, ok := r.Header["Stripe-Account"]; ok {
			headers = append(headers, v[0])
		} else {
			headers = append(headers, "-")
		}
		mu.Unlock()
		w.Header().Set("Connection", "close")
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/v1/subscriptions/sub_1" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"type":"invalid_request_error","message":"No such subscription"}}`)
			return
		}
		io.WriteString(w, `{"id":"sub_1","object":"subscription","customer":"cus_9","status":"active"}`)
	}))
	t.Cleanup(srv.Close)
	c := NewClient("sk_test_x", srv.URL, slog.New(slog.NewTextHandler(io.Discard, nil)))

	sub, err := c.FetchSubscription(t.Context(), "sub_1", "acct_1")
	if err != nil {
		t.Fatalf("FetchSubscription(acct_1): %v", err)
	}
	if sub.ID != "sub_1" || sub.Customer != "cus_9" || sub.Status != "active" {
		t.Errorf("subscription: got %+v, want sub_1 of cus_9, active", sub)
	}
	if _, err := c.FetchSubscription(t.Context(), "sub_1", ""); err != nil {
		t.Fatalf("FetchSubscription(platform): %v", err)
	}
	if _, err := c.FetchSubscription(t.Context(), "sub_404", "acct_2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FetchSubscription(sub_404): got %v, want %v", err, ErrNotFound)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"acct_1", "-", "acct_2"}
	if len(headers) != len(want) {
		t.Fatalf("requests: got Stripe-Account %q, want %q", headers, want)
	}
	for i := range want {
		if headers[i] != want[i] {
			t.Errorf("request %d: Stripe-Account got %q, want %q", i, headers[i], want[i])
		}
	}
}

// Against stripe-mock, a real server for the Stripe API that answers in
// the newest API version whatever stripe-go v76 asks for: every object
// hookd fetches decodes as DecodeObject decodes an event's, so a
// subscription's period end comes from its items (stripe-go's own
// Subscription.CurrentPeriodEnd reads 0 there).
func TestFetchObjectFromStripeMock(t *testing.T) {
	t.Parallel()
	c := NewClient("sk_test_hookd", stripemock.Start(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := t.Context()

	cus, err := c.FetchObject(ctx, "customer", "cus_fetch", "")
	if err != nil || cus.Customer == nil || cus.Customer.ID != "cus_fetch" {
		t.Fatalf("customer: %+v, %v; want cus_fetch", cus.Customer, err)
	}
	sub, err := c.FetchSubscription(ctx, "sub_fetch", "acct_connected")
	if err != nil {
		t.Fatal(err)
	}
	if sub.ID != "sub_fetch" || sub.Customer == "" || sub.Status == "" || sub.CurrentPeriodEnd <= 0 {
		t.Errorf("subscription: %+v; want sub_fetch with its customer, status and a period end from its items", sub)
	}
	inv, err := c.FetchObject(ctx, "invoice", "in_fetch", "")
	if err != nil || inv.Invoice == nil || inv.Invoice.ID != "in_fetch" {
		t.Errorf("invoice: %+v, %v; want in_fetch", inv.Invoice, err)
	}
	if _, err := c.FetchObject(ctx, "charge", "ch_1", ""); err == nil {
		t.Error("fetching a charge: no error, want one (hookd fetches customers, subscriptions and invoices)")
	}
}
