package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Timeline is `hookd bench --timeline`: latency per interval of the
// measured part of a run, and the garbage collections hookd completed in
// each (completed, as its /metrics counts them). On a 2-core machine shared with PostgreSQL, hookd's collections
// are what its latency tail is made of; this is the figure that shows it.
type Timeline struct {
	IntervalMs float64 `json:"interval_ms"`
	// GCs is how many collections hookd completed during the measured part
	// of the run, -1 when its /metrics could not be read.
	GCs        int64         `json:"hookd_gcs"`
	SlowMs     float64       `json:"slow_ms"`
	Slow       int64         `json:"slow"`
	SlowAtGC   int64         `json:"slow_within_gc_window"`
	GCWindowMs float64       `json:"gc_window_ms"`
	Rows       []TimelineRow `json:"rows"`
}

// TimelineRow is one interval: requests sent in it and their latency.
type TimelineRow struct {
	StartMs float64 `json:"start_ms"` // from the end of the warm-up
	Sent    int     `json:"sent"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	GCs     int64   `json:"hookd_gcs"` // collections hookd completed in it (-1: unknown)
}

// Slow requests are those over timelineSlow; one counts as at a GC when
// it was sent less than timelineGCWindow before or after an interval in
// which hookd completed a collection. go_gc_duration_seconds_count
// counts completed collections, and the mark phase before, and the
// backlog it leaves after, last a few hundred milliseconds.
const (
	timelineSlow     = 50 * time.Millisecond
	timelineGCWindow = 500 * time.Millisecond
)

// gcSample is hookd's collection count at a moment.
type gcSample struct {
	at time.Time
	n  int64
}

// gcPoller reads hookd's go_gc_duration_seconds_count from /metrics on a
// ticker until stopped.
type gcPoller struct {
	mu      sync.Mutex
	samples []gcSample
	cancel  context.CancelFunc
	done    chan struct{}
}

// pollGCs starts polling metricsURL (hookd's /metrics, on its admin
// listener) every interval until ctx ends or stop is called. An empty or
// malformed URL polls nothing: collections stay unknown.
func pollGCs(ctx context.Context, metricsURL string, every time.Duration) *gcPoller {
	ctx, cancel := context.WithCancel(ctx)
	p := &gcPoller{cancel: cancel, done: make(chan struct{})}
	u, err := url.Parse(metricsURL)
	if err != nil || metricsURL == "" {
		close(p.done)
		return p
	}
	client := &http.Client{Timeout: 2 * time.Second}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if n, err := readGCCount(ctx, client, u.String()); err == nil {
				p.mu.Lock()
				p.samples = append(p.samples, gcSample{time.Now(), n})
				p.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// stop ends polling and returns the samples, in time order. A nil poller
// has none.
func (p *gcPoller) stop() []gcSample {
	if p == nil {
		return nil
	}
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.samples
}

// readGCCount fetches a Prometheus text page and returns its
// go_gc_duration_seconds_count.
func readGCCount(ctx context.Context, client *http.Client, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", u, resp.Status)
	}
	return parseGCCount(resp.Body)
}

// parseGCCount finds go_gc_duration_seconds_count in a Prometheus text
// exposition.
func parseGCCount(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "go_gc_duration_seconds_count ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, fmt.Errorf("go_gc_duration_seconds_count %q: %w", rest, err)
		}
		return int64(f), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no go_gc_duration_seconds_count")
}

// timeline buckets the requests sent from `from` on by send time, and
// counts the collections hookd completed in each bucket from samples (a
// collection is placed in the bucket of the first sample that shows it).
func timeline(from time.Time, every time.Duration, sentAt []time.Time, lat []time.Duration, samples []gcSample) *Timeline {
	tl := &Timeline{
		IntervalMs: ms(every), SlowMs: ms(timelineSlow), GCWindowMs: ms(timelineGCWindow), GCs: -1,
	}
	bucket := func(t time.Time) int {
		if t.Before(from) {
			return -1 // the warm-up (division truncates toward 0)
		}
		return int(t.Sub(from) / every)
	}
	var per [][]time.Duration
	for i, at := range sentAt {
		b := bucket(at)
		if b < 0 {
			continue
		}
		for len(per) <= b {
			per = append(per, nil)
		}
		per[b] = append(per[b], lat[i])
	}
	gcs := make([]int64, len(per))
	known := len(samples) >= 2
	for i := 1; i < len(samples); i++ {
		if b := bucket(samples[i].at); b >= 0 && b < len(per) {
			gcs[b] += samples[i].n - samples[i-1].n
		}
	}
	if known {
		tl.GCs = 0
		for _, n := range gcs {
			tl.GCs += n
		}
	}
	// near[b]: a collection ended within timelineGCWindow of bucket b,
	// before or after it.
	k := int((timelineGCWindow + every - 1) / every)
	near := make([]bool, len(per))
	for b := range per {
		for j := max(0, b-k); j <= min(len(per)-1, b+k); j++ {
			near[b] = near[b] || gcs[j] > 0
		}
	}
	for b, ds := range per {
		row := TimelineRow{StartMs: ms(time.Duration(b) * every), Sent: len(ds), GCs: gcs[b]}
		if !known {
			row.GCs = -1
		}
		for _, d := range ds {
			if d > timelineSlow {
				tl.Slow++
			}
		}
		if len(ds) > 0 {
			p := percentiles(ds) // sorts ds, a bucket's own slice
			row.P50Ms, row.P99Ms, row.MaxMs = p["p50"], p["p99"], p["max"]
		}
		tl.Rows = append(tl.Rows, row)
	}
	for i, at := range sentAt {
		if b := bucket(at); b >= 0 && lat[i] > timelineSlow && near[b] {
			tl.SlowAtGC++
		}
	}
	return tl
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// printTimeline writes the --timeline rows and their summary.
func printTimeline(w io.Writer, tl *Timeline) {
	gcs := "unknown (hookd's /metrics not readable: --metrics-url, hookd --admin-addr)"
	if tl.GCs >= 0 {
		gcs = strconv.FormatInt(tl.GCs, 10)
	}
	fmt.Fprintf(w, "  %-26s %d intervals of %gms, hookd GCs %s\n", "timeline", len(tl.Rows), tl.IntervalMs, gcs)
	fmt.Fprintf(w, "  %-26s %d, of which %d sent less than %gms before or after an interval in which hookd completed a GC\n",
		fmt.Sprintf("requests over %gms", tl.SlowMs), tl.Slow, tl.SlowAtGC, tl.GCWindowMs)
	fmt.Fprintf(w, "  %10s %7s %9s %9s %9s %4s\n", "start (s)", "sent", "p50 ms", "p99 ms", "max ms", "gc")
	for _, r := range tl.Rows {
		gc := ""
		switch {
		case r.GCs < 0:
			gc = "?"
		case r.GCs > 0:
			gc = strconv.FormatInt(r.GCs, 10)
		}
		fmt.Fprintf(w, "  %10.2f %7d %9.2f %9.2f %9.2f %4s\n", r.StartMs/1000, r.Sent, r.P50Ms, r.P99Ms, r.MaxMs, gc)
	}
}
