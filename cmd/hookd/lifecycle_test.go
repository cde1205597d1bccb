package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// SIGTERM ends open Subscribe streams, with UNAVAILABLE so that their
// clients resume from their cursors, and hookd exits within 3 s instead of
// waiting out --shutdown-timeout for streams that never end by themselves.
func TestSIGTERMEndsOpenStreamsPromptly(t *testing.T) {
	t.Parallel()
	h := startHookd(t, "--shutdown-timeout", "20s")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	const streams = 3
	var subs []hookdv1.NotificationService_SubscribeClient
	for range streams {
		s, err := h.notifications().Subscribe(ctx, &hookdv1.SubscribeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	h.post(t, customerEvent("evt_term", "customer.created", "cus_term", time.Now().Unix(), "t@example.com"))
	for i, s := range subs {
		if _, err := s.Recv(); err != nil {
			t.Fatalf("stream %d before SIGTERM: %v", i, err)
		}
	}

	start := time.Now()
	if err := h.proc.terminate(10 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, h.proc.out.String())
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("hookd took %s to exit after SIGTERM with %d open streams, want under 3s", took.Round(time.Millisecond), streams)
	}
	for i, s := range subs {
		_, err := s.Recv()
		if code := status.Code(err); code != codes.Unavailable {
			t.Errorf("stream %d after SIGTERM: %v, want UNAVAILABLE (resume from the cursor)", i, err)
		}
	}
}

// /readyz and the gRPC health service say NOT_SERVING while the store
// cannot be reached (here: connections to hookd's database refused and
// the open ones terminated) and SERVING again once it can, without a
// restart; webhooks are answered 503 in between and 200 after.
func TestReadinessFollowsTheStore(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	h := startHookdOnStore(t, dbURL, "")
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	admin := func(sql string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgtest.ServerURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	readyz := func() int {
		resp, err := http.Get(h.baseURL + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor := func(what string, want int, wantHealth healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			code := readyz()
			hs, err := healthpb.NewHealthClient(h.conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
			if code == want && err == nil && hs.GetStatus() == wantHealth {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /readyz %d, health %v (%v) after 15s; want %d and %v", what, code, hs.GetStatus(), err, want, wantHealth)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("before the outage", http.StatusOK, healthpb.HealthCheckResponse_SERVING)

	t.Cleanup(func() { admin(fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS true`, dbName)) })
	admin(fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS false`, dbName))
	admin(fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'`, dbName))
	outage := time.Now()
	waitFor("during the outage", http.StatusServiceUnavailable, healthpb.HealthCheckResponse_NOT_SERVING)
	t.Logf("NOT_SERVING %s after the store went away", time.Since(outage).Round(time.Millisecond))
	if a := h.post(t, customerEvent("evt_outage", "customer.created", "cus_outage", time.Now().Unix(), "o@example.com")); a.Code != http.StatusServiceUnavailable {
		t.Errorf("webhook during the outage: %d %s, want 503", a.Code, a.Error)
	}

	admin(fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS true`, dbName))
	back := time.Now()
	waitFor("after the outage", http.StatusOK, healthpb.HealthCheckResponse_SERVING)
	t.Logf("SERVING %s after the store came back", time.Since(back).Round(time.Millisecond))
	deadline := time.Now().Add(15 * time.Second)
	for {
		a := h.post(t, customerEvent("evt_outage", "customer.created", "cus_outage", time.Now().Unix(), "o@example.com"))
		if a.Code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook after the outage: %d %s, want 200", a.Code, a.Error)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A member whose etcd cannot be reached says so while it waits to join the
// cluster, and SIGTERM stops it (before, it hung silently and ignored
// SIGTERM and SIGINT until kill -9).
func TestMemberWaitingForEtcdReportsAndStops(t *testing.T) {
	t.Parallel()
	unreachable := "http://" + freeAddr(t) // nothing listens there
	p := spawnProcess(t,
		"--cluster", "etcd", "--etcd-endpoints", unreachable,
		"--database-url", pgtest.NewDatabase(t),
		"--http-addr", freeAddr(t), "--grpc-addr", freeAddr(t), "--cluster-port", "0",
		"--stripe-webhook-secret", testSecret, "--log-level", "warn")
	t.Cleanup(p.kill)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.out.String(), "still waiting to join the cluster") {
		if time.Now().After(deadline) {
			t.Fatalf("no report of the unreachable etcd within 30s; output:\n%s", p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := p.out.String(); !strings.Contains(out, unreachable) {
		t.Errorf("the report does not name the etcd endpoint %s:\n%s", unreachable, out)
	}
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var exit interface{ ExitCode() int }
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Errorf("exit after SIGTERM while joining: %v, want a non-zero exit (it never started)", err)
		}
		t.Logf("exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5s after SIGTERM; output:\n%s", p.out.String())
	}
	if out := p.out.String(); !strings.Contains(out, "asked to stop") {
		t.Errorf("the exit does not say why:\n%s", out)
	}
}
