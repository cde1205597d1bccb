package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hookd/hookd/provider/stripe"

	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/actors/customer"
)

const benchTestBase = 1_700_000_000

func TestBenchEventsAreDeterministic(t *testing.T) {
	for _, mix := range []string{benchMixCustomer, benchMixStripe} {
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
	for _, mix := range []string{benchMixCustomer, benchMixStripe} {
		for _, cu := range []int{0, 7, 999_999} {
			want := "cus_bench_run_" + strconv.Itoa(cu)
			var prev int64
			for n := range int64(1 + (benchStripeSubs+2)*len(benchStripeCycle)) {
				ev := decodeBenchEvent(t, mix, cu, n)
				if ev.customerID != want {
					t.Fatalf("%s mix: customer %d event %d (%s) routes to %q, want %q", mix, cu, n, ev.typ, ev.customerID, want)
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

// TestBenchStripeMixOutOfOrderOutcomes checks, against hookd's reducer,
// that swapping pairs of the stripe mix produces what the mix promises:
// an invoice parked then released, updates superseded, nothing lost.
func TestBenchStripeMixOutOfOrderOutcomes(t *testing.T) {
	reduce := func(order []int64) (customer.State, map[string]int) {
		var st customer.State
		outcomes := map[string]int{}
		for _, n := range order {
			_, body := benchStripeEvent("run", 1, n, benchTestBase)
			env, err := stripe.DecodeEnvelope(body)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := customer.DecodeEvent(env)
			if err != nil {
				t.Fatal(err)
			}
			var eff customer.Effect
			st, eff = customer.Apply(st, ev, 0)
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
		if got := benchPick(&counter, rng, 0, 0, 2); len(got) != 1 || got[0] != want {
			t.Fatalf("pick %d: got %v", want, got)
		}
	}
}

func TestBenchPickSwapsPairs(t *testing.T) {
	var counter atomic.Int64
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range int64(10) {
		got := benchPick(&counter, rng, 0, 1, 2)
		if len(got) != 2 || got[0] != 2*i+1 || got[1] != 2*i {
			t.Fatalf("pick %d: got %v, want [%d %d]", i, got, 2*i+1, 2*i)
		}
	}
	// No room for two: one, in order.
	if got := benchPick(&counter, rng, 0, 1, 1); len(got) != 1 || got[0] != 20 {
		t.Fatalf("with room for one: got %v, want [20]", got)
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
		got := benchPick(&counter, rng, 0.1, 0.2, 2)
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
		{[]string{"--mix", "paypal"}, "--mix must be customer or stripe"},
		{[]string{"--mix", "customer", "--out-of-order", "0.2"}, "--out-of-order needs --mix stripe"},
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
