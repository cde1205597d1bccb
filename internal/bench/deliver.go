package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/services"
)

// deliverySink is `hookd bench --deliver`: a fast local receiver
// registered with hookd as a push endpoint for the run (and deleted after
// it), which records when each event's delivery first arrived. It answers
// 204 at once and does not verify signatures: it measures hookd, not
// itself.
type deliverySink struct {
	ln   net.Listener
	conn *grpc.ClientConn
	id   string // the endpoint's ID

	mu       sync.Mutex
	received map[string]time.Time // event ID → first delivery
	requests int64
	bad      int64             // requests it could not read (answered 400, or the connection closed)
	conns    map[net.Conn]bool // open connections, closed by close
	timeout  time.Duration     // how long a connection may take to send a request (sinkTimeout)
	closed   bool
	served   sync.WaitGroup // the connections' goroutines
}

// startDeliverySink listens on addr (loopback), and registers it with the
// hookd at grpcAddr (which needs --allow-private-endpoints for a loopback
// endpoint, and token with the admin scope when it has tokens).
func startDeliverySink(ctx context.Context, addr, grpcAddr, token string, tlsCfg *tls.Config) (*deliverySink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("deliver: listen %s: %w", addr, err)
	}
	s := newDeliverySink(ln, sinkTimeout)
	go s.accept()

	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(services.BearerToken(token)))
	}
	if s.conn, err = grpc.NewClient(grpcAddr, opts...); err != nil {
		s.stop()
		return nil, err
	}
	resp, err := hookdv1.NewEndpointServiceClient(s.conn).CreateEndpoint(ctx, &hookdv1.CreateEndpointRequest{
		Url: "http://" + ln.Addr().String() + "/bench", Description: "hookd bench --deliver (deleted after the run)",
	})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("deliver: create the endpoint (hookd needs --allow-private-endpoints, and --token the admin scope): %w", err)
	}
	s.id = resp.GetEndpoint().GetId()
	return s, nil
}

// sinkTimeout is how long the receiver waits for a connection's next
// request, whole (hookd's delivery engine keeps idle connections for 90 s
// and redials one that was closed).
const sinkTimeout = 30 * time.Second

func newDeliverySink(ln net.Listener, timeout time.Duration) *deliverySink {
	return &deliverySink{ln: ln, received: map[string]time.Time{}, conns: map[net.Conn]bool{}, timeout: timeout}
}

// accept serves each connection on a goroutine of its own until the
// listener closes.
func (s *deliverySink) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.served.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.served.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// sinkMaxBody bounds a delivery body the receiver reads.
const sinkMaxBody = 1 << 20

// serveConn answers the HTTP/1.1 requests of one keep-alive connection,
// each with 204 No Content once its body is read, and records the event
// IDs. It speaks only what a webhook sender needs (a request line,
// headers, a Content-Length body): net/http's server cost the generator,
// on the cores it shares with the hookd it measures, about as much per
// delivery as a quarter of hookd's own CPU per event. A request it cannot
// read (chunked, no or a bad Content-Length, a body over 1 MiB, a header
// line over 16 KiB) is answered 400 and the connection closed: counted,
// never recorded as delivered. A connection that sends no whole request
// for s.timeout is closed.
func (s *deliverySink) serveConn(c net.Conn) {
	br := bufio.NewReaderSize(c, 16<<10)
	var body []byte
	for {
		c.SetReadDeadline(time.Now().Add(s.timeout))
		length, closeAfter, err := readRequestHead(br)
		if err != nil {
			var ne net.Error
			if !errors.Is(err, io.EOF) && !(errors.As(err, &ne) && ne.Timeout()) {
				s.unreadable()
				c.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
			}
			return
		}
		if cap(body) < length {
			body = make([]byte, length)
		}
		body = body[:length]
		if _, err := io.ReadFull(br, body); err != nil {
			s.unreadable()
			return
		}
		now := time.Now()
		id, err := eventID(body)
		s.mu.Lock()
		s.requests++
		if _, seen := s.received[id]; !seen && err == nil && id != "" {
			s.received[id] = now
		}
		s.mu.Unlock()
		if _, err := c.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n")); err != nil || closeAfter {
			return
		}
	}
}

