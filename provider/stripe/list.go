package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"
)

// Listing: the backfill lists Stripe's events (the Events API keeps 30
// days) and, for an import, its current objects, page by page. stripe-go
// makes every request (auth, headers, API URL, as for the fetches) but
// without its own retries: the list calls pace themselves with a token
// bucket shared by all list calls of a Client, and wait out a 429 here.

const (
	// DefaultRequestsPerSecond paces a Client's list calls, below Stripe's
	// documented read limit in test mode (25 per second).
	DefaultRequestsPerSecond = 20
	// ListPageSize is the page size the list calls ask for (Stripe's
	// maximum).
	ListPageSize = 100
	// listTries bounds the tries of one page (429s, 5xx, network errors).
	listTries = 8
	// listBackoffStart and listBackoffCap bound the back-off between
	// tries when the API does not say how long to wait (Retry-After).
	listBackoffStart = time.Second
	listBackoffCap   = 30 * time.Second
)

// ListPage is one page of a list call.
type ListPage struct {
	// Items in the order the API listed them (newest first).
	Items []RawItem
	// HasMore reports that another page follows.
	HasMore bool
	// Next is the starting_after of the next page: the last item's ID
	// ("" for an empty page).
	Next string
	// FetchedAt is when the page was answered.
	FetchedAt time.Time
}

// RawItem is one listed event or object.
type RawItem struct {
	ID      string
	Created time.Time
	// JSON is the item exactly as the API returned it.
	JSON []byte
}

// SetRequestsPerSecond sets the pace of the Client's list calls
// (DefaultRequestsPerSecond when r <= 0). It is safe to call while list
// calls run.
func (c *Client) SetRequestsPerSecond(r float64) {
	c.lim.mu.Lock()
	c.lim.rps = r
	c.lim.mu.Unlock()
}

// ListEvents returns one page of the events created in [since, until]
// (either bound left out when zero), newest first as Stripe lists them,
// starting after the event startingAfter ("" for the first page).
func (c *Client) ListEvents(ctx context.Context, since, until time.Time, startingAfter string) (ListPage, error) {
	q := &form.Values{}
	q.Add("limit", strconv.Itoa(ListPageSize))
	if !since.IsZero() {
		q.Add("created[gte]", strconv.FormatInt(since.Unix(), 10))
	}
	if !until.IsZero() {
		q.Add("created[lte]", strconv.FormatInt(until.Unix(), 10))
	}
	if startingAfter != "" {
		q.Add("starting_after", startingAfter)
	}
	page, err := c.listPage(ctx, "/v1/events", q)
	if err != nil {
		return ListPage{}, fmt.Errorf("list events: %w", err)
	}
	return page, nil
}

// ListObjects returns one page of the current objects of kind,
// "customers" or "subscriptions" (every status, canceled included),
// starting after the object startingAfter ("" for the first page).
func (c *Client) ListObjects(ctx context.Context, kind, startingAfter string) (ListPage, error) {
	q := &form.Values{}
	q.Add("limit", strconv.Itoa(ListPageSize))
	switch kind {
	case "customers":
	case "subscriptions":
		q.Add("status", "all")
	default:
		return ListPage{}, fmt.Errorf("list %s: hookd does not list objects of this kind", kind)
	}
	if startingAfter != "" {
		q.Add("starting_after", startingAfter)
	}
	page, err := c.listPage(ctx, "/v1/"+kind, q)
	if err != nil {
		return ListPage{}, fmt.Errorf("list %s: %w", kind, err)
	}
	return page, nil
}

// listResponse is a list envelope with its items kept as they came.
type listResponse struct {
	stripego.APIResource
	Object  string            `json:"object"`
	HasMore bool              `json:"has_more"`
	Data    []json.RawMessage `json:"data"`
}

// listPage gets one page, pacing and retrying as the package comment
// says.
func (c *Client) listPage(ctx context.Context, path string, q *form.Values) (ListPage, error) {
	var lastErr error
	for try := 1; ; try++ {
		if err := c.lim.wait(ctx); err != nil {
			return ListPage{}, err
		}
		var resp listResponse
		err := c.list.CallRaw(http.MethodGet, path, c.key, q, &stripego.Params{Context: ctx}, &resp)
		if err == nil {
			return decodePage(&resp)
		}
		if ctx.Err() != nil {
			return ListPage{}, context.Cause(ctx)
		}
		wait, retry := retryAfter(err, try)
		if !retry {
			return ListPage{}, err
		}
		lastErr = err
		if try == listTries {
			return ListPage{}, fmt.Errorf("gave up after %d tries (rate limited or unavailable): %w", listTries, lastErr)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ListPage{}, context.Cause(ctx)
		case <-t.C:
		}
	}
}

// retryAfter reports whether a failed try is worth another, and how long
// to wait first: Retry-After when a 429 (or 503) says, else an
// exponential back-off with jitter.
func retryAfter(err error, try int) (time.Duration, bool) {
	var se *stripego.Error
	if errors.As(err, &se) {
		code := se.HTTPStatusCode
		if code != http.StatusTooManyRequests && code < http.StatusInternalServerError {
			return 0, false
		}
		if se.LastResponse != nil {
			if s, err := strconv.Atoi(strings.TrimSpace(se.LastResponse.Header.Get("Retry-After"))); err == nil && s >= 0 {
				return min(time.Duration(s)*time.Second, listBackoffCap), true
			}
		}
		return backoff(try), true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return backoff(try), true
	}
	return 0, false
}

// backoff is the wait after the try-th failed try: from listBackoffStart,
// doubling, capped at listBackoffCap, with the upper half jittered.
func backoff(try int) time.Duration {
	d := listBackoffStart << min(try-1, 10)
	d = min(d, listBackoffCap)
	return d/2 + rand.N(d/2+1)
}

func decodePage(resp *listResponse) (ListPage, error) {
	if resp.Object != "list" {
		return ListPage{}, fmt.Errorf("answer is not a list (object %q)", resp.Object)
	}
	page := ListPage{HasMore: resp.HasMore, FetchedAt: time.Now(), Items: make([]RawItem, 0, len(resp.Data))}
	for i, raw := range resp.Data {
		var head struct {
			ID      string `json:"id"`
			Created int64  `json:"created"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return ListPage{}, fmt.Errorf("item %d: %w", i, err)
		}
		if head.ID == "" {
			return ListPage{}, fmt.Errorf("item %d has no id", i)
		}
		page.Items = append(page.Items, RawItem{ID: head.ID, Created: time.Unix(head.Created, 0), JSON: raw})
	}
	if n := len(page.Items); n > 0 {
		page.Next = page.Items[n-1].ID
	}
	return page, nil
}

// listLimiter is a token bucket of one token refilled at rps: each list
// call takes the next free slot, 1/rps after the previous one.
type listLimiter struct {
	mu   sync.Mutex
	rps  float64
	next time.Time // when the next slot is free
}

// wait blocks until the caller's slot, or until ctx ends.
func (l *listLimiter) wait(ctx context.Context) error {
	l.mu.Lock()
	rps := l.rps
	if rps <= 0 {
		rps = DefaultRequestsPerSecond
	}
	now := time.Now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(time.Duration(float64(time.Second) / rps))
	l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	d := at.Sub(now)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
