package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// storeCommits reads hookd_store_commits_total from /metrics (on the admin
// listener).
func storeCommits(t *testing.T, h *hookd) int64 {
	t.Helper()
	return int64(metricValue(t, h, "hookd_store_commits_total"))
}

// metricValue reads one sample from /metrics (on the admin listener): the
// series as Prometheus prints it, name and labels, e.g.
// `hookd_deliveries_total{outcome="failed"}`.
func metricValue(t *testing.T, h *hookd, series string) float64 {
	t.Helper()
	v, ok := sampleValue(metricsText(t, h), series)
	if !ok {
		t.Fatalf("/metrics lacks %s", series)
	}
	return v
}

// sampleValue finds one series (name and labels, as Prometheus prints
// them) in a /metrics text.
func sampleValue(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f, true
			}
		}
	}
	return 0, false
}

// Events for one customer that arrive together are committed together:
// 64 concurrent webhooks for one customer take far fewer than 64
// transactions (one actor commits one event at a time otherwise, so the
// customer's throughput would be one fsync per event), and each still
// takes effect once, in a contiguous version order.
func TestHotCustomerEventsShareCommits(t *testing.T) {
	h := startHookd(t)
	if a := h.post(t, customerEvent("evt_hot_0", "customer.created", "cus_hot", 1700000000, "hot@example.com")); a.Status != "applied" {
		t.Fatalf("customer.created: %+v", a)
	}
	before := storeCommits(t, h)
	const n = 64
	answers := make([]webhookAnswer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Appendf(nil, `{"id":"evt_hot_sub_%d","object":"event","type":"customer.subscription.created","created":%d,"data":{"object":{"id":"sub_hot_%d","object":"subscription","customer":"cus_hot","status":"active"}}}`,
				i, 1700000001+i, i)
			answers[i] = h.post(t, body)
		}()
	}
	wg.Wait()
	commits := storeCommits(t, h) - before
	for i, a := range answers {
		if a.Code != 200 || a.Status != "applied" {
			t.Fatalf("event %d: %d %q %q, want 200 applied", i, a.Code, a.Status, a.Error)
		}
	}
	if commits >= n {
		t.Fatalf("%d events for one customer took %d transactions; want fewer (the actor batches what queued while it committed)", n, commits)
	}
	t.Logf("%d concurrent events for one customer: %d transactions", n, commits)
	c, err := h.customers().GetCustomer(context.Background(), &hookdv1.GetCustomerRequest{CustomerId: "cus_hot"})
	if err != nil {
		t.Fatal(err)
	}
	if c.GetVersion() != n+1 {
		t.Fatalf("version %d, want %d (one per event)", c.GetVersion(), n+1)
	}
	notes := collect(t, h, "", "cus_hot", n+1)
	for i, no := range notes {
		if no.GetVersion() != int64(i+1) {
			t.Fatalf("notification %d has version %d: versions not contiguous: %v", i, no.GetVersion(), summarize(notes))
		}
	}
}
