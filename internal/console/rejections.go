package console

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Rejection is one webhook the gateway answered 4xx.
type Rejection struct {
	Time       time.Time
	Status     int
	Reason     string
	RemoteAddr string
	Method     string
	Path       string
	// Headers are the request's, with secrets removed (secretHeaders).
	Headers [][2]string
	// Body is at most the first MaxRejectBody bytes of the request body.
	Body string
}

// MaxRejectBody bounds what a Rejection keeps of a body.
const MaxRejectBody = 1 << 10

// secretHeaders are dropped (their values) from recorded rejections.
var secretHeaders = map[string]bool{
	"Stripe-Signature": true, "Authorization": true, "Cookie": true, "Proxy-Authorization": true,
}

// Rejections is a bounded ring of the latest rejections, safe for
// concurrent use. Its Record method is gateway.Config.OnReject.
type Rejections struct {
	mu   sync.Mutex
	ring []Rejection
	next int
	full bool
	now  func() time.Time
}

// NewRejections keeps the latest n rejections.
func NewRejections(n int) *Rejections {
	return &Rejections{ring: make([]Rejection, n), now: time.Now}
}

// Record notes a rejected request.
func (x *Rejections) Record(r *http.Request, status int, reason string) {
	if x == nil || len(x.ring) == 0 {
		return
	}
	rej := Rejection{Time: x.now(), Status: status, Reason: reason, RemoteAddr: r.RemoteAddr, Method: r.Method, Path: r.URL.Path}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := strings.Join(r.Header.Values(k), ", ")
		if secretHeaders[http.CanonicalHeaderKey(k)] {
			v = "(removed)"
		}
		rej.Headers = append(rej.Headers, [2]string{k, v})
	}
	if r.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(r.Body, MaxRejectBody))
		rej.Body = string(b)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.ring[x.next] = rej
	x.next = (x.next + 1) % len(x.ring)
	if x.next == 0 {
		x.full = true
	}
}

// List returns the rejections, newest first.
func (x *Rejections) List() []Rejection {
	if x == nil {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []Rejection
	n := x.next
	if x.full {
		n = len(x.ring)
	}
	for i := range n {
		out = append(out, x.ring[(x.next-1-i+len(x.ring))%len(x.ring)])
	}
	return out
}
