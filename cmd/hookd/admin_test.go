package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// get fetches url and returns its status and body.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// checkPublicServesNoAdmin checks that the public HTTP port at baseURL
// answers 404 for everything the admin listener serves.
func checkPublicServesNoAdmin(t *testing.T, c *http.Client, baseURL string) {
	t.Helper()
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"} {
		if code, body := get(t, c, baseURL+path); code != http.StatusNotFound {
			t.Errorf("public port: GET %s: %d, want 404; body %.200q", path, code, body)
		}
	}
	// Health stays on the public port: orchestrators probe it there.
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, c, baseURL+path); code != http.StatusOK {
			t.Errorf("public port: GET %s: %d, want 200; body %.200q", path, code, body)
		}
	}
}

// checkAdminServes checks that the admin listener at adminURL serves
// /metrics with every series in want (and the Go runtime's), and pprof.
func checkAdminServes(t *testing.T, c *http.Client, adminURL string, want ...string) {
	t.Helper()
	code, body := get(t, c, adminURL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("admin: GET /metrics: %d, want 200; body %.200q", code, body)
	}
	for _, m := range append([]string{"go_gc_duration_seconds_count ", "go_goroutines "}, want...) {
		if !strings.Contains(body, "\n"+m) {
			t.Errorf("admin /metrics lacks a %q series", m)
		}
	}
	code, body = get(t, c, adminURL+"/debug/pprof/")
	if code != http.StatusOK {
		t.Fatalf("admin: GET /debug/pprof/: %d, want 200", code)
	}
	for _, p := range []string{"heap", "goroutine", "allocs", "profile", "trace"} {
		if !strings.Contains(body, ">"+p+"</a>") {
			t.Errorf("pprof index does not list %s:\n%.500s", p, body)
		}
	}
	if code, body := get(t, c, adminURL+"/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("admin: GET /debug/pprof/goroutine?debug=1: %d %.200q, want 200 and a goroutine profile", code, body)
	}
	if code, body := get(t, c, adminURL+"/debug/pprof/heap"); code != http.StatusOK || len(body) == 0 {
		t.Errorf("admin: GET /debug/pprof/heap: %d, %d bytes; want 200 and a profile", code, len(body))
	}
	// Nor the command line, which may hold secrets (the harness passes
	// --stripe-webhook-secret and --database-url as flags).
	if code, body := get(t, c, adminURL+"/debug/pprof/cmdline"); code != http.StatusNotFound || strings.Contains(body, testSecret) {
		t.Errorf("admin: GET /debug/pprof/cmdline: %d %.200q, want 404 without the command line", code, body)
	}
	// The admin listener serves no webhooks.
	resp, err := c.Post(adminURL+"/v1/webhooks/stripe", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("admin: POST /v1/webhooks/stripe: %d, want 404", resp.StatusCode)
	}
}

// A process with both roles: /metrics and pprof only on --admin-addr.
func TestAdminListenerGatewayAndMember(t *testing.T) {
	t.Parallel()
	h := startHookd(t)
	if a := h.post(t, customerEvent("evt_admin_1", "customer.created", "cus_admin", 1700000000, "a@example.com")); a.Code != 200 {
		t.Fatalf("webhook: %+v, want 200", a)
	}
	checkPublicServesNoAdmin(t, h.http, h.baseURL)
	checkAdminServes(t, h.http, h.adminURL,
		`hookd_webhook_requests_total{code="200"} `, "hookd_customer_actors ", "hookd_store_commits_total ")
}

// A member alone (its HTTP port serves only health) and a gateway alone
// (in front of it): neither serves /metrics or pprof publicly, each serves
// its own on its admin listener.
func TestAdminListenerMemberOnlyAndGatewayOnly(t *testing.T) {
	t.Parallel()
	member := startHookd(t, "--roles", "member")
	checkPublicServesNoAdmin(t, member.http, member.baseURL)
	checkAdminServes(t, member.http, member.adminURL, "hookd_customer_actors ", "hookd_store_commits_total ")

	httpAddr, adminAddr := freeAddr(t), freeAddr(t)
	gw := startProcess(t, httpAddr, "--roles", "gateway", "--ingest-addr", member.grpcAddr,
		"--http-addr", httpAddr, "--admin-addr", adminAddr,
		"--stripe-webhook-secret", testSecret, "--log-level", "warn")
	t.Cleanup(func() {
		if err := gw.terminate(30 * time.Second); err != nil {
			t.Errorf("gateway did not stop cleanly: %v\n%s", err, gw.out.String())
		}
	})
	g := &hookd{webhookURL: "http://" + httpAddr + "/v1/webhooks/stripe", http: member.http}
	if a := g.post(t, customerEvent("evt_admin_gw", "customer.created", "cus_admin_gw", 1700000000, "g@example.com")); a.Code != 200 {
		t.Fatalf("webhook through the gateway: %+v, want 200", a)
	}
	checkPublicServesNoAdmin(t, member.http, "http://"+httpAddr)
	checkAdminServes(t, member.http, "http://"+adminAddr, `hookd_webhook_requests_total{code="200"} `)
}

