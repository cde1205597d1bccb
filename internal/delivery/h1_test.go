package delivery

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// h1Server is an httptest server that counts the connections it accepted.
type h1Server struct {
	*httptest.Server
	conns atomic.Int64
}

func newH1Server(t *testing.T, tlsOn bool, h http.HandlerFunc, configure ...func(*http.Server)) *h1Server {
	t.Helper()
	s := &h1Server{}
	s.Server = httptest.NewUnstartedServer(h)
	for _, c := range configure {
		c(s.Config)
	}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if tlsOn {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// clientFor returns an h1Client for s: private addresses allowed, and
// s's certificate trusted when it serves TLS.
func clientFor(s *h1Server, timeout time.Duration) *h1Client {
	var cfg *tls.Config
	if s.TLS != nil {
		cfg = &tls.Config{RootCAs: s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	}
	return newH1Client(NewDialer(true, timeout), timeout, 2, cfg)
}

func mustTarget(t *testing.T, raw string) target {
	t.Helper()
	tg, err := parseTarget(raw)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// What a receiver gets over plain HTTP and over TLS: the method, the path
// and query, Host, the headers as given, Content-Length and the body
// byte for byte; what the client gets back: the status, Retry-After and
// the start of the body; and every attempt in a row rides one connection.
func TestH1ClientRequestsAndKeepAlive(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		name := "http"
		if tlsOn {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			type seen struct {
				method, uri, host, ua, id, ctype string
				length                           int64
				body                             string
				proto                            string
				tls                              bool
			}
			var (
				mu  sync.Mutex
				got []seen
			)
			srv := newH1Server(t, tlsOn, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				got = append(got, seen{r.Method, r.RequestURI, r.Host, r.UserAgent(), r.Header.Get(headerID), r.Header.Get("Content-Type"),
					r.ContentLength, string(b), r.Proto, r.TLS != nil})
				mu.Unlock()
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
				io.WriteString(w, strings.Repeat("x", 3*keepBody))
			})
			cl := clientFor(srv, 5*time.Second)
			defer cl.close()
			tg := mustTarget(t, srv.URL+"/hooks/in?token=a%20b")
			const n = 5
			for i := range n {
				body := strings.Repeat("b", 100+i)
				resp, start, err := cl.post(context.Background(), tg, []header{{"Content-Type", "application/json"}, {"User-Agent", "hookd-test"}, {headerID, "msg_1"}}, []byte(body))
				if err != nil {
					t.Fatalf("attempt %d: %v", i, err)
				}
				if resp.status != http.StatusTooManyRequests || resp.retryAfter != "7" {
					t.Errorf("attempt %d: answer %+v, want 429 with Retry-After 7", i, resp)
				}
				if string(start) != strings.Repeat("x", keepBody) {
					t.Errorf("attempt %d: kept %d bytes of the body, want the first %d", i, len(start), keepBody)
				}
			}
			if c := srv.conns.Load(); c != 1 {
				t.Errorf("%d attempts took %d connections, want 1", n, c)
			}
			mu.Lock()
			defer mu.Unlock()
			for i, s := range got {
				want := seen{"POST", "/hooks/in?token=a%20b", strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://"),
					"hookd-test", "msg_1", "application/json", int64(100 + i), strings.Repeat("b", 100+i), "HTTP/1.1", tlsOn}
				if s != want {
					t.Errorf("request %d: receiver saw %+v, want %+v", i, s, want)
				}
			}
		})
	}
}

// A receiver that closes idle connections soon (Node's http server does
// after 5 s) is not sent a request on a closed one: each attempt after
// the receiver's idle timeout gets its answer, on a new connection.
func TestH1ClientSkipsConnectionsThePeerClosed(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		srv := newH1Server(t, tlsOn, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
			func(c *http.Server) { c.IdleTimeout = 30 * time.Millisecond })
		cl := clientFor(srv, 5*time.Second)
		tg := mustTarget(t, srv.URL+"/")
		for i := range 4 {
			resp, _, err := cl.post(context.Background(), tg, nil, []byte("{}"))
			if err != nil || resp.status != http.StatusNoContent {
				t.Fatalf("tls %v, attempt %d after the receiver closed the idle connection: %+v, %v", tlsOn, i, resp, err)
			}
			time.Sleep(150 * time.Millisecond) // past the receiver's idle timeout
		}
		if c := srv.conns.Load(); c != 4 {
			t.Errorf("tls %v: %d connections for 4 attempts each after an idle close, want 4", tlsOn, c)
		}
		cl.close()
	}
}

