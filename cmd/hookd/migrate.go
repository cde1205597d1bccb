package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// migrate applies the store's migrations and exits.
func migrate(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger) error {
	fs := flag.NewFlagSet("hookd migrate", flag.ContinueOnError)
	var cfg config
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "a postgres:// URL")
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "where the embedded store keeps its data")
	if err := parseWithEnv(fs, args, getenv); err != nil {
		return err
	}
	st, where, err := openStore(ctx, cfg, log, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	st.Close()
	log.InfoContext(ctx, "migrations applied", "store", where)
	return nil
}