// unreadable records a request it could not read.
func (s *deliverySink) unreadable() {
	s.mu.Lock()
	s.bad++
	s.mu.Unlock()
}

// readRequestHead reads a request's line and headers and returns its
// Content-Length and whether it asked to close the connection; io.EOF
// when the connection ended between requests.
func readRequestHead(br *bufio.Reader) (length int, closeAfter bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return 0, false, io.EOF
		}
		return 0, false, fmt.Errorf("request line: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("POST ")) || !bytes.HasSuffix(bytes.TrimRight(line, "\r\n"), []byte(" HTTP/1.1")) {
		return 0, false, fmt.Errorf("request line %q: want POST over HTTP/1.1", line)
	}
	length = -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, fmt.Errorf("header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 || n > sinkMaxBody || (length >= 0 && n != length) {
				return 0, false, fmt.Errorf("content-length %q", value)
			}
			length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, false, fmt.Errorf("transfer-encoding %q not supported", value)
		case bytes.EqualFold(name, []byte("Connection")):
			closeAfter = bytes.EqualFold(value, []byte("close"))
		}
	}
	if length < 0 {
		return 0, false, errors.New("no content-length")
	}
	return length, closeAfter, nil
}

// eventID returns a delivered notification's event ID. hookd writes it
// as "eventId":"evt_…" with nothing to unescape, found without decoding
// the whole body (the receiver is meant to cost little beside the hookd
// it measures); any other body is decoded.
func eventID(body []byte) (string, error) {
	const key = `"eventId":"`
	if i := bytes.Index(body, []byte(key)); i >= 0 {
		rest := body[i+len(key):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 && bytes.IndexByte(rest[:j], '\\') < 0 {
			return string(rest[:j]), nil
		}
	}
	var n struct {
		EventID string `json:"eventId"`
	}
	err := json.Unmarshal(body, &n)
	return n.EventID, err
}

// count returns how many distinct events were delivered.
func (s *deliverySink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.received)
}

// has reports whether id was delivered.
func (s *deliverySink) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.received[id]
	return ok
}

// close deletes the endpoint (so that a later run does not deliver to a
// receiver that is gone) and stops the receiver.
func (s *deliverySink) close() error {
	var err error
	if s.id != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = hookdv1.NewEndpointServiceClient(s.conn).DeleteEndpoint(ctx, &hookdv1.DeleteEndpointRequest{Id: s.id})
	}
	if s.conn != nil {
		s.conn.Close()
	}
	s.stop()
	if err != nil {
		return fmt.Errorf("deliver: delete endpoint %s: %w", s.id, err)
	}
	return nil
}

// stop closes the listener and every connection, and waits for their
// goroutines.
func (s *deliverySink) stop() {
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.served.Wait()
}

// deliveryFigures fills r's delivery figures from what the sink received
// for the applied events acked (event ID → the sender's 2xx), since start.
func (s *deliverySink) deliveryFigures(r *Result, acked map[string]time.Time, start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lags []time.Duration
	var last time.Time
	for id, ack := range acked {
		got, ok := s.received[id]
		if !ok {
			r.DeliveriesMissing++
			continue
		}
		lags = append(lags, max(0, got.Sub(ack)))
		if got.After(last) {
			last = got
		}
	}
	r.Deliveries = int64(len(lags))
	r.DeliveryRequests = s.requests
	r.DeliveryBadRequests = s.bad
	if len(lags) > 0 {
		r.DeliveryLagMs = percentiles(lags)
		if secs := last.Sub(start).Seconds(); secs > 0 {
			r.DeliveriesPerSec = float64(len(lags)) / secs
		}
	}
}
