package bench

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchRenderMatchesMaps holds benchRender to the bytes the maps of
// gen.go give through json.Marshal (what it rendered before it wrote them
// itself), for every step of every mix, on several customers and runs.
func TestBenchRenderMatchesMaps(t *testing.T) {
	steps := append([]benchStep{{Type: "customer.created", Invoice: -1}, {Type: "customer.deleted", Invoice: -1},
		{Type: "customer.subscription.created", Invoice: -1, Status: "active"}}, benchStripeCycle[:]...)
	for _, run := range []string{"r1", "x9z"} {
		for cu := range 3 {
			for n := range int64(len(steps) * 3) {
				suffix := fmt.Sprintf("bench_%s_%d", run, cu)
				obj := benchObjects{subscription: "sub_" + suffix, subCreated: benchTestBase + 1 + n/3, invoice: fmt.Sprintf("in_%s_%d", suffix, n%8)}
				step := steps[int(n)%len(steps)]
				wantID, want := benchRenderMaps(suffix, n, benchTestBase, step, obj)
				gotID, got := benchRender(suffix, n, benchTestBase, step, obj)
				if gotID != wantID || string(got) != string(want) {
					t.Fatalf("%s n=%d:\n got %s %s\nwant %s %s", step.Type, n, gotID, got, wantID, want)
				}
			}
		}
	}
	// And through the mixes' own renderers, steps and objects.
	for _, mix := range []string{benchMixSteady, benchMixStripe} {
		for n := range int64(40) {
			id, body := benchEventFor(mix, "r1", 7, n, benchTestBase)
			var ev struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			}
			if err := json.Unmarshal(body, &ev); err != nil || ev.ID != id || ev.Type != benchEventType(mix, 7, n) {
				t.Fatalf("%s n=%d: %s %q (%v)", mix, n, id, body, err)
			}
		}
	}
}

// benchRenderMaps renders the n-th event of the customer cus_<suffix>, a step
// on obj, with gen.go's objects made deterministic: the same arguments
// give the same bytes.
func benchRenderMaps(suffix string, n, base int64, step benchStep, obj benchObjects) (id string, body []byte) {
	id = fmt.Sprintf("evt_%s_%d", suffix, n)
	spec := EventSpec{
		Type:         step.Type,
		EventID:      id,
		Customer:     "cus_" + suffix,
		Subscription: obj.subscription,
		Invoice:      obj.invoice,
		Created:      time.Unix(base+n, 0),
		Email:        fmt.Sprintf("%s-%d@example.com", suffix, n),
		Status:       step.Status,
	}
	o := generators[spec.Type](spec)
	// What gen.go fills in at random or from the event's time, made a
	// function of the arguments.
	switch o["object"] {
	case "customer":
		o["created"] = base
		o["metadata"] = map[string]string{"source": "hookd bench", "n": strconv.FormatInt(n, 10)}
	case "subscription":
		o["created"] = obj.subCreated
		if items, ok := o["items"].(map[string]any); ok {
			if data, ok := items["data"].([]any); ok {
				for i, it := range data {
					if item, ok := it.(map[string]any); ok {
						item["id"] = fmt.Sprintf("si_%s_%d", strings.TrimPrefix(obj.subscription, "sub_"), i)
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
		"data":             map[string]any{"object": o},
	}
	body, err := json.Marshal(ev) // maps marshal with sorted keys: deterministic
	if err != nil {
		panic(err) // strings, numbers and maps of them always marshal
	}
	return id, body
}

// BenchmarkBenchRender compares the renderer with the maps it replaced,
// on the steady mix's steps.
func BenchmarkBenchRender(b *testing.B) {
	for _, impl := range []struct {
		name   string
		render func(string, int64, int64, benchStep, benchObjects) (string, []byte)
	}{{"direct", benchRender}, {"maps", benchRenderMaps}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			obj := benchObjects{subscription: "sub_bench_r_1", subCreated: benchTestBase + 1, invoice: "in_bench_r_1_3"}
			for i := range b.N {
				impl.render("bench_r_1", int64(i), benchTestBase, benchSteadyCycle[i%len(benchSteadyCycle)], obj)
			}
		})
	}
}
