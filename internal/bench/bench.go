// Package bench is hookd's load generator (`hookd bench`): it signs
// realistic Stripe events as Stripe does, posts them to a running hookd's
// webhook endpoint, closed or open loop, with duplicates and out-of-order
// pairs on request, follows NotificationService/Subscribe for notification
// lag, and reports throughput, latency, statuses and hookd's CPU and
// memory. It also renders the single events `hookd send --type` posts
// (GenerateEvent). It talks to hookd only as any client does: HTTP and
// hookd.v1.
package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hookd/hookd/internal/certs"
	"github.com/hookd/hookd/internal/cliflag"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/services"
)

// config configures `hookd bench`, a load generator that signs
// realistic Stripe events as Stripe does and posts them to a running hookd.
type config struct {
	URL         string
	GRPCAddr    string // for the notification stream; empty: no lag figures
	Secret      string
	Token       string // gRPC bearer token (read scope) for the stream; empty: none
	Customers   int
	Concurrency int
	Rate        float64 // events/s, open loop; 0: closed loop
	Duration    time.Duration
	Warmup      time.Duration // left out of every figure
	Events      int           // stop after this many (0: duration only)
	Duplicates  float64       // fraction of deliveries repeated
	OutOfOrder  float64       // probability that a sender sends a customer's next two events swapped
	Mix         string        // benchMixCustomer or benchMixStripe
	Cover       bool          // visit customers in turn instead of at random
	PID         int           // hookd's PID for CPU and RSS figures (0: none)
	JSON        bool
	// Timeline, when positive, adds figures per interval of this length,
	// with the garbage collections hookd completed in each (polled from
	// MetricsURL).
	Timeline time.Duration
	// MetricsURL is hookd's /metrics, on its admin listener (--admin-addr);
	// empty: collections unknown.
	MetricsURL string
	// CA, Cert and Key reach a TLS hookd: CA verifies it (HTTPS, and gRPC
	// over TLS when set), Cert and Key are a client certificate for mTLS.
	CA, Cert, Key string
	// Deliver registers a local receiver (on DeliverAddr) as a push
	// endpoint for the run and measures deliveries to it.
	Deliver     bool
	DeliverAddr string
}

// Result is the figures of one run, as `hookd bench --json` prints them.
type Result struct {
	Events       int64              `json:"events"`
	Seconds      float64            `json:"seconds"`
	EventsPerSec float64            `json:"events_per_sec"`
	LatencyMs    map[string]float64 `json:"latency_ms"`
	Statuses     map[string]int64   `json:"statuses"`
	Non2xx       map[string]int64   `json:"non_2xx"`
	Errors       int64              `json:"transport_errors"`
	// Dropped counts open-loop deliveries never sent because --concurrency
	// requests were already in flight; they are in no latency figure.
	Dropped       int64 `json:"dropped,omitempty"`
	Notifications int64 `json:"notifications"`
	// Missing counts applied events whose notification had not arrived
	// when notifications stopped coming (none for notificationQuiet);
	// MissingSample names the first few.
	Missing       int64              `json:"notifications_missing,omitempty"`
	MissingSample []string           `json:"notifications_missing_sample,omitempty"`
	LagMs         map[string]float64 `json:"notification_lag_ms,omitempty"`
	// ParkedReleased counts events answered "parked" whose notification
	// (sent when a later event released them) reached the subscriber.
	ParkedReleased int64   `json:"parked_released,omitempty"`
	CPUSeconds     float64 `json:"hookd_cpu_seconds,omitempty"`
	CPUPercent     float64 `json:"hookd_cpu_percent,omitempty"`
	RSSMiB         float64 `json:"hookd_rss_mib,omitempty"`
	// CPU per answered event, hookd's and the generator's: on a shared or
	// virtual machine throughput moves with the neighbours, CPU per event
	// much less, so it is the figure to compare changes by.
	CPUPerEventUs float64 `json:"hookd_cpu_us_per_event,omitempty"`
	// The generator's own CPU: it shares the machine with what it measures.
	GeneratorCPUPercent    float64 `json:"generator_cpu_percent"`
	GeneratorCPUPerEventUs float64 `json:"generator_cpu_us_per_event,omitempty"`
	// Push delivery figures (--deliver): distinct applied events delivered
	// to the local receiver, their rate from the start of the run to the
	// last delivery, the lag from the sender's 2xx to the receiver's
	// request, the requests it got (retries and duplicates included), and
	// applied events never delivered when deliveries stopped coming.
	Deliveries        int64              `json:"deliveries,omitempty"`
	DeliveriesPerSec  float64            `json:"deliveries_per_sec,omitempty"`
	DeliveryLagMs     map[string]float64 `json:"delivery_lag_ms,omitempty"`
	DeliveryRequests  int64              `json:"delivery_requests,omitempty"`
	DeliveriesMissing int64              `json:"deliveries_missing,omitempty"`
	// Timeline is set by --timeline.
	Timeline *Timeline `json:"timeline,omitempty"`
}

