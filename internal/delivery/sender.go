package delivery

import (
	"context"
	"crypto/tls"
	"fmt"
	"strconv"
	"time"

	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/store"
)

// Response bodies: the start kept for the attempt record, and how much is
// read in all (so the connection can be reused) before it is closed.
const (
	keepBody = 1 << 10
	readBody = 64 << 10
)

// Standard Webhooks headers.
const (
	headerID        = "webhook-id"
	headerTimestamp = "webhook-timestamp"
	headerSignature = "webhook-signature"
)

// sender makes HTTP attempts: one POST each, no redirects followed, over
// HTTP/1.1 keep-alive connections made by a guarded dialer (h1.go).
type sender struct {
	cl        *h1Client
	userAgent string
}

// newSender returns a sender whose attempts take at most timeout, that
// keeps up to idlePerHost idle connections per host, and whose dialer
// refuses private addresses unless allowPrivate. tlsConfig, if not nil,
// is the TLS configuration of https endpoints (tests set RootCAs); nil
// verifies them against the system's roots.
func newSender(timeout time.Duration, idlePerHost int, allowPrivate bool, userAgent string, tlsConfig *tls.Config) *sender {
	return &sender{cl: newH1Client(NewDialer(allowPrivate, timeout), timeout, idlePerHost, tlsConfig), userAgent: userAgent}
}

// close drops the sender's idle connections.
func (s *sender) close() { s.cl.close() }

// send POSTs body to ep for delivery id, signed at ts, and returns the
// answer and the start of its body, or the transport error.
// attempt numbers the attempt, for its span (a client span per attempt
// with tracing on: tracedDo).
func (s *sender) send(ctx context.Context, ep store.Endpoint, id string, attempt int, ts time.Time, body []byte) (response, []byte, error) {
	t, err := parseTarget(ep.URL)
	if err != nil {
		return response{}, nil, fmt.Errorf("build request: endpoint url: %w", err)
	}
	h := make([]header, 0, 8)
	h = append(h, header{"Content-Type", "application/json"}, header{"User-Agent", s.userAgent},
		header{headerID, id}, header{headerTimestamp, strconv.FormatInt(ts.Unix(), 10)})
	if sig := Sign(ep.Secrets, ts, id, ts, body); sig != "" {
		h = append(h, header{headerSignature, sig})
	}
	if tracing.Enabled() {
		return s.tracedDo(ctx, t, h, ep, id, attempt, body)
	}
	return s.cl.post(ctx, t, h, body)
}
