package client

import (
	"math/rand/v2"
	"time"
)

// Backoff is how long Subscribe waits before reconnecting: exponential
// with full jitter. Before attempt n (0 for the first retry after a stream
// that was established) it waits a uniformly random duration in
// [0, min(Max, Initial·2ⁿ)]. The jitter spreads the reconnects of many
// subscribers after a hookd restart instead of having them arrive at once.
type Backoff struct {
	// Initial is the ceiling of the first wait. Default 250 ms.
	Initial time.Duration
	// Max bounds every wait. Default 10 s.
	Max time.Duration
}

// DefaultBackoff is what a Client uses without WithBackoff.
var DefaultBackoff = Backoff{Initial: 250 * time.Millisecond, Max: 10 * time.Second}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoff.Initial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoff.Max
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	return b
}

// ceiling is the longest wait before attempt n.
func (b Backoff) ceiling(attempt int) time.Duration {
	c := b.Initial
	for range attempt {
		if c >= b.Max/2 {
			return b.Max
		}
		c *= 2
	}
	return min(c, b.Max)
}

// Delay returns the wait before attempt n (n ≥ 0), drawn afresh each call.
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.withDefaults()
	return time.Duration(rand.Int64N(int64(b.ceiling(attempt)) + 1))
}