// Answers net/http's server writes in other shapes: chunked, 1xx before
// the answer, Connection: close, and a body too long to read to its end.
// The connection is reused exactly when the answer was read to its end
// and did not ask for a close.
func TestH1ClientAnswerShapes(t *testing.T) {
	srv := newH1Server(t, false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			for range 4 {
				io.WriteString(w, strings.Repeat("c", 500))
				w.(http.Flusher).Flush()
			}
		case "/early-hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusAccepted)
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusOK)
		case "/long":
			io.WriteString(w, strings.Repeat("l", readBody+1))
		}
	})
	cl := clientFor(srv, 5*time.Second)
	defer cl.close()
	for _, c := range []struct {
		path   string
		status int
		start  int
		conns  int64 // connections accepted so far after it
	}{
		{"/chunked", 200, keepBody, 1},
		{"/chunked", 200, keepBody, 1},
		{"/early-hints", 202, 0, 1},
		{"/close", 200, 0, 1},
		{"/chunked", 200, keepBody, 2}, // the close above ended the connection
		{"/long", 200, keepBody, 2},
		{"/chunked", 200, keepBody, 3}, // the long body was cut off: a new connection
	} {
		resp, start, err := cl.post(context.Background(), mustTarget(t, srv.URL+c.path), nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if resp.status != c.status || len(start) != c.start {
			t.Errorf("%s: status %d with %d bytes kept, want %d with %d", c.path, resp.status, len(start), c.status, c.start)
		}
		if n := srv.conns.Load(); n != c.conns {
			t.Errorf("after %s: %d connections, want %d", c.path, n, c.conns)
		}
	}
}

// A receiver that does not answer in time fails the attempt at the
// client's timeout with a timeout error; one that hangs up without an
// answer fails it too, sent once.
func TestH1ClientTimeoutAndHangUp(t *testing.T) {
	var tries atomic.Int64
	release := make(chan struct{})
	srv := newH1Server(t, false, func(w http.ResponseWriter, r *http.Request) {
		tries.Add(1)
		if r.URL.Path == "/hangup" {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
			return
		}
		<-release
	})
	defer close(release)
	cl := clientFor(srv, 200*time.Millisecond)
	defer cl.close()
	t0 := time.Now()
	_, _, err := cl.post(context.Background(), mustTarget(t, srv.URL+"/slow"), nil, []byte("{}"))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("slow receiver: err %v, want a timeout", err)
	}
	if d := time.Since(t0); d < 200*time.Millisecond || d > 3*time.Second {
		t.Errorf("slow receiver: the attempt took %v, want about the 200ms timeout", d)
	}
	tries.Store(0)
	if _, _, err := cl.post(context.Background(), mustTarget(t, srv.URL+"/hangup"), nil, []byte("{}")); err == nil {
		t.Error("receiver hung up without an answer: no error")
	}
	if n := tries.Load(); n != 1 {
		t.Errorf("receiver that hung up saw %d tries of one attempt, want 1", n)
	}
}

// What a caller cannot make the client send: header values with line
// breaks (a header of its own, or a second request, smuggled in), URLs
// that are not http or https, carry a user, or have no host; and private
// addresses unless allowed. Nothing reaches the receiver.
func TestH1ClientRefusals(t *testing.T) {
	var tries atomic.Int64
	srv := newH1Server(t, false, func(w http.ResponseWriter, r *http.Request) { tries.Add(1) })
	cl := clientFor(srv, time.Second)
	defer cl.close()
	for _, v := range []string{"a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b", strings.Repeat("v", maxHeaderValue+1)} {
		if _, _, err := cl.post(context.Background(), mustTarget(t, srv.URL+"/"), []header{{"User-Agent", v}}, nil); err == nil {
			t.Errorf("header value %q: no error", v)
		}
	}
	for _, raw := range []string{"ftp://example.com/", "http://user:pw@example.com/", "http:///path", "http://exa mple.com/", "://x"} {
		if _, err := parseTarget(raw); err == nil {
			t.Errorf("URL %q: accepted", raw)
		}
	}
	// What url.Parse leaves in a query goes out percent-encoded.
	for raw, want := range map[string]string{"http://h/p? a b": "/p?%20a%20b", "http://h/?q=é": "/?q=%C3%A9", "http://h/a%20b?x=1": "/a%20b?x=1"} {
		if tg, err := parseTarget(raw); err != nil || tg.uri != want {
			t.Errorf("URL %q: request-target %q (%v), want %q", raw, tg.uri, err, want)
		}
	}
	guarded := newH1Client(NewDialer(false, time.Second), time.Second, 1, nil)
	_, _, err := guarded.post(context.Background(), mustTarget(t, srv.URL+"/"), nil, nil)
	if !errors.Is(err, ErrRefused) {
		t.Errorf("loopback receiver without AllowPrivate: err %v, want ErrRefused", err)
	}
	if n := tries.Load(); n != 0 {
		t.Errorf("the receiver saw %d requests, want 0", n)
	}
}

