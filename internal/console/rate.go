package console

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// webhookEventsMetric is the gateway's counter of webhooks made durable
// (gateway/metrics.go), on the default registry.
const webhookEventsMetric = "hookd_webhook_events_total"

// rateWindow is the span the overview's events/s is measured over.
const rateWindow = time.Minute

type rateSample struct {
	at    time.Time
	value float64
}

// rateMeter turns the samples of a counter taken when the overview is
// rendered into a rate over about the last minute. It keeps the samples
// of the last minute, at most one a second, and the newest older one
// while there is no other.
type rateMeter struct {
	mu      sync.Mutex
	samples []rateSample
}

// observe records value at now and returns the rate against the oldest
// sample kept (of the last minute if any) and the span it covers; ok
// false while there is no sample a second old or more (the first view),
// or when the counter went back.
func (m *rateMeter) observe(now time.Time, value float64) (perSecond float64, over time.Duration, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cut := now.Add(-rateWindow)
	for len(m.samples) >= 2 && m.samples[0].at.Before(cut) {
		m.samples = m.samples[1:]
	}
	if n := len(m.samples); n > 0 && value < m.samples[n-1].value {
		m.samples = nil // a reset counter: start again
	}
	var base rateSample
	have := len(m.samples) > 0
	if have {
		base = m.samples[0]
	}
	if n := len(m.samples); n == 0 || now.Sub(m.samples[n-1].at) >= time.Second {
		m.samples = append(m.samples, rateSample{now, value})
	}
	over = now.Sub(base.at)
	if !have || over < time.Second {
		return 0, 0, false
	}
	return (value - base.value) / over.Seconds(), over, true
}

// counterTotal sums a counter's series in g; found false when g has none
// by that name.
func counterTotal(g prometheus.Gatherer, name string) (total float64, found bool, err error) {
	mfs, err := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		found = true
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue()
		}
	}
	return total, found, err
}

// lagMetric is the notification streams' lag histogram
// (cmd/hookd/opsmetrics.go), on the process's registry.
const lagMetric = "hookd_notification_read_lag_seconds"

// histogramQuantiles reads the quantiles qs of the histogram name in g,
// each as the upper bound of the bucket it falls in (what a histogram
// can tell), over the process's life; found false when g has no sample of
// it.
func histogramQuantiles(g prometheus.Gatherer, name string, qs ...float64) (bounds []float64, count uint64, found bool) {
	mfs, err := g.Gather()
	if err != nil && len(mfs) == 0 {
		return nil, 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		count = h.GetSampleCount()
		if count == 0 {
			return nil, 0, false
		}
		for _, q := range qs {
			want := q * float64(count)
			b := math.Inf(1)
			for _, bk := range h.GetBucket() {
				if float64(bk.GetCumulativeCount()) >= want {
					b = bk.GetUpperBound()
					break
				}
			}
			bounds = append(bounds, b)
		}
		return bounds, count, true
	}
	return nil, 0, false
}

// fmtBound says a bucket bound in ms ("≤ 25 ms", or "> the largest bucket").
func fmtBound(sec float64) string {
	if math.IsInf(sec, 1) {
		return "over the largest bucket"
	}
	return "≤ " + strconv.FormatFloat(sec*1000, 'f', -1, 64) + " ms"
}
