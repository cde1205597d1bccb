package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/hookd/hookd/internal/tracing"
)

// tracingShutdownTimeout bounds the flush of spans still buffered on exit.
const tracingShutdownTimeout = 5 * time.Second

// startTracing installs OpenTelemetry tracing as the OTEL_* environment
// variables say (off unless an OTLP endpoint is set; see internal/tracing
// and docs/tracing.md) and returns the function that flushes and stops it,
// to be deferred before anything else so that it runs last.
func startTracing(ctx context.Context, log *slog.Logger) (stop func(), err error) {
	shutdown, err := tracing.Setup(ctx)
	if err != nil {
		return nil, err
	}
	if !tracing.Enabled() {
		return func() {}, nil
	}
	proto, _ := tracing.Protocol(os.Getenv)
	log.InfoContext(ctx, "tracing on: exporting spans over OTLP", "protocol", proto)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			log.Warn("tracing shutdown: spans may have been lost", "err", err)
		}
	}, nil
}
