package stripe

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeList answers every request with status and retryAfter (when not
// empty), or, for status 200, a list of one item; it counts requests.
func fakeList(t *testing.T, status int, retryAfter string) (*Client, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if status != http.StatusOK {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(status)
			io.WriteString(w, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"slow down"}}`)
			return
		}
		io.WriteString(w, `{"object":"list","url":"/v1/customers","has_more":true,"data":[{"id":"cus_1","object":"customer","created":1700000000}]}`)
	}))
	t.Cleanup(srv.Close)
	return NewClient("sk_test_x", srv.URL, slog.New(slog.DiscardHandler)), &n
}

// A 429 that does not end is tried 8 times, then reported as such.
func TestListGivesUpAfterEightTries(t *testing.T) {
	t.Parallel()
	c, n := fakeList(t, http.StatusTooManyRequests, "0")
	_, err := c.ListObjects(t.Context(), "customers", "")
	if err == nil || !strings.Contains(err.Error(), "gave up after 8 tries") {
		t.Fatalf("got %v, want gave up after 8 tries", err)
	}
	if got := n.Load(); got != 8 {
		t.Errorf("requests: got %d, want 8", got)
	}
}

// A 4xx other than 429 is not retried.
func TestListDoesNotRetryClientErrors(t *testing.T) {
	t.Parallel()
	c, n := fakeList(t, http.StatusBadRequest, "")
	if _, err := c.ListEvents(t.Context(), time.Time{}, time.Time{}, ""); err == nil {
		t.Fatal("want an error")
	}
	if got := n.Load(); got != 1 {
		t.Errorf("requests: got %d, want 1", got)
	}
	if _, err := c.ListObjects(t.Context(), "invoices", ""); err == nil {
		t.Error("ListObjects(invoices): want an error")
	}
}

// Waiting out a Retry-After ends with the context.
func TestListWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	c, _ := fakeList(t, http.StatusTooManyRequests, "30")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.ListObjects(ctx, "subscriptions", "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
}

// The list calls of a Client share one pace; a page decodes with its
// cursor.
func TestListPace(t *testing.T) {
	t.Parallel()
	c, n := fakeList(t, http.StatusOK, "")
	c.SetRequestsPerSecond(10)
	start := time.Now()
	for range 5 {
		p, err := c.ListObjects(t.Context(), "customers", "")
		if err != nil {
			t.Fatal(err)
		}
		if !p.HasMore || p.Next != "cus_1" || len(p.Items) != 1 || p.Items[0].Created.Unix() != 1700000000 || p.FetchedAt.IsZero() {
			t.Fatalf("page: got %+v", p)
		}
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("5 calls at 10/s took %v, want at least 400ms", d)
	}
	if n.Load() != 5 {
		t.Errorf("requests: got %d, want 5", n.Load())
	}
}