// An HTTP/1.0 receiver, whose answer ends with the connection, written by
// hand: the answer is read and the connection not kept.
func TestH1ClientHTTP10(t *testing.T) {
	ln, accepted := rawReceiver(t, func(c net.Conn) { io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\nhello") })
	cl := newH1Client(NewDialer(true, time.Second), time.Second, 2, nil)
	defer cl.close()
	tg := mustTarget(t, "http://"+ln.Addr().String()+"/")
	for i := range 2 {
		resp, start, err := cl.post(context.Background(), tg, nil, []byte("{}"))
		if err != nil || resp.status != 200 || string(start) != "hello" {
			t.Fatalf("attempt %d: %+v %q %v", i, resp, start, err)
		}
	}
	if n := accepted.Load(); n != 2 {
		t.Errorf("2 attempts to an HTTP/1.0 receiver took %d connections, want 2", n)
	}
}

// A receiver that answers with a head that never ends makes the client
// read at most maxResponseBytes of it: the attempt fails at once, not at
// the timeout, and holds no more than that in memory.
func TestH1ClientBoundsTheAnswer(t *testing.T) {
	var written atomic.Int64
	ln, _ := rawReceiver(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := []byte("X-Filler: " + strings.Repeat("f", 1000) + "\r\n")
		for {
			n, err := c.Write(line)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	cl := newH1Client(NewDialer(true, 10*time.Second), 10*time.Second, 1, nil)
	defer cl.close()
	t0 := time.Now()
	_, _, err := cl.post(context.Background(), mustTarget(t, "http://"+ln.Addr().String()+"/"), nil, nil)
	if !errors.Is(err, errAnswerTooLarge) {
		t.Errorf("endless answer head: err %v, want %v", err, errAnswerTooLarge)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("endless answer head: the attempt took %v, want it cut off well before the 10s timeout", d)
	}
	// What the receiver got written is what the client read plus the
	// socket buffers, a few MiB at most.
	if n := written.Load(); n > maxResponseBytes+16<<20 {
		t.Errorf("the receiver wrote %d bytes before the client let go", n)
	}
}

// Whatever endpoint URL, header value and body a request is built from,
// once parseTarget and post's checks accept them, the bytes written are
// exactly one HTTP/1.1 request that net/http's server reads back with the
// same target, Host, headers and body: nothing a user can put in an
// endpoint URL, a secret or a notification splits it into two.
func FuzzH1Request(f *testing.F) {
	f.Add("http://example.com/hooks?x=1", "v1,abc", []byte(`{"a":1}`))
	f.Add("https://[::1]:8443/a%20b/c?q=%0d%0a", "x\ty", []byte("POST / HTTP/1.1\r\n\r\n"))
	f.Add("http://example.com:80", "", []byte{})
	f.Fuzz(func(t *testing.T, raw, value string, body []byte) {
		tg, err := parseTarget(raw)
		if err != nil || len(value) > maxHeaderValue || !validField(value) {
			return
		}
		b := appendRequest(nil, tg, []header{{"X-Test", value}, {headerID, "msg_1"}}, body)
		br := bufio.NewReader(strings.NewReader(string(b)))
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("URL %q, value %q: the request does not parse: %v\n%q", raw, value, err, b)
		}
		got, err := io.ReadAll(req.Body)
		if err != nil || string(got) != string(body) {
			t.Fatalf("body %q read back as %q (%v)", body, got, err)
		}
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			t.Fatalf("URL %q, value %q: %d bytes after the request: %q", raw, value, len(rest), rest)
		}
		if req.Method != "POST" || req.RequestURI != tg.uri || req.Host != tg.host || req.Proto != "HTTP/1.1" {
			t.Fatalf("read back %s %q host %q %s, want POST %q host %q", req.Method, req.RequestURI, req.Host, req.Proto, tg.uri, tg.host)
		}
		if v := req.Header.Values("X-Test"); len(v) != 1 || v[0] != strings.Trim(value, " \t") {
			t.Fatalf("header value %q read back as %q", value, v)
		}
		if len(req.Header) != 3 { // X-Test, webhook-id, Content-Length (Host is apart)
			t.Fatalf("headers read back: %v", req.Header)
		}
	})
}

// rawReceiver listens on loopback and, on each connection, reads one
// request (body included) and calls answer to write the answer by hand,
// then closes the connection. It counts the connections it accepted.
func rawReceiver(t *testing.T, answer func(net.Conn)) (net.Listener, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				answer(c)
			}()
		}
	}()
	return ln, accepted
}
