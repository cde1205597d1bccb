package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/hookd/hookd/internal/bench"
	"github.com/hookd/hookd/internal/certs/certstest"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// tlsClient is what a client of a TLS hookd needs: an HTTPS client and
// gRPC dial options that trust ca and, when pair is not nil, present it.
func tlsClient(t *testing.T, ca *certstest.CA, pair *certstest.Pair) harnessOptions {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	if pair != nil {
		cfg.Certificates = []tls.Certificate{pair.TLS(t)}
	}
	return harnessOptions{
		HTTPS:       true,
		HTTPClient:  &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg.Clone()}},
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg.Clone()))},
	}
}

// healthCheck calls grpc.health.v1 at addr with opts and returns the error.
func healthCheck(t *testing.T, addr string, opts ...grpc.DialOption) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// peerSerial is the serial of the certificate a TLS server at addr
// presents now.
func peerSerial(t *testing.T, addr string, cfg *tls.Config) *big.Int {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// TestTLSGatewayMemberSubscriber runs a member that requires client
// certificates on gRPC and a gateway-only process that serves HTTPS and
// dials the member with TLS and a client certificate; a subscriber with a
// certificate of its own follows the member's notifications.
func TestTLSGatewayMemberSubscriber(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t, "hookd")
	memberCert, gatewayCert := ca.Server(t, "member"), ca.Server(t, "gateway")
	gatewayClient, subscriberCert := ca.Client(t, "gateway-client"), ca.Client(t, "subscriber")
	subscriber := tlsClient(t, ca, &subscriberCert)

	member := startHookdWith(t, pgtest.NewDatabase(t), "", subscriber,
		"--roles", "member",
		"--tls-cert", memberCert.CertFile, "--tls-key", memberCert.KeyFile,
		"--grpc-client-ca", ca.File)
	gateway := startHookdWith(t, "", t.TempDir(), subscriber,
		"--roles", "gateway", "--ingest-addr", member.grpcAddr,
		"--ingest-ca", ca.File, "--ingest-cert", gatewayClient.CertFile, "--ingest-key", gatewayClient.KeyFile,
		"--tls-cert", gatewayCert.CertFile, "--tls-key", gatewayCert.KeyFile)

	t.Run("end to end", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stream, err := member.notifications().Subscribe(ctx, &hookdv1.SubscribeRequest{})
		if err != nil {
			t.Fatalf("Subscribe over mTLS: %v", err)
		}
		body, err := bench.GenerateEvent(bench.EventSpec{Type: "customer.created", Customer: "cus_tls1", Created: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(gateway.webhookURL, "https://") {
			t.Fatalf("webhook URL %s, want https://", gateway.webhookURL)
		}
		if a := gateway.post(t, body); a.Code != 200 || a.Status != "applied" {
			t.Fatalf("POST over HTTPS: %d %q %q, want 200 applied", a.Code, a.Status, a.Error)
		}
		n, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if n.GetCustomerId() != "cus_tls1" {
			t.Errorf("notification for %q, want cus_tls1", n.GetCustomerId())
		}
	})

	t.Run("gRPC client without a certificate is refused", func(t *testing.T) {
		noCert := tlsClient(t, ca, nil)
		err := healthCheck(t, member.grpcAddr, noCert.DialOptions...)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("health check without a client certificate: %v, want Unavailable (handshake refused)", err)
		}
		other := certstest.NewCA(t, "other")
		stranger := other.Client(t, "stranger")
		strangerOpts := tlsClient(t, ca, &stranger)
		if err := healthCheck(t, member.grpcAddr, strangerOpts.DialOptions...); status.Code(err) != codes.Unavailable {
			t.Errorf("health check with a certificate from another CA: %v, want Unavailable", err)
		}
		if err := healthCheck(t, member.grpcAddr, subscriber.DialOptions...); err != nil {
			t.Errorf("health check with a good client certificate: %v, want success", err)
		}
	})

	t.Run("plaintext client is refused", func(t *testing.T) {
		if err := healthCheck(t, member.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials())); status.Code(err) != codes.Unavailable {
			t.Errorf("plaintext gRPC to a TLS listener: %v, want Unavailable", err)
		}
		// Go's HTTPS server answers plain HTTP with a 400, never the handler.
		resp, err := http.Post("http://"+strings.TrimPrefix(gateway.webhookURL, "https://"), "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("plain HTTP to the HTTPS listener: %s, want 400", resp.Status)
			}
		}
	})

	t.Run("rotated certificates are served without restart", func(t *testing.T) {
		grpcClientCfg := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{subscriberCert.TLS(t)}, NextProtos: []string{"h2"}}
		httpsCfg := &tls.Config{RootCAs: ca.Pool()}
		gatewayHTTP := strings.TrimSuffix(strings.TrimPrefix(gateway.webhookURL, "https://"), "/v1/webhooks/stripe")
		if got := peerSerial(t, member.grpcAddr, grpcClientCfg); got.Cmp(memberCert.Serial) != 0 {
			t.Fatalf("member's gRPC serial before rotation %v, want %v", got, memberCert.Serial)
		}
		if got := peerSerial(t, gatewayHTTP, httpsCfg); got.Cmp(gatewayCert.Serial) != 0 {
			t.Fatalf("gateway's HTTPS serial before rotation %v, want %v", got, gatewayCert.Serial)
		}
		newMember, newGateway := ca.Server(t, "member"), ca.Server(t, "gateway")
		if newMember.Serial.Cmp(memberCert.Serial) == 0 {
			t.Fatal("rotation kept the serial")
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			gotGRPC, gotHTTP := peerSerial(t, member.grpcAddr, grpcClientCfg), peerSerial(t, gatewayHTTP, httpsCfg)
			if gotGRPC.Cmp(newMember.Serial) == 0 && gotHTTP.Cmp(newGateway.Serial) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("15s after rotation: member's gRPC serves serial %v (want %v), gateway's HTTPS %v (want %v)",
					gotGRPC, newMember.Serial, gotHTTP, newGateway.Serial)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// The gateway still reaches the member, and the webhook path works.
		body, err := bench.GenerateEvent(bench.EventSpec{Type: "customer.created", Customer: "cus_tls2", Created: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if a := gateway.post(t, body); a.Code != 200 {
			t.Errorf("POST after rotation: %d %q, want 200", a.Code, a.Error)
		}
	})
}

// TestTLSSingleProcess is the one-process hookd with --tls-cert and
// --grpc-client-ca but no --ingest-ca: its gateway cannot verify its own
// gRPC listener, so readiness asks the in-process health service; HTTPS
// and gRPC (mTLS) both serve.
func TestTLSSingleProcess(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t, "hookd")
	server, client := ca.Server(t, "hookd"), ca.Client(t, "client")
	h := startHookdWith(t, "", t.TempDir(), tlsClient(t, ca, &client),
		"--tls-cert", server.CertFile, "--tls-key", server.KeyFile, "--grpc-client-ca", ca.File)
	body, err := bench.GenerateEvent(bench.EventSpec{Type: "customer.created", Customer: "cus_tls3", Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if a := h.post(t, body); a.Code != 200 || a.Status != "applied" {
		t.Fatalf("POST: %d %q %q, want 200 applied", a.Code, a.Status, a.Error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_tls3"})
	if err != nil {
		t.Fatalf("GetCustomer over mTLS: %v", err)
	}
	if got.GetCustomerId() != "cus_tls3" {
		t.Errorf("GetCustomer: got %q, want cus_tls3", got.GetCustomerId())
	}
	if err := healthCheck(t, h.grpcAddr, tlsClient(t, ca, nil).DialOptions...); status.Code(err) != codes.Unavailable {
		t.Errorf("health check without a client certificate: %v, want Unavailable", err)
	}

	// hookd send verifies an https:// URL by --ca, and without it (the
	// system's roots) refuses the test CA's certificate.
	noEnv := func(string) string { return "" }
	sendArgs := []string{"--url", h.webhookURL, "--secret", testSecret, "--type", "customer.created", "--customer", "cus_tls4"}
	var out strings.Builder
	if err := send(ctx, append([]string{"--ca", ca.File}, sendArgs...), noEnv, &out); err != nil {
		t.Errorf("send --ca: %v (%s)", err, out.String())
	}
	if err := send(ctx, sendArgs, noEnv, io.Discard); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("send without --ca to a test CA's certificate: %v, want a certificate error", err)
	}

	// hookd bench over HTTPS, its subscriber over gRPC with mTLS.
	res, answered := runBenchJSON(t, []string{"--url", h.webhookURL, "--grpc-addr", h.grpcAddr, "--secret", testSecret,
		"--ca", ca.File, "--cert", client.CertFile, "--key", client.KeyFile,
		"--customers", "5", "--concurrency", "2", "--events", "40", "--duration", "30s", "--json"})
	if res.Events < 40 || answered != res.Events || res.Errors != 0 {
		t.Errorf("bench over TLS: %d answered (%d 2xx, transport errors %d), want at least 40, all 2xx", res.Events, answered, res.Errors)
	}
	if res.Notifications != res.Statuses["applied"] {
		t.Errorf("bench over TLS: %d notifications over mTLS, want %d", res.Notifications, res.Statuses["applied"])
	}
}

func TestTLSConfigValidation(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--tls-cert", "c.pem"},
		{"--tls-key", "k.pem"},
		{"--grpc-client-ca", "ca.pem"},
		{"--ingest-cert", "c.pem", "--ingest-key", "k.pem"},
		{"--ingest-ca", "ca.pem", "--ingest-cert", "c.pem"},
		{"--cluster-tls-cert", "c.pem", "--cluster-tls-key", "k.pem"},
		{"--cluster-tls-server-name", "hookd-cluster"},
	} {
		if _, err := parseServe(args, func(string) string { return "" }); err == nil {
			t.Errorf("parseServe(%q): nil error, want one", args)
		}
	}
	ok := []string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--grpc-client-ca", "ca.pem",
		"--ingest-ca", "ca.pem", "--ingest-cert", "c.pem", "--ingest-key", "k.pem",
		"--cluster-tls-cert", "c.pem", "--cluster-tls-key", "k.pem", "--cluster-tls-ca", "ca.pem"}
	if _, err := parseServe(ok, func(string) string { return "" }); err != nil {
		t.Errorf("parseServe(%q): %v", ok, err)
	}
	if c, err := parseServe(nil, func(k string) string {
		return map[string]string{"HOOKD_GRPC_CLIENT_CA": "ca.pem", "HOOKD_TLS_CERT": "c.pem", "HOOKD_TLS_KEY": "k.pem"}[k]
	}); err != nil || c.GRPCClientCA != "ca.pem" {
		t.Errorf("HOOKD_GRPC_CLIENT_CA: GRPCClientCA %q, err %v; want ca.pem, nil", c.GRPCClientCA, err)
	}
}

// TestTLSCluster runs two members whose cluster ports (protoactor's
// remote) speak mutual TLS: events for many customers, whose grains are
// spread over both members, are all applied through either member, and
// the cluster port refuses plaintext and certificate-less clients.
func TestTLSCluster(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t, "cluster")
	var ports []string
	c := startClusterWith(t, 2, func(i int) []string {
		peer := ca.Peer(t, fmt.Sprintf("member%d", i+1))
		addr := freeAddr(t)
		ports = append(ports, addr)
		_, port, _ := net.SplitHostPort(addr)
		args := []string{"--cluster-port", port,
			"--cluster-tls-cert", peer.CertFile, "--cluster-tls-key", peer.KeyFile, "--cluster-tls-ca", ca.File}
		if i == 1 {
			// Verify the peer by a name of its certificate rather than
			// the 127.0.0.1 it is dialed at.
			args = append(args, "--cluster-tls-server-name", "localhost")
		}
		return args
	})
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range 40 {
		body, err := bench.GenerateEvent(bench.EventSpec{Type: "customer.created", Customer: fmt.Sprintf("cus_tlscluster%d", i), Created: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, c.webhook, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", stripe.Sign(body, testSecret, time.Now()))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("event %d: %s, want 200 (members reach each other's grains over mutual TLS)", i, resp.Status)
		}
	}

	// protoactor's remote serves no health service: Unimplemented means
	// the handshake got through, Unavailable that it was refused.
	peer := ca.Peer(t, "probe")
	good := tlsClient(t, ca, &peer)
	for _, addr := range ports {
		if err := healthCheck(t, addr, good.DialOptions...); status.Code(err) != codes.Unimplemented {
			t.Errorf("cluster port %s with a member certificate: %v, want Unimplemented (handshake accepted)", addr, err)
		}
		if err := healthCheck(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials())); status.Code(err) != codes.Unavailable {
			t.Errorf("cluster port %s in plaintext: %v, want Unavailable (refused)", addr, err)
		}
		if err := healthCheck(t, addr, tlsClient(t, ca, nil).DialOptions...); status.Code(err) != codes.Unavailable {
			t.Errorf("cluster port %s without a client certificate: %v, want Unavailable (refused)", addr, err)
		}
	}
}

// The banner tells a person how to reach a TLS hookd; the quickstart's
// stays plaintext.
func TestTLSBanner(t *testing.T) {
	t.Parallel()
	var plain, secure strings.Builder
	banner{httpAddr: defaultHTTPAddr, grpcAddr: "127.0.0.1:9090"}.print(&plain)
	banner{httpAddr: defaultHTTPAddr, grpcAddr: "127.0.0.1:9090", scheme: "https", grpcurlFlags: "-cacert ca.pem"}.print(&secure)
	for _, want := range []string{"POST http://127.0.0.1:8080/", "grpcurl -plaintext 127.0.0.1:9090 list", "grpcurl -plaintext -d"} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("quickstart banner lacks %q:\n%s", want, plain.String())
		}
	}
	for _, want := range []string{"POST https://127.0.0.1:8080/", "grpcurl -cacert ca.pem 127.0.0.1:9090 list"} {
		if !strings.Contains(secure.String(), want) {
			t.Errorf("TLS banner lacks %q:\n%s", want, secure.String())
		}
	}
}

// --cluster-tls-server-name is the name a member verifies its peers by.
func TestTLSClusterServerName(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t, "cluster")
	peer := ca.Peer(t, "member")
	dial := func(serverName string) error {
		cfg := config{ClusterTLSCert: peer.CertFile, ClusterTLSKey: peer.KeyFile, ClusterTLSCA: ca.File, ClusterTLSServerName: serverName}
		s, err := loadTLS(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", s.clusterServer)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), s.clusterClient)
		if err != nil {
			return err
		}
		return c.Close()
	}
	if err := dial("localhost"); err != nil {
		t.Errorf("server name localhost, in the certificate: %v, want success", err)
	}
	if err := dial("other.example"); err == nil {
		t.Error("server name other.example, not in the certificate: handshake succeeded, want refused")
	}
}
