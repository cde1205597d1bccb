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
	"bytes"
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
	Events      int           // stop after this many (0: duration only; priming not counted)
	Duplicates  float64       // fraction of deliveries repeated
	OutOfOrder  float64       // probability that a sender sends a customer's next two events swapped
	Mix         string        // benchMixSteady, benchMixCustomer or benchMixStripe
	Cover       bool          // visit customers in turn instead of at random
	PID         int           // hookd's PID for CPU and RSS figures (0: none)
	PostgresPID int           // the postmaster's PID, for PostgreSQL's CPU (0: none)
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
	// Types counts Events by event type: the mix the run sent, duplicates
	// included.
	Types map[string]int64 `json:"event_types"`
	// PrimedCustomers and PrimeSeconds are the steady mix's priming, before
	// the clock started and in no other figure.
	PrimedCustomers int64   `json:"primed_customers,omitempty"`
	PrimeSeconds    float64 `json:"prime_seconds,omitempty"`
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
	// PostgreSQL's CPU (--postgres-pid): the postmaster's and all its
	// children's, the connections hookd's pool opened among them; per
	// answered event as hookd's. CPUPerEventTotalUs is hookd's and
	// PostgreSQL's together, what an event costs the server side.
	PostgresCPUSeconds    float64 `json:"postgres_cpu_seconds,omitempty"`
	PostgresCPUPercent    float64 `json:"postgres_cpu_percent,omitempty"`
	PostgresCPUPerEventUs float64 `json:"postgres_cpu_us_per_event,omitempty"`
	CPUPerEventTotalUs    float64 `json:"cpu_us_per_event_total,omitempty"`
	// Push delivery figures (--deliver): distinct applied events delivered
	// to the local receiver, their rate from the start of the run to the
	// last delivery, the lag from the sender's 2xx to the receiver's
	// request, the requests it got (retries and duplicates included), those
	// it could not read (answered 400), and applied events never delivered
	// when deliveries stopped coming.
	Deliveries          int64              `json:"deliveries,omitempty"`
	DeliveriesPerSec    float64            `json:"deliveries_per_sec,omitempty"`
	DeliveryLagMs       map[string]float64 `json:"delivery_lag_ms,omitempty"`
	DeliveryRequests    int64              `json:"delivery_requests,omitempty"`
	DeliveryBadRequests int64              `json:"delivery_bad_requests,omitempty"`
	DeliveriesMissing   int64              `json:"deliveries_missing,omitempty"`
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
// returns flag.ErrHelp for -h, and an error for invalid flags, when the
// run could not start or when the steady mix's priming failed; answers of
// the run that are not 2xx are figures, not errors.
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
	fs.IntVar(&c.Events, "events", 0, "stop after this many events (0: run for --duration); the steady mix's priming is not counted")
	fs.BoolVar(&c.Cover, "cover", false, "send to customers in turn (every customer once before any twice) instead of at random")
	fs.Float64Var(&c.Duplicates, "duplicates", 0, "fraction of deliveries that repeat an earlier event, byte for byte (0 to 1); in the steady mix, one sent after priming")
	fs.Float64Var(&c.OutOfOrder, "out-of-order", 0, "probability (0 to 1) that a sender takes a customer's next two events instead of one and sends the later first;\n"+
		"above 0 it implies --mix stripe (an explicit --mix steady or customer is an error)")
	fs.StringVar(&c.Mix, "mix", "", "each customer's events: \"steady\" (before the clock starts, every customer is primed with customer.created and\n"+
		"customer.subscription.created; then, in fixed shares whatever the throughput, customer.updated 40%, invoice.paid 30%,\n"+
		"customer.subscription.updated 20%, invoice.payment_failed 10%, all applied, on "+strconv.Itoa(benchSteadyInvoices)+" reused invoice IDs),\n"+
		"\"customer\" (customer.created, then customer.updated; cheap), or \"stripe\" (customer.created,\n"+
		"then one subscription after another: created, first invoice paid, customer updated twice, renewal invoice failed,\n"+
		"subscription past_due, invoice paid, subscription active, deleted; a customer reuses its "+strconv.Itoa(benchStripeSubs)+" subscription IDs,\n"+
		"so its state stays bounded and only its first "+strconv.Itoa(1+benchStripeSubs*len(benchStripeCycle))+" events can be parked)\n"+
		"(default steady, or stripe when --out-of-order is above 0). In a fixed-duration run the customer and stripe mixes\n"+
		"depend on throughput: a slower target sends fewer events per customer, more of them the cheap customer.created")
	fs.StringVar(&c.CA, "ca", "", "PEM CA bundle that verifies a TLS hookd (https:// --url, and gRPC over TLS when set)")
	fs.StringVar(&c.Cert, "cert", "", "PEM client certificate for a hookd with --grpc-client-ca (with --key and --ca)")
	fs.StringVar(&c.Key, "key", "", "PEM private key for --cert")
	fs.IntVar(&c.PID, "pid", 0, "hookd's process ID, for its CPU and RSS")
	fs.IntVar(&c.PostgresPID, "postgres-pid", 0, "the PostgreSQL postmaster's process ID (the first line of postmaster.pid in its data directory), for the CPU\n"+
		"of PostgreSQL's processes: the postmaster and all its children, those that exited during the run included (0: off)")
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
	case c.Mix != "" && c.Mix != benchMixSteady && c.Mix != benchMixCustomer && c.Mix != benchMixStripe:
		return fmt.Errorf("bench: --mix must be %s, %s or %s", benchMixSteady, benchMixCustomer, benchMixStripe)
	case c.Mix != "" && c.Mix != benchMixStripe && c.OutOfOrder > 0:
		// Only the stripe mix is made to park and supersede events when
		// swapped; the steady mix is a fixed workload, sent in order, to
		// compare builds and systems by.
		return fmt.Errorf("bench: --out-of-order needs --mix stripe (the %s mix is sent in order)", c.Mix)
	case c.PostgresPID < 0:
		return errors.New("bench: --postgres-pid must be a process ID")
	}
	if c.PostgresPID > 0 {
		// A wrong PID would give no figure, found out only after the run.
		if _, err := procTreeCPU(c.PostgresPID); err != nil {
			return fmt.Errorf("bench: --postgres-pid %d: %w", c.PostgresPID, err)
		}
	}
	if c.Mix == "" {
		c.Mix = benchMixSteady
		if c.OutOfOrder > 0 {
			c.Mix = benchMixStripe
		}
	}
	if getenv("GOGC") == "" {
		// The generator shares the machine with the hookd it measures:
		// spend less of it on collecting garbage (its heap is small).
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	progress := stdout
	if c.JSON {
		progress = nil // the JSON result has it all
	}
	res, err := runBench(ctx, c, progress)
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
	typ := benchEventType(benchMixCustomer, customer, int64(n))
	body = fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2024-06-20","created":%d,"livemode":false,"pending_webhooks":1,"type":%q,"data":{"object":{"id":%q,"object":"customer","email":"%s-%d@example.com","name":"Bench Customer","metadata":{"n":"%d"}}}}`,
		id, base+int64(n), typ, cus, cus, n, n)
	return id, body
}

