package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// migrate applies PostgreSQL's migrations and exits. Without a database
// URL it is an error, not a silent success: the embedded store migrates
// itself at start.
func migrate(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger) error {
	fs := flag.NewFlagSet("hookd migrate", flag.ContinueOnError)
	var cfg config
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "a postgres:// URL")
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "unused: the embedded store in it migrates itself when hookd starts")
	if err := parseWithEnv(fs, args, getenv); err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("migrate: no --database-url (or HOOKD_DATABASE_URL): hookd migrate applies PostgreSQL's migrations; " +
			"the embedded store (--data-dir) migrates itself when hookd starts, so there is nothing to run for it")
	}
	st, where, err := openStore(ctx, cfg, log, prometheus.NewRegistry(), nil)
	if err != nil {
		return err
	}
	st.Close()
	log.InfoContext(ctx, "migrations applied", "store", where)
	return nil
}
