package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
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
// HTTP/1.1 keep-alive connections made by a guarded dialer.
type sender struct {
	client    *http.Client
	transport *http.Transport
	userAgent string
}

// newSender returns a sender whose attempts take at most timeout, that
// keeps up to idlePerHost idle connections per host, and whose dialer
// refuses private addresses unless allowPrivate.
func newSender(timeout time.Duration, idlePerHost int, allowPrivate bool, userAgent string) *sender {
	dialer := NewDialer(allowPrivate, timeout)
	tr := &http.Transport{
		// No proxy: the guard must judge the receiver's own address, not
		// a proxy's.
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConns:        0, // no overall limit; per host below
		MaxIdleConnsPerHost: idlePerHost,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: timeout,
		// HTTP/1.1 only: a non-nil empty map turns HTTP/2 off.
		TLSNextProto:       map[string]func(string, *tls.Conn) http.RoundTripper{},
		DisableCompression: true,
	}
	return &sender{
		transport: tr,
		client: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a 3xx is the answer, and a failure
			},
		},
		userAgent: userAgent,
	}
}

// close drops the sender's idle connections.
func (s *sender) close() { s.transport.CloseIdleConnections() }

// send POSTs body to ep for delivery id, signed at ts, and returns the
// answer and the start of its body, or the transport error.
// attempt numbers the attempt, for its span (a client span per attempt
// with tracing on: tracedDo).
func (s *sender) send(ctx context.Context, ep store.Endpoint, id string, attempt int, ts time.Time, body []byte) (response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return response{}, nil, fmt.Errorf("build request: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", s.userAgent)
	h.Set(headerID, id)
	h.Set(headerTimestamp, strconv.FormatInt(ts.Unix(), 10))
	if sig := Sign(ep.Secrets, ts, id, ts, body); sig != "" {
		h.Set(headerSignature, sig)
	}
	if tracing.Enabled() {
		return s.tracedDo(req, ep, id, attempt)
	}
	return s.do(req)
}

// do makes the attempt req.
func (s *sender) do(req *http.Request) (response, []byte, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return response{}, nil, err
	}
	defer resp.Body.Close()
	start, err := io.ReadAll(io.LimitReader(resp.Body, keepBody))
	if err == nil {
		// Read on a little, so that a short answer leaves its connection
		// reusable; a long one is cut off (the connection is then closed).
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, readBody-keepBody))
	}
	// The status counts even when reading the body failed: the receiver
	// answered.
	return response{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}, start, nil
}
