package delivery

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hookd/hookd/store"
)

// Reasons hookd gives when it disables an endpoint.
const (
	reasonGone = "receiver answered 410 Gone"
	// reasonFailing is completed with the DisableAfter period.
	reasonFailing = "every attempt failed for "
)

// maxRetryAfter caps the wait a receiver's Retry-After asks for.
const maxRetryAfter = 24 * time.Hour

// response is what an attempt came back with, as the policy sees it.
type response struct {
	status     int    // 0 when no response came
	retryAfter string // the Retry-After header
}

// decision is what the policy makes of an attempt.
type decision struct {
	outcome store.Outcome
	// next is when the delivery is due again, for OutcomeRetry and
	// OutcomeReleased.
	next time.Time
	// disable, when set, is the reason to disable the endpoint with.
	disable string
}

// policy is the retry policy: a pure function of the attempt, the
// delivery's place in the schedule, and the time.
type policy struct {
	// schedule[i] is the wait after the (i+1)th failed attempt; a failure
	// with the schedule exhausted dead-letters the delivery.
	schedule []time.Duration
	// jitter spreads each wait by ±jitter (a fraction, 0.2 for ±20%).
	jitter float64
	// rand returns a number in [0, 1); nil: no jitter.
	rand func() float64
}

// next decides the outcome of an attempt made at step (the attempts of the
// delivery's schedule before it) that answered resp or failed with err
// (a transport error: no answer, a timeout, a refused address), at now.
//
//   - 2xx: delivered.
//   - 410 Gone: the receiver wants no more; the endpoint is disabled and
//     the delivery stays pending, due now, for when the user resumes it
//     (a retry, so that the attempt and its 410 are recorded; it never
//     fails the delivery, whatever its step).
//   - Anything else (3xx, as redirects are not followed, other 4xx, 5xx, a
//     transport error): retried after schedule[step] ± jitter, or, for a
//     429 or 503 with a Retry-After, after the longer of the two (at most
//     24 h); failed once the schedule is exhausted.
func (p policy) next(step int, resp response, err error, now time.Time) decision {
	if err == nil {
		switch {
		case resp.status >= 200 && resp.status < 300:
			return decision{outcome: store.OutcomeDelivered}
		case resp.status == http.StatusGone:
			return decision{outcome: store.OutcomeRetry, next: now, disable: reasonGone}
		}
	}
	if step < 0 {
		step = 0
	}
	if step >= len(p.schedule) {
		return decision{outcome: store.OutcomeFailed}
	}
	wait := p.spread(p.schedule[step])
	if err == nil && (resp.status == http.StatusTooManyRequests || resp.status == http.StatusServiceUnavailable) {
		if ra, ok := parseRetryAfter(resp.retryAfter, now); ok {
			wait = max(wait, min(ra, maxRetryAfter))
		}
	}
	return decision{outcome: store.OutcomeRetry, next: now.Add(wait)}
}

// spread applies the jitter to d.
func (p policy) spread(d time.Duration) time.Duration {
	if p.jitter <= 0 || p.rand == nil {
		return d
	}
	f := 1 + p.jitter*(2*p.rand()-1)
	return time.Duration(float64(d) * f)
}

// parseRetryAfter reads a Retry-After header: delay seconds or an
// HTTP-date. A date in the past is a wait of 0.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
