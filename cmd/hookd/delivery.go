package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/hookd/hookd/internal/delivery"
	"github.com/hookd/hookd/services"
	"github.com/hookd/hookd/store"
)

// Push delivery (EndpointService, internal/delivery): every member runs
// the engine over the shared store, which leases each delivery to one
// member at a time.

// deliveryConfig is what the --delivery-* flags set.
type deliveryConfig struct {
	Enabled       bool
	AllowPrivate  bool
	Timeout       time.Duration
	Lease         time.Duration
	Concurrency   int
	Schedule      []time.Duration
	DisableAfter  time.Duration
	Poll          time.Duration
	EndpointsFile string
}

// deliveryFlags defines the --delivery-* flags, --allow-private-endpoints
// and --endpoints-file.
func deliveryFlags(fs *flag.FlagSet, c *deliveryConfig) {
	fs.BoolVar(&c.Enabled, "delivery", true, "push delivery: POST notifications to the endpoints registered with EndpointService (or --endpoints-file); false: this member delivers nothing (others sharing the database still do)")
	fs.BoolVar(&c.AllowPrivate, "allow-private-endpoints", false, "allow endpoints on loopback, private, link-local (cloud metadata) and other internal addresses; refused by default, at create and at connect time")
	fs.DurationVar(&c.Timeout, "delivery-timeout", delivery.DefaultTimeout, "how long one delivery attempt may take, connect to answer")
	fs.DurationVar(&c.Lease, "delivery-lease", 0, "how long a member holds a delivery it claimed before another member may take it over (default --delivery-timeout + 30s)")
	fs.IntVar(&c.Concurrency, "delivery-concurrency", delivery.DefaultConcurrency, "most attempts in flight per endpoint on this member")
	c.Schedule = delivery.DefaultSchedule
	fs.Func("delivery-schedule", "retry schedule: the waits after each failed attempt, comma-separated (default 5s,5m,30m,2h,5h,10h,10h); when it is exhausted the delivery fails (dead letter)", func(v string) error {
		s, err := parseSchedule(v)
		c.Schedule = s
		return err
	})
	fs.DurationVar(&c.DisableAfter, "delivery-disable-after", delivery.DefaultDisableAfter, "disable an endpoint whose every attempt failed for this long (0: never)")
	fs.DurationVar(&c.Poll, "delivery-poll", delivery.DefaultPollInterval, "how often the delivery engine looks for due retries and endpoint changes without a wake-up")
	fs.StringVar(&c.EndpointsFile, "endpoints-file", "", "YAML or JSON file of endpoints (see docs/delivery.md), applied at every start; for deployments configured by files only")
}

// parseSchedule reads "5s,5m,30m".
func parseSchedule(v string) ([]time.Duration, error) {
	var s []time.Duration
	for _, f := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("want positive durations, comma-separated, e.g. 5s,5m,30m: %q", f)
		}
		s = append(s, d)
	}
	return s, nil
}

// checkURL is the SSRF guard EndpointService and the endpoints file apply.
func (c deliveryConfig) checkURL(ctx context.Context, raw string) error {
	return delivery.CheckURL(ctx, raw, c.AllowPrivate, nil)
}

// endpointsConfig is EndpointService's configuration, nil when the store
// keeps no deliveries.
func endpointsConfig(cfg config, st store.Store) *services.EndpointConfig {
	ds, ok := store.Deliveries(st)
	if !ok {
		return nil
	}
	return &services.EndpointConfig{Store: ds, CheckURL: cfg.Delivery.checkURL}
}

