package main

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// metricsText returns the admin listener's /metrics.
func metricsText(t *testing.T, h *hookd) string {
	t.Helper()
	resp, err := h.http.Get(h.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricWithPrefix returns the value of the first sample whose line starts
// with prefix (a name, or a name and the start of its labels), and false
// when none does.
func metricWithPrefix(t *testing.T, h *hookd, prefix string) (float64, bool) {
	t.Helper()
	for _, line := range strings.Split(metricsText(t, h), "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return v, true
		}
	}
	return 0, false
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The operational metrics move with what they measure: build info,
// subscribers, read lag, gRPC calls, pool statistics, parked events.
func TestOpsMetrics(t *testing.T) {
	h := startHookd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if v, ok := metricWithPrefix(t, h, `hookd_build_info{goversion="go`); !ok || v != 1 {
		t.Fatalf("hookd_build_info: %v %v\n%s", v, ok, metricsText(t, h))
	}
	if v := metricValue(t, h, "hookd_subscribers"); v != 0 {
		t.Fatalf("hookd_subscribers before any stream: %v", v)
	}
	if v := metricValue(t, h, "hookd_parked_events"); v != 0 {
		t.Fatalf("hookd_parked_events before any event: %v", v)
	}

	sctx, stop := context.WithCancel(ctx)
	stream, err := h.notifications().Subscribe(sctx, &hookdv1.SubscribeRequest{FromNow: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "hookd_subscribers is not 1", func() bool { return metricValue(t, h, "hookd_subscribers") == 1 })

	if a := h.post(t, customerEvent("evt_ops_1", "customer.created", "cus_ops", 1700000000, "o@example.com")); a.Status != "applied" {
		t.Fatalf("customer.created: %+v", a)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "no read lag observed", func() bool {
		return metricValue(t, h, "hookd_notification_read_lag_seconds_count") >= 1
	})
	stop()
	eventually(t, 5*time.Second, "hookd_subscribers is not back to 0", func() bool { return metricValue(t, h, "hookd_subscribers") == 0 })
	eventually(t, 5*time.Second, "the ended Subscribe stream is not counted", func() bool {
		_, ok := metricWithPrefix(t, h, `hookd_grpc_server_handled_total{code=`)
		if !ok {
			return false
		}
		for _, line := range strings.Split(metricsText(t, h), "\n") {
			if strings.HasPrefix(line, "hookd_grpc_server_handled_total{") && strings.Contains(line, `method="/hookd.v1.NotificationService/Subscribe"`) {
				t.Logf("%s", line)
				return true
			}
		}
		return false
	})

	if _, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_ops"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_nobody"}); err == nil {
		t.Fatal("an unknown customer was found")
	}
	if v := metricValue(t, h, `hookd_grpc_server_handled_total{code="OK",method="/hookd.v1.CustomerService/GetCustomer"}`); v != 1 {
		t.Errorf("GetCustomer OK: %v, want 1", v)
	}
	if v := metricValue(t, h, `hookd_grpc_server_handled_total{code="NotFound",method="/hookd.v1.CustomerService/GetCustomer"}`); v != 1 {
		t.Errorf("GetCustomer NotFound: %v, want 1", v)
	}
	if v := metricValue(t, h, `hookd_grpc_server_handling_seconds_count{method="/hookd.v1.CustomerService/GetCustomer"}`); v != 2 {
		t.Errorf("GetCustomer timings: %v, want 2", v)
	}

	if v := metricValue(t, h, "hookd_pgx_pool_max_conns"); v < 1 {
		t.Errorf("hookd_pgx_pool_max_conns %v", v)
	}
	if v := metricValue(t, h, "hookd_pgx_pool_acquires_total"); v < 1 {
		t.Errorf("hookd_pgx_pool_acquires_total %v", v)
	}
	if v := metricValue(t, h, "hookd_pgx_pool_total_conns"); v < 1 {
		t.Errorf("hookd_pgx_pool_total_conns %v", v)
	}

	// An invoice for a subscription hookd has not seen parks (the default
	// --park-deadline is 30 s: it stays parked through the test).
	if a := h.post(t, invoiceEvent("evt_ops_inv", "invoice.paid", "cus_ops2", "in_ops", "sub_ops", 1700000400)); a.Status != "parked" {
		t.Fatalf("invoice: %+v, want parked", a)
	}
	eventually(t, 10*time.Second, "hookd_parked_events is not 1", func() bool { return metricValue(t, h, "hookd_parked_events") == 1 })
}

// The stall detector: while a transaction stays open on the server,
// notifications committed after it began are invisible to subscribers;
// hookd_outbox_oldest_invisible_seconds grows past the hold, a warning
// names the holder, and once it commits the gauge falls back to 0.
func TestOutboxStallDetector(t *testing.T) {
	h := startHookd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if v := metricValue(t, h, "hookd_outbox_oldest_invisible_seconds"); v != 0 {
		t.Fatalf("before any hold: %v", v)
	}
	holder, err := pgx.Connect(ctx, h.databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}
	held := time.Now()
	if a := h.post(t, customerEvent("evt_stall_1", "customer.created", "cus_stall", 1700000000, "s@example.com")); a.Status != "applied" {
		t.Fatalf("customer.created: %+v", a)
	}
	eventually(t, 15*time.Second, "hookd_outbox_oldest_invisible_seconds does not pass 6 s", func() bool {
		return metricValue(t, h, "hookd_outbox_oldest_invisible_seconds") > 6
	})
	if v := metricValue(t, h, "hookd_outbox_invisible_notifications"); v < 1 {
		t.Errorf("hookd_outbox_invisible_notifications %v", v)
	}
	if d := time.Since(held); d < 6*time.Second {
		t.Fatalf("the gauge passed 6 s after a hold of %s", d)
	}
	var pid int32
	if err := holder.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	out := h.proc.out.String()
	warn := "notifications committed but invisible to subscribers behind an open transaction"
	if strings.Count(out, warn) != 1 {
		t.Fatalf("want one stall warning, got:\n%s", out)
	}
	// Other tests share the server, so the oldest open transaction may be
	// theirs; ours is the likely one.
	if !strings.Contains(out, "holder_pid="+strconv.Itoa(int(pid))) {
		t.Logf("the warning names another holder than pid %d:\n%s", pid, out)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "hookd_outbox_oldest_invisible_seconds is not back to 0", func() bool {
		return metricValue(t, h, "hookd_outbox_oldest_invisible_seconds") == 0
	})
}
