package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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
	srv  *http.Server
	ln   net.Listener
	conn *grpc.ClientConn
	id   string // the endpoint's ID

	mu       sync.Mutex
	received map[string]time.Time // event ID → first delivery
	requests int64
}

// startDeliverySink listens on addr (loopback), and registers it with the
// hookd at grpcAddr (which needs --allow-private-endpoints for a loopback
// endpoint, and token with the admin scope when it has tokens).
func startDeliverySink(ctx context.Context, addr, grpcAddr, token string, tlsCfg *tls.Config) (*deliverySink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("deliver: listen %s: %w", addr, err)
	}
	s := &deliverySink{ln: ln, received: map[string]time.Time{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)

	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(services.BearerToken(token)))
	}
	if s.conn, err = grpc.NewClient(grpcAddr, opts...); err != nil {
		s.srv.Close()
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

func (s *deliverySink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var id string
	if err == nil {
		id, err = eventID(body)
	}
	now := time.Now()
	s.mu.Lock()
	s.requests++
	if _, seen := s.received[id]; !seen && err == nil {
		s.received[id] = now
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
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
	s.srv.Close()
	if err != nil {
		return fmt.Errorf("deliver: delete endpoint %s: %w", s.id, err)
	}
	return nil
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
	if len(lags) > 0 {
		r.DeliveryLagMs = percentiles(lags)
		if secs := last.Sub(start).Seconds(); secs > 0 {
			r.DeliveriesPerSec = float64(len(lags)) / secs
		}
	}
}
