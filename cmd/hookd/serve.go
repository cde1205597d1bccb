package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hookd/hookd/provider/stripe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/hookd/hookd/actors"
	"github.com/hookd/hookd/actors/customer"
	"github.com/hookd/hookd/gateway"
	"github.com/hookd/hookd/internal/console"
	"github.com/hookd/hookd/internal/tracing"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/services"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/batch"
	"github.com/hookd/hookd/store/postgres"
	"github.com/hookd/hookd/store/sqlite"
)

// run serves until ctx is done, then shuts down gracefully: it stops
// accepting, drains in-flight requests, stops the cluster member and
// closes the store.
func run(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer) error {
	started := time.Now()
	stopTracing, err := startTracing(ctx, log) // OTEL_*; stops last, flushing spans
	if err != nil {
		return err
	}
	defer stopTracing()
	// The process's own metrics (its actors, its store, its deliveries),
	// served on /metrics beside the package-level ones of the default
	// registry.
	metrics := prometheus.NewRegistry()
	registerBuildInfo(metrics) // opsmetrics.go
	var info banner
	var clusterTime time.Duration
	var (
		st       store.Store
		sys      *actors.System
		grpcSrv  *grpc.Server
		grpcLn   net.Listener
		httpSrv  *http.Server
		fastSrv  *fasthttp.Server // the webhook listener's, with --http-engine fasthttp
		httpLn   net.Listener
		conn     *grpc.ClientConn
		health   *grpchealth.Server
		drain    *services.StreamDrain
		local    hookdv1.IngestServiceClient // the in-process IngestService, when this process is a member
		draining atomic.Bool
		listen   sync.WaitGroup // the store's cross-process wake-up listener
	)
	rejects := console.NewRejections(rejectedWebhooks) // the console's rejected webhooks
	var consoleRts []adminRoute                        // the console, on a member
	listenCtx, stopListen := context.WithCancel(context.Background())
	defer func() {
		// Reverse order of start; every step tolerates a nil.
		if conn != nil {
			conn.Close()
		}
		stopListen()
		listen.Wait()
		if sys != nil {
			sys.Stop()
		}
		if st != nil {
			st.Close()
		}
	}()

	var hup chan os.Signal // SIGHUP re-reads the token file
	if cfg.TokenFile != "" && cfg.hasRole("member") {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	tlsSet, err := loadTLS(cfg, log)
	if err != nil {
		return err
	}
	scheme := "http"
	if tlsSet.http != nil {
		scheme = "https"
	}

	grpcAddr := cfg.GRPCAddr
	if cfg.hasRole("member") {
		var err error
		// Every commit with notifications wakes the notification readers:
		// once per group commit where commits are batched (PostgreSQL),
		// else from each actor's commit.
		wakeup := services.NewWakeup()
		if st, info.store, err = openStore(ctx, cfg, log, metrics, wakeup.Notify); err != nil {
			return err
		}
		actorCommitted := func(string) { wakeup.Notify() }
		if _, batched := st.(*batch.Store); batched {
			actorCommitted = nil
		}
		// Parked events, pool statistics, the outbox stall detector (opsmetrics.go).
		stopStoreMetrics, err := startStoreMetrics(ctx, metrics, st, log)
		if err != nil {
			return err
		}
		defer stopStoreMetrics()
		var (
			fetcher customer.SubscriptionFetcher
			objects customer.ObjectFetcher
		)
		if cfg.StripeAPIKey != "" {
			client := stripe.NewClient(cfg.StripeAPIKey, cfg.StripeAPIURL, log)
			fetcher, objects = client, client
		}
		clusterSrvOpts, clusterDialOpts := tlsSet.clusterOptions()
		sys, err = actors.New(actors.Config{
			Store:         st,
			Logger:        log,
			Committed:     actorCommitted,
			Membership:    cfg.Cluster,
			EtcdEndpoints: cfg.EtcdEndpoints,
			Host:          cfg.ClusterHost,
			Port:          cfg.ClusterPort,
			IdleTimeout:   cfg.IdleTimeout,
			ParkDeadline:  cfg.ParkDeadline,
			Fetcher:       fetcher,
			Objects:       objects,

			// Mutual TLS on the cluster port (--cluster-tls-*), when set.
			RemoteServerOptions: clusterSrvOpts,
			RemoteDialOptions:   clusterDialOpts,
		})
		if err != nil {
			return err
		}
		clusterStart := time.Now()
		if err := sys.Start(ctx); err != nil {
			return err
		}
		registerActorMetrics(metrics, sys)
		// protoactor's StartMember sleeps a fixed second; the rest is hookd's.
		clusterTime = time.Since(clusterStart)
		if n, ok := st.(store.Notifier); ok {
			// Commits on other members wake this member's subscribers.
			listen.Add(1)
			go func() {
				defer listen.Done()
				n.Listen(listenCtx, wakeup.Notify)
			}()
		}
		auth := services.NewAuth(services.AuthConfig{Static: cfg.authTokens(), File: cfg.TokenFile, Reload: hup, Logger: log})
		if err := auth.Start(); err != nil {
			return err
		}
		defer auth.Stop()
		if auth.Enabled() {
			info.grpcFlags = ` -H "authorization: Bearer $TOKEN"`
		}
		if cfg.Insecure && !cfg.credentialed() && !isLoopbackAddr(cfg.GRPCAddr) {
			log.WarnContext(ctx, "gRPC serves without authentication (--insecure): anyone who reaches it can read every customer and forge events", "addr", cfg.GRPCAddr)
		}
		if cfg.Insecure && !cfg.clusterTLS() && !isLoopbackHost(cfg.ClusterHost) {
			log.WarnContext(ctx, "the actor port serves without authentication (--insecure, no --cluster-tls-*): anyone who reaches it can forge events", "host", cfg.ClusterHost)
		}
		drain = services.NewStreamDrain()
		// Ingest takes no more than a webhook: --max-body-bytes bounds both.
		grpcSrv = grpc.NewServer(append(append(services.ServerOptions(log, auth),
			services.MaxRecvMsgSize(cfg.MaxBodyBytes), drain.ServerOption(), grpcMetricsOption(metrics)), append(tlsSet.grpcServerOptions(), tracing.GRPCServerOptions()...)...)...)
		reg, err := services.Register(grpcSrv, services.Config{Store: st, Actors: sys, Wakeup: wakeup, Logger: log,
			MaxPayloadBytes: cfg.MaxBodyBytes, Tolerance: cfg.Tolerance, MaxStreams: cfg.MaxStreams,
			Endpoints: endpointsConfig(cfg, st), Admin: adminConfig(st, sys)})
		if err != nil {
			return err
		}
		registerNotificationMetrics(metrics, reg) // opsmetrics.go
		// Push delivery starts once the services are in place; it stops
		// before the store closes (defers run last first).
		engine, err := startDelivery(ctx, cfg.Delivery, st, wakeup, log, metrics)
		if err != nil {
			return err
		}
		if engine != nil {
			defer engine.Stop()
		}
		// Self-repair from the Stripe API: AdminService.Backfill, and the
		// reconciler (stopped before the actors: defers run last first).
		bf, rec, err := startSelfRepair(ctx, cfg, st, reg, log, metrics)
		if err != nil {
			return err
		}
		if reg.Admin != nil {
			reg.Admin.UseBackfill(bf)
		}
		if rec != nil {
			defer rec.Stop()
		}
		// Stopped after the gRPC server (defers run last first), so that
		// it stops no stream that shutdown lets finish.
		if err := reg.Broadcaster.Start(ctx); err != nil {
			return fmt.Errorf("start notification broadcaster: %w", err)
		}
		defer reg.Broadcaster.Stop()
		health, local = reg.Health, reg.LocalIngest
		consoleRts = consoleRoutes(st, sys, reg, auth, rejects, log, metrics)
		// Readiness follows the store: NOT_SERVING while it cannot be
		// reached, SERVING again when it answers.
		probe := &services.StoreProbe{Store: st, Health: health, Logger: log}
		if err := probe.Start(); err != nil {
			return err
		}
		defer probe.Stop()
		if grpcLn, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			return fmt.Errorf("listen grpc: %w", err)
		}
		grpcAddr = grpcLn.Addr().String()
	}

	var httpAddr string
	if cfg.hasRole("gateway") {
		if len(cfg.StripeSecrets) == 0 {
			secret, created, err := loadOrCreateSecret(cfg.DataDir)
			if err != nil {
				return fmt.Errorf("no --stripe-webhook-secret given, and none could be generated: %w", err)
			}
			cfg.StripeSecrets = []string{secret}
			how := "kept"
			if created {
				how = "generated, kept"
			}
			info.secretNote = fmt.Sprintf("%s (%s in %s)", secret, how, filepath.Join(cfg.DataDir, secretFile))
			if filepath.Clean(cfg.DataDir) != filepath.Clean(defaultDataDir) {
				info.sendFlags += " --data-dir " + cfg.DataDir
			}
		} else {
			info.secretNote = fmt.Sprintf("%d configured (--stripe-webhook-secret / HOOKD_STRIPE_WEBHOOK_SECRET)", len(cfg.StripeSecrets))
		}
		target := cfg.IngestAddr
		if target == "" {
			target = grpcAddr
		}
		// A gateway in a member process calls its own IngestService
		// directly; readiness still asks the gRPC health service, so that
		// it reports what a remote gateway would see, except over TLS with
		// no --ingest-ca to verify the member by: then it asks the
		// in-process health service.
		check := func(ctx context.Context) (*healthpb.HealthCheckResponse, error) {
			return health.Check(ctx, &healthpb.HealthCheckRequest{})
		}
		var ingest hookdv1.IngestServiceClient = local
		if cfg.IngestAddr != "" || tlsSet.grpc == nil || tlsSet.ingest != nil {
			var err error
			if conn, err = ingestClient(target, cfg.IngestToken, tlsSet.ingest); err != nil {
				return fmt.Errorf("ingest client for %s: %w", target, err)
			}
			check = func(ctx context.Context) (*healthpb.HealthCheckResponse, error) {
				return healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			}
			if cfg.IngestAddr != "" || local == nil {
				ingest = hookdv1.NewIngestServiceClient(conn)
			}
		}
		gcfg := gateway.Config{
			Secrets:      cfg.StripeSecrets,
			Tolerance:    cfg.Tolerance,
			MaxBodyBytes: cfg.MaxBodyBytes,
			Ingest:       ingest,
			Logger:       log,
			OnReject:     rejects.Record,
			Ready: func(ctx context.Context) error {
				if draining.Load() {
					return errors.New("shutting down")
				}
				resp, err := check(ctx)
				if err != nil {
					return fmt.Errorf("ingest service: %w", err)
				}
				if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					return fmt.Errorf("ingest service is %s", resp.GetStatus())
				}
				return nil
			},
		}
		if cfg.HTTPEngine == engineFast {
			fast, err := gateway.NewFast(gcfg)
			if err != nil {
				return err
			}
			fastSrv = fast.Server(log)
		} else {
			handler, err := gateway.New(gcfg)
			if err != nil {
				return err
			}
			httpSrv = newHTTPServer(handler, log, tlsSet.http)
		}
		var err error
		if httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listen http: %w", err)
		}
		httpLn = netutil.LimitListener(httpLn, cfg.MaxHTTPConns)
		httpAddr = httpLn.Addr().String()
	} else {
		// A member alone serves only health over HTTP (metrics: the admin
		// listener).
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"status":"ok"}`) })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			if draining.Load() {
				http.Error(w, `{"error":"shutting down"}`, http.StatusServiceUnavailable)
				return
			}
			if resp, err := health.Check(r.Context(), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				http.Error(w, `{"error":"not serving: the store cannot be reached"}`, http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, `{"status":"ready"}`)
		})
		httpSrv = newHTTPServer(mux, log, tlsSet.http)
		var err error
		if httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listen http: %w", err)
		}
		httpAddr = httpLn.Addr().String()
	}

	// /metrics and pprof: the admin listener, never the public ports.
	admin, err := startAdmin(ctx, cfg, log, metrics, consoleRts...)
	if err != nil {
		return err
	}
	defer admin.Stop()
	info.adminAddr = admin.Addr()

	errc := make(chan error, 2)
	if grpcSrv != nil {
		go func() { errc <- grpcSrv.Serve(grpcLn) }()
		log.InfoContext(ctx, "grpc listening", "addr", grpcAddr)
	}
	if fastSrv != nil {
		go func() {
			ln := httpLn
			if tlsSet.http != nil {
				ln = tls.NewListener(ln, tlsSet.http)
			}
			errc <- fastSrv.Serve(ln) // nil once shut down
		}()
	}
	if httpSrv != nil {
		go func() {
			serve := httpSrv.Serve
			if httpSrv.TLSConfig != nil {
				// The certificate comes from TLSConfig.GetCertificate.
				serve = func(ln net.Listener) error { return httpSrv.ServeTLS(ln, "", "") }
			}
			if err := serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				return
			}
			errc <- nil
		}()
	}
	if httpSrv != nil || fastSrv != nil {
		engine := engineNet
		if fastSrv != nil {
			engine = engineFast
		}
		log.InfoContext(ctx, "http listening", "addr", httpAddr, "webhook", scheme+"://"+httpAddr+"/v1/webhooks/stripe", "engine", engine)
	}
	if httpAddr != "" && (httpAddr != defaultHTTPAddr || scheme != "http") {
		info.sendFlags += " --url " + scheme + "://" + httpAddr + "/v1/webhooks/stripe"
	}
	if tlsSet.http != nil {
		info.scheme = scheme
		info.sendFlags += " --ca <CA bundle>"
		info.grpcurlFlags = "-cacert <CA bundle>"
		if cfg.GRPCClientCA != "" {
			info.grpcurlFlags += " -cert <client cert> -key <client key>"
		}
	}
	info.httpAddr, info.grpcAddr = httpAddr, ""
	if grpcSrv != nil {
		info.grpcAddr = grpcAddr
	}
	log.InfoContext(ctx, "hookd ready", "startup", time.Since(started).Round(time.Millisecond),
		"cluster_member_start", clusterTime.Round(time.Millisecond))
	if stdout != nil {
		info.print(stdout)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		log.ErrorContext(ctx, "server stopped", "err", serveErr)
	}

	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	draining.Store(true)
	if drain != nil {
		// Open Subscribe streams never end by themselves: end them now
		// (their clients resume from their cursors) rather than let them
		// hold the graceful stop until the shutdown timeout.
		drain.Drain()
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if health != nil {
		// Gateways balance on the health service: let them move away
		// before this member stops taking requests.
		health.Shutdown()
		if cfg.Cluster != "local" {
			select {
			case <-time.After(cfg.DrainDelay):
			case <-shutCtx.Done():
			}
		}
	}
	// Stop accepting and wait for in-flight webhooks, which need the gRPC
	// server and the cluster still up.
	if httpSrv != nil {
		if err := httpSrv.Shutdown(shutCtx); err != nil {
			log.Warn("http shutdown", "err", err)
			httpSrv.Close()
		}
	}
	if fastSrv != nil {
		if err := fastSrv.ShutdownWithContext(shutCtx); err != nil {
			log.Warn("http shutdown", "err", err)
		}
	}
	if grpcSrv != nil {
		stopped := make(chan struct{})
		go func() { grpcSrv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-shutCtx.Done():
			grpcSrv.Stop() // subscribers' streams never end by themselves
			<-stopped
		}
	}
	return serveErr
}

// newHTTPServer is an HTTP server for h; tlsCfg, when not nil, makes it
// serve HTTPS (see the Serve call in run).
func newHTTPServer(h http.Handler, log *slog.Logger, tlsCfg *tls.Config) *http.Server {
	return &http.Server{
		TLSConfig:         tlsCfg,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    gateway.MaxHeaderBytes, // as on fasthttp (gateway.Fast)
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// ingestServiceConfig balances Ingest calls over every member the target
// resolves to, skips members whose health service says NOT_SERVING (one
// shutting down), and retries UNAVAILABLE: Ingest is idempotent (an event
// is deduplicated by its ID), so a retry can never apply an event twice.
const ingestServiceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": "hookd.v1.IngestService"},
  "methodConfig": [{
    "name": [{"service": "hookd.v1.IngestService"}],
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.05s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// ingestClient connects to the ingest service at target: one address, a
// comma-separated list of addresses, or any gRPC target (dns:///name:port
// resolves to every member behind a name). A token, when not empty, is
// sent as "authorization: Bearer <token>" with every call (in plaintext
// unless the connection uses TLS). With tlsCfg not nil it dials with TLS,
// verifying each member's certificate for the host it is dialed at.
func ingestClient(target, token string, tlsCfg *tls.Config) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(ingestServiceConfig),
		grpc.WithChainUnaryInterceptor(services.RequestIDUnaryClient), // the webhook's X-Request-Id, to the member
	}
	opts = append(opts, tracing.GRPCDialOptions()...)
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(services.BearerToken(token)))
	}
	if addrs := splitList(target); len(addrs) > 1 {
		r := manual.NewBuilderWithScheme("hookd-members")
		var state resolver.State
		for _, a := range addrs {
			addr := resolver.Address{Addr: a}
			if host, _, err := net.SplitHostPort(a); err == nil {
				// Verify each member by its own host, not the made-up
				// authority of the list.
				addr.ServerName = host
			}
			state.Addresses = append(state.Addresses, addr)
		}
		r.InitialState(state)
		opts = append(opts, grpc.WithResolvers(r))
		target = r.Scheme() + ":///members"
	}
	return grpc.NewClient(target, opts...)
}

// registerActorMetrics exposes the customer grains' figures on the
// process's registry (each hookd in a test binary has its own).
func registerActorMetrics(reg prometheus.Registerer, sys *actors.System) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hookd_customer_actors", Help: "Customer actors resident on this member (passivated after --idle-timeout without an event); each holds its customer's state."},
			func() float64 { r, _ := sys.Actors(); return float64(r) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hookd_customer_actor_activations_total", Help: "Customer actor activations on this member; each reads the customer's state from the store."},
			func() float64 { _, a := sys.Actors(); return float64(a) }),
	)
}

// registerBatchMetrics exposes group-commit figures on the process's
// registry.
func registerBatchMetrics(reg prometheus.Registerer, b *batch.Store) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hookd_store_commits_total", Help: "PostgreSQL transactions that committed events."},
			func() float64 { return float64(b.Stats().Commits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hookd_store_commit_writes_total", Help: "Event writes committed (several per transaction with group commit)."},
			func() float64 { return float64(b.Stats().Writes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hookd_store_commit_max_batch", Help: "The most writes one transaction committed."},
			func() float64 { return float64(b.Stats().MaxBatchSeen) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hookd_store_commit_busy_seconds_total", Help: "Time spent committing; its rate is the group committer's utilization (near 1: writes queue behind it)."},
			func() float64 { return b.Stats().Busy.Seconds() }),
	)
}

// openStore opens and migrates the store cfg selects: PostgreSQL for a
// postgres:// URL, else the embedded store in the data dir. It also says
// where the data is, for people.
func openStore(ctx context.Context, cfg config, log *slog.Logger, metrics prometheus.Registerer, committed func()) (store.Store, string, error) {
	u := cfg.DatabaseURL
	if u == "" {
		lite, err := sqlite.Open(ctx, cfg.DataDir, log)
		if err != nil {
			return nil, "", fmt.Errorf("open embedded store in %s: %w", cfg.DataDir, err)
		}
		if err := lite.Migrate(ctx); err != nil {
			lite.Close()
			return nil, "", fmt.Errorf("migrate embedded store: %w", err)
		}
		where, _ := filepath.Abs(cfg.DataDir)
		return lite, where + " (embedded SQLite; pass --database-url postgres://... for PostgreSQL)", nil
	}
	if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		return nil, "", fmt.Errorf("--database-url: unsupported scheme in %q (want postgres://)", redact(u))
	}
	pg, err := postgres.Open(ctx, u, log)
	if err != nil {
		return nil, "", fmt.Errorf("open postgres: %w", err)
	}
	if err := pg.Migrate(ctx); err != nil {
		pg.Close()
		return nil, "", fmt.Errorf("migrate: %w", err)
	}
	if cfg.CommitBatch == 0 { // hookd migrate
		return pg, redact(u) + " (PostgreSQL)", nil
	}
	bcfg := batch.Config{MaxBatch: cfg.CommitBatch, MaxWait: cfg.CommitLinger, Logger: log, Committed: committed}
	if err := bcfg.Validate(); err != nil {
		pg.Close()
		return nil, "", fmt.Errorf("--commit-batch: %w", err)
	}
	b := batch.New(pg, bcfg)
	if err := b.Start(ctx); err != nil {
		b.Close() // closes pg
		return nil, "", fmt.Errorf("start commit batching: %w", err)
	}
	registerBatchMetrics(metrics, b)
	return b, redact(u) + " (PostgreSQL)", nil
}

// redact hides a URL's password so it can be logged or shown.
func redact(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	creds := u[scheme+3 : at]
	if i := strings.Index(creds, ":"); i >= 0 {
		return u[:scheme+3] + creds[:i] + ":xxxxx" + u[at:]
	}
	return u
}
