package stripe

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
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