// --admin-addr's default, "off", empty, its environment twin, the
// deprecated --debug-addr, and addresses it may not share.
func TestAdminAddrConfig(t *testing.T) {
	t.Parallel()
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		want      string
		wantWarn  bool
		wantError string
	}{
		{name: "default loopback", want: "127.0.0.1:9091"},
		{name: "given", args: []string{"--admin-addr", "10.0.0.7:9191"}, want: "10.0.0.7:9191"},
		{name: "empty disables", args: []string{"--admin-addr", ""}, want: ""},
		{name: "off disables", args: []string{"--admin-addr=off"}, want: ""},
		{name: "env", env: map[string]string{"HOOKD_ADMIN_ADDR": "0.0.0.0:9091"}, want: "0.0.0.0:9091"},
		{name: "env off", env: map[string]string{"HOOKD_ADMIN_ADDR": "off"}, want: ""},
		{name: "flag beats env", args: []string{"--admin-addr", "127.0.0.1:7"}, env: map[string]string{"HOOKD_ADMIN_ADDR": "0.0.0.0:9091"}, want: "127.0.0.1:7"},
		{name: "deprecated debug-addr", args: []string{"--debug-addr", "127.0.0.1:6060"}, want: "127.0.0.1:6060", wantWarn: true},
		{name: "deprecated env", env: map[string]string{"HOOKD_DEBUG_ADDR": "127.0.0.1:6060"}, want: "127.0.0.1:6060", wantWarn: true},
		{name: "debug-addr agrees", args: []string{"--debug-addr", "127.0.0.1:6060", "--admin-addr", "127.0.0.1:6060"}, want: "127.0.0.1:6060", wantWarn: true},
		{name: "debug-addr disagrees", args: []string{"--debug-addr", "127.0.0.1:6060", "--admin-addr", "127.0.0.1:9091"}, wantError: "disagree"},
		{name: "on the webhook port", args: []string{"--admin-addr", "127.0.0.1:8080"}, wantError: "also --http-addr"},
		{name: "on the grpc port", args: []string{"--admin-addr", "127.0.0.1:9090"}, wantError: "also --grpc-addr"},
		{name: "not host:port", args: []string{"--admin-addr", "9091"}, wantError: "--admin-addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := noEnv
			if tc.env != nil {
				getenv = func(k string) string { return tc.env[k] }
			}
			c, err := parseServe(tc.args, getenv)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("parseServe(%q): error %v, want one saying %q", tc.args, err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseServe(%q): %v", tc.args, err)
			}
			if c.AdminAddr != tc.want {
				t.Errorf("AdminAddr = %q, want %q", c.AdminAddr, tc.want)
			}
			if warned := len(c.warnings) > 0; warned != tc.wantWarn {
				t.Errorf("warnings %q, want a deprecation warning: %v", c.warnings, tc.wantWarn)
			}
		})
	}
}

// startAdmin in-process: the deprecated flag's warning reaches the log,
// the listener serves, Stop closes it (twice is fine), and a disabled one
// is nil and safe to stop.
func TestAdminStartStop(t *testing.T) {
	t.Parallel()
	cfg, err := parseServe([]string{"--debug-addr", "127.0.0.1:0"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, err := startAdmin(context.Background(), cfg, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "--debug-addr") {
		t.Errorf("no deprecation warning logged:\n%s", logs.String())
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	if code, body := get(t, client, "http://"+a.Addr()+"/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("GET /metrics: %d, want 200 with go_goroutines", code)
	}
	a.Stop()
	a.Stop()
	if _, err := client.Get("http://" + a.Addr() + "/metrics"); err == nil {
		t.Error("the admin listener still answers after Stop")
	}

	cfg.AdminAddr, cfg.warnings = "", nil
	off, err := startAdmin(context.Background(), cfg, log, prometheus.NewRegistry())
	if err != nil || off != nil {
		t.Fatalf("disabled: startAdmin = %v, %v; want nil, nil", off, err)
	}
	off.Stop()
	if off.Addr() != "" {
		t.Errorf("disabled: Addr %q, want empty", off.Addr())
	}
}
