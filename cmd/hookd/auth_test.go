package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/services"
)

// Tokens of the hookd that TestAuthGRPC starts.
const (
	authIngestToken = "ingest-token-0123456789"
	authReadToken   = "read-token-0123456789"
	authAdminToken  = "admin-token-in-file-0123456789" // in the token file
	authRootToken   = "root-token-0123456789"          // --admin-token
)

func withToken(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func writeTokenFile(t *testing.T, path string, lines ...string) {
	t.Helper()
	// Write and rename, as an operator's tooling would, so that the
	// watcher never reads a half-written file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// envelope decodes a Stripe event for an IngestService call.
func envelope(t *testing.T, body []byte) *hookdv1.IngestRequest {
	t.Helper()
	env, err := stripe.DecodeEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	return &hookdv1.IngestRequest{Envelope: env}
}

// A hookd with tokens (from the token file, --tokens and --admin-token),
// serving gRPC on 0.0.0.0: every RPC needs a token with its scope; health
// stays open; a forged Ingest changes nothing; the token file reloads.
func TestAuthGRPC(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "tokens")
	writeTokenFile(t, tokenFile, "# hookd tokens", "admin "+authAdminToken)
	// Listen on every interface: allowed, since tokens are configured.
	_, port, _ := net.SplitHostPort(freeAddr(t))
	h := startHookd(t,
		"--grpc-addr", "0.0.0.0:"+port,
		"--token-file", tokenFile,
		"--tokens", "ingest "+authIngestToken+"; read "+authReadToken,
		"--admin-token", authRootToken)
	conn, err := grpc.NewClient("127.0.0.1:"+port, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.conn = conn
	bg := context.Background()

	// A signed customer, through the HTTP gateway (in-process ingest).
	if a := h.post(t, customerEvent("evt_auth_1", "customer.created", "cus_victim", 1700000000, "old@example.com")); a.Status != "applied" {
		t.Fatalf("signed event: %+v, want applied", a)
	}

	t.Run("every RPC", func(t *testing.T) {
		ingestN := 0
		rpcs := []struct {
			name  string
			right string // a token with the method's scope
			wrong string // a valid token without it
			call  func(ctx context.Context) error
		}{
			{"IngestService/Ingest", authIngestToken, authReadToken, func(ctx context.Context) error {
				ingestN++
				_, err := h.ingest().Ingest(ctx, envelope(t, customerEvent("evt_auth_table_"+string(rune('a'+ingestN)), "customer.created", "cus_table", 1700000000, "t@example.com")))
				return err
			}},
			{"CustomerService/GetCustomer", authReadToken, authIngestToken, func(ctx context.Context) error {
				_, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_victim"})
				return err
			}},
			{"EventService/ListEvents", authReadToken, authIngestToken, func(ctx context.Context) error {
				_, err := h.events().ListEvents(ctx, &hookdv1.ListEventsRequest{})
				return err
			}},
			{"EventService/GetEvent", authReadToken, authAdminToken, func(ctx context.Context) error {
				_, err := h.events().GetEvent(ctx, &hookdv1.GetEventRequest{EventId: "evt_auth_1"})
				return err
			}},
			{"EventService/ReplayEvent", authAdminToken, authReadToken, func(ctx context.Context) error {
				_, err := h.events().ReplayEvent(ctx, &hookdv1.ReplayEventRequest{EventId: "evt_auth_1"})
				return err
			}},
			{"NotificationService/Subscribe", authReadToken, authIngestToken, func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
				stream, err := h.notifications().Subscribe(ctx, &hookdv1.SubscribeRequest{FromNow: true})
				if err != nil {
					return err
				}
				_, err = stream.Recv()
				return err
			}},
			{"ServerReflection/ServerReflectionInfo", authReadToken, authIngestToken, func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(ctx)
				if err != nil {
					return err
				}
				// A stream the server already ended (refused) makes Send
				// return io.EOF; Recv then gives its status.
				if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				resp, err := stream.Recv()
				if err == nil && len(resp.GetListServicesResponse().GetService()) == 0 {
					t.Errorf("reflection listed no service")
				}
				return err
			}},
		}
		for _, rpc := range rpcs {
			for _, tc := range []struct {
				who   string
				token string
				want  codes.Code // OK here: any code but Unauthenticated and PermissionDenied
			}{
				{"no token", "", codes.Unauthenticated},
				{"wrong token", "not-a-token", codes.Unauthenticated},
				{"wrong scope", rpc.wrong, codes.PermissionDenied},
				{"right scope", rpc.right, codes.OK},
				{"--admin-token", authRootToken, codes.OK},
			} {
				got := status.Code(rpc.call(withToken(bg, tc.token)))
				if tc.want == codes.OK && got != codes.Unauthenticated && got != codes.PermissionDenied {
					continue
				}
				if got != tc.want {
					t.Errorf("%s with %s: got %v, want %v", rpc.name, tc.who, got, tc.want)
				}
			}
		}
	})

	t.Run("health is open", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(h.conn).Check(bg, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health without a token: %v (%v), want SERVING", resp.GetStatus(), err)
		}
	})

	// Issue #13: an unsigned Ingest without a token was applied.
	t.Run("forged ingest", func(t *testing.T) {
		forged := []*hookdv1.IngestRequest{
			envelope(t, customerEvent("evt_forged_1", "customer.updated", "cus_victim", 1700000001, "attacker@evil.example")),
			envelope(t, customerEvent("evt_forged_2", "customer.deleted", "cus_victim", 1700000002, "attacker@evil.example")),
			envelope(t, customerEvent("evt_forged_3", "customer.updated", "cus_victim", 32503680000, "attacker@evil.example")), // year 3000
		}
		for _, req := range forged {
			for _, token := range []string{"", "Bearer", authReadToken} {
				if _, err := h.ingest().Ingest(withToken(bg, token), req); status.Code(err) != codes.Unauthenticated && status.Code(err) != codes.PermissionDenied {
					t.Errorf("forged %s with token %q: %v, want Unauthenticated or PermissionDenied", req.GetEnvelope().GetEventId(), token, err)
				}
			}
		}
		c, err := h.customers().GetCustomer(withToken(bg, authReadToken), &hookdv1.GetCustomerRequest{CustomerId: "cus_victim"})
		if err != nil || c.GetEmail() != "old@example.com" || c.GetDeleted() || c.GetVersion() != 1 {
			t.Fatalf("after forged calls: %v (%v), want old@example.com, not deleted, version 1", c, err)
		}
		if a := h.post(t, customerEvent("evt_auth_2", "customer.updated", "cus_victim", 1700000100, "new@example.com")); a.Status != "applied" {
			t.Errorf("signed update after forged calls: %+v, want applied (not superseded)", a)
		}
	})

	t.Run("token file reload", func(t *testing.T) {
		const added = "added-token-0123456789"
		get := func(token string) codes.Code {
			_, err := h.customers().GetCustomer(withToken(bg, token), &hookdv1.GetCustomerRequest{CustomerId: "cus_victim"})
			return status.Code(err)
		}
		eventually := func(token string, want codes.Code) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for got := get(token); got != want; got = get(token) {
				if time.Now().After(deadline) {
					t.Fatalf("token %s: got %v, want %v", token, got, want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if got := get(added); got != codes.Unauthenticated {
			t.Fatalf("token not yet in the file: got %v, want Unauthenticated", got)
		}
		writeTokenFile(t, tokenFile, "admin "+authAdminToken, "read "+added)
		eventually(added, codes.OK)
		// A broken file keeps the tokens in force.
		writeTokenFile(t, tokenFile, "admin "+authAdminToken, "read "+added, "nonsense")
		time.Sleep(2500 * time.Millisecond)
		eventually(added, codes.OK)
		writeTokenFile(t, tokenFile, "admin "+authAdminToken)
		eventually(added, codes.Unauthenticated)
		eventually(authReadToken, codes.OK) // --tokens stay

		// SIGHUP re-reads the file, and does not stop hookd.
		writeTokenFile(t, tokenFile, "admin "+authAdminToken, "read "+added)
		if err := h.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		eventually(added, codes.OK)
		if strings.Contains(h.proc.out.String(), added) || strings.Contains(h.proc.out.String(), authAdminToken) {
			t.Errorf("a token reached hookd's log:\n%s", h.proc.out.String())
		}
	})

	t.Run("bench with a token", func(t *testing.T) {
		args := []string{"--url", h.webhookURL, "--grpc-addr", h.conn.Target(), "--secret", testSecret,
			"--customers", "5", "--concurrency", "2", "--events", "20", "--duration", "30s", "--json"}
		var out bytes.Buffer
		if err := benchCmd(t.Context(), args, func(string) string { return "" }, &out); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
			t.Errorf("bench without a token: %v, want Unauthenticated", err)
		}
		res, _ := runBenchJSON(t, append(args, "--token", authReadToken))
		if res.Notifications == 0 || res.Notifications != res.Statuses["applied"] {
			t.Errorf("bench --token: %d notifications for %d applied events", res.Notifications, res.Statuses["applied"])
		}
	})

	t.Run("gateway-only with --ingest-token", func(t *testing.T) {
		for _, tc := range []struct {
			token string
			want  int
		}{{authIngestToken, 200}, {authReadToken, 503}} {
			httpAddr := freeAddr(t)
			gw := startProcess(t, httpAddr, "--roles", "gateway", "--ingest-addr", h.conn.Target(), "--ingest-token", tc.token,
				"--http-addr", httpAddr, "--stripe-webhook-secret", testSecret, "--log-level", "warn", "--shutdown-timeout", "5s")
			g := *h
			g.webhookURL = "http://" + httpAddr + "/v1/webhooks/stripe"
			a := g.post(t, customerEvent("evt_gw_"+tc.token[:4], "customer.created", "cus_gw_"+tc.token[:4], 1700000000, "gw@example.com"))
			if a.Code != tc.want {
				t.Errorf("gateway with the %s token: %d %+v, want %d", tc.token[:4], a.Code, a, tc.want)
			}
			if err := gw.terminate(30 * time.Second); err != nil {
				t.Errorf("gateway did not stop cleanly: %v\n%s", err, gw.out.String())
			}
		}
	})

	// Printed once ready: long since, by now.
	if !strings.Contains(h.proc.out.String(), `grpcurl -plaintext -H "authorization: Bearer $TOKEN"`) {
		t.Errorf("the banner's grpcurl lines do not send a token:\n%s", h.proc.out.String())
	}
}

// Secure by default: without a credential gRPC stays on loopback, and
// without cluster TLS the actor port does, unless --insecure.
func TestAuthSecureByDefaultConfig(t *testing.T) {
	t.Parallel()
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		args    []string
		env     map[string]string
		wantErr string // "" for a config that must parse
	}{
		{args: nil},
		{args: []string{"--grpc-addr", "localhost:9090"}},
		{args: []string{"--grpc-addr", "127.0.0.2:9090"}},
		{args: []string{"--grpc-addr", "[::1]:9090"}},
		{args: []string{"--grpc-addr", "0.0.0.0:9090"}, wantErr: "--grpc-addr 0.0.0.0:9090 is not a loopback address"},
		{args: []string{"--grpc-addr", ":9090"}, wantErr: "--grpc-addr :9090 is not a loopback address"},
		{args: []string{"--grpc-addr", "[::]:9090"}, wantErr: "not a loopback address"},
		{args: []string{"--grpc-addr", "192.168.1.5:9090"}, wantErr: "not a loopback address"},
		{args: []string{"--grpc-addr", "hookd.internal:9090"}, wantErr: "not a loopback address"},
		{args: []string{"--cluster-host", "0.0.0.0"}, wantErr: "--cluster-host 0.0.0.0 is not a loopback address"},
		{args: []string{"--cluster-host", "10.0.0.7"}, wantErr: "--cluster-host 10.0.0.7"},
		{args: []string{"--cluster-host", "localhost"}},
		{args: []string{"--cluster-host", "::1"}},
		{env: map[string]string{"HOOKD_GRPC_ADDR": "0.0.0.0:9090"}, wantErr: "not a loopback address"},
		{env: map[string]string{"HOOKD_CLUSTER_HOST": "10.0.0.7"}, wantErr: "--cluster-host 10.0.0.7"},
		{args: []string{"--grpc-addr", "0.0.0.0:9090", "--cluster-host", "10.0.0.7", "--insecure"}},
		// The actor port checks no token and no gRPC client certificate:
		// only cluster TLS lets it beyond loopback.
		{args: []string{"--grpc-addr", "0.0.0.0:9090", "--cluster-host", "10.0.0.7", "--admin-token", "x"}, wantErr: "--cluster-host 10.0.0.7 is not a loopback address"},
		{args: []string{"--cluster-host", "10.0.0.7", "--token-file", "/etc/hookd/tokens"}, wantErr: "--cluster-host 10.0.0.7"},
		{args: []string{"--cluster-host", "10.0.0.7", "--grpc-client-ca", "/etc/hookd/ca.pem", "--tls-cert", "/etc/hookd/tls.crt", "--tls-key", "/etc/hookd/tls.key"}, wantErr: "--cluster-host 10.0.0.7"},
		{args: []string{"--cluster-host", "10.0.0.7"}, env: map[string]string{"HOOKD_TOKENS": "ingest abc"}, wantErr: "--cluster-host 10.0.0.7"},
		{args: []string{"--cluster-host", "10.0.0.7", "--cluster-tls-cert", "/c/tls.crt", "--cluster-tls-key", "/c/tls.key"}, wantErr: "--cluster-host 10.0.0.7"},
		{args: []string{"--cluster-host", "10.0.0.7", "--cluster-tls-cert", "/c/tls.crt", "--cluster-tls-key", "/c/tls.key", "--cluster-tls-ca", "/c/ca.crt"}},
		{args: []string{"--grpc-addr", "0.0.0.0:9090", "--cluster-host", "10.0.0.7", "--admin-token", "x",
			"--cluster-tls-cert", "/c/tls.crt", "--cluster-tls-key", "/c/tls.key", "--cluster-tls-ca", "/c/ca.crt", "--cluster-tls-server-name", "hookd-member"}},
		{args: []string{"--cluster-host", "0.0.0.0"}, env: map[string]string{
			"HOOKD_CLUSTER_TLS_CERT": "/c/tls.crt", "HOOKD_CLUSTER_TLS_KEY": "/c/tls.key", "HOOKD_CLUSTER_TLS_CA": "/c/ca.crt"}},
		// Cluster TLS says nothing about gRPC callers.
		{args: []string{"--grpc-addr", "0.0.0.0:9090", "--cluster-tls-cert", "/c/tls.crt", "--cluster-tls-key", "/c/tls.key", "--cluster-tls-ca", "/c/ca.crt"}, wantErr: "--grpc-addr 0.0.0.0:9090 is not a loopback address"},
		// A gateway alone hosts no actors.
		{args: []string{"--roles", "gateway", "--ingest-addr", "127.0.0.1:9090", "--cluster-host", "10.0.0.7"}},
		{args: []string{"--grpc-addr", "0.0.0.0:9090", "--token-file", "/etc/hookd/tokens"}},
		{args: []string{"--grpc-addr", "0.0.0.0:9090", "--grpc-client-ca", "/etc/hookd/ca.pem", "--tls-cert", "/etc/hookd/tls.crt", "--tls-key", "/etc/hookd/tls.key"}},
		{args: []string{"--grpc-addr", "0.0.0.0:9090"}, env: map[string]string{"HOOKD_TOKENS": "read abc;ingest def"}},
		{env: map[string]string{"HOOKD_TOKENS": "read hush-secret extra"}, wantErr: "--tokens / HOOKD_TOKENS: entry 1"},
		{env: map[string]string{"HOOKD_INSECURE": "true", "HOOKD_GRPC_ADDR": "0.0.0.0:9090"}},
		// A gateway alone listens on no gRPC port; it needs a token to
		// forward over the network.
		{args: []string{"--roles", "gateway", "--grpc-addr", "0.0.0.0:9090", "--ingest-addr", "127.0.0.1:9090,localhost:9091"}},
		{args: []string{"--roles", "gateway", "--ingest-addr", "10.0.0.7:9090"}, wantErr: "--ingest-addr 10.0.0.7:9090 is not a loopback address: pass --ingest-token"},
		{args: []string{"--roles", "gateway", "--ingest-addr", "dns:///hookd-members:9090"}, wantErr: "pass --ingest-token"},
		{args: []string{"--roles", "gateway", "--ingest-addr", "10.0.0.7:9090", "--ingest-token", "t"}},
		{args: []string{"--roles", "gateway", "--ingest-addr", "10.0.0.7:9090", "--insecure"}},
	} {
		getenv := noEnv
		if tc.env != nil {
			getenv = func(k string) string { return tc.env[k] }
		}
		_, err := parseServe(tc.args, getenv)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("parseServe(%q, %v): %v, want no error", tc.args, tc.env, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("parseServe(%q, %v): %v, want an error containing %q", tc.args, tc.env, err, tc.wantErr)
		case err != nil && strings.Contains(err.Error(), "hush-secret"):
			t.Errorf("parseServe: the error %q shows a token", err)
		}
	}
	_, err := parseServe([]string{"--grpc-addr", "0.0.0.0:9090"}, noEnv)
	for _, fix := range []string{"--token-file", "HOOKD_TOKENS", "--admin-token", "--grpc-client-ca", "--insecure"} {
		if err == nil || !strings.Contains(err.Error(), fix) {
			t.Errorf("error %v does not say to add %s", err, fix)
		}
	}
	if err != nil && strings.Contains(err.Error(), "--cluster-tls") {
		t.Errorf("error %v: a loopback --cluster-host needs no cluster TLS", err)
	}
	_, err = parseServe([]string{"--cluster-host", "10.0.0.7", "--token-file", "/etc/hookd/tokens"}, noEnv)
	for _, fix := range []string{"--cluster-tls-cert", "--cluster-tls-key", "--cluster-tls-ca", "--cluster-tls-server-name", "--insecure"} {
		if err == nil || !strings.Contains(err.Error(), fix) {
			t.Errorf("error %v does not say to add %s", err, fix)
		}
	}
	if err != nil && strings.Contains(err.Error(), "--grpc-addr") {
		t.Errorf("error %v: a loopback --grpc-addr is no problem", err)
	}

	c, err := parseServe([]string{"--tokens", "ingest a; read,admin b", "--admin-token", "c"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := []services.Token{services.NewToken("a", services.ScopeIngest), services.NewToken("b", services.ScopeRead|services.ScopeAdmin), services.NewToken("c", services.ScopeAll)}
	if got := c.authTokens(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("authTokens: got %d tokens %v, want %v", len(got), got, want)
	}
}

// The real binary refuses to serve gRPC on 0.0.0.0 without a credential,
// and says what to add; with --insecure it starts.
func TestAuthSecureByDefaultStart(t *testing.T) {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	args := []string{"--data-dir", t.TempDir(), "--http-addr", freeAddr(t), "--grpc-addr", "0.0.0.0:" + port, "--log-level", "warn"}
	p := spawnProcess(t, args...)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(p.out.String(), "--token-file") || !strings.Contains(p.out.String(), "--insecure") {
			t.Errorf("hookd on 0.0.0.0 without a credential: exit %v, output %q; want a failure that says to add --token-file or --insecure", err, p.out.String())
		}
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatalf("hookd on 0.0.0.0 without a credential still runs after 30s:\n%s", p.out.String())
	}

	httpAddr := freeAddr(t)
	args[3] = httpAddr
	p = startProcess(t, httpAddr, append(args, "--insecure", "--shutdown-timeout", "5s")...)
	if err := p.terminate(30 * time.Second); err != nil {
		t.Errorf("hookd --insecure did not stop cleanly: %v\n%s", err, p.out.String())
	}
	if !strings.Contains(p.out.String(), "without authentication") {
		t.Errorf("hookd --insecure on 0.0.0.0 did not warn:\n%s", p.out.String())
	}
}
