package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hookd/hookd/provider/stripe"

	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/actors/customer"
)

const benchTestBase = 1_700_000_000

var benchMixes = []string{benchMixSteady, benchMixCustomer, benchMixStripe}

func TestBenchEventsAreDeterministic(t *testing.T) {
	for _, mix := range benchMixes {
		seen := map[string]bool{}
		for cu := range 3 {
			for n := range int64(2 + 3*len(benchStripeCycle)) {
				id1, body1 := benchEventFor(mix, "r1", cu, n, benchTestBase)
				id2, body2 := benchEventFor(mix, "r1", cu, n, benchTestBase)
				if id1 != id2 || !bytes.Equal(body1, body2) {
					t.Fatalf("%s mix: customer %d event %d differs between two renderings:\n%s\n%s", mix, cu, n, body1, body2)
				}
				if seen[id1] {
					t.Fatalf("%s mix: event ID %s rendered for two (customer, n)", mix, id1)
				}
				seen[id1] = true
				if id3, _ := benchEventFor(mix, "r2", cu, n, benchTestBase); id3 == id1 {
					t.Fatalf("%s mix: runs r1 and r2 share event ID %s", mix, id1)
				}
			}
		}
	}
}

// benchDecoded is an event of the bench decoded as hookd decodes it.
type benchDecoded struct {
	typ, eventID, customerID, routing, objectID string
	created                                     int64
	object                                      map[string]any
	related                                     []string
}

