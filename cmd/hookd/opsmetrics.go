package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/hookd/hookd/internal/startstop"
	"github.com/hookd/hookd/services"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/batch"
	"github.com/hookd/hookd/store/postgres"
)

// Operational metrics (README, Metrics), on the process's registry.

// registerBuildInfo exposes hookd_build_info{version,revision,goversion} 1.
func registerBuildInfo(reg prometheus.Registerer) {
	version, revision, goversion := "unknown", "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goversion = bi.GoVersion
		if v := bi.Main.Version; v != "" {
			version = v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "hookd_build_info",
		Help:        "Always 1; its labels name the running binary (module version, VCS revision, Go version).",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goversion},
	})
	g.Set(1)
	reg.MustRegister(g)
}

// registerNotificationMetrics exposes the member's Subscribe streams and
// how long notifications take from wake-up to Send.
func registerNotificationMetrics(reg prometheus.Registerer, r *services.Registered) {
	lag := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookd_notification_read_lag_seconds",
		Help:    "Per notification a Subscribe stream sends from the shared window: time from the wake-up that announced its commit on this member (or the start of the poll that found it) to the stream's Send. Not commit time: waits behind open transactions show in hookd_outbox_oldest_invisible_seconds.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	r.Broadcaster.OnSendLag(func(d time.Duration) { lag.Observe(d.Seconds()) })
	reg.MustRegister(lag,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hookd_subscribers", Help: "NotificationService/Subscribe streams open on this member."},
			func() float64 { return float64(r.Subscribers()) }))
}

// grpcMetrics is a gRPC stats handler that counts and times every call
// the server handles: hookd_grpc_server_handled_total{method,code} and
// hookd_grpc_server_handling_seconds{method} (a stream's whole life).
type grpcMetrics struct {
	handled *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

type grpcMethodKey struct{}

// grpcMetricsOption registers the gRPC server metrics on reg and returns
// the server option that feeds them.
func grpcMetricsOption(reg prometheus.Registerer) grpc.ServerOption {
	m := &grpcMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookd_grpc_server_handled_total",
			Help: "gRPC calls this server finished, by full method and status code."}, []string{"method", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hookd_grpc_server_handling_seconds",
			Help:    "Time from a gRPC call's start to its end on this server, by full method (streams: their whole life).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60, 600}}, []string{"method"}),
	}
	reg.MustRegister(m.handled, m.seconds)
	return grpc.StatsHandler(m)
}

func (m *grpcMetrics) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, grpcMethodKey{}, info.FullMethodName)
}

func (m *grpcMetrics) HandleRPC(ctx context.Context, s stats.RPCStats) {
	end, ok := s.(*stats.End)
	if !ok || end.IsClient() {
		return
	}
	method, _ := ctx.Value(grpcMethodKey{}).(string)
	m.handled.WithLabelValues(method, status.Code(end.Error).String()).Inc()
	m.seconds.WithLabelValues(method).Observe(end.EndTime.Sub(end.BeginTime).Seconds())
}

func (m *grpcMetrics) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (m *grpcMetrics) HandleConn(context.Context, stats.ConnStats)                       {}

// poolCollector exposes pgxpool.Stat as hookd_pgx_pool_*.
type poolCollector struct {
	pg                                                                  *postgres.Store
	acquired, idle, total, max, constructing                            *prometheus.Desc
	acquires, acquireSeconds, canceled, emptyAcquires, emptyWaitSeconds *prometheus.Desc
}