// startDelivery applies the endpoints file and starts the engine, unless
// --delivery=false. The caller stops the engine.
func startDelivery(ctx context.Context, c deliveryConfig, st store.Store, wake delivery.Waker, log *slog.Logger, metrics prometheus.Registerer) (*delivery.Engine, error) {
	ds, ok := store.Deliveries(st)
	if !ok {
		return nil, errors.New("the store does not support push delivery")
	}
	if c.EndpointsFile != "" {
		if err := applyEndpointsFile(ctx, c, ds, log); err != nil {
			return nil, err
		}
	}
	if !c.Enabled {
		log.InfoContext(ctx, "push delivery is off on this member (--delivery=false)")
		return nil, nil
	}
	disable := c.DisableAfter
	if disable == 0 {
		disable = -1 // the engine's "never"
	}
	e := delivery.New(delivery.Config{
		Store: ds, Wake: wake, PollInterval: c.Poll, Concurrency: c.Concurrency,
		Timeout: c.Timeout, Lease: c.Lease, Schedule: c.Schedule, DisableAfter: disable,
		AllowPrivate: c.AllowPrivate, Logger: log, Registerer: metrics,
	})
	if err := e.Start(ctx); err != nil {
		return nil, fmt.Errorf("start push delivery: %w", err)
	}
	return e, nil
}

// endpointsFile is the --endpoints-file format.
type endpointsFile struct {
	Endpoints []struct {
		ID          string   `json:"id"`
		URL         string   `json:"url"`
		Description string   `json:"description"`
		Kinds       []string `json:"kinds"`
		CustomerIDs []string `json:"customer_ids"`
		// Secret, or SecretFile (a file holding it), or SecretEnv (an
		// environment variable holding it): exactly one.
		Secret     string `json:"secret"`
		SecretFile string `json:"secret_file"`
		SecretEnv  string `json:"secret_env"`
	} `json:"endpoints"`
}

// applyEndpointsFile creates or updates every endpoint the file lists. It
// checks the whole file before it changes anything.
func applyEndpointsFile(ctx context.Context, c deliveryConfig, ds store.DeliveryStore, log *slog.Logger) error {
	raw, err := os.ReadFile(c.EndpointsFile)
	if err != nil {
		return fmt.Errorf("--endpoints-file: %w", err)
	}
	var f endpointsFile
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return fmt.Errorf("--endpoints-file %s: %w", c.EndpointsFile, err)
	}
	var eps []store.Endpoint
	seen := map[string]bool{}
	for i, e := range f.Endpoints {
		where := fmt.Sprintf("--endpoints-file %s: endpoint %d (%s)", c.EndpointsFile, i+1, e.ID)
		switch {
		case e.ID == "":
			return fmt.Errorf("%s: id is required", where)
		case len(e.ID) > 64 || strings.ContainsAny(e.ID, " \t\n/"):
			return fmt.Errorf("%s: id must be at most 64 characters without spaces or slashes", where)
		case seen[e.ID]:
			return fmt.Errorf("%s: id listed twice", where)
		}
		seen[e.ID] = true
		if err := c.checkURL(ctx, e.URL); err != nil {
			return fmt.Errorf("%s: url: %w", where, err)
		}
		secret, err := fileSecret(e.Secret, e.SecretFile, e.SecretEnv)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if err := delivery.ValidateSecret(secret); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		eps = append(eps, store.Endpoint{
			ID: e.ID, URL: e.URL, Description: e.Description, Kinds: e.Kinds, CustomerIDs: e.CustomerIDs,
			Secrets: []store.Secret{{Value: secret}}, Origin: "config",
		})
	}
	for _, e := range eps {
		if _, err := ds.UpsertEndpoint(ctx, e); err != nil {
			return fmt.Errorf("--endpoints-file: endpoint %s: %w", e.ID, err)
		}
	}
	log.InfoContext(ctx, "endpoints file applied", "file", c.EndpointsFile, "endpoints", len(eps))
	return nil
}

func fileSecret(value, file, env string) (string, error) {
	n := 0
	for _, s := range []string{value, file, env} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return "", errors.New("give exactly one of secret, secret_file and secret_env")
	}
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("secret_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case env != "":
		v := os.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("secret_env: $%s is empty", env)
		}
		return v, nil
	}
	return value, nil
}
