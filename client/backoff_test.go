package client

import (
	"testing"
	"time"
)

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	t.Parallel()
	b := Backoff{Initial: 100 * time.Millisecond, Max: 3 * time.Second}
	for attempt, want := range []time.Duration{100, 200, 400, 800, 1600, 3000, 3000} {
		want *= time.Millisecond
		if got := b.ceiling(attempt); got != want {
			t.Errorf("ceiling(%d) = %v, want %v", attempt, got, want)
		}
	}
	for _, attempt := range []int{0, 3, 10, 64, 1000, 1 << 30} {
		ceil := b.ceiling(attempt)
		distinct := map[time.Duration]bool{}
		var sum time.Duration
		const n = 2000
		for range n {
			d := b.Delay(attempt)
			if d < 0 || d > ceil || d > b.Max {
				t.Fatalf("Delay(%d) = %v, want within [0, %v]", attempt, d, ceil)
			}
			distinct[d] = true
			sum += d
		}
		if len(distinct) < n/2 {
			t.Errorf("Delay(%d): %d distinct values in %d, want jitter", attempt, len(distinct), n)
		}
		// Full jitter: uniform over [0, ceiling], so the mean is near half.
		if mean := sum / n; mean < ceil*4/10 || mean > ceil*6/10 {
			t.Errorf("Delay(%d): mean %v, want about %v", attempt, mean, ceil/2)
		}
	}
}

func TestBackoffDefaults(t *testing.T) {
	t.Parallel()
	if got := (Backoff{}).withDefaults(); got != DefaultBackoff {
		t.Errorf("zero Backoff = %+v, want %+v", got, DefaultBackoff)
	}
	if got := (Backoff{Initial: time.Second, Max: time.Millisecond}).withDefaults(); got.Max != time.Second {
		t.Errorf("Max below Initial: Max %v, want it raised to Initial", got.Max)
	}
}
