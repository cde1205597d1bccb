package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// benchClient posts webhooks over plain HTTP/1.1 keep-alive connections,
// each used by one request at a time from start to finish on the caller's
// goroutine. It does what the bench needs of net/http's client at about
// half the CPU: net/http hands every request to a connection's writer
// goroutine and every response back from its reader goroutine, and on
// the 2-core machine where hookd, PostgreSQL and the generator share the
// cores, that was a sixth of a core at 4,000 requests/s, taken from the
// server being measured.
type benchClient struct {
	addr    string // host:port to dial
	head    []byte // request line and fixed headers, up to the signature
	timeout time.Duration
	idle    chan *benchConn // connections waiting for a request
}

type benchConn struct {
	net.Conn
	r   *bufio.Reader
	buf []byte // the request being written
}

// newBenchClient returns a client for the http:// URL u, keeping up to
// maxIdle idle connections.
func newBenchClient(u string, maxIdle int, timeout time.Duration) (*benchClient, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	if pu.Scheme != "http" {
		return nil, fmt.Errorf("bench client: %s: only http:// URLs", u)
	}
	addr := pu.Host
	if pu.Port() == "" {
		addr = net.JoinHostPort(pu.Hostname(), "80")
	}
	head := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hookd-bench\r\nContent-Type: application/json\r\nStripe-Signature: ",
		pu.RequestURI(), pu.Host)
	return &benchClient{addr: addr, head: head, timeout: timeout, idle: make(chan *benchConn, maxIdle)}, nil
}

// Post sends body with the Stripe-Signature header sig and returns the
// response's status code and body. A request that fails on a reused
// connection before any of its response arrived is sent once more on a
// new one (the server may have closed the idle connection), as net/http
// does; a webhook is safe to deliver twice.
func (c *benchClient) Post(sig string, body []byte) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		bc, reused, err := c.get()
		if err != nil {
			return 0, nil, err
		}
		code, resp, keep, started, err := bc.roundTrip(c, sig, body)
		if err == nil {
			if keep {
				c.put(bc)
			} else {
				bc.Close()
			}
			return code, resp, nil
		}
		bc.Close()
		if !reused || started || attempt > 0 {
			return 0, nil, err
		}
	}
}

// Close closes the idle connections.
func (c *benchClient) Close() {
	for {
		select {
		case bc := <-c.idle:
			bc.Close()
		default:
			return
		}
	}
}

func (c *benchClient) get() (*benchConn, bool, error) {
	select {
	case bc := <-c.idle:
		return bc, true, nil
	default:
	}
	conn, err := net.DialTimeout("tcp", c.addr, c.timeout)
	if err != nil {
		return nil, false, err
	}
	return &benchConn{Conn: conn, r: bufio.NewReaderSize(conn, 4096)}, false, nil
}

func (c *benchClient) put(bc *benchConn) {
	select {
	case c.idle <- bc:
	default:
		bc.Close()
	}
}

// roundTrip writes one request and reads its response. keep reports
// whether the connection can take another request; started, whether any
// of the response had arrived when it failed.
func (bc *benchConn) roundTrip(c *benchClient, sig string, body []byte) (code int, resp []byte, keep, started bool, err error) {
	bc.buf = append(bc.buf[:0], c.head...)
	bc.buf = append(bc.buf, sig...)
	bc.buf = append(bc.buf, "\r\nContent-Length: "...)
	bc.buf = strconv.AppendInt(bc.buf, int64(len(body)), 10)
	bc.buf = append(bc.buf, "\r\n\r\n"...)
	bc.buf = append(bc.buf, body...)
	if err := bc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, nil, false, false, err
	}
	if _, err := bc.Write(bc.buf); err != nil {
		return 0, nil, false, false, err
	}
	if _, err := bc.r.Peek(1); err != nil {
		return 0, nil, false, false, err
	}
	r, err := http.ReadResponse(bc.r, nil)
	if err != nil {
		return 0, nil, false, true, err
	}
	resp, err = io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return 0, nil, false, true, err
	}
	return r.StatusCode, resp, !r.Close, true, nil
}

// benchSender returns a function that posts a signed webhook to url and
// returns the answer's status code and body: over benchClient for an
// http:// URL, else over net/http's client. close releases connections.
func benchSender(url string, conns int, tlsCfg *tls.Config) (send func(sig string, body []byte) (int, []byte, error), close func(), err error) {
	const timeout = 30 * time.Second
	if strings.HasPrefix(url, "http://") {
		bc, err := newBenchClient(url, conns, timeout)
		if err != nil {
			return nil, nil, err
		}
		return bc.Post, bc.Close, nil
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, TLSClientConfig: tlsCfg}, Timeout: timeout}
	send = func(sig string, body []byte) (int, []byte, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", sig)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	return send, client.CloseIdleConnections, nil
}