// Env is what Run takes from the hookd binary that runs it: the process
// environment and where a local hookd listens and keeps its secret (the
// defaults of Run's flags).
type Env struct {
	// Getenv reads the environment (HOOKD_TOKEN,
	// HOOKD_STRIPE_WEBHOOK_SECRET, GOGC); nil reads none.
	Getenv func(string) string
	// URL, MetricsURL and DataDir are the defaults of --url, --metrics-url
	// and --data-dir.
	URL, MetricsURL, DataDir string
	// LocalSecret returns the webhook secret a local hookd generated in
	// dataDir, for a run given no --secret; nil: none.
	LocalSecret func(dataDir string) (string, error)
}

// Run is `hookd bench`: it parses args (the flags after "bench"), loads the
// hookd at --url with signed events for --duration (or --events) and
// prints the figures to stdout, as a table or with --json as a Result. It
// returns flag.ErrHelp for -h, and an error for invalid flags or when the
// run could not start; answers that are not 2xx are figures, not errors.
func Run(ctx context.Context, args []string, env Env, stdout io.Writer) error {
	getenv := env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var c config
	fs := flag.NewFlagSet("hookd bench", flag.ContinueOnError)
	fs.StringVar(&c.URL, "url", env.URL, "webhook URL")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:9090", "hookd's gRPC address, to measure notification lag (empty: skip)")
	fs.StringVar(&c.Secret, "secret", "", "signing secret (default: HOOKD_STRIPE_WEBHOOK_SECRET, else the one in --data-dir)")
	fs.StringVar(&c.Token, "token", "", "gRPC bearer token with the read scope, for the notification stream when hookd has tokens (default: HOOKD_TOKEN)")
	dataDir := fs.String("data-dir", env.DataDir, "where a local hookd keeps its generated secret")
	fs.IntVar(&c.Customers, "customers", 1000, "distinct customers (1 to 1,000,000)")
	fs.IntVar(&c.Concurrency, "concurrency", 32, "concurrent senders (closed loop), or the most in flight (open loop)")
	fs.Float64Var(&c.Rate, "rate", 0, "events per second, open loop (0: closed loop)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to send")
	fs.DurationVar(&c.Warmup, "warmup", 0, "leave the first part of the run out of every figure (actors activating, connections opening, statements being prepared)")
	fs.IntVar(&c.Events, "events", 0, "stop after this many events (0: run for --duration)")
	fs.BoolVar(&c.Cover, "cover", false, "send to customers in turn (every customer once before any twice) instead of at random")
	fs.Float64Var(&c.Duplicates, "duplicates", 0, "fraction of deliveries that repeat an earlier event, byte for byte (0 to 1)")
	fs.Float64Var(&c.OutOfOrder, "out-of-order", 0, "probability (0 to 1) that a sender takes a customer's next two events instead of one and sends the later first;\n"+
		"above 0 it implies --mix stripe (an explicit --mix customer is an error)")
	fs.StringVar(&c.Mix, "mix", "", "each customer's events: \"customer\" (customer.created, then customer.updated; cheap), or \"stripe\" (customer.created,\n"+
		"then one subscription after another: created, first invoice paid, customer updated twice, renewal invoice failed,\n"+
		"subscription past_due, invoice paid, subscription active, deleted; a customer reuses its "+strconv.Itoa(benchStripeSubs)+" subscription IDs,\n"+
		"so its state stays bounded and only its first "+strconv.Itoa(1+benchStripeSubs*len(benchStripeCycle))+" events can be parked)\n"+
		"(default customer, or stripe when --out-of-order is above 0)")
	fs.StringVar(&c.CA, "ca", "", "PEM CA bundle that verifies a TLS hookd (https:// --url, and gRPC over TLS when set)")
	fs.StringVar(&c.Cert, "cert", "", "PEM client certificate for a hookd with --grpc-client-ca (with --key and --ca)")
	fs.StringVar(&c.Key, "key", "", "PEM private key for --cert")
	fs.IntVar(&c.PID, "pid", 0, "hookd's process ID, for its CPU and RSS")
	fs.BoolVar(&c.JSON, "json", false, "print the figures as JSON")
	fs.DurationVar(&c.Timeline, "timeline", 0, "also print latency per interval of this length (e.g. 100ms), with the garbage collections\n"+
		"hookd completed in each, polled from --metrics-url (0: off)")
	fs.StringVar(&c.MetricsURL, "metrics-url", env.MetricsURL, "hookd's /metrics, on its admin listener (hookd --admin-addr), for --timeline's GC counts (empty: skip)")
	fs.BoolVar(&c.Deliver, "deliver", false, "also measure push delivery: register a local receiver as an endpoint for the run (hookd needs --allow-private-endpoints; --token, if any, the admin scope) and report deliveries/s and delivery lag")
	fs.StringVar(&c.DeliverAddr, "deliver-addr", "127.0.0.1:0", "where --deliver's receiver listens")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if c.Token == "" {
		c.Token = getenv("HOOKD_TOKEN")
	}
	if c.Secret == "" {
		if first := firstOfList(getenv("HOOKD_STRIPE_WEBHOOK_SECRET")); first != "" {
			c.Secret = first
		} else if env.LocalSecret != nil {
			if s, err := env.LocalSecret(*dataDir); err == nil {
				c.Secret = s
			}
		}
	}
	switch {
	case c.Secret == "":
		return errors.New("bench: --secret is required")
	case c.Customers < 1 || c.Customers > 1_000_000:
		return errors.New("bench: --customers must be 1 to 1,000,000")
	case c.Warmup < 0 || (c.Events == 0 && c.Warmup >= c.Duration):
		return errors.New("bench: --warmup must be shorter than --duration")
	case c.Timeline < 0 || (c.Timeline > 0 && c.Timeline < 10*time.Millisecond):
		return errors.New("bench: --timeline must be 0 (off) or at least 10ms")
	case c.Deliver && c.GRPCAddr == "":
		return errors.New("bench: --deliver needs --grpc-addr")
	case c.Concurrency < 1:
		return errors.New("bench: --concurrency must be positive")
	case c.Duplicates < 0 || c.Duplicates > 1:
		return errors.New("bench: --duplicates must be 0 to 1")
	case c.OutOfOrder < 0 || c.OutOfOrder > 1:
		return errors.New("bench: --out-of-order must be 0 to 1")
	case c.Mix != "" && c.Mix != benchMixCustomer && c.Mix != benchMixStripe:
		return fmt.Errorf("bench: --mix must be %s or %s", benchMixCustomer, benchMixStripe)
	case c.Mix == benchMixCustomer && c.OutOfOrder > 0:
		return errors.New("bench: --out-of-order needs --mix stripe")
	}
	if c.Mix == "" {
		c.Mix = benchMixCustomer
		if c.OutOfOrder > 0 {
			c.Mix = benchMixStripe
		}
	}
	if getenv("GOGC") == "" {
		// The generator shares the machine with the hookd it measures:
		// spend less of it on collecting garbage (its heap is small).
		defer debug.SetGCPercent(debug.SetGCPercent(400))
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

// firstOfList is the first item of a comma-separated list, as hookd reads
// HOOKD_STRIPE_WEBHOOK_SECRET (the first is the one to sign with).
func firstOfList(s string) string {
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			return p
		}
	}
	return ""
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

// Event mixes for --mix.
const (
	benchMixCustomer = "customer"
	benchMixStripe   = "stripe"
)

// benchStep is one event of a subscription's life in the stripe mix.
type benchStep struct {
	Type    string
	Invoice int    // which of the subscription's invoices (-1: none)
	Status  string // subscription status ("": the generator's default)
}

// benchStripeCycle is the life of one subscription in the stripe mix, after
// the customer's customer.created. Sending a step before the previous one
// (--out-of-order) gives: the first invoice.paid before its subscription
// exists (parked, then released by customer.subscription.created); a
// customer.updated before the older one (superseded); the deletion before
// the last update (the update superseded); other pairs touch different
// objects and are both applied.
var benchStripeCycle = [...]benchStep{
	{"customer.subscription.created", -1, "active"},
	{"invoice.paid", 0, ""},
	{"customer.updated", -1, ""},
	{"customer.updated", -1, ""},
	{"invoice.payment_failed", 1, ""},
	{"customer.subscription.updated", -1, "past_due"},
	{"invoice.paid", 1, ""},
	{"customer.subscription.updated", -1, "active"},
	{"customer.subscription.deleted", -1, ""},
}

// benchStripeSubs is how many subscription (and invoice) IDs a customer of
// the stripe mix goes through before reusing them. hookd keeps every
// subscription and invoice of a customer in its state, so fresh IDs
// forever would make each event dearer as a run goes on; reused IDs are
// already known, so only a customer's first benchStripeSubs subscriptions
// can park an invoice.
const benchStripeSubs = 8

// benchEventFor renders the n-th event (0-based) of a customer in a mix.
// It is deterministic: the same arguments give the same bytes, so a
// duplicate delivery is identical to the first.
func benchEventFor(mix, run string, customer int, n int64, base int64) (id string, body []byte) {
	if mix == benchMixStripe {
		return benchStripeEvent(run, customer, n, base)
	}
	return benchEvent(run, customer, int(n), base)
}

// benchStripeEvent renders the n-th event (0-based) of a customer in the
// stripe mix: customer.created, then benchStripeCycle over and over, one
// subscription per cycle, with created strictly increasing (base+n). The
// objects are gen.go's, made deterministic.
func benchStripeEvent(run string, customer int, n int64, base int64) (id string, body []byte) {
	suffix := fmt.Sprintf("bench_%s_%d", run, customer)
	id = fmt.Sprintf("evt_%s_%d", suffix, n)
	step := benchStep{Type: "customer.created", Invoice: -1}
	var cycle int64
	if n > 0 {
		cycle = (n - 1) / int64(len(benchStripeCycle))
		step = benchStripeCycle[(n-1)%int64(len(benchStripeCycle))]
	}
	slot := cycle % benchStripeSubs
	spec := EventSpec{
		Type:         step.Type,
		EventID:      id,
		Customer:     "cus_" + suffix,
		Subscription: fmt.Sprintf("sub_%s_%d", suffix, slot),
		Invoice:      fmt.Sprintf("in_%s_%d_%d", suffix, slot, max(step.Invoice, 0)),
		Created:      time.Unix(base+n, 0),
		Email:        fmt.Sprintf("%s-%d@example.com", suffix, n),
		Status:       step.Status,
	}
	obj := generators[spec.Type](spec)
	// What gen.go fills in at random or from the event's time, made a
	// function of (run, customer, n).
	switch obj["object"] {
	case "customer":
		obj["created"] = base
		obj["metadata"] = map[string]string{"source": "hookd bench", "n": strconv.FormatInt(n, 10)}
	case "subscription":
		obj["created"] = base + 1 + cycle*int64(len(benchStripeCycle))
		if items, ok := obj["items"].(map[string]any); ok {
			if data, ok := items["data"].([]any); ok {
				for i, it := range data {
					if item, ok := it.(map[string]any); ok {
						item["id"] = fmt.Sprintf("si_%s_%d_%d", suffix, slot, i)
					}
				}
			}
		}
	}
	ev := map[string]any{
		"id":               id,
		"object":           "event",
		"api_version":      "2024-06-20",
		"created":          base + n,
		"livemode":         false,
		"pending_webhooks": 1,
		"request":          map[string]any{"id": fmt.Sprintf("req_%s_%d", suffix, n), "idempotency_key": nil},
		"type":             spec.Type,
		"data":             map[string]any{"object": obj},
	}
	body, err := json.Marshal(ev) // maps marshal with sorted keys: deterministic
	if err != nil {
		panic(err) // strings, numbers and maps of them always marshal
	}
	return id, body
}

// benchPick chooses a sender's next delivery or deliveries to one customer.
// counter holds how many of the customer's events have been handed out
// (reserved) so far; room is how many deliveries the sender may still make
// (only whether it is at least 2 matters). It returns the event numbers to
// send, in order:
//   - with probability duplicates, when the customer has events, one of
//     them again, reserving nothing;
//   - else with probability outOfOrder, when room allows, the customer's
//     next two events, reserved together and swapped: n+1, then n;
//   - else the customer's next event, n.
//
// Every event number is reserved exactly once, so a run leaves no gaps (an
// invoice never waits for a subscription that is never sent).
func benchPick(counter *atomic.Int64, rng *rand.Rand, duplicates, outOfOrder float64, room int) []int64 {
	if have := counter.Load(); have > 0 && duplicates > 0 && rng.Float64() < duplicates {
		return []int64{rng.Int64N(have)}
	}
	if room >= 2 && outOfOrder > 0 && rng.Float64() < outOfOrder {
		n := counter.Add(2) - 2
		return []int64{n + 1, n}
	}
	return []int64{counter.Add(1) - 1}
}

// benchDelivery is one event to send: a customer's n-th.
type benchDelivery struct {
	customer int
	n        int64
}

// benchRedelivered is the key of Result.Statuses that counts 2xx
// answers to deliveries of an event already answered 2xx (--duplicates).
const benchRedelivered = "redelivered"

func runBench(ctx context.Context, c config) (Result, error) {
	tlsCfg, err := certs.ClientConfigFromFiles(c.CA, c.Cert, c.Key)
	if err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	base := time.Now().Add(-24 * time.Hour).Unix()
	ctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()

	var (
		mu        sync.Mutex // guards the fields below
		latencies []time.Duration
		sentAt    []time.Time // when each of latencies' requests was sent
		statuses  = map[string]int64{}
		non2xx    = map[string]int64{}
		acked     = map[string]time.Time{} // applied event → when its 2xx arrived
		parked    = map[string]bool{}      // events answered "parked"
		answered  = map[string]bool{}      // events answered 2xx at least once
		received  = map[string]time.Time{} // event → when its first notification arrived
		transport atomic.Int64
		dropped   atomic.Int64
		sent      atomic.Int64
		perCust   = make([]atomic.Int64, c.Customers)
	)
	// The statuses this workload is meant to produce show even when none
	// came back.
	statuses["applied"] = 0
	if c.Duplicates > 0 {
		statuses[benchRedelivered] = 0
	}
	if c.OutOfOrder > 0 {
		statuses["parked"], statuses["superseded"] = 0, 0
	}

	// The notification stream, for lag: time from the sender's 2xx to the
	// notification reaching a subscriber (an upper bound on commit → subscriber).
	subDone := make(chan struct{})
	if c.GRPCAddr != "" {
		creds := insecure.NewCredentials()
		if c.CA != "" {
			creds = credentials.NewTLS(tlsCfg)
		}
		opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
		if c.Token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(services.BearerToken(c.Token)))
		}
		conn, err := grpc.NewClient(c.GRPCAddr, opts...)
		if err != nil {
			return Result{}, err
		}
		defer conn.Close()
		subCtx, subCancel := context.WithCancel(context.Background())
		defer subCancel()
		stream, err := hookdv1.NewNotificationServiceClient(conn).Subscribe(subCtx, &hookdv1.SubscribeRequest{FromNow: true})
		if err != nil {
			return Result{}, fmt.Errorf("subscribe: %w", err)
		}
		// Events sent before the stream's start is fixed could fall before
		// it and never be seen. (A hookd too old to send its headers early
		// sends them with the first notification: then go on.)
		if err := AwaitStreamStart(stream, 10*time.Second); err != nil && !errors.Is(err, errHeadersLate) {
			return Result{}, fmt.Errorf("subscribe: %w", err)
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
	var sink *deliverySink
	if c.Deliver {
		var tc *tls.Config
		if c.CA != "" {
			tc = tlsCfg
		}
		setup, cancelSetup := context.WithTimeout(context.Background(), 10*time.Second)
		sink, err = startDeliverySink(setup, c.DeliverAddr, c.GRPCAddr, c.Token, tc)
		cancelSetup()
		if err != nil {
			return Result{}, err
		}
		defer sink.close()
	}

	// Figures cover requests sent from measureFrom on; CPU from then too.
	var measureFrom time.Time
	var cpu0 float64
	send, closeClient, err := benchSender(c.URL, c.Concurrency, tlsCfg)
	if err != nil {
		return Result{}, err
	}
	defer closeClient()
	// post sends one delivery and records its answer. Latency counts from
	// due, the time the open-loop schedule meant it to go (so that a
	// generator running late adds to it instead of hiding it), or from now
	// when due is zero (closed loop).
	post := func(id string, body []byte, due time.Time) {
		sig := stripe.Sign(body, c.Secret, time.Now())
		start := time.Now()
		if !due.IsZero() {
			start = due
		}
		code, respBody, err := send(sig, body)
		if err != nil {
			transport.Add(1)
			return
		}
		var answer struct {
			Status string `json:"status"`
		}
		done := time.Now()
		json.Unmarshal(respBody, &answer)
		mu.Lock()
		defer mu.Unlock()
		if start.Before(measureFrom) {
			if code/100 == 2 {
				answered[id] = true
			}
			if answer.Status == "parked" {
				parked[id] = true
			}
			return
		}
		latencies = append(latencies, done.Sub(start))
		sentAt = append(sentAt, start)
		if code/100 == 2 {
			if answered[id] {
				// hookd answers a repeat with what the event did (applied,
				// parked, ...); counted apart, so that each status counts
				// events.
				answer.Status = benchRedelivered
			}
			answered[id] = true
			statuses[answer.Status]++
			switch answer.Status {
			case "applied":
				if _, seen := acked[id]; !seen {
					acked[id] = done
				}
			case "parked":
				parked[id] = true
			}
		} else {
			non2xx[strconv.Itoa(code)]++
		}
	}
	// next returns a sender's next delivery: the second of a swapped pair
	// it has begun, else a new one (ok false when --events are all sent).
	// pending holds the rest of the sender's pair, which is sent even past
	// --duration so that no event is left out (and past --events by one
	// when senders race for the last ones; no pair starts with one left).
	next := func(rng *rand.Rand, pending *[]benchDelivery) (id string, body []byte, ok bool) {
		if len(*pending) == 0 {
			seq := sent.Add(1) - 1
			if c.Events > 0 && seq >= int64(c.Events) {
				return "", nil, false
			}
			cu := rng.IntN(c.Customers)
			if c.Cover {
				cu = int(seq % int64(c.Customers))
			}
			room := 2
			if c.Events > 0 && seq+1 >= int64(c.Events) {
				room = 1
			}
			ns := benchPick(&perCust[cu], rng, c.Duplicates, c.OutOfOrder, room)
			if len(ns) > 1 {
				sent.Add(int64(len(ns) - 1))
			}
			for _, n := range ns {
				*pending = append(*pending, benchDelivery{cu, n})
			}
		}
		d := (*pending)[0]
		*pending = (*pending)[1:]
		id, body = benchEventFor(c.Mix, run, d.customer, d.n, base)
		return id, body, true
	}

	start := time.Now()
	mu.Lock()
	measureFrom = start.Add(c.Warmup)
	mu.Unlock()
	cpu0, _ = procCPU(c.PID)
	self0, _ := procCPU(os.Getpid())
	if c.Warmup > 0 {
		warm := time.AfterFunc(c.Warmup, func() {
			v, _ := procCPU(c.PID)
			w, _ := procCPU(os.Getpid())
			mu.Lock()
			cpu0, self0 = v, w
			mu.Unlock()
		})
		defer warm.Stop()
	}
	var gcs *gcPoller
	if c.Timeline > 0 {
		gcs = pollGCs(ctx, c.MetricsURL, max(c.Timeline, 100*time.Millisecond))
	}
	var wg sync.WaitGroup
	if c.Rate > 0 {
		sem := make(chan struct{}, c.Concurrency)
		// Every millisecond, send what the schedule says is due by now: a
		// ticker per event drops ticks whenever the sender falls behind,
		// and the offered rate silently becomes whatever it manages.
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
		var pending []benchDelivery
		var issued int64
	loop:
		for {
			select {
			case <-ctx.Done():
				for len(pending) > 0 { // the rest of a swapped pair
					id, body, _ := next(rng, &pending)
					post(id, body, time.Time{})
				}
				break loop
			case <-tick.C:
				for due := int64(time.Since(start).Seconds() * c.Rate); issued < due; issued++ {
					id, body, ok := next(rng, &pending)
					if !ok {
						break loop
					}
					select {
					case sem <- struct{}{}:
					default: // too many in flight: count it, stay open loop
						dropped.Add(1)
						continue
					}
					wg.Add(1)
					// The schedule's time for this delivery: the loop sends
					// delivery k once (k+1)/rate has elapsed.
					at := start.Add(time.Duration(float64(issued+1) / c.Rate * float64(time.Second)))
					go func() { defer wg.Done(); post(id, body, at); <-sem }()
				}
			}
		}
	} else {
		for w := range c.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(w)))
				var pending []benchDelivery
				for ctx.Err() == nil || len(pending) > 0 {
					id, body, ok := next(rng, &pending)
					if !ok {
						return
					}
					post(id, body, time.Time{})
				}
			}()
		}
	}
	wg.Wait()
	gcSamples := gcs.stop()
	elapsed := time.Since(start) - c.Warmup
	cpu1, _ := procCPU(c.PID)
	self1, _ := procCPU(os.Getpid())

	// Give the last notifications (and deliveries) time to arrive: wait
	// while they keep coming, until none has come for notificationQuiet
	// (or a minute).
	if c.GRPCAddr != "" {
		hard := time.Now().Add(time.Minute)
		seen, progress := -1, time.Now()
		for time.Now().Before(hard) {
			mu.Lock()
			done := true
			for id := range acked {
				if _, ok := received[id]; !ok {
					done = false
					break
				}
				if sink != nil && !sink.has(id) {
					done = false
					break
				}
			}
			n := len(received)
			if sink != nil {
				n += sink.count()
			}
			mu.Unlock()
			if done {
				break
			}
			if n != seen {
				seen, progress = n, time.Now()
			} else if time.Since(progress) > notificationQuiet {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	// Lag: from the sender's 2xx to the subscriber's notification; a
	// notification that beat the 2xx counts as 0.
	// Only applied events count: a parked event's notification comes when
	// a later event releases it, and notifications of events this run did
	// not send (or not see applied) are ignored.
	var lags []time.Duration
	var missing []string
	for id, ack := range acked {
		if got, ok := received[id]; ok {
			lags = append(lags, max(0, got.Sub(ack)))
		} else if c.GRPCAddr != "" {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	var released int64
	for id := range parked {
		if _, ok := received[id]; ok {
			released++
		}
	}
	// Before percentiles, which sorts latencies.
	var tl *Timeline
	if c.Timeline > 0 {
		tl = timeline(measureFrom, c.Timeline, sentAt, latencies, gcSamples)
	}
	res := Result{
		Timeline:      tl,
		Events:        int64(len(latencies)),
		Seconds:       elapsed.Seconds(),
		LatencyMs:     percentiles(latencies),
		Statuses:      statuses,
		Non2xx:        non2xx,
		Errors:        transport.Load(),
		Dropped:       dropped.Load(),
		Notifications: int64(len(lags)),
		Missing:       int64(len(missing)),
		MissingSample: missing[:min(len(missing), 5)],
	}
	if c.GRPCAddr != "" {
		res.ParkedReleased = released
	}
	var ok int64
	for _, n := range statuses {
		ok += n
	}
	res.EventsPerSec = float64(ok) / elapsed.Seconds()
	if len(lags) > 0 {
		res.LagMs = percentiles(lags)
	}
	if sink != nil {
		sink.deliveryFigures(&res, acked, start)
	}
	res.GeneratorCPUPercent = 100 * (self1 - self0) / elapsed.Seconds()
	if res.Events > 0 {
		res.GeneratorCPUPerEventUs = 1e6 * (self1 - self0) / float64(res.Events)
	}
	if c.PID > 0 {
		res.CPUSeconds = cpu1 - cpu0
		res.CPUPercent = 100 * res.CPUSeconds / elapsed.Seconds()
		if res.Events > 0 {
			res.CPUPerEventUs = 1e6 * res.CPUSeconds / float64(res.Events)
		}
		res.RSSMiB, _ = procRSS(c.PID)
	}
	return res, nil
}

// errHeadersLate is AwaitStreamStart's answer when no headers came in time.
var errHeadersLate = errors.New("no response headers yet")

// AwaitStreamStart waits for a NotificationService/Subscribe stream's
// response headers, which hookd sends once the stream's starting position
// is fixed: events sent after them are all in the stream.
func AwaitStreamStart(stream grpc.ClientStream, wait time.Duration) error {
	header := make(chan error, 1)
	go func() {
		md, err := stream.Header()
		if err == nil && md == nil {
			// The stream ended without headers (refused: no token, say);
			// receiving says how.
			if err = stream.RecvMsg(new(hookdv1.Notification)); err == nil || errors.Is(err, io.EOF) {
				err = errors.New("the stream ended at once")
			}
		}
		header <- err
	}()
	select {
	case err := <-header:
		return err
	case <-time.After(wait):
		return fmt.Errorf("%w after %v", errHeadersLate, wait)
	}
}

// notificationQuiet is how long the generator waits, after sending, for a
// notification before it reports the ones still missing.
const notificationQuiet = 5 * time.Second

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

func printBench(w io.Writer, c config, r Result) {
	mode := fmt.Sprintf("closed loop, %d senders", c.Concurrency)
	if c.Rate > 0 {
		mode = fmt.Sprintf("open loop, %.0f/s offered", c.Rate)
	}
	mix := c.Mix
	if mix == "" {
		mix = benchMixCustomer
	}
	fmt.Fprintf(w, "hookd bench: %d customers, %s mix, %s, %v, duplicates %.0f%%, out of order %.0f%%\n",
		c.Customers, mix, mode, c.Duration, 100*c.Duplicates, 100*c.OutOfOrder)
	if c.Warmup > 0 {
		fmt.Fprintf(w, "  %-26s first %v left out of every figure\n", "warm-up", c.Warmup)
	}
	fmt.Fprintf(w, "  %-26s %.0f/s (%d answered in %.1fs)\n", "accepted (2xx)", r.EventsPerSec, r.Events, r.Seconds)
	fmt.Fprintf(w, "  %-26s %s\n", "HTTP latency (ms)", fmtPct(r.LatencyMs))
	fmt.Fprintf(w, "  %-26s %s\n", "2xx statuses", fmtCounts(r.Statuses))
	fmt.Fprintf(w, "  %-26s %s, transport errors %d\n", "non-2xx by code", fmtCounts(r.Non2xx), r.Errors)
	if r.Dropped > 0 {
		fmt.Fprintf(w, "  %-26s %d (--concurrency requests were in flight; in no latency figure)\n", "not sent", r.Dropped)
	}
	if r.LagMs != nil {
		fmt.Fprintf(w, "  %-26s %s (%d notifications of applied events)\n", "notification lag (ms)", fmtPct(r.LagMs), r.Notifications)
		if r.Missing > 0 {
			fmt.Fprintf(w, "  %-26s %d applied events without one %v after the last arrived (%s)\n", "notifications missing", r.Missing, notificationQuiet, strings.Join(r.MissingSample, ", "))
		}
	}
	if c.Deliver {
		fmt.Fprintf(w, "  %-26s %.0f/s (%d applied events delivered, %d requests)\n", "push deliveries", r.DeliveriesPerSec, r.Deliveries, r.DeliveryRequests)
		fmt.Fprintf(w, "  %-26s %s\n", "delivery lag (ms)", fmtPct(r.DeliveryLagMs))
		if r.DeliveriesMissing > 0 {
			fmt.Fprintf(w, "  %-26s %d applied events not delivered %v after the last delivery\n", "deliveries missing", r.DeliveriesMissing, notificationQuiet)
		}
	}
	if c.GRPCAddr != "" && r.Statuses["parked"] > 0 {
		fmt.Fprintf(w, "  %-26s %d of %d notified\n", "parked, then released", r.ParkedReleased, r.Statuses["parked"])
	}
	if c.PID > 0 {
		fmt.Fprintf(w, "  %-26s cpu %.0f%% (%.1fs, %.0f µs per event), rss %.0f MiB\n", "hookd process", r.CPUPercent, r.CPUSeconds, r.CPUPerEventUs, r.RSSMiB)
	}
	fmt.Fprintf(w, "  %-26s cpu %.0f%% (%.0f µs per event)\n", "this generator", r.GeneratorCPUPercent, r.GeneratorCPUPerEventUs)
	if r.Timeline != nil {
		printTimeline(w, r.Timeline)
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