// Event mixes for --mix.
const (
	benchMixSteady   = "steady"
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

// benchSteadyPrimed is how many events of each customer the steady mix
// sends before the clock starts (benchPrime): the customer and its one
// subscription.
const benchSteadyPrimed = 2

// benchSteadyCycle is what every customer of the steady mix gets after
// priming, over and over: customer.updated 40%, invoice.paid 30%,
// customer.subscription.updated 20%, invoice.payment_failed 10%. The
// shares of a run are the cycle's whatever its throughput, where in the
// other mixes a slower target sends fewer events per customer and so more
// of the cheap customer.created. Each customer starts the cycle at its own
// step (customer mod the cycle's length): a run over many customers sends
// each only a few events, fewer than a cycle when short or slow, and
// customers all starting at the first step would make those first steps
// the mix. Every step is applied by hookd when sent in order: each
// touches the customer, its subscription (known since priming, so no
// invoice is parked) or one of its benchSteadyInvoices invoices, with
// created newer than the last. No two steps next to each other (the last
// and the first included) are on the same object, and consecutive
// invoices differ, so two of a customer's consecutive events reordered by
// concurrent senders are both applied still. The Invoice field is unused:
// the invoice is chosen by the event's number.
var benchSteadyCycle = [...]benchStep{
	{"customer.updated", -1, ""},
	{"invoice.paid", 0, ""},
	{"customer.updated", -1, ""},
	{"customer.subscription.updated", -1, "past_due"},
	{"invoice.payment_failed", 0, ""},
	{"customer.updated", -1, ""},
	{"invoice.paid", 0, ""},
	{"customer.subscription.updated", -1, "active"},
	{"customer.updated", -1, ""},
	{"invoice.paid", 0, ""},
}

// benchSteadyInvoices is how many invoice IDs a customer of the steady mix
// reuses (its n-th event is on invoice n mod benchSteadyInvoices): hookd
// keeps every invoice of a customer in its state, and the cost of an event
// must not grow as a run goes on.
const benchSteadyInvoices = 8

// benchStripeStep is the n-th step (0-based) of a customer in the stripe
// mix and which of its subscription cycles it belongs to.
func benchStripeStep(n int64) (step benchStep, cycle int64) {
	if n == 0 {
		return benchStep{Type: "customer.created", Invoice: -1}, 0
	}
	return benchStripeCycle[(n-1)%int64(len(benchStripeCycle))], (n - 1) / int64(len(benchStripeCycle))
}

// benchSteadyStep is the n-th step (0-based) of a customer in the steady
// mix: the two priming events, then benchSteadyCycle from the customer's
// own first step.
func benchSteadyStep(customer int, n int64) benchStep {
	switch n {
	case 0:
		return benchStep{Type: "customer.created", Invoice: -1}
	case 1:
		return benchStep{Type: "customer.subscription.created", Invoice: -1, Status: "active"}
	}
	return benchSteadyCycle[(n-benchSteadyPrimed+int64(customer))%int64(len(benchSteadyCycle))]
}

// benchEventType is the type of a customer's n-th event in a mix, as
// benchEventFor renders it.
func benchEventType(mix string, customer int, n int64) string {
	switch mix {
	case benchMixStripe:
		step, _ := benchStripeStep(n)
		return step.Type
	case benchMixSteady:
		return benchSteadyStep(customer, n).Type
	}
	if n == 0 {
		return "customer.created"
	}
	return "customer.updated"
}

// benchEventFor renders the n-th event (0-based) of a customer in a mix.
// It is deterministic: the same arguments give the same bytes, so a
// duplicate delivery is identical to the first.
func benchEventFor(mix, run string, customer int, n int64, base int64) (id string, body []byte) {
	switch mix {
	case benchMixStripe:
		return benchStripeEvent(run, customer, n, base)
	case benchMixSteady:
		return benchSteadyEvent(run, customer, n, base)
	}
	return benchEvent(run, customer, int(n), base)
}

// benchStripeEvent renders the n-th event (0-based) of a customer in the
// stripe mix: customer.created, then benchStripeCycle over and over, one
// subscription per cycle, with created strictly increasing (base+n).
func benchStripeEvent(run string, customer int, n int64, base int64) (id string, body []byte) {
	suffix := fmt.Sprintf("bench_%s_%d", run, customer)
	step, cycle := benchStripeStep(n)
	slot := cycle % benchStripeSubs
	return benchRender(suffix, n, base, step, benchObjects{
		subscription: fmt.Sprintf("sub_%s_%d", suffix, slot),
		subCreated:   base + 1 + cycle*int64(len(benchStripeCycle)),
		invoice:      fmt.Sprintf("in_%s_%d_%d", suffix, slot, max(step.Invoice, 0)),
	})
}

// benchSteadyEvent renders the n-th event (0-based) of a customer in the
// steady mix (benchSteadyStep), with created strictly increasing
// (base+n), on the one subscription its event 1 created.
func benchSteadyEvent(run string, customer int, n int64, base int64) (id string, body []byte) {
	suffix := fmt.Sprintf("bench_%s_%d", run, customer)
	return benchRender(suffix, n, base, benchSteadyStep(customer, n), benchObjects{
		subscription: "sub_" + suffix,
		subCreated:   base + 1,
		invoice:      fmt.Sprintf("in_%s_%d", suffix, n%benchSteadyInvoices),
	})
}

// benchObjects names the objects other than the customer that a
// customer's event may be about.
type benchObjects struct {
	subscription string
	subCreated   int64 // the subscription's own created
	invoice      string
}

// benchPick chooses a sender's next delivery or deliveries to one customer.
// counter holds how many of the customer's events have been handed out
// (reserved) so far, first the lowest event number a duplicate may repeat;
// room is how many deliveries the sender may still make (only whether it
// is at least 2 matters). It returns the event numbers to send, in order:
//   - with probability duplicates, when the customer has events from first
//     on, one of them again, reserving nothing;
//   - else with probability outOfOrder, when room allows, the customer's
//     next two events, reserved together and swapped: n+1, then n;
//   - else the customer's next event, n.
//
// Every event number is reserved exactly once, so a run leaves no gaps (an
// invoice never waits for a subscription that is never sent).
func benchPick(counter *atomic.Int64, first int64, rng *rand.Rand, duplicates, outOfOrder float64, room int) []int64 {
	if have := counter.Load(); have > first && duplicates > 0 && rng.Float64() < duplicates {
		return []int64{first + rng.Int64N(have-first)}
	}
	if room >= 2 && outOfOrder > 0 && rng.Float64() < outOfOrder {
		n := counter.Add(2) - 2
		return []int64{n + 1, n}
	}
	return []int64{counter.Add(1) - 1}
}

// benchPrimeAttempts is how many times priming sends an event before the
// run fails, and benchPrimeBackoff the wait after its first failure
// (doubled after each): a hookd shedding the burst with 503s, or a
// connection it closed, is no reason to give up at once.
const (
	benchPrimeAttempts = 5
	benchPrimeBackoff  = 50 * time.Millisecond
)

// benchPrime sends every customer's first benchSteadyPrimed events
// (render's) from concurrency senders, a customer's next only once the
// previous was answered 2xx, as Stripe sends a customer's events; primed
// is told each event answered. It stops at the first event that failed
// benchPrimeAttempts times, or when ctx is done (once the requests in
// flight are answered), and returns how many customers it primed.
func benchPrime(ctx context.Context, customers, concurrency int, render func(customer int, n int64) (id string, body []byte),
	post func(body []byte) (code int, resp []byte, err error), primed func(id string)) (int, error) {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		nextCustomer, done atomic.Int64
		failed             sync.Once
		first              error
		wg                 sync.WaitGroup
	)
	for range min(concurrency, customers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cu := int(nextCustomer.Add(1) - 1)
				if cu >= customers {
					return
				}
				for n := range int64(benchSteadyPrimed) {
					id, body := render(cu, n)
					if err := benchPrimeOne(ctx, body, post); err != nil {
						if ctx.Err() == nil { // else stopped, not failed
							failed.Do(func() { first = fmt.Errorf("customer %d's event %s: %w", cu, id, err); cancel() })
						}
						return
					}
					primed(id)
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return int(done.Load()), first
	}
	return int(done.Load()), parent.Err()
}

// benchPrimeOne posts body until it is answered 2xx, up to
// benchPrimeAttempts times.
func benchPrimeOne(ctx context.Context, body []byte, post func([]byte) (int, []byte, error)) error {
	wait := benchPrimeBackoff
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		code, resp, err := post(body)
		if err == nil && code/100 == 2 {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("answered %d %s", code, bytes.TrimSpace(resp[:min(len(resp), 200)]))
		}
		if attempt == benchPrimeAttempts {
			return fmt.Errorf("%w (%d attempts)", err, attempt)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}

// benchDelivery is one event to send: a customer's n-th.
type benchDelivery struct {
	customer int
	n        int64
}

// benchRedelivered is the key of Result.Statuses that counts 2xx
// answers to deliveries of an event already answered 2xx (--duplicates).
const benchRedelivered = "redelivered"

// runBench runs the bench c describes; progress, when not nil, is told
// what happens before the figures (the steady mix's priming).
func runBench(ctx context.Context, c config, progress io.Writer) (Result, error) {
	tlsCfg, err := certs.ClientConfigFromFiles(c.CA, c.Cert, c.Key)
	if err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	base := time.Now().Add(-24 * time.Hour).Unix()

	var (
		mu        sync.Mutex // guards the fields below
		latencies []time.Duration
		sentAt    []time.Time // when each of latencies' requests was sent
		statuses  = map[string]int64{}
		non2xx    = map[string]int64{}
		types     = map[string]int64{}     // of the measured requests answered
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

	send, closeClient, err := benchSender(c.URL, c.Concurrency, tlsCfg)
	if err != nil {
		return Result{}, err
	}
	defer closeClient()

	// The notification stream, for lag: time from the sender's 2xx to the
	// notification reaching a subscriber (an upper bound on commit → subscriber).
	// Opened before priming, so that a stream hookd refuses stops the run
	// before it spends minutes priming.
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
		stream, err := hookdv1.NewNotificationServiceClient(conn).Subscribe(subCtx, &hookdv1.SubscribeRequest{FromNow: true}, grpc.ForceCodecV2(newEventIDCodec()))
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

	var primedCustomers int64
	var primeSeconds float64
	if c.Mix == benchMixSteady {
		began := time.Now()
		render := func(cu int, n int64) (string, []byte) { return benchEventFor(c.Mix, run, cu, n, base) }
		post := func(body []byte) (int, []byte, error) { return send(stripe.Sign(body, c.Secret, time.Now()), body) }
		// A duplicate of a priming event is a redelivery, as any other.
		primed := func(id string) { mu.Lock(); answered[id] = true; mu.Unlock() }
		done, err := benchPrime(ctx, c.Customers, c.Concurrency, render, post, primed)
		if err != nil {
			return Result{}, fmt.Errorf("bench: priming stopped after %d of %d customers: %w", done, c.Customers, err)
		}
		for i := range perCust {
			perCust[i].Store(benchSteadyPrimed)
		}
		primedCustomers, primeSeconds = int64(c.Customers), time.Since(began).Seconds()
		if progress != nil {
			fmt.Fprintf(progress, "primed %d customers (%d events) in %.1f s\n", c.Customers, benchSteadyPrimed*c.Customers, primeSeconds)
		}
	}
	// The clock starts after priming.
	ctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()

	// The endpoint is created after priming: it gets what commits from then
	// on, so priming's deliveries do not run on into the measured part.
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
	var cpu0, pg0 float64
	// post sends one delivery and records its answer. Latency counts from
	// due, the time the open-loop schedule meant it to go (so that a
	// generator running late adds to it instead of hiding it), or from now
	// when due is zero (closed loop).
	post := func(id, typ string, body []byte, due time.Time) {
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
		types[typ]++
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
	// Duplicates of the steady mix repeat its steady events only: the share
	// of a customer's events that priming sent depends on how many it got,
	// and so, through its duplicates, would the mix.
	var dupFrom int64
	if c.Mix == benchMixSteady {
		dupFrom = benchSteadyPrimed
	}
	// next returns a sender's next delivery: the second of a swapped pair
	// it has begun, else a new one (ok false when --events are all sent).
	// pending holds the rest of the sender's pair, which is sent even past
	// --duration so that no event is left out (and past --events by one
	// when senders race for the last ones; no pair starts with one left).
	next := func(rng *rand.Rand, pending *[]benchDelivery) (id, typ string, body []byte, ok bool) {
		if len(*pending) == 0 {
			seq := sent.Add(1) - 1
			if c.Events > 0 && seq >= int64(c.Events) {
				return "", "", nil, false
			}
			cu := rng.IntN(c.Customers)
			if c.Cover {
				cu = int(seq % int64(c.Customers))
			}
			room := 2
			if c.Events > 0 && seq+1 >= int64(c.Events) {
				room = 1
			}
			ns := benchPick(&perCust[cu], dupFrom, rng, c.Duplicates, c.OutOfOrder, room)
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
		return id, benchEventType(c.Mix, d.customer, d.n), body, true
	}

	start := time.Now()
	mu.Lock()
	measureFrom = start.Add(c.Warmup)
	mu.Unlock()
	cpu0, _ = procCPU(c.PID)
	pg0, _ = procTreeCPU(c.PostgresPID)
	self0, _ := procCPU(os.Getpid())
	if c.Warmup > 0 {
		warm := time.AfterFunc(c.Warmup, func() {
			v, _ := procCPU(c.PID)
			p, _ := procTreeCPU(c.PostgresPID)
			w, _ := procCPU(os.Getpid())
			mu.Lock()
			cpu0, pg0, self0 = v, p, w
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
					id, typ, body, _ := next(rng, &pending)
					post(id, typ, body, time.Time{})
				}
				break loop
			case <-tick.C:
				for due := int64(time.Since(start).Seconds() * c.Rate); issued < due; issued++ {
					id, typ, body, ok := next(rng, &pending)
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
					go func() { defer wg.Done(); post(id, typ, body, at); <-sem }()
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
					id, typ, body, ok := next(rng, &pending)
					if !ok {
						return
					}
					post(id, typ, body, time.Time{})
				}
			}()
		}
	}
	wg.Wait()
	gcSamples := gcs.stop()
	elapsed := time.Since(start) - c.Warmup
	cpu1, _ := procCPU(c.PID)
	pg1, _ := procTreeCPU(c.PostgresPID)
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
		Timeline:        tl,
		Events:          int64(len(latencies)),
		Seconds:         elapsed.Seconds(),
		LatencyMs:       percentiles(latencies),
		Statuses:        statuses,
		Non2xx:          non2xx,
		Errors:          transport.Load(),
		Types:           types,
		PrimedCustomers: primedCustomers,
		PrimeSeconds:    primeSeconds,
		Dropped:         dropped.Load(),
		Notifications:   int64(len(lags)),
		Missing:         int64(len(missing)),
		MissingSample:   missing[:min(len(missing), 5)],
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
	if c.PostgresPID > 0 {
		res.PostgresCPUSeconds = pg1 - pg0
		res.PostgresCPUPercent = 100 * res.PostgresCPUSeconds / elapsed.Seconds()
		if res.Events > 0 {
			res.PostgresCPUPerEventUs = 1e6 * res.PostgresCPUSeconds / float64(res.Events)
			if c.PID > 0 {
				res.CPUPerEventTotalUs = res.CPUPerEventUs + res.PostgresCPUPerEventUs
			}
		}
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
		mix = benchMixSteady
	}
	fmt.Fprintf(w, "hookd bench: %d customers, %s mix, %s, %v, duplicates %.0f%%, out of order %.0f%%\n",
		c.Customers, mix, mode, c.Duration, 100*c.Duplicates, 100*c.OutOfOrder)
	if c.Warmup > 0 {
		fmt.Fprintf(w, "  %-26s first %v left out of every figure\n", "warm-up", c.Warmup)
	}
	fmt.Fprintf(w, "  %-26s %.0f/s (%d answered in %.1fs)\n", "accepted (2xx)", r.EventsPerSec, r.Events, r.Seconds)
	fmt.Fprintf(w, "  %-26s %s\n", "HTTP latency (ms)", fmtPct(r.LatencyMs))
	fmt.Fprintf(w, "  %-26s %s\n", "mix", fmtShares(r.Types))
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
		if r.DeliveryBadRequests > 0 {
			fmt.Fprintf(w, "  %-26s %d requests the receiver could not read (answered 400)\n", "bad deliveries", r.DeliveryBadRequests)
		}
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
	if c.PostgresPID > 0 {
		fmt.Fprintf(w, "  %-26s cpu %.0f%% (%.1fs, %.0f µs per event)\n", "postgres processes", r.PostgresCPUPercent, r.PostgresCPUSeconds, r.PostgresCPUPerEventUs)
		if c.PID > 0 {
			fmt.Fprintf(w, "  %-26s %.0f µs per event\n", "hookd + postgres cpu", r.CPUPerEventTotalUs)
		}
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

// fmtShares gives each key's share of the counts, the largest first.
func fmtShares(m map[string]int64) string {
	var total int64
	var keys []string
	for k, n := range m {
		total += n
		keys = append(keys, k)
	}
	if total == 0 {
		return "none"
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.1f%%", k, 100*float64(m[k])/float64(total)))
	}
	return strings.Join(parts, ", ")
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

// procStat is what the bench reads of a process's /proc/PID/stat, CPU
// times in clock ticks.
type procStat struct {
	pid, ppid      int
	utime, stime   int64 // the process's own
	cutime, cstime int64 // of its children that exited and were waited for
}

// parseProcStat parses a /proc/PID/stat line. The command name, in
// parentheses, may hold spaces and parentheses itself: the fields are
// those after the last ')'.
func parseProcStat(s string) (procStat, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, errors.New("malformed /proc stat")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: pid: %w", err)
	}
	// After the name: state (field 3), ppid (4), ..., utime (14), stime
	// (15), cutime (16), cstime (17).
	f := strings.Fields(s[end+1:])
	if len(f) < 15 {
		return procStat{}, errors.New("short /proc stat")
	}
	st := procStat{pid: pid}
	st.ppid, err = strconv.Atoi(f[1])
	for i, v := range []*int64{&st.utime, &st.stime, &st.cutime, &st.cstime} {
		if err != nil {
			break
		}
		*v, err = strconv.ParseInt(f[11+i], 10, 64)
	}
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: %w", err)
	}
	return st, nil
}

func readProcStat(pid int) (procStat, error) {
	if pid <= 0 {
		return procStat{}, errors.New("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(string(b))
}

// userHZ is the clock ticks per second of /proc's CPU times (USER_HZ:
// 100 on Linux, whatever the kernel's own HZ).
const userHZ = 100

// procCPU returns a process's user+system CPU seconds (Linux /proc).
func procCPU(pid int) (float64, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	return float64(st.utime+st.stime) / userHZ, nil
}

// procChildren returns the live children of pid, found by scanning /proc
// for processes whose parent it is.
func procChildren(pid int) ([]procStat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procStat
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		st, err := readProcStat(child)
		if err != nil {
			continue // exited since the listing
		}
		if st.ppid == pid {
			out = append(out, st)
		}
	}
	return out, nil
}

// procTreeCPU returns the CPU seconds of pid and its children, as for
// PostgreSQL, which serves every connection from a child of the
// postmaster: pid's own, its live children's, and its reaped children's
// (cutime and cstime), so that a connection closed during a run still
// counts. A live child's reaped children count too: when it is reaped in
// turn they are in pid's cutime, and the sum goes on without a jump. The
// postmaster is read first: a child reaped between the two reads is
// missed by that sample, a tick or so of error in a scan of milliseconds.
func procTreeCPU(pid int) (float64, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	ticks := st.utime + st.stime + st.cutime + st.cstime
	children, err := procChildren(pid)
	if err != nil {
		return 0, err
	}
	for _, ch := range children {
		ticks += ch.utime + ch.stime + ch.cutime + ch.cstime
	}
	return float64(ticks) / userHZ, nil
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
