package bench

import (
	"strings"
	"testing"
	"time"
)

// Requests are bucketed by send time from the end of the warm-up; the
// collections seen between two /metrics samples land in the interval of
// the later sample; slow requests near a collection are counted apart.
func TestTimelineBucketsAndAttributesSlowRequestsToGCs(t *testing.T) {
	from := time.Unix(1_000, 0)
	at := func(ms int) time.Time { return from.Add(time.Duration(ms) * time.Millisecond) }
	every := 100 * time.Millisecond
	var (
		sent []time.Time
		lat  []time.Duration
	)
	add := func(ms int, d time.Duration) { sent = append(sent, at(ms)); lat = append(lat, d) }
	add(-50, time.Second)            // warm-up: left out
	add(10, 5*time.Millisecond)      // interval 0
	add(20, 7*time.Millisecond)      // interval 0
	add(1_150, 80*time.Millisecond)  // interval 11: slow, 400 ms before the collection's interval
	add(1_520, 120*time.Millisecond) // interval 15: slow, in it
	add(2_150, 60*time.Millisecond)  // interval 21: slow, 500 ms after it ended: not near
	add(2_950, 3*time.Millisecond)   // interval 29
	samples := []gcSample{
		{at(-100), 7}, // from the warm-up: the base count
		{at(1_400), 7},
		{at(1_550), 8}, // one collection completed in interval 15
		{at(2_500), 8},
	}
	tl := timeline(from, every, sent, lat, samples)
	if len(tl.Rows) != 30 {
		t.Fatalf("%d rows, want 30 (intervals 0 to 29)", len(tl.Rows))
	}
	if r := tl.Rows[0]; r.Sent != 2 || r.MaxMs != 7 || r.P50Ms != 5 || r.StartMs != 0 {
		t.Errorf("interval 0: %+v, want 2 sent, p50 5 ms, max 7 ms", r)
	}
	if r := tl.Rows[15]; r.Sent != 1 || r.GCs != 1 || r.StartMs != 1500 {
		t.Errorf("interval 15: %+v, want 1 sent and 1 collection", r)
	}
	if tl.GCs != 1 {
		t.Errorf("%d collections, want 1", tl.GCs)
	}
	if tl.Slow != 3 || tl.SlowAtGC != 2 {
		t.Errorf("slow %d, near a collection %d; want 3 and 2", tl.Slow, tl.SlowAtGC)
	}
	var total int
	for _, r := range tl.Rows {
		total += r.Sent
	}
	if total != 6 {
		t.Errorf("%d requests in the rows, want the 6 sent after the warm-up", total)
	}

	// Without /metrics, collections are unknown, not zero.
	if tl := timeline(from, every, sent, lat, nil); tl.GCs != -1 || tl.Rows[15].GCs != -1 || tl.SlowAtGC != 0 {
		t.Errorf("no samples: GCs %d, row %+v, slow at GC %d; want -1, -1, 0", tl.GCs, tl.Rows[15], tl.SlowAtGC)
	}
}

func TestParseGCCount(t *testing.T) {
	page := `# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.7e-05
go_gc_duration_seconds_sum 0.01
go_gc_duration_seconds_count 1234
go_goroutines 42
`
	if n, err := parseGCCount(strings.NewReader(page)); err != nil || n != 1234 {
		t.Errorf("parseGCCount = %d, %v; want 1234", n, err)
	}
	if _, err := parseGCCount(strings.NewReader("go_goroutines 42\n")); err == nil {
		t.Error("a page without the count parsed")
	}
	if _, err := parseGCCount(strings.NewReader("go_gc_duration_seconds_count many\n")); err == nil {
		t.Error("a count that is not a number parsed")
	}
}
