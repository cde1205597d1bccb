package delivery

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// h1Client makes the delivery attempts: one HTTP/1.1 POST each over
// keep-alive connections, written and read on the attempt's own
// goroutine. net/http's Transport hands every request to two goroutines of
// its connection (a write loop and a read loop) and back, which made its
// client about half of hookd's CPU per delivery (docs/performance.md,
// stop 28); an attempt here is one write and the reads of its answer.
//
// What it keeps of net/http's client as hookd used it: no proxy, no
// redirects followed, no compression, HTTP/1.1 only (ALPN "http/1.1" on
// TLS), the guarded dialer, one deadline per attempt from dialing to the
// end of the answer, idle connections kept per host up to a limit and
// closed after idleConnTimeout. Answers are parsed by net/http's own
// http.ReadResponse (chunked, Content-Length, close-delimited, 1xx, HTTP/1.0
// and Connection: close). Like net/http it never sends a POST twice: an
// attempt whose connection fails is a failed attempt, so it checks that
// an idle connection's peer has not closed it before reusing it (take).
type h1Client struct {
	dialer      *net.Dialer
	tls         *tls.Config // cloned per connection, ServerName set; nil: defaults
	timeout     time.Duration
	idlePerHost int

	mu       sync.Mutex
	idle     map[string][]*h1Conn // by connection key (scheme and host:port), newest last
	sweeping bool                 // a sweep of idle connections is scheduled
	closed   bool
}

// idleConnTimeout is how long an idle connection is kept (net/http's
// Transport used 90 s here too).
const idleConnTimeout = 90 * time.Second

// maxHeaderValue bounds one request header's value (a signature header
// with several secrets is about 100 bytes a secret).
const maxHeaderValue = 8 << 10

// maxResponseBytes bounds what one answer may make the client read: its
// head (net/http's Transport allowed 10 MB of headers) and what is read
// of its body (readBody, chunk framing aside).
const maxResponseBytes = 1<<20 + readBody + 4<<10

// errAnswerTooLarge ends an answer past maxResponseBytes.
var errAnswerTooLarge = errors.New("answer too large")

// budgetReader reads from r until n bytes have been read, then fails.
type budgetReader struct {
	r io.Reader
	n int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errAnswerTooLarge
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	return n, err
}

// h1Conn is one connection and its reader.
type h1Conn struct {
	key    string
	c      net.Conn
	budget *budgetReader // under br: what the answer being read may still take
	br     *bufio.Reader
	buf    []byte    // the request being written, reused
	since  time.Time // when it became idle
}

func newH1Client(dialer *net.Dialer, timeout time.Duration, idlePerHost int, tlsConfig *tls.Config) *h1Client {
	return &h1Client{dialer: dialer, tls: tlsConfig, timeout: timeout, idlePerHost: max(idlePerHost, 1), idle: map[string][]*h1Conn{}}
}

// header is one request header.
type header struct{ name, value string }

// target is a parsed endpoint URL: where to connect and what to ask.
type target struct {
	https      bool
	host       string // the Host header
	serverName string // for TLS
	addr       string // host:port to dial
	uri        string // the request-target (path and query)
	key        string // the connection key
	raw        string // the URL as given, for errors
}

// parseTarget reads an endpoint URL as an attempt needs it.
func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, err
	}
	t := target{host: u.Host, serverName: u.Hostname(), uri: escapeTarget(u.RequestURI()), raw: raw}
	port := u.Port()
	switch u.Scheme {
	case "http":
		port = cmp.Or(port, "80")
	case "https":
		t.https, port = true, cmp.Or(port, "443")
	default:
		return target{}, fmt.Errorf("unsupported scheme %q (http or https)", u.Scheme)
	}
	if t.serverName == "" {
		return target{}, errors.New("no host")
	}
	if u.User != nil {
		return target{}, errors.New("a user or password in the URL")
	}
	if !validField(t.host) || strings.ContainsAny(t.host, " \t") {
		return target{}, errors.New("invalid characters in host")
	}
	t.addr = net.JoinHostPort(t.serverName, port)
	t.key = u.Scheme + "://" + t.addr
	return t, nil
}

// escapeTarget percent-encodes what may not stand in a request-target
// (url.Parse leaves a query's spaces, controls and non-ASCII bytes as
// they are, and a space would end the request line early).
func escapeTarget(uri string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(uri); i++ {
		c := uri[i]
		if c > ' ' && c < 0x7f {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(uri)+8), uri[:i]...)
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	if b == nil {
		return uri
	}
	return string(b)
}

