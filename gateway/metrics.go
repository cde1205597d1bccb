package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Webhook metrics, on the default Prometheus registry (hookd serves them on its admin
// listener's /metrics, not on the gateway's).
var (
	webhookAnswers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_webhook_requests_total",
		Help: "Webhook requests answered, by HTTP status code.",
	}, []string{"code"})
	webhookEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_webhook_events_total",
		Help: "Webhooks made durable, by what hookd did with them (applied, duplicate, parked, ignored, superseded).",
	}, []string{"status"})
	webhookRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_webhook_rejections_total",
		Help: "Webhooks refused without storing anything, by reason (bad_signature, bad_timestamp, malformed, too_large, invalid_field, ingest_invalid, content_type, method, empty, read_body).",
	}, []string{"reason"})
	webhookSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookd_webhook_duration_seconds",
		Help:    "Time to answer a webhook, from request to response.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	})
)

func init() {
	prometheus.MustRegister(webhookAnswers, webhookEvents, webhookRejections, webhookSeconds)
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// instrument counts answers and times them.
func instrument(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next(rec, r)
		webhookSeconds.Observe(time.Since(start).Seconds())
		webhookAnswers.WithLabelValues(strconv.Itoa(rec.code)).Inc()
	}
}
