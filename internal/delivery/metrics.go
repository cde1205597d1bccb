package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd/hookd/store"
)

// backlogTimeout bounds the Backlog query a scrape makes.
const backlogTimeout = 2 * time.Second

// metrics are the engine's Prometheus metrics.
type metrics struct {
	deliveries *prometheus.CounterVec   // hookd_deliveries_total{outcome}
	attempt    *prometheus.HistogramVec // hookd_delivery_attempt_seconds{result}
	lag        prometheus.Histogram     // hookd_delivery_lag_seconds
	backlog    *backlogCollector
}

func newMetrics(st store.DeliveryStore) *metrics {
	return &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookd_deliveries_total",
			Help: "Delivery attempts' outcomes: delivered (2xx), retry, failed (dead-lettered), released (given back unattempted, or the endpoint answered 410).",
		}, []string{"outcome"}),
		attempt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookd_delivery_attempt_seconds",
			Help:    "Duration of delivery attempts, by result: 2xx, 3xx, 4xx, 5xx, error (no answer).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30},
		}, []string{"result"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookd_delivery_lag_seconds",
			Help:    "Time from a delivery's enqueue to its 2xx.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600},
		}),
		backlog: &backlogCollector{
			store: st,
			undelivered: prometheus.NewDesc("hookd_delivery_backlog",
				"Queued and pending deliveries per endpoint.", []string{"endpoint"}, nil),
			oldest: prometheus.NewDesc("hookd_delivery_oldest_undelivered_seconds",
				"Age of the oldest undelivered delivery per endpoint (0 when none).", []string{"endpoint"}, nil),
		},
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.deliveries, m.attempt, m.lag, m.backlog}
}

// register registers every collector, or none.
func (m *metrics) register(r prometheus.Registerer) error {
	cs := m.collectors()
	for i, c := range cs {
		if err := r.Register(c); err != nil {
			for _, done := range cs[:i] {
				r.Unregister(done)
			}
			return err
		}
	}
	return nil
}

func (m *metrics) unregister(r prometheus.Registerer) {
	for _, c := range m.collectors() {
		r.Unregister(c)
	}
}

// outcome counts one result.
func (m *metrics) outcome(o store.Outcome) {
	var label string
	switch o {
	case store.OutcomeDelivered:
		label = "delivered"
	case store.OutcomeRetry:
		label = "retry"
	case store.OutcomeFailed:
		label = "failed"
	case store.OutcomeReleased:
		label = "released"
	default:
		return
	}
	m.deliveries.WithLabelValues(label).Inc()
}

// backlogCollector reads Store.Backlog at each scrape (bounded by
// backlogTimeout; a failed read reports no backlog series and an invalid
// metric, which the registry's scrape reports as an error).
type backlogCollector struct {
	store       store.DeliveryStore
	undelivered *prometheus.Desc
	oldest      *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.undelivered
	ch <- c.oldest
}

// Collect implements prometheus.Collector.
func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
	defer cancel()
	bl, err := c.store.Backlog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.undelivered, errors.Join(errors.New("delivery backlog"), err))
		return
	}
	now := time.Now()
	for _, b := range bl {
		age := 0.0
		if !b.OldestCreatedAt.IsZero() {
			age = max(now.Sub(b.OldestCreatedAt).Seconds(), 0)
		}
		for _, m := range []struct {
			desc *prometheus.Desc
			v    float64
		}{{c.undelivered, float64(b.Undelivered)}, {c.oldest, age}} {
			if cm, err := prometheus.NewConstMetric(m.desc, prometheus.GaugeValue, m.v, b.EndpointID); err == nil {
				ch <- cm
			}
		}
	}
}