func newPoolCollector(pg *postgres.Store) *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("hookd_pgx_pool_"+name, help, nil, nil)
	}
	return &poolCollector{pg: pg,
		acquired:         d("acquired_conns", "PostgreSQL connections in use."),
		idle:             d("idle_conns", "PostgreSQL connections idle in the pool."),
		total:            d("total_conns", "PostgreSQL connections open (acquired, idle and being built)."),
		max:              d("max_conns", "The pool's connection limit (pool_max_conns)."),
		constructing:     d("constructing_conns", "PostgreSQL connections being opened."),
		acquires:         d("acquires_total", "Connections acquired from the pool."),
		acquireSeconds:   d("acquire_seconds_total", "Time spent acquiring connections (its rate over hookd_pgx_pool_acquires_total's: the mean wait)."),
		canceled:         d("canceled_acquires_total", "Acquires canceled by their context before a connection came."),
		emptyAcquires:    d("empty_acquires_total", "Acquires that found no idle connection and waited for one (or for a new one)."),
		emptyWaitSeconds: d("empty_acquire_wait_seconds_total", "Time the empty acquires waited."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pg.PoolStat()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	n := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.acquired, float64(s.AcquiredConns()))
	g(c.idle, float64(s.IdleConns()))
	g(c.total, float64(s.TotalConns()))
	g(c.max, float64(s.MaxConns()))
	g(c.constructing, float64(s.ConstructingConns()))
	n(c.acquires, float64(s.AcquireCount()))
	n(c.acquireSeconds, s.AcquireDuration().Seconds())
	n(c.canceled, float64(s.CanceledAcquireCount()))
	n(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	n(c.emptyWaitSeconds, s.EmptyAcquireWaitTime().Seconds())
}

// Parked-events gauge: counted by paging ListEvents, at most every
// parkedRefresh, up to parkedCap (the gauge then reads parkedCap: "at
// least").
const (
	parkedRefresh  = 5 * time.Second
	parkedPageSize = 1000
	parkedCap      = 10 * parkedPageSize
	parkedTimeout  = 2 * time.Second
)

// parkedCounter caches the count of parked events for scrapes.
type parkedCounter struct {
	st    store.Store
	log   *slog.Logger
	mu    sync.Mutex
	at    time.Time
	count float64
}

func (p *parkedCounter) value() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < parkedRefresh {
		return p.count
	}
	ctx, cancel := context.WithTimeout(context.Background(), parkedTimeout)
	defer cancel()
	n, token := 0, ""
	for n < parkedCap {
		evs, next, err := p.st.ListEvents(ctx, store.ListEventsFilter{Status: store.StatusParked, PageSize: parkedPageSize, PageToken: token})
		if err != nil {
			// Keep the last count; try again at the next scrape.
			p.log.Debug("count parked events for metrics", "err", err)
			return p.count
		}
		n += len(evs)
		if next == "" {
			break
		}
		token = next
	}
	p.at, p.count = time.Now(), float64(min(n, parkedCap))
	return p.count
}

func registerParkedMetric(reg prometheus.Registerer, st store.Store, log *slog.Logger) {
	p := &parkedCounter{st: st, log: log}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hookd_parked_events",
		Help: "Events parked now, waiting for a prerequisite (counted from the store at most every 5 s, up to 10000)."}, p.value))
}

// The stall detector (PostgreSQL): how long committed notifications have
// waited, invisible to subscribers, behind an older transaction still open.
const (
	stallInterval = time.Second
	stallWarn     = 5 * time.Second
)

// outboxStaller is the optional store method the stall detector samples
// (postgres.Store).
type outboxStaller interface {
	OutboxStall(ctx context.Context) (postgres.OutboxStall, error)
}

// stallSampler samples OutboxStall every stallInterval into
// hookd_outbox_oldest_invisible_seconds and hookd_outbox_invisible_notifications,
// and warns once per stall when the oldest waits past stallWarn.
type stallSampler struct {
	st      outboxStaller
	log     *slog.Logger
	age     prometheus.Gauge
	waiting prometheus.Gauge
	group   startstop.Group
}

// startStoreMetrics registers the metrics of the store behind st (pool
// statistics and the stall detector for PostgreSQL) and the parked-events
// gauge, and starts the stall sampler; the returned func stops it.
func startStoreMetrics(ctx context.Context, reg prometheus.Registerer, st store.Store, log *slog.Logger) (stop func(), err error) {
	registerParkedMetric(reg, st, log)
	inner := st
	if b, ok := st.(*batch.Store); ok {
		inner = b.Inner()
	}
	pg, ok := inner.(*postgres.Store)
	if !ok {
		return func() {}, nil
	}
	reg.MustRegister(newPoolCollector(pg))
	s := &stallSampler{st: pg, log: log,
		age: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookd_outbox_oldest_invisible_seconds",
			Help: "Age of the oldest committed notification subscribers cannot see yet because an older transaction is still open (0: none waits); sampled every second."}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookd_outbox_invisible_notifications",
			Help: "Committed notifications subscribers cannot see yet because an older transaction is still open (counted up to 100000); sampled every second."}),
	}
	reg.MustRegister(s.age, s.waiting)
	if err := s.group.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	if err := s.group.Go(s.run); err != nil {
		return nil, err
	}
	return s.group.Stop, nil
}

func (s *stallSampler) run(ctx context.Context) {
	t := time.NewTicker(stallInterval)
	defer t.Stop()
	warned := false
	for {
		sctx, cancel := context.WithTimeout(ctx, stallInterval)
		st, err := s.st.OutboxStall(sctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Debug("outbox stall sample", "err", err) // the store probe reports outages
		default:
			s.age.Set(st.Oldest.Seconds())
			s.waiting.Set(float64(st.Waiting))
			if st.Oldest < stallWarn {
				warned = false
			} else if !warned {
				warned = true
				attrs := []any{"oldest_wait", st.Oldest.Round(time.Millisecond), "waiting", st.Waiting}
				if h := st.Holder; h != nil {
					attrs = append(attrs, "holder_pid", h.PID, "holder_state", h.State, "holder_xact_age", h.Age.Round(time.Millisecond),
						"holder_query_start", h.QueryStart, "holder_query", h.Query)
				}
				s.log.WarnContext(ctx, "notifications committed but invisible to subscribers behind an open transaction", attrs...)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
