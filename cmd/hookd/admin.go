package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The admin listener serves what operators and their tools read:
// /metrics (Prometheus) and /debug/pprof/ (Go's profiles), and later the
// console. It has no authentication of its own, so it lives on an address
// of its own (--admin-addr, loopback by default) and never on the public
// webhook port: keep it on a private interface that only monitoring can
// reach.

// adminFlags defines --admin-addr and its deprecated alias --debug-addr
// (the pprof listener's old name; it now sets the admin address).
func adminFlags(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.AdminAddr, "admin-addr", defaultAdminAddr,
		"admin listener: /metrics and /debug/pprof/, no authentication (keep it on loopback or a private interface); empty or \"off\" disables it")
	fs.Func("debug-addr", "deprecated: sets --admin-addr", func(v string) error {
		c.debugAddr = v
		return nil
	})
}

// resolveAdminAddr applies --debug-addr, and "off", to AdminAddr once the
// flags are parsed.
func (c *config) resolveAdminAddr(fs *flag.FlagSet) error {
	if c.debugAddr != "" {
		adminSet := false
		fs.Visit(func(f *flag.Flag) { adminSet = adminSet || f.Name == "admin-addr" })
		if adminSet && c.AdminAddr != c.debugAddr {
			return fmt.Errorf("--debug-addr %q and --admin-addr %q disagree: --debug-addr is a deprecated name of --admin-addr; give only --admin-addr", c.debugAddr, c.AdminAddr)
		}
		c.AdminAddr = c.debugAddr
		c.warnings = append(c.warnings, "--debug-addr (HOOKD_DEBUG_ADDR) is deprecated: use --admin-addr, which serves /metrics as well as /debug/pprof/")
	}
	if c.AdminAddr == "off" {
		c.AdminAddr = ""
	}
	return nil
}

// validateAdmin checks the admin address: a host:port that is not one of
// the public listeners' (a fixed port there would put /metrics and pprof
// on the webhook or gRPC port).
func (c config) validateAdmin() error {
	if c.AdminAddr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(c.AdminAddr)
	if err != nil {
		return fmt.Errorf("--admin-addr %q: %w", c.AdminAddr, err)
	}
	if port == "0" {
		return nil
	}
	for _, other := range []struct{ flag, addr string }{{"--http-addr", c.HTTPAddr}, {"--grpc-addr", c.GRPCAddr}} {
		if other.addr == c.AdminAddr {
			return fmt.Errorf("--admin-addr %s is also %s: the admin listener has no authentication and must have an address of its own", c.AdminAddr, other.flag)
		}
	}
	return nil
}

// adminHandler routes the admin listener: /metrics from the default
// Prometheus registry (the packages' hookd_* and the Go runtime's go_*)
// and from the process's own (metrics), and pprof.
func adminHandler(metrics prometheus.Gatherer, routes ...adminRoute) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes { // the console (console.go)
		mux.Handle(rt.pattern, rt.handler)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{prometheus.DefaultGatherer, metrics}, promhttp.HandlerOpts{}))
	// pprof.Index also serves the named profiles under it: heap, goroutine,
	// allocs, block, mutex, threadcreate.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	// Not /debug/pprof/cmdline: hookd's command line may carry secrets
	// (--stripe-webhook-secret, --database-url with a password), and this
	// listener has no authentication.
	mux.HandleFunc("/debug/pprof/cmdline", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not served: the command line may hold secrets", http.StatusNotFound)
	})
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "hookd admin listener (no authentication: keep it private)\n  /metrics        Prometheus\n  /debug/pprof/   Go profiles\n  /console/       web console (admin token required; members only)")
	})
	return mux
}

// adminServer is the admin listener. Start binds and serves; Stop is safe
// to call twice and before Start, and waits for the serving goroutine.
type adminServer struct {
	addr string
	log  *slog.Logger

	srv      *http.Server
	ln       net.Listener
	wg       sync.WaitGroup
	stopOnce sync.Once
}

func newAdminServer(addr string, log *slog.Logger, metrics prometheus.Gatherer, routes ...adminRoute) *adminServer {
	srv := newHTTPServer(adminHandler(metrics, routes...), log, nil)
	srv.WriteTimeout = 2 * time.Minute // CPU profiles and traces take their time (?seconds=30 by default)
	return &adminServer{addr: addr, log: log, srv: srv}
}

// Start binds the admin address and serves it until Stop.
func (a *adminServer) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("listen admin (--admin-addr): %w", err)
	}
	a.ln = ln
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.log.Warn("admin listener stopped", "err", err)
		}
	}()
	a.log.InfoContext(ctx, "admin listening", "addr", a.Addr(), "metrics", "http://"+a.Addr()+"/metrics", "authentication", "none")
	return nil
}

// Addr is the bound address (after Start), else the configured one; ""
// for a nil (disabled) server.
func (a *adminServer) Addr() string {
	if a == nil {
		return ""
	}
	if a.ln != nil {
		return a.ln.Addr().String()
	}
	return a.addr
}

// Stop closes the listener and its connections (a profile being taken is
// cut short) and waits for the serving goroutine. A nil server is a
// disabled listener: Stop does nothing.
func (a *adminServer) Stop() {
	if a == nil {
		return
	}
	a.stopOnce.Do(func() {
		if a.ln == nil {
			return
		}
		a.srv.Close()
		a.wg.Wait()
	})
}

// startAdmin starts the admin listener cfg asks for; nil when disabled.
func startAdmin(ctx context.Context, cfg config, log *slog.Logger, metrics prometheus.Gatherer, routes ...adminRoute) (*adminServer, error) {
	for _, w := range cfg.warnings {
		log.WarnContext(ctx, w)
	}
	if cfg.AdminAddr == "" {
		log.InfoContext(ctx, "admin listener disabled (--admin-addr empty): no /metrics, no pprof")
		return nil, nil
	}
	a := newAdminServer(cfg.AdminAddr, log, metrics, routes...)
	if err := a.Start(ctx); err != nil {
		return nil, err
	}
	return a, nil
}
