package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookd/hookd/actors"
	"github.com/hookd/hookd/internal/backfill"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/services"
	"github.com/hookd/hookd/store"
)

// Self-repair from Stripe's API (internal/backfill): AdminService.Backfill
// on request, and the reconciler on its own, both on members with
// --stripe-api-key.

// adminConfig is AdminService's configuration: re-projection through the
// actors, over the store's customers; nil when the store cannot list
// them.
func adminConfig(st store.Store, sys *actors.System) *services.AdminConfig {
	cl, ok := st.(store.CustomerLister)
	if !ok {
		return nil
	}
	return &services.AdminConfig{Reproject: sys, Customers: cl}
}

// backfiller adapts a backfill.Runner to services.Backfiller.
type backfiller struct{ runner *backfill.Runner }

func (b backfiller) Backfill(ctx context.Context, req *hookdv1.BackfillRequest, progress func(*hookdv1.BackfillProgress)) error {
	_, err := b.runner.Run(ctx, backfill.Request{
		Since: req.GetSince().AsDuration(), Objects: req.GetObjects(), Restart: req.GetRestart(), Origin: backfill.OriginManual,
	}, func(p backfill.Progress) { progress(backfillProgressProto(p)) })
	return err
}

func backfillProgressProto(p backfill.Progress) *hookdv1.BackfillProgress {
	c := p.Counts
	out := &hookdv1.BackfillProgress{
		RunId: p.RunID, Phase: p.Phase, Total: p.Total, Processed: p.Processed, Done: p.Done, Message: p.Message,
		Counts: &hookdv1.BackfillCounts{
			Fetched: c[backfill.CountFetched], Applied: c["applied"], Duplicate: c["duplicate"], Parked: c["parked"],
			Superseded: c["superseded"], Ignored: c["ignored"], Failed: c[backfill.CountFailed],
		},
	}
	if !p.Since.IsZero() {
		out.Since = timestamppb.New(p.Since)
	}
	return out
}

// retryableIngest says whether a failed backfill ingest may succeed when
// tried again: the store or an actor was unavailable, not a rejected
// event.
func retryableIngest(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// startSelfRepair builds the backfill runner (nil without an API key) and
// starts the reconciler unless --reconcile-interval is 0. The caller stops
// the reconciler.
func startSelfRepair(ctx context.Context, cfg config, st store.Store, reg *services.Registered, log *slog.Logger, metrics prometheus.Registerer) (services.Backfiller, *backfill.Reconciler, error) {
	if cfg.StripeAPIKey == "" {
		if cfg.ReconcileInterval > 0 {
			log.InfoContext(ctx, "reconciliation from the Stripe Events API is off: no --stripe-api-key")
		}
		return nil, nil, nil
	}
	bs, ok := store.Backfills(st)
	if !ok {
		return nil, nil, errors.New("the store does not support backfills")
	}
	client := stripe.NewClient(cfg.StripeAPIKey, cfg.StripeAPIURL, log)
	client.SetRequestsPerSecond(cfg.StripeAPIRate)
	runner := &backfill.Runner{Store: bs, Source: client, Ingest: reg.IngestRaw, Logger: log,
		Config: backfill.Config{Retryable: retryableIngest}}
	if cfg.ReconcileInterval <= 0 {
		return backfiller{runner}, nil, nil
	}
	host, _ := os.Hostname()
	rec := backfill.NewReconciler(backfill.ReconcilerConfig{
		Runner: runner, Owner: host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36),
		Interval: cfg.ReconcileInterval, Registerer: metrics,
	})
	if err := rec.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("start reconciliation: %w", err)
	}
	return backfiller{runner}, rec, nil
}