// validField reports whether s may go into a header value: no control
// characters but tab (CR and LF above all).
func validField(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// post sends body to t with the headers h (Content-Length and Host added)
// and returns the answer's status, its Retry-After and the start of its
// body (at most keepBody bytes), or the transport error. ctx may end the
// attempt early; the client's timeout ends it at the latest.
func (cl *h1Client) post(ctx context.Context, t target, h []header, body []byte) (response, []byte, error) {
	for _, f := range h {
		if len(f.value) > maxHeaderValue || !validField(f.value) {
			return response{}, nil, &url.Error{Op: "Post", URL: t.raw, Err: fmt.Errorf("invalid value for header %s", f.name)}
		}
	}
	deadline := time.Now().Add(cl.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	resp, start, err := cl.attempt(ctx, t, h, body, deadline)
	if err != nil {
		return response{}, nil, &url.Error{Op: "Post", URL: t.raw, Err: err}
	}
	return resp, start, nil
}

// attempt makes the request on an idle connection, or a new one.
func (cl *h1Client) attempt(ctx context.Context, t target, h []header, body []byte, deadline time.Time) (response, []byte, error) {
	c := cl.take(t.key)
	if c == nil {
		var err error
		if c, err = cl.dial(ctx, t, deadline); err != nil {
			return response{}, nil, err
		}
	}
	return cl.roundTrip(ctx, c, t, h, body, deadline)
}

// roundTrip writes the request on c and reads the answer, then keeps c
// for the next request or closes it.
func (cl *h1Client) roundTrip(ctx context.Context, c *h1Conn, t target, h []header, body []byte, deadline time.Time) (response, []byte, error) {
	if err := c.c.SetDeadline(deadline); err != nil {
		c.c.Close()
		return response{}, nil, err
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { c.c.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	c.budget.n = maxResponseBytes
	c.buf = appendRequest(c.buf[:0], t, h, body)
	_, werr := c.c.Write(c.buf)
	var r *http.Response
	for {
		var err error
		r, err = http.ReadResponse(c.br, nil)
		if err != nil {
			c.c.Close()
			if werr != nil {
				err = werr
			}
			return response{}, nil, err
		}
		// 1xx answers (103 Early Hints, a 100 Continue not asked for)
		// come before the real one; 101 ends the exchange.
		if r.StatusCode >= 200 || r.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	resp := response{status: r.StatusCode, retryAfter: r.Header.Get("Retry-After")}
	start, err := io.ReadAll(io.LimitReader(r.Body, keepBody))
	// A receiver may answer (a 413, say) and close before it has read
	// the whole request: the answer counts, as with net/http, and the
	// connection goes.
	reusable := err == nil && werr == nil && !r.Close && r.StatusCode != http.StatusSwitchingProtocols
	if reusable {
		// Read on a little, so that a short answer leaves its
		// connection reusable; a long one is cut off (and the
		// connection closed).
		n, err := io.CopyN(io.Discard, r.Body, readBody-keepBody+1)
		reusable = err == io.EOF && n <= readBody-keepBody
	}
	r.Body.Close()
	// The status counts even when reading the body failed: the receiver
	// answered.
	if reusable && ctx.Err() == nil {
		cl.put(c)
	} else {
		c.c.Close()
	}
	return resp, start, nil
}

// appendRequest appends the request's head and body to b.
func appendRequest(b []byte, t target, h []header, body []byte) []byte {
	b = append(b, "POST "...)
	b = append(b, t.uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, t.host...)
	b = append(b, "\r\n"...)
	for _, f := range h {
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// dial opens a connection to t through the guarded dialer, with TLS for
// https, all before deadline.
func (cl *h1Client) dial(ctx context.Context, t target, deadline time.Time) (*h1Conn, error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	raw, err := cl.dialer.DialContext(dctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	conn := raw
	if t.https {
		cfg := &tls.Config{}
		if cl.tls != nil {
			cfg = cl.tls.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = t.serverName
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, err
		}
		conn = tc
	}
	budget := &budgetReader{r: conn}
	return &h1Conn{key: t.key, c: conn, budget: budget, br: bufio.NewReaderSize(budget, 4<<10)}, nil
}

// take returns the newest idle connection for key that has not been idle
// too long and that its peer has not closed, or nil. (net/http's
// Transport keeps a read pending on every idle connection to learn of a
// close; here each reuse asks the socket once, see peerOpen. Receivers
// close idle connections after a few seconds, Node's http server after 5:
// a request written to such a connection would fail, and a POST is not
// sent twice.)
func (cl *h1Client) take(key string) *h1Conn {
	for {
		c := cl.pop(key)
		if c == nil {
			return nil
		}
		// Looked at outside the lock: a system call for each.
		if time.Since(c.since) < idleConnTimeout && c.br.Buffered() == 0 && peerOpen(c.c) {
			return c
		}
		c.c.Close()
	}
}

// pop takes the newest idle connection for key off the list, or nil.
func (cl *h1Client) pop(key string) *h1Conn {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cs := cl.idle[key]
	if len(cs) == 0 {
		return nil
	}
	c := cs[len(cs)-1]
	cs[len(cs)-1] = nil
	cl.setIdle(key, cs[:len(cs)-1])
	return c
}

func (cl *h1Client) setIdle(key string, cs []*h1Conn) {
	if len(cs) == 0 {
		delete(cl.idle, key)
		return
	}
	cl.idle[key] = cs
}

// put keeps c idle, unless its host has idlePerHost idle already or the
// client is closed.
func (cl *h1Client) put(c *h1Conn) {
	c.since = time.Now()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed || len(cl.idle[c.key]) >= cl.idlePerHost {
		c.c.Close()
		return
	}
	cl.idle[c.key] = append(cl.idle[c.key], c)
	if !cl.sweeping {
		cl.sweeping = true
		time.AfterFunc(idleConnTimeout, cl.sweep)
	}
}

// sweep closes the connections idle for idleConnTimeout, and comes back
// while any are left.
func (cl *h1Client) sweep() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for key, cs := range cl.idle {
		kept := cs[:0]
		for _, c := range cs {
			if time.Since(c.since) >= idleConnTimeout {
				c.c.Close()
				continue
			}
			kept = append(kept, c)
		}
		clear(cs[len(kept):])
		cl.setIdle(key, kept)
	}
	cl.sweeping = len(cl.idle) > 0 && !cl.closed
	if cl.sweeping {
		time.AfterFunc(idleConnTimeout/2, cl.sweep)
	}
}

// close closes the idle connections, and every connection put back from
// now on.
func (cl *h1Client) close() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.closed = true
	for key, cs := range cl.idle {
		for _, c := range cs {
			c.c.Close()
		}
		delete(cl.idle, key)
	}
}
