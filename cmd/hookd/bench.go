package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hookd/hookd/gateway"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// benchConfig configures `hookd bench`, a load generator that signs
// realistic Stripe events as Stripe does and posts them to a running hookd.
type benchConfig struct {
	URL         string
	GRPCAddr    string // for the notification stream; empty: no lag figures
	Secret      string
	Customers   int
	Concurrency int
	Rate        float64 // events/s, open loop; 0: closed loop
	Duration    time.Duration
	Events      int     // stop after this many (0: duration only)
	Duplicates  float64 // fraction of deliveries repeated
	Cover       bool    // visit customers in turn instead of at random
	PID         int     // hookd's PID for CPU and RSS figures (0: none)
	JSON        bool
}

type benchResult struct {
	Events        int64              `json:"events"`
	Seconds       float64            `json:"seconds"`
	EventsPerSec  float64            `json:"events_per_sec"`
	LatencyMs     map[string]float64 `json:"latency_ms"`
	Statuses      map[string]int64   `json:"statuses"`
	Non2xx        map[string]int64   `json:"non_2xx"`
	Errors        int64              `json:"transport_errors"`
	Notifications int64              `json:"notifications"`
	LagMs         map[string]float64 `json:"notification_lag_ms,omitempty"`
	CPUSeconds    float64            `json:"hookd_cpu_seconds,omitempty"`
	CPUPercent    float64            `json:"hookd_cpu_percent,omitempty"`
	RSSMiB        float64            `json:"hookd_rss_mib,omitempty"`
}

func benchCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var c benchConfig
	fs := flag.NewFlagSet("hookd bench", flag.ContinueOnError)
	fs.StringVar(&c.URL, "url", "http://"+defaultHTTPAddr+"/v1/webhooks/stripe", "webhook URL")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:9090", "hookd's gRPC address, to measure notification lag (empty: skip)")
	fs.StringVar(&c.Secret, "secret", "", "signing secret (default: HOOKD_STRIPE_WEBHOOK_SECRET, else the one in --data-dir)")
	dataDir := fs.String("data-dir", defaultDataDir, "where a local hookd keeps its generated secret")
	fs.IntVar(&c.Customers, "customers", 1000, "distinct customers (1 to 1,000,000)")
	fs.IntVar(&c.Concurrency, "concurrency", 32, "concurrent senders (closed loop), or the most in flight (open loop)")
	fs.Float64Var(&c.Rate, "rate", 0, "events per second, open loop (0: closed loop)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to send")
	fs.IntVar(&c.Events, "events", 0, "stop after this many events (0: run for --duration)")
	fs.BoolVar(&c.Cover, "cover", false, "send to customers in turn (every customer once before any twice) instead of at random")
	fs.Float64Var(&c.Duplicates, "duplicates", 0, "fraction of deliveries that repeat an earlier event (0 to 1)")
	fs.IntVar(&c.PID, "pid", 0, "hookd's process ID, for its CPU and RSS")
	fs.BoolVar(&c.JSON, "json", false, "print the figures as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.Secret == "" {
		if list := splitList(getenv("HOOKD_STRIPE_WEBHOOK_SECRET")); len(list) > 0 {
			c.Secret = list[0]
		} else if s, err := readSecretFile(*dataDir); err == nil {
			c.Secret = s
		}
	}
	switch {
	case c.Secret == "":
		return errors.New("bench: --secret is required")
	case c.Customers < 1 || c.Customers > 1_000_000:
		return errors.New("bench: --customers must be 1 to 1,000,000")
	case c.Concurrency < 1:
		return errors.New("bench: --concurrency must be positive")
	case c.Duplicates < 0 || c.Duplicates > 1:
		return errors.New("bench: --duplicates must be 0 to 1")
	}
	res, err := runBench(ctx, c)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printBench(stdout, c, res)
	return nil
}

