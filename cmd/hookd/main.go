// Command hookd receives third-party webhooks (Stripe first) and turns them
// into ordered, deduplicated, durable per-customer state and notifications.
//
//	hookd            serve (gateway and member roles by default)
//	hookd migrate    apply database migrations and exit
//	hookd send FILE  sign a Stripe event file as Stripe does and POST it
//	hookd bench      load a running hookd with signed events and report figures
//	hookd backfill   fetch missed events (or import objects) from the Stripe API, through a running member
//	hookd reproject  recompute customers' state from their stored events, through a running member
//	hookd events     list, show and replay stored events over gRPC
//	hookd tail       follow notifications, resumable
//	hookd version    print the version and VCS revision
//	hookd help       list the commands, or show one's flags
package main

import (
	"context"
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
		fmt.Fprintln(os.Stderr, "hookd:", err)
		os.Exit(2)
	}
}

// dispatch runs the subcommand named by args[0] (serve when none).
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	} else if len(args) > 0 && isHelpFlag(args[0]) {
		name, args = "help", args[1:] // hookd -h: the commands, not serve's flags
	}
	cmd, ok := findCommand(name)
	if !ok {
		return unknownCommand("hookd", name, commands)
	}
	return runCommand(ctx, "hookd", cmd, args, cliEnv{getenv: getenv, stdout: stdout, stderr: stderr})
}

// commands are hookd's subcommands, in the order help lists them. Every
// one has a line of help (TestHelpListsEveryCommand).
var commands = []command{
	{name: "serve", args: "[flags]", summary: "receive webhooks and serve the gRPC API (the default command)",
		run: func(ctx context.Context, args []string, e cliEnv) error {
			cfg, err := parseServe(args, e.getenv)
			if err != nil {
				return err
			}
			return run(ctx, cfg, newLogger(e.stderr, cfg.LogLevel, cfg.LogFormat), e.stdout)
		}},
	{name: "migrate", args: "--database-url URL", summary: "apply PostgreSQL's migrations and exit",
		run: func(ctx context.Context, args []string, e cliEnv) error {
			return migrate(ctx, args, e.getenv, newLogger(e.stderr, "info", "text"))
		}},
	{name: "send", args: "[flags] FILE|- | --type TYPE --customer ID", summary: "sign a Stripe event as Stripe does and POST it to hookd",
		run: func(ctx context.Context, args []string, e cliEnv) error { return send(ctx, args, e.getenv, e.stdout) }},
	{name: "events", args: "list|get|replay [flags]", summary: "list, show and replay stored events over gRPC", subcommands: eventsCommands},
	{name: "tail", args: "[flags]", summary: "follow notifications as they are committed, resumable with --cursor-file",
		run: func(ctx context.Context, args []string, e cliEnv) error {
			return tailCmd(ctx, args, e.getenv, e.stdout)
		}},
	{name: "bench", args: "[flags]", summary: "load a running hookd with signed events and report figures",
		run: func(ctx context.Context, args []string, e cliEnv) error {
			return benchCmd(ctx, args, e.getenv, e.stdout)
		}},
	{name: "backfill", args: "[flags]", summary: "fetch missed events (or import objects) from the Stripe API, through a running member",
		run: func(ctx context.Context, args []string, e cliEnv) error {
			return backfillCmd(ctx, args, e.getenv, e.stdout)
		}},
	{name: "reproject", args: "[flags]", summary: "recompute customers' state from their stored events, through a running member",
		run: func(ctx context.Context, args []string, e cliEnv) error {
			return reprojectCmd(ctx, args, e.getenv, e.stdout)
		}},
	{name: "version", args: "", summary: "print hookd's version and the revision it was built from",
		run: func(_ context.Context, args []string, e cliEnv) error { return versionCmd(args, e.stdout) }},
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
