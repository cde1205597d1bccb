// Command hookd receives third-party webhooks (Stripe first) and turns them
// into ordered, deduplicated, durable per-customer state and notifications.
//
//	hookd            serve (gateway and member roles by default)
//	hookd migrate    apply database migrations and exit
//	hookd send FILE  sign a Stripe event file as Stripe does and POST it
//	hookd bench      load a running hookd with signed events and report figures
//	hookd backfill   fetch missed events (or import objects) from the Stripe API, through a running member
//	hookd reproject  recompute customers' state from their stored events, through a running member
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hookd/hookd/internal/bench"
	"github.com/hookd/hookd/internal/reqid"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := dispatch(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hookd:", err)
		}
		os.Exit(2)
	}
}

// dispatch runs the subcommand named by args[0] (serve when none).
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := parseServe(args, getenv)
		if err != nil {
			return err
		}
		return run(ctx, cfg, newLogger(stderr, cfg.LogLevel, cfg.LogFormat), stdout)
	case "migrate":
		return migrate(ctx, args, getenv, newLogger(stderr, "info", "text"))
	case "send":
		return send(ctx, args, getenv, stdout)
	case "bench":
		return benchCmd(ctx, args, getenv, stdout)
	case "backfill":
		return backfillCmd(ctx, args, getenv, stdout)
	case "reproject":
		return reprojectCmd(ctx, args, getenv, stdout)
	default:
		return fmt.Errorf("unknown command %q (want serve, migrate, send, bench, backfill or reproject)", cmd)
	}
}

// benchCmd is `hookd bench` (internal/bench), with a local hookd's
// addresses and data dir as its defaults.
func benchCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return bench.Run(ctx, args, bench.Env{
		Getenv:      getenv,
		URL:         "http://" + defaultHTTPAddr + "/v1/webhooks/stripe",
		MetricsURL:  "http://" + defaultAdminAddr + "/metrics",
		DataDir:     defaultDataDir,
		LocalSecret: readSecretFile,
	}, stdout)
}

// newLogger logs at level in format (text or json: one JSON object a
// line); records logged with a context that carries a request ID
// (internal/reqid) get request_id.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(reqid.Handler(h))
}