// benchEvent renders the n-th event (0-based) of a customer: a
// customer.created, then customer.updated with strictly increasing created.
func benchEvent(run string, customer, n int, base int64) (id string, body []byte) {
	cus := fmt.Sprintf("cus_bench_%s_%d", run, customer)
	id = fmt.Sprintf("evt_bench_%s_%d_%d", run, customer, n)
	typ := "customer.updated"
	if n == 0 {
		typ = "customer.created"
	}
	body = fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2024-06-20","created":%d,"livemode":false,"pending_webhooks":1,"type":%q,"data":{"object":{"id":%q,"object":"customer","email":"%s-%d@example.com","name":"Bench Customer","metadata":{"n":"%d"}}}}`,
		id, base+int64(n), typ, cus, cus, n, n)
	return id, body
}

func runBench(ctx context.Context, c benchConfig) (benchResult, error) {
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	base := time.Now().Add(-24 * time.Hour).Unix()
	ctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()

	var (
		mu        sync.Mutex // guards the fields below
		latencies []time.Duration
		statuses  = map[string]int64{}
		non2xx    = map[string]int64{}
		acked     = map[string]time.Time{} // applied event → when its 2xx arrived
		received  = map[string]time.Time{} // event → when its first notification arrived
		transport atomic.Int64
		sent      atomic.Int64
		perCust   = make([]atomic.Int64, c.Customers)
	)

	// The notification stream, for lag: time from the sender's 2xx to the
	// notification reaching a subscriber (an upper bound on commit → subscriber).
	subDone := make(chan struct{})
	if c.GRPCAddr != "" {
		conn, err := grpc.NewClient(c.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return benchResult{}, err
		}
		defer conn.Close()
		subCtx, subCancel := context.WithCancel(context.Background())
		defer subCancel()
		stream, err := hookdv1.NewNotificationServiceClient(conn).Subscribe(subCtx, &hookdv1.SubscribeRequest{FromNow: true})
		if err != nil {
			return benchResult{}, fmt.Errorf("subscribe: %w", err)
		}
		go func() {
			defer close(subDone)
			for {
				n, err := stream.Recv()
				if err != nil {
					return
				}
				now := time.Now()
				mu.Lock()
				if _, seen := received[n.GetEventId()]; !seen {
					received[n.GetEventId()] = now
				}
				mu.Unlock()
			}
		}()
		defer func() { subCancel(); <-subDone }()
	} else {
		close(subDone)
	}

	cpu0, _ := procCPU(c.PID)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Concurrency, MaxConnsPerHost: c.Concurrency}, Timeout: 30 * time.Second}
	post := func(id string, body []byte) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, c.URL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", gateway.SignStripe(body, c.Secret, time.Now()))
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			transport.Add(1)
			return
		}
		var answer struct {
			Status string `json:"status"`
		}
		json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		done := time.Now()
		mu.Lock()
		defer mu.Unlock()
		latencies = append(latencies, done.Sub(start))
		if resp.StatusCode/100 == 2 {
			statuses[answer.Status]++
			if answer.Status == "applied" {
				if _, seen := acked[id]; !seen {
					acked[id] = done
				}
			}
		} else {
			non2xx[strconv.Itoa(resp.StatusCode)]++
		}
	}
	next := func(rng *rand.Rand) (string, []byte, bool) {
		if c.Events > 0 && sent.Load() >= int64(c.Events) {
			return "", nil, false
		}
		seq := sent.Add(1) - 1
		cu := rng.IntN(c.Customers)
		if c.Cover {
			cu = int(seq % int64(c.Customers))
		}
		n := perCust[cu].Add(1) - 1
		if n > 0 && rng.Float64() < c.Duplicates {
			n = rng.Int64N(n)
		}
		id, body := benchEvent(run, cu, int(n), base)
		return id, body, true
	}

	start := time.Now()
	var wg sync.WaitGroup
	if c.Rate > 0 {
		sem := make(chan struct{}, c.Concurrency)
		interval := time.Duration(float64(time.Second) / c.Rate)
		tick := time.NewTicker(max(interval, time.Microsecond))
		defer tick.Stop()
		rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-tick.C:
				id, body, ok := next(rng)
				if !ok {
					break loop
				}
				select {
				case sem <- struct{}{}:
				default: // too many in flight: count as a transport error, stay open loop
					transport.Add(1)
					continue
				}
				wg.Add(1)
				go func() { defer wg.Done(); post(id, body); <-sem }()
			}
		}
	} else {
		for w := range c.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(w)))
				for ctx.Err() == nil {
					id, body, ok := next(rng)
					if !ok {
						return
					}
					post(id, body)
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _ := procCPU(c.PID)

	// Give the last notifications a moment to arrive.
	if c.GRPCAddr != "" {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			done := true
			for id := range acked {
				if _, ok := received[id]; !ok {
					done = false
					break
				}
			}
			mu.Unlock()
			if done {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	// Lag: from the sender's 2xx to the subscriber's notification; a
	// notification that beat the 2xx counts as 0.
	var lags []time.Duration
	for id, ack := range acked {
		if got, ok := received[id]; ok {
			lags = append(lags, max(0, got.Sub(ack)))
		}
	}
	res := benchResult{
		Events:        int64(len(latencies)),
		Seconds:       elapsed.Seconds(),
		LatencyMs:     percentiles(latencies),
		Statuses:      statuses,
		Non2xx:        non2xx,
		Errors:        transport.Load(),
		Notifications: int64(len(lags)),
	}
	var ok int64
	for _, n := range statuses {
		ok += n
	}
	res.EventsPerSec = float64(ok) / elapsed.Seconds()
	if len(lags) > 0 {
		res.LagMs = percentiles(lags)
	}
	if c.PID > 0 {
		res.CPUSeconds = cpu1 - cpu0
		res.CPUPercent = 100 * res.CPUSeconds / elapsed.Seconds()
		res.RSSMiB, _ = procRSS(c.PID)
	}
	return res, nil
}

func percentiles(ds []time.Duration) map[string]float64 {
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		i := int(p * float64(len(ds)-1))
		return float64(ds[i].Microseconds()) / 1000
	}
	return map[string]float64{"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "p99.9": at(0.999), "max": at(1)}
}

func printBench(w io.Writer, c benchConfig, r benchResult) {
	mode := fmt.Sprintf("closed loop, %d senders", c.Concurrency)
	if c.Rate > 0 {
		mode = fmt.Sprintf("open loop, %.0f/s offered", c.Rate)
	}
	fmt.Fprintf(w, "hookd bench: %d customers, %s, %v, duplicates %.0f%%\n", c.Customers, mode, c.Duration, 100*c.Duplicates)
	fmt.Fprintf(w, "  %-26s %.0f/s (%d answered in %.1fs)\n", "accepted (2xx)", r.EventsPerSec, r.Events, r.Seconds)
	fmt.Fprintf(w, "  %-26s %s\n", "HTTP latency (ms)", fmtPct(r.LatencyMs))
	fmt.Fprintf(w, "  %-26s %s\n", "2xx statuses", fmtCounts(r.Statuses))
	fmt.Fprintf(w, "  %-26s %s, transport errors %d\n", "non-2xx by code", fmtCounts(r.Non2xx), r.Errors)
	if r.LagMs != nil {
		fmt.Fprintf(w, "  %-26s %s (%d notifications)\n", "notification lag (ms)", fmtPct(r.LagMs), r.Notifications)
	}
	if c.PID > 0 {
		fmt.Fprintf(w, "  %-26s cpu %.0f%% (%.1fs), rss %.0f MiB\n", "hookd process", r.CPUPercent, r.CPUSeconds, r.RSSMiB)
	}
}

func fmtPct(m map[string]float64) string {
	if m == nil {
		return "-"
	}
	return fmt.Sprintf("p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f", m["p50"], m["p90"], m["p99"], m["p99.9"], m["max"])
}

func fmtCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// procCPU returns a process's user+system CPU seconds (Linux /proc).
func procCPU(pid int) (float64, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are 14th and 15th.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

// procRSS returns a process's resident set in MiB.
func procRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmRSS")
}
