package delivery

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hookd/hookd/store"
)

func TestPolicyNext(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := policy{schedule: DefaultSchedule}
	errConn := errors.New("connection refused")
	for _, tc := range []struct {
		name    string
		step    int
		resp    response
		err     error
		want    store.Outcome
		wait    time.Duration // for OutcomeRetry and OutcomeReleased
		disable string
	}{
		{name: "200", resp: response{status: 200}, want: store.OutcomeDelivered},
		{name: "204 late in the schedule", step: 7, resp: response{status: 204}, want: store.OutcomeDelivered},
		{name: "500 first", resp: response{status: 500}, want: store.OutcomeRetry, wait: 5 * time.Second},
		{name: "500 second", step: 1, resp: response{status: 500}, want: store.OutcomeRetry, wait: 5 * time.Minute},
		{name: "500 last step", step: 6, resp: response{status: 500}, want: store.OutcomeRetry, wait: 10 * time.Hour},
		{name: "500 exhausted", step: 7, resp: response{status: 500}, want: store.OutcomeFailed},
		{name: "302 is a failure", resp: response{status: 302}, want: store.OutcomeRetry, wait: 5 * time.Second},
		{name: "400", step: 2, resp: response{status: 400}, want: store.OutcomeRetry, wait: 30 * time.Minute},
		{name: "transport error", step: 3, err: errConn, want: store.OutcomeRetry, wait: 2 * time.Hour},
		{name: "transport error exhausted", step: 7, err: errConn, want: store.OutcomeFailed},
		{name: "410 disables", step: 2, resp: response{status: 410}, want: store.OutcomeRetry, disable: "receiver answered 410 Gone"},
		{name: "410 even at the end", step: 7, resp: response{status: 410}, want: store.OutcomeRetry, disable: "receiver answered 410 Gone"},
		{name: "429 Retry-After longer", resp: response{status: 429, retryAfter: "120"}, want: store.OutcomeRetry, wait: 2 * time.Minute},
		{name: "429 Retry-After shorter", step: 1, resp: response{status: 429, retryAfter: "1"}, want: store.OutcomeRetry, wait: 5 * time.Minute},
		{name: "503 Retry-After date", resp: response{status: 503, retryAfter: now.Add(time.Hour).Format(http.TimeFormat)}, want: store.OutcomeRetry, wait: time.Hour},
		{name: "503 Retry-After past date", resp: response{status: 503, retryAfter: now.Add(-time.Hour).Format(http.TimeFormat)}, want: store.OutcomeRetry, wait: 5 * time.Second},
		{name: "429 Retry-After capped", resp: response{status: 429, retryAfter: "999999999"}, want: store.OutcomeRetry, wait: 24 * time.Hour},
		{name: "429 Retry-After garbage", resp: response{status: 429, retryAfter: "soon"}, want: store.OutcomeRetry, wait: 5 * time.Second},
		{name: "500 Retry-After ignored", resp: response{status: 500, retryAfter: "120"}, want: store.OutcomeRetry, wait: 5 * time.Second},
		{name: "429 exhausted", step: 7, resp: response{status: 429, retryAfter: "1"}, want: store.OutcomeFailed},
	} {
		d := p.next(tc.step, tc.resp, tc.err, now)
		if d.outcome != tc.want || d.disable != tc.disable {
			t.Errorf("%s: outcome %v disable %q, want %v %q", tc.name, d.outcome, d.disable, tc.want, tc.disable)
			continue
		}
		if tc.want == store.OutcomeRetry || tc.want == store.OutcomeReleased {
			if got := d.next.Sub(now); got != tc.wait {
				t.Errorf("%s: wait %v, want %v", tc.name, got, tc.wait)
			}
		}
	}
}

func TestPolicyJitter(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, r := range []float64{0, 0.25, 0.5, 0.999} {
		p := policy{schedule: []time.Duration{100 * time.Second}, jitter: 0.2, rand: func() float64 { return r }}
		wait := p.next(0, response{status: 500}, nil, now).next.Sub(now)
		if wait < 80*time.Second || wait > 120*time.Second {
			t.Errorf("rand %v: wait %v, want within 100s ± 20%%", r, wait)
		}
	}
	p := policy{schedule: []time.Duration{100 * time.Second}, jitter: 0.2, rand: func() float64 { return 0 }}
	if wait := p.next(0, response{status: 500}, nil, now).next.Sub(now); wait != 80*time.Second {
		t.Errorf("lowest jitter: wait %v, want 80s", wait)
	}
}