func decodeBenchEvent(t *testing.T, mix string, cu int, n int64) benchDecoded {
	t.Helper()
	id, body := benchEventFor(mix, "run", cu, n, benchTestBase)
	env, err := stripe.DecodeEnvelope(body)
	if err != nil {
		t.Fatalf("%s mix: customer %d event %d does not decode: %v\n%s", mix, cu, n, err, body)
	}
	if env.GetEventId() != id {
		t.Fatalf("%s mix: event %d has ID %q, rendered as %q", mix, n, env.GetEventId(), id)
	}
	var raw struct {
		Data struct {
			Object map[string]any `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	return benchDecoded{typ: env.GetType(), eventID: env.GetEventId(), customerID: env.GetCustomerId(),
		routing: env.GetRouting(), objectID: env.GetObjectId(), created: env.GetCreated(),
		object: raw.Data.Object, related: env.GetRelatedObjectIds()}
}

func TestBenchEventsDecodeAndRouteToTheirCustomer(t *testing.T) {
	for _, mix := range benchMixes {
		for _, cu := range []int{0, 7, 999_999} {
			want := "cus_bench_run_" + strconv.Itoa(cu)
			var prev int64
			for n := range int64(1 + (benchStripeSubs+2)*len(benchStripeCycle)) {
				ev := decodeBenchEvent(t, mix, cu, n)
				if ev.customerID != want {
					t.Fatalf("%s mix: customer %d event %d (%s) routes to %q, want %q", mix, cu, n, ev.typ, ev.customerID, want)
				}
				// Result.Types counts by benchEventType, not by decoding.
				if typ := benchEventType(mix, cu, n); typ != ev.typ {
					t.Fatalf("%s mix: event %d is a %s, benchEventType says %s", mix, n, ev.typ, typ)
				}
				wantRouting := stripe.RoutingObjectCustomer
				if strings.HasPrefix(ev.typ, "customer.") && !strings.HasPrefix(ev.typ, "customer.subscription.") {
					wantRouting = stripe.RoutingObjectID
				}
				if ev.routing != wantRouting {
					t.Fatalf("%s mix: event %d (%s) routing %q, want %q", mix, n, ev.typ, ev.routing, wantRouting)
				}
				if n == 0 && ev.typ != "customer.created" {
					t.Fatalf("%s mix: a customer's first event is %s, want customer.created", mix, ev.typ)
				}
				if n > 0 && ev.typ == "customer.created" {
					t.Fatalf("%s mix: event %d is a second customer.created", mix, n)
				}
				if n > 0 && ev.created <= prev {
					t.Fatalf("%s mix: event %d created %d, not after event %d's %d", mix, n, ev.created, n-1, prev)
				}
				prev = ev.created
			}
		}
	}
}

func TestBenchStripeMixHasSubscriptionsAndInvoicesOfTheCustomer(t *testing.T) {
	const cu = 3
	types := map[string]int{}
	subs := map[string]bool{}
	var current string // the subscription last created
	for n := range int64(1 + (benchStripeSubs+1)*len(benchStripeCycle)) {
		ev := decodeBenchEvent(t, benchMixStripe, cu, n)
		types[ev.typ]++
		switch ev.object["object"] {
		case "subscription":
			if ev.typ == "customer.subscription.created" {
				current = ev.objectID
				subs[current] = true
			} else if ev.objectID != current {
				t.Fatalf("event %d (%s) is on subscription %s, want the current one %s", n, ev.typ, ev.objectID, current)
			}
			if ev.object["customer"] != ev.customerID {
				t.Fatalf("event %d: subscription names customer %v, routed to %s", n, ev.object["customer"], ev.customerID)
			}
		case "invoice":
			if current == "" {
				t.Fatalf("event %d (%s) comes before any subscription", n, ev.typ)
			}
			if ev.object["subscription"] != current || ev.object["customer"] != ev.customerID {
				t.Fatalf("event %d (%s): invoice names subscription %v and customer %v, want %s and %s",
					n, ev.typ, ev.object["subscription"], ev.object["customer"], current, ev.customerID)
			}
			if !strings.Contains(strings.Join(ev.related, " "), current) {
				t.Fatalf("event %d: related objects %v lack subscription %s", n, ev.related, current)
			}
		}
	}
	for _, typ := range []string{"customer.created", "customer.updated", "customer.subscription.created",
		"customer.subscription.updated", "customer.subscription.deleted", "invoice.paid", "invoice.payment_failed"} {
		if types[typ] == 0 {
			t.Errorf("the stripe mix has no %s (has %v)", typ, types)
		}
	}
	if len(subs) != benchStripeSubs {
		t.Errorf("a customer went through %d subscription IDs, want %d reused", len(subs), benchStripeSubs)
	}
}

// The steady mix primes a customer with customer.created and its
// subscription, then keeps to its cycle's shares exactly, on that one
// subscription and a bounded set of invoices.
func TestBenchSteadyMixPrimesThenKeepsItsShares(t *testing.T) {
	const cu = 5
	created, subCreated := decodeBenchEvent(t, benchMixSteady, cu, 0), decodeBenchEvent(t, benchMixSteady, cu, 1)
	if created.typ != "customer.created" || subCreated.typ != "customer.subscription.created" || subCreated.object["status"] != "active" {
		t.Fatalf("priming: %s, then %s (status %v); want customer.created, then customer.subscription.created (active)",
			created.typ, subCreated.typ, subCreated.object["status"])
	}
	sub := subCreated.objectID
	if subCreated.object["customer"] != created.customerID {
		t.Fatalf("the subscription names customer %v, want %s", subCreated.object["customer"], created.customerID)
	}
	const steady = 1000
	types := map[string]int{}
	invoices := map[string]bool{}
	prev := subCreated.created
	for n := int64(benchSteadyPrimed); n < benchSteadyPrimed+steady; n++ {
		ev := decodeBenchEvent(t, benchMixSteady, cu, n)
		types[ev.typ]++
		if ev.created <= prev {
			t.Fatalf("event %d created %d, not after the previous %d", n, ev.created, prev)
		}
		prev = ev.created
		switch ev.object["object"] {
		case "customer":
			if ev.typ != "customer.updated" || ev.objectID != created.customerID {
				t.Fatalf("event %d: %s of customer %s, want customer.updated of %s", n, ev.typ, ev.objectID, created.customerID)
			}
		case "subscription":
			if ev.objectID != sub || ev.object["customer"] != ev.customerID {
				t.Fatalf("event %d (%s): subscription %s of customer %v, want the primed %s of %s", n, ev.typ, ev.objectID, ev.object["customer"], sub, ev.customerID)
			}
		case "invoice":
			if ev.object["subscription"] != sub || ev.object["customer"] != ev.customerID {
				t.Fatalf("event %d (%s): invoice names subscription %v and customer %v, want %s and %s",
					n, ev.typ, ev.object["subscription"], ev.object["customer"], sub, ev.customerID)
			}
			if !strings.Contains(strings.Join(ev.related, " "), sub) {
				t.Fatalf("event %d: related objects %v lack subscription %s", n, ev.related, sub)
			}
			invoices[ev.objectID] = true
		default:
			t.Fatalf("event %d (%s) is on a %v", n, ev.typ, ev.object["object"])
		}
	}
	want := map[string]int{"customer.updated": 400, "invoice.paid": 300, "customer.subscription.updated": 200, "invoice.payment_failed": 100}
	if !maps.Equal(types, want) {
		t.Errorf("%d steady events by type: %v, want %v", steady, types, want)
	}
	if len(invoices) > 8 {
		t.Errorf("a customer went through %d invoice IDs, want at most 8 reused", len(invoices))
	}
}

// Customers start the steady cycle at different steps, so that the mix
// is the cycle's shares however few events each customer gets: over as
// many customers as the cycle has steps, the first k steady events of each
// are k times the cycle's shares.
func TestBenchSteadyMixSharesDoNotDependOnEventsPerCustomer(t *testing.T) {
	cycle := len(benchSteadyCycle)
	for k := 1; k <= cycle; k++ {
		types := map[string]int{}
		for cu := range cycle {
			for n := range int64(k) {
				types[benchEventType(benchMixSteady, 100+cu, benchSteadyPrimed+n)]++
			}
		}
		want := map[string]int{"customer.updated": 4 * k, "invoice.paid": 3 * k, "customer.subscription.updated": 2 * k, "invoice.payment_failed": k}
		if !maps.Equal(types, want) {
			t.Errorf("%d customers × %d steady events: %v, want %v", cycle, k, types, want)
		}
	}
}

// The steady mix's promise, against hookd's reducer: in order, every
// event is applied (none superseded, parked or ignored), from whichever
// step of the cycle a customer starts, and the customer's state stays
// bounded; two consecutive steady events swapped (as concurrent senders
// on one customer may) are both applied still, to the same state.
func TestBenchSteadyMixIsAllApplied(t *testing.T) {
	reduce := func(cu int, order []int64) customer.State {
		t.Helper()
		var st customer.State
		for _, n := range order {
			_, body := benchEventFor(benchMixSteady, "run", cu, n, benchTestBase)
			var ev customer.Event
			var eff customer.Effect
			st, ev, eff = applyBenchEvent(t, st, body)
			if eff.Outcome != customer.Applied {
				t.Fatalf("customer %d, order %v: event %d (%s): outcome %v (%s), want applied", cu, order, n, ev.Type, eff.Outcome, eff.Reason)
			}
		}
		return st
	}
	const steady = 100
	inOrder := make([]int64, benchSteadyPrimed+steady)
	for i := range inOrder {
		inOrder[i] = int64(i)
	}
	for cu := range len(benchSteadyCycle) {
		st := reduce(cu, inOrder)
		if len(st.Subscriptions) != 1 || len(st.Invoices) > benchSteadyInvoices || len(st.Parked) != 0 {
			t.Errorf("after %d events customer %d has %d subscriptions, %d invoices and %d parked events; want 1, at most %d and none",
				len(inOrder), cu, len(st.Subscriptions), len(st.Invoices), len(st.Parked), benchSteadyInvoices)
		}
		// Priming is sent in order; swap each pair of consecutive steady
		// events, over a cycle and more.
		for n := benchSteadyPrimed; n+1 < benchSteadyPrimed+len(benchSteadyCycle)+2; n++ {
			order := slices.Clone(inOrder[:benchSteadyPrimed+len(benchSteadyCycle)+2])
			order[n], order[n+1] = order[n+1], order[n]
			got := reduce(cu, order).Proto()
			end := reduce(cu, inOrder[:len(order)]).Proto()
			got.Version, end.Version = 0, 0
			if !proto.Equal(got, end) {
				t.Fatalf("customer %d: swapping %d and %d ends in\n%v\nnot\n%v", cu, n, n+1, got, end)
			}
		}
	}
}

// TestBenchStripeMixOutOfOrderOutcomes checks, against hookd's reducer,
// that swapping pairs of the stripe mix produces what the mix promises:
// an invoice parked then released, updates superseded, nothing lost.
func TestBenchStripeMixOutOfOrderOutcomes(t *testing.T) {
	reduce := func(order []int64) (customer.State, map[string]int) {
		var st customer.State
		outcomes := map[string]int{}
		for _, n := range order {
			_, body := benchStripeEvent("run", 1, n, benchTestBase)
			var eff customer.Effect
			st, _, eff = applyBenchEvent(t, st, body)
			switch eff.Outcome {
			case customer.Applied:
				outcomes["applied"]++
				outcomes["released"] += len(eff.Released())
			case customer.Parked:
				outcomes["parked"]++
			case customer.Superseded:
				outcomes["superseded"]++
			default:
				t.Fatalf("event %d: outcome %v (%s)", n, eff.Outcome, eff.Reason)
			}
		}
		return st, outcomes
	}
	cycle := int64(len(benchStripeCycle))
	inOrder := make([]int64, 1+2*cycle)
	for i := range inOrder {
		inOrder[i] = int64(i)
	}
	want, got := reduce(inOrder)
	if got["applied"] != len(inOrder) {
		t.Fatalf("in order: %v, want all %d applied", got, len(inOrder))
	}
	// Swap every pair (n, n+1) in turn and see what it does.
	counts := map[string]int{}
	for n := int64(0); n+1 < int64(len(inOrder)); n++ {
		order := append([]int64(nil), inOrder...)
		order[n], order[n+1] = order[n+1], order[n]
		st, got := reduce(order)
		if len(st.Parked) != 0 {
			t.Fatalf("swapping %d and %d leaves %d events parked", n, n+1, len(st.Parked))
		}
		if got["parked"] != got["released"] {
			t.Fatalf("swapping %d and %d: %v", n, n+1, got)
		}
		// The same customer, but for the version (which counts applied events).
		a, b := st.Proto(), want.Proto()
		a.Version, b.Version = 0, 0
		if !proto.Equal(a, b) {
			t.Fatalf("swapping %d and %d ends in\n%v\nnot\n%v", n, n+1, a, b)
		}
		for k, v := range got {
			counts[k] += v
		}
	}
	t.Logf("outcomes over all %d swapped pairs: %v", len(inOrder)-1, counts)
	if counts["parked"] == 0 || counts["superseded"] == 0 {
		t.Fatalf("swapped pairs never park or supersede: %v", counts)
	}
}

func TestBenchPickInOrder(t *testing.T) {
	var counter atomic.Int64
	rng := rand.New(rand.NewPCG(1, 2))
	for want := range int64(20) {
		if got := benchPick(&counter, 0, rng, 0, 0, 2); len(got) != 1 || got[0] != want {
			t.Fatalf("pick %d: got %v", want, got)
		}
	}
}

func TestBenchPickSwapsPairs(t *testing.T) {
	var counter atomic.Int64
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range int64(10) {
		got := benchPick(&counter, 0, rng, 0, 1, 2)
		if len(got) != 2 || got[0] != 2*i+1 || got[1] != 2*i {
			t.Fatalf("pick %d: got %v, want [%d %d]", i, got, 2*i+1, 2*i)
		}
	}
	// No room for two: one, in order.
	if got := benchPick(&counter, 0, rng, 0, 1, 1); len(got) != 1 || got[0] != 20 {
		t.Fatalf("with room for one: got %v, want [20]", got)
	}
}

// Duplicates repeat events from first on only (the steady mix's, not
// priming's), and none before there is one.
func TestBenchPickDuplicatesFromFirst(t *testing.T) {
	var counter atomic.Int64
	counter.Store(benchSteadyPrimed)
	rng := rand.New(rand.NewPCG(5, 6))
	if got := benchPick(&counter, benchSteadyPrimed, rng, 1, 0, 2); len(got) != 1 || got[0] != benchSteadyPrimed {
		t.Fatalf("first pick after priming: %v, want the first steady event %d", got, benchSteadyPrimed)
	}
	for range 100 {
		if got := benchPick(&counter, benchSteadyPrimed, rng, 1, 0, 2); len(got) != 1 || got[0] != benchSteadyPrimed {
			t.Fatalf("duplicate %v, want a repeat of the only steady event %d", got, benchSteadyPrimed)
		}
	}
}

func TestBenchPickReservesEveryEventOnce(t *testing.T) {
	var counter atomic.Int64
	rng := rand.New(rand.NewPCG(3, 4))
	const picks = 20_000
	seen := map[int64]bool{}
	var swapped, dups int
	for range picks {
		before := counter.Load()
		got := benchPick(&counter, 0, rng, 0.1, 0.2, 2)
		switch {
		case counter.Load() == before: // a duplicate
			if len(got) != 1 || got[0] >= before || !seen[got[0]] {
				t.Fatalf("duplicate %v of an event not handed out (had %d)", got, before)
			}
			dups++
		case len(got) == 2:
			if got[0] != before+1 || got[1] != before {
				t.Fatalf("pair %v, want [%d %d]", got, before+1, before)
			}
			swapped++
		}
		for _, n := range got {
			if counter.Load() != before && seen[n] {
				t.Fatalf("event %d handed out twice", n)
			}
			seen[n] = true
		}
	}
	if int64(len(seen)) != counter.Load() {
		t.Fatalf("%d events reserved, %d handed out: a gap", counter.Load(), len(seen))
	}
	// Loose bounds on the probabilities.
	if f := float64(dups) / picks; f < 0.08 || f > 0.12 {
		t.Errorf("duplicates %.3f of picks, want about 0.1", f)
	}
	if f := float64(swapped) / (picks - float64(dups)); f < 0.17 || f > 0.23 {
		t.Errorf("swapped pairs %.3f of new picks, want about 0.2", f)
	}
}

func TestBenchFlagValidation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--out-of-order", "1.5"}, "--out-of-order must be 0 to 1"},
		{[]string{"--out-of-order", "-0.1"}, "--out-of-order must be 0 to 1"},
		{[]string{"--duplicates", "2"}, "--duplicates must be 0 to 1"},
		{[]string{"--mix", "paypal"}, "--mix must be steady, customer or stripe"},
		{[]string{"--mix", "customer", "--out-of-order", "0.2"}, "--out-of-order needs --mix stripe"},
		{[]string{"--mix", "steady", "--out-of-order", "0.2"}, "--out-of-order needs --mix stripe"},
		{[]string{"--postgres-pid", "-1"}, "--postgres-pid must be a process ID"},
		{[]string{"--postgres-pid", "1073741824"}, "--postgres-pid 1073741824: "}, // above Linux's highest PID
		{[]string{"--duration", "5s", "--warmup", "5s"}, "--warmup must be shorter than --duration"},
		{[]string{"--warmup", "-1s"}, "--warmup must be shorter than --duration"},
		{[]string{"--timeline", "5ms"}, "--timeline must be 0 (off) or at least 10ms"},
	} {
		args := append([]string{"--secret", "whsec_test", "--grpc-addr", ""}, tc.args...)
		err := Run(context.Background(), args, Env{}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// The table names notifications that never came, and only when some did
// not.
func TestBenchPrintsMissingNotifications(t *testing.T) {
	c := config{GRPCAddr: "127.0.0.1:9090", Customers: 1, Concurrency: 1}
	r := Result{Events: 3, Statuses: map[string]int64{"applied": 3}, Notifications: 1,
		LagMs: map[string]float64{"p50": 1}, Missing: 2, MissingSample: []string{"evt_a", "evt_b"}}
	var out bytes.Buffer
	printBench(&out, c, r)
	if !strings.Contains(out.String(), "notifications missing") || !strings.Contains(out.String(), "2 applied events without one 5s after the last arrived (evt_a, evt_b)") {
		t.Errorf("table lacks the missing notifications:\n%s", out.String())
	}
	r.Missing, r.MissingSample, r.Notifications = 0, nil, 3
	out.Reset()
	printBench(&out, c, r)
	if strings.Contains(out.String(), "missing") {
		t.Errorf("table reports missing notifications when none are:\n%s", out.String())
	}
}

// The table shows the mix the run sent, largest share first, and
// PostgreSQL's CPU beside hookd's.
func TestBenchPrintsMixAndPostgresCPU(t *testing.T) {
	c := config{Customers: 1, Concurrency: 1, PID: 1, PostgresPID: 2}
	r := Result{Events: 1000, Types: map[string]int64{"invoice.paid": 300, "customer.updated": 400, "invoice.payment_failed": 100, "customer.subscription.updated": 200},
		CPUPerEventUs: 150, PostgresCPUSeconds: 0.5, PostgresCPUPercent: 25, PostgresCPUPerEventUs: 500, CPUPerEventTotalUs: 650}
	var out bytes.Buffer
	printBench(&out, c, r)
	for _, want := range []string{
		"customer.updated 40.0%, invoice.paid 30.0%, customer.subscription.updated 20.0%, invoice.payment_failed 10.0%\n",
		"postgres processes         cpu 25% (0.5s, 500 µs per event)\n",
		"hookd + postgres cpu       650 µs per event\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// benchPrimeFake answers priming as hookd would, checking that each
// customer's events come in order, each only after the one before was
// answered 2xx; fail, when not nil, chooses an answer other than 200.
type benchPrimeFake struct {
	t    *testing.T
	mu   sync.Mutex
	got  map[string][]string // customer → types answered 2xx, in order
	sent map[string]int      // event ID → attempts
	fail func(typ string, customer string, attempt int) (int, error)
}

func (f *benchPrimeFake) post(body []byte) (int, []byte, error) {
	env, err := stripe.DecodeEnvelope(body)
	if err != nil {
		f.t.Errorf("priming posted an event that does not decode: %v", err)
		return 400, nil, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cus, typ := env.GetCustomerId(), env.GetType()
	f.sent[env.GetEventId()]++
	if want := []string{"customer.created", "customer.subscription.created"}[min(len(f.got[cus]), 1)]; typ != want {
		f.t.Errorf("customer %s: %s posted after %v answered", cus, typ, f.got[cus])
	}
	if f.fail != nil {
		if code, err := f.fail(typ, cus, f.sent[env.GetEventId()]); code != 200 || err != nil {
			return code, []byte(`{"error":"try later"}` + "\n"), err
		}
	}
	f.got[cus] = append(f.got[cus], typ)
	return 200, []byte(`{"status":"applied"}`), nil
}

func newBenchPrimeFake(t *testing.T) *benchPrimeFake {
	return &benchPrimeFake{t: t, got: map[string][]string{}, sent: map[string]int{}}
}

func benchPrimeRender(cu int, n int64) (string, []byte) {
	return benchEventFor(benchMixSteady, "run", cu, n, benchTestBase)
}

// Priming sends every customer's two events in order, retries what
// failed, and tells of every event answered.
func TestBenchPrimeSendsEachCustomerInOrderAndRetries(t *testing.T) {
	f := newBenchPrimeFake(t)
	f.fail = func(typ, cus string, attempt int) (int, error) {
		switch {
		case attempt == 1 && strings.HasSuffix(cus, "0"):
			return 503, nil
		case attempt < 3 && typ == "customer.subscription.created" && strings.HasSuffix(cus, "7"):
			return 0, errors.New("connection reset")
		}
		return 200, nil
	}
	var mu sync.Mutex
	primed := map[string]int{}
	const customers = 50
	done, err := benchPrime(t.Context(), customers, 4, benchPrimeRender, f.post, func(id string) { mu.Lock(); primed[id]++; mu.Unlock() })
	if err != nil || done != customers {
		t.Fatalf("primed %d customers, error %v; want all %d", done, err, customers)
	}
	for cu := range customers {
		cus := "cus_bench_run_" + strconv.Itoa(cu)
		if got := f.got[cus]; len(got) != 2 {
			t.Errorf("customer %s: answered %v, want its customer.created and customer.subscription.created", cus, got)
		}
		for n := range int64(benchSteadyPrimed) {
			if id, _ := benchPrimeRender(cu, n); primed[id] != 1 {
				t.Errorf("event %s reported primed %d times, want once", id, primed[id])
			}
		}
	}
	if f.sent["evt_bench_run_10_0"] != 2 || f.sent["evt_bench_run_17_1"] != 3 {
		t.Errorf("attempts %d and %d, want 2 (after a 503) and 3 (after two transport errors)", f.sent["evt_bench_run_10_0"], f.sent["evt_bench_run_17_1"])
	}
}

// An event that keeps failing fails priming, naming it; a context done
// stops it.
func TestBenchPrimeFailsAndStops(t *testing.T) {
	f := newBenchPrimeFake(t)
	f.fail = func(typ, cus string, attempt int) (int, error) {
		if cus == "cus_bench_run_3" && typ == "customer.subscription.created" {
			return 400, nil
		}
		return 200, nil
	}
	done, err := benchPrime(t.Context(), 20, 2, benchPrimeRender, f.post, func(string) {})
	if err == nil || done >= 20 || !strings.Contains(err.Error(), "customer 3's event evt_bench_run_3_1: answered 400 {\"error\":\"try later\"} (5 attempts)") {
		t.Fatalf("primed %d, error %v; want an error naming customer 3's event 1 and its answer", done, err)
	}
	if f.sent["evt_bench_run_3_1"] != benchPrimeAttempts {
		t.Errorf("the failing event was sent %d times, want %d", f.sent["evt_bench_run_3_1"], benchPrimeAttempts)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var posts atomic.Int64
	slow := func(body []byte) (int, []byte, error) {
		if posts.Add(1) == 10 {
			cancel()
		}
		return 200, nil, nil
	}
	done, err = benchPrime(ctx, 1000, 4, benchPrimeRender, slow, func(string) {})
	if !errors.Is(err, context.Canceled) || done > 10 || posts.Load() > 13 {
		t.Fatalf("cancelled after 10 posts: primed %d customers in %d posts, error %v; want it stopped with context.Canceled", done, posts.Load(), err)
	}
}

// A steady run against a fake hookd: every customer is primed before its
// first steady event, priming is in no figure, --events counts the
// steady events only, and with --cover over whole cycles the mix
// reported is the cycle's exactly.
func TestBenchSteadyRun(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]string{} // customer → types received, in order
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		env, err := stripe.DecodeEnvelope(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[env.GetCustomerId()] = append(seen[env.GetCustomerId()], env.GetType())
		mu.Unlock()
		io.WriteString(w, `{"status":"applied"}`)
	}))
	defer srv.Close()
	const customers, events = 6, 6 * len(benchSteadyCycle)
	args := []string{"--url", srv.URL, "--grpc-addr", "", "--secret", "whsec_test", "--customers", strconv.Itoa(customers),
		"--concurrency", "3", "--events", strconv.Itoa(events), "--cover", "--duration", "30s"}

	var out bytes.Buffer
	if err := Run(t.Context(), append(args, "--json"), Env{}, &out); err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil { // JSON and nothing else
		t.Fatalf("--json printed %q: %v", out.String(), err)
	}
	want := map[string]int64{"customer.updated": 24, "invoice.paid": 18, "customer.subscription.updated": 12, "invoice.payment_failed": 6}
	if res.Events != int64(events) || res.Statuses["applied"] != int64(events) || !maps.Equal(res.Types, want) {
		t.Errorf("%d events, statuses %v, types %v; want %d steady events applied, types %v", res.Events, res.Statuses, res.Types, events, want)
	}
	if res.PrimedCustomers != customers || res.PrimeSeconds <= 0 {
		t.Errorf("primed_customers %d, prime_seconds %v; want %d and a time", res.PrimedCustomers, res.PrimeSeconds, customers)
	}
	mu.Lock()
	for cus, types := range seen {
		if len(types) < benchSteadyPrimed || types[0] != "customer.created" || types[1] != "customer.subscription.created" {
			t.Errorf("customer %s got %v, want customer.created and customer.subscription.created first", cus, types)
		}
	}
	clear(seen)
	mu.Unlock()

	out.Reset()
	if err := Run(t.Context(), args, Env{}, &out); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	if !strings.HasPrefix(first, "primed 6 customers (12 events) in ") || !strings.HasSuffix(first, " s") {
		t.Errorf("the table does not start with the priming:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "customer.updated 40.0%, invoice.paid 30.0%, customer.subscription.updated 20.0%, invoice.payment_failed 10.0%") {
		t.Errorf("the table lacks the mix:\n%s", out.String())
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses, as a PostgreSQL
	// process's title can be.
	st, err := parseProcStat("1234 (postgres: writer (x) ) S 42 1234 1234 0 -1 4194368 100 0 0 0 7 3 11 13 20 0 1 0 100 1000 10\n")
	if want := (procStat{pid: 1234, ppid: 42, utime: 7, stime: 3, cutime: 11, cstime: 13}); err != nil || st != want {
		t.Errorf("parsed %+v, %v; want %+v", st, err, want)
	}
	for _, bad := range []string{"", "1234 (postgres", "1234 (postgres) S 42 1 1", "x (postgres) S 42 1234 1234 0 -1 4194368 100 0 0 0 7 3 11 13 20"} {
		if st, err := parseProcStat(bad); err == nil {
			t.Errorf("parsed %q as %+v, want an error", bad, st)
		}
	}
	if st, err := readProcStat(os.Getpid()); err != nil || st.pid != os.Getpid() || st.ppid != os.Getppid() {
		t.Errorf("this process's stat: %+v, %v; want pid %d, ppid %d", st, err, os.Getpid(), os.Getppid())
	}
}

// The CPU of a process tree counts a live child found in /proc, and
// still counts a child's CPU once it has exited and been reaped.
func TestProcTreeCPUCountsChildren(t *testing.T) {
	sleep := exec.Command("sleep", "5")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	children, err := procChildren(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(children, func(st procStat) bool { return st.pid == sleep.Process.Pid }) {
		t.Errorf("children of the test process %v lack sleep's PID %d", children, sleep.Process.Pid)
	}

	before, err := procTreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	busy := exec.Command("sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done")
	if err := busy.Run(); err != nil {
		t.Fatal(err)
	}
	used := (busy.ProcessState.UserTime() + busy.ProcessState.SystemTime()).Seconds()
	after, err := procTreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Clock ticks truncate each reading by up to 10ms.
	if after-before < used-0.03 {
		t.Errorf("the tree's CPU grew %.3fs while a child used %.3fs and exited", after-before, used)
	}
}

// applyBenchEvent runs a rendered event through hookd's own decoding and
// reducer, as a customer actor would.
func applyBenchEvent(t *testing.T, st customer.State, body []byte) (customer.State, customer.Event, customer.Effect) {
	t.Helper()
	env, err := stripe.DecodeEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := customer.DecodeEvent(env)
	if err != nil {
		t.Fatal(err)
	}
	st, eff := customer.Apply(st, ev, 0)
	return st, ev, eff
}
