package services

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/storetest/backends"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/internal/storetest"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// streamSetup is a NotificationServer on a real store behind a gRPC
// server on loopback, with a Broadcaster whose window is tiny, so that
// streams fall out of it.
type streamSetup struct {
	st     store.Store
	wakeup *Wakeup
	srv    *NotificationServer
	client hookdv1.NotificationServiceClient
}

func newStreamSetup(t *testing.T, st store.Store, window, maxStreams int) *streamSetup {
	t.Helper()
	wakeup := NewWakeup()
	bc := NewBroadcaster(st, wakeup, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	bc.window = window
	ns := &NotificationServer{store: st, wakeup: wakeup, bc: bc, poll: 20 * time.Millisecond, maxStreams: int64(maxStreams), log: slog.New(slog.DiscardHandler)}
	srv := grpc.NewServer()
	hookdv1.RegisterNotificationServiceServer(srv, ns)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Stop(); bc.Stop() })
	// Fixed flow-control windows (no BDP growth) keep what a stalled
	// stream has in flight small: its server side then falls behind.
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &streamSetup{st: st, wakeup: wakeup, srv: ns, client: hookdv1.NewNotificationServiceClient(conn)}
}

// writer commits events for a few customers one at a time, each with one
// notification, and records their IDs in commit order.
type writer struct {
	mu       sync.Mutex // guards the fields below
	versions map[string]int64
	all      []string            // event IDs in commit order
	by       map[string][]string // customer → event IDs in commit order
}

func (w *writer) commit(t *testing.T, s *streamSetup, eventID, customerID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.versions == nil {
		w.versions, w.by = map[string]int64{}, map[string][]string{}
	}
	wr := storetest.StateWrite(eventID, customerID, w.versions[customerID])
	// Large enough that a few fill gRPC's flow-control window, so that the
	// server side of a slow stream falls behind too.
	c, _ := proto.Marshal(&hookdv1.Customer{CustomerId: customerID, Name: strings.Repeat("n", 8<<10)})
	wr.Notifications[0].Customer = c
	if errs := s.st.Commit(context.Background(), []store.Write{wr}); errs[0] != nil {
		t.Errorf("commit %s: %v", eventID, errs[0])
		return
	}
	w.versions[customerID]++
	w.all = append(w.all, eventID)
	w.by[customerID] = append(w.by[customerID], eventID)
	s.wakeup.Notify()
}

func (w *writer) want(customerID string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if customerID == "" {
		return slices.Clone(w.all)
	}
	return slices.Clone(w.by[customerID])
}

// follow reads a stream's event IDs until it has n, resuming from its last
// cursor (a new stream) after every resumeEvery notifications when that
// is positive, and sleeping pause after each one (a second after the
// fifth, when pause is a second or more).
// A pause of a second or more is a stall: after its fifth notification the
// stream reads nothing more until stall is closed (when every event is
// committed), so that it surely falls out of the window however slowly
// the machine commits.
func follow(ctx context.Context, s *streamSetup, customerID string, n, resumeEvery int, pause time.Duration, stall <-chan struct{}) ([]string, error) {
	var got []string
	cursor := ""
	for len(got) < n {
		sctx, cancel := context.WithCancel(ctx)
		stream, err := s.client.Subscribe(sctx, &hookdv1.SubscribeRequest{AfterCursor: cursor, CustomerId: customerID})
		if err != nil {
			cancel()
			return got, err
		}
		for k := 0; len(got) < n && (resumeEvery <= 0 || k < resumeEvery); k++ {
			m, err := stream.Recv()
			if err != nil {
				cancel()
				return got, fmt.Errorf("after %d notifications: %w", len(got), err)
			}
			if customerID != "" && m.GetCustomerId() != customerID {
				cancel()
				return got, fmt.Errorf("notification of %s on a stream for %s", m.GetCustomerId(), customerID)
			}
			got, cursor = append(got, m.GetEventId()), m.GetCursor()
			switch {
			case pause < time.Second:
				time.Sleep(pause)
			case len(got) == 5:
				select {
				case <-stall:
				case <-ctx.Done():
				}
			}
		}
		cancel()
	}
	return got, nil
}

func forEachStore(t *testing.T, f func(t *testing.T, st store.Store)) {
	backends.Each(t, func(t *testing.T, st backends.Store) { f(t, st) })
}

// Streams that follow the shared reader — from the start, per customer,
// slow ones that fall out of its window, and ones that resume from their
// last cursor again and again while events are committed — each get
// exactly the notifications of their filter, in commit order.
func TestFollowingStreamsMissNothingAndRepeatNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		s := newStreamSetup(t, st, 16, 100)
		customers := []string{"cus_a", "cus_b", "cus_c", "cus_d"}
		var w writer
		const before, total = 40, 440
		for i := range before { // older than the reader's start
			w.commit(t, s, fmt.Sprint("evt_", i), customers[i%len(customers)])
		}
		if err := s.srv.bc.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		type reader struct {
			name        string
			customerID  string
			resumeEvery int
			pause       time.Duration
		}
		readers := []reader{
			{"all", "", 0, 0},
			{"all slow", "", 0, 2 * time.Millisecond},
			{"all stalling", "", 0, time.Second},
			{"all resuming", "", 23, 0},
			{"all slow resuming", "", 61, time.Millisecond},
		}
		for _, c := range customers {
			readers = append(readers, reader{c, c, 0, 0}, reader{c + " resuming", c, 7, 0}, reader{c + " slow", c, 0, 5 * time.Millisecond}, reader{c + " stalling", c, 0, time.Second})
		}
		var wg sync.WaitGroup
		written := make(chan struct{}) // closed once every event is committed
		results := make([][]string, len(readers))
		errs := make([]error, len(readers))
		for i, r := range readers {
			n := total
			if r.customerID != "" {
				n = total / len(customers)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = follow(ctx, s, r.customerID, n, r.resumeEvery, r.pause, written)
			}()
		}
		for i := before; i < total; i++ {
			w.commit(t, s, fmt.Sprint("evt_", i), customers[i%len(customers)])
			if i%20 == 0 {
				time.Sleep(5 * time.Millisecond) // let some streams catch up and join
			}
		}
		close(written)
		wg.Wait()
		for i, r := range readers {
			if errs[i] != nil {
				t.Errorf("%s: %v", r.name, errs[i])
			}
			if want := w.want(r.customerID); !slices.Equal(results[i], want) {
				t.Errorf("%s: got %d notifications %v,\nwant %d %v", r.name, len(results[i]), results[i], len(want), want)
			}
		}
		if s.srv.fellBehind.Load() == 0 {
			t.Errorf("no stream fell out of the window of 16; the test did not exercise the slow path")
		}
		// Nothing more arrives on a caught-up stream.
		stream, err := s.client.Subscribe(ctx, &hookdv1.SubscribeRequest{FromNow: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Header(); err != nil {
			t.Fatal(err)
		}
		w.commit(t, s, "evt_last", "cus_a")
		m, err := stream.Recv()
		if err != nil || m.GetEventId() != "evt_last" {
			t.Errorf("from_now stream: got %s, %v; want evt_last", m.GetEventId(), err)
		}
	})
}

// The limit+1th stream is answered RESOURCE_EXHAUSTED, and a slot frees
// when a stream ends.
func TestStreamLimit(t *testing.T) {
	s := newStreamSetup(t, pgtest.NewStore(t), 16, 3)
	if err := s.srv.bc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	open := func(ctx context.Context) error {
		stream, err := s.client.Subscribe(ctx, &hookdv1.SubscribeRequest{FromNow: true})
		if err != nil {
			return err
		}
		md, err := stream.Header()
		if err == nil && md == nil { // ended without headers: the status follows
			_, err = stream.Recv()
		}
		return err
	}
	var cancels []context.CancelFunc
	for i := range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		cancels = append(cancels, cancel)
		if err := open(ctx); err != nil {
			t.Fatalf("stream %d of 3: %v", i+1, err)
		}
	}
	err := open(t.Context())
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("fourth stream: got %v, want RESOURCE_EXHAUSTED", err)
	}
	t.Logf("fourth stream: %v", err)
	cancels[0]()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := open(t.Context())
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted || time.Now().After(deadline) {
			t.Fatalf("stream after one ended: got %v, want it served", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The window stays within its bounds by count and by bytes, and holds
// every notification after its base, numbered without a gap.
func TestBroadcastWindowBounds(t *testing.T) {
	for _, tt := range []struct {
		window int
		bytes  int64
	}{{8, 1 << 20}, {1000, 1000}, {1000, 10}} {
		b := NewBroadcaster(nil, NewWakeup(), time.Second, slog.New(slog.DiscardHandler))
		b.window, b.bytes = tt.window, tt.bytes
		for read := range 20 {
			var notes []store.Notification
			for i := range 3 {
				c, _ := proto.Marshal(&hookdv1.Customer{CustomerId: "cus", Name: strings.Repeat("n", 290)})
				notes = append(notes, store.Notification{Cursor: fmt.Sprint(read*3 + i + 1), CustomerID: "cus", Customer: c})
			}
			b.append(notes, uint64(read+1), true, time.Now())
			var sum int64
			for i, e := range b.ring {
				sum += e.size
				if e.ord != b.base+uint64(i)+1 || e.cursor != fmt.Sprint(e.ord) || b.index[e.cursor] != e.ord {
					t.Fatalf("window %+v: entry %d is %+v at base %d, want ordinal and cursor %d", tt, i, e, b.base, b.base+uint64(i)+1)
				}
			}
			if len(b.ring) == 0 || len(b.ring) > tt.window+tt.window/4 || (len(b.ring) > 1 && sum > tt.bytes) || sum != b.ringBytes || len(b.index) != len(b.ring) {
				t.Fatalf("window %+v after read %d: %d entries of %d bytes (counted %d), index %d", tt, read, len(b.ring), sum, b.ringBytes, len(b.index))
			}
			if b.baseCursor != fmt.Sprint(b.base) && b.base != 0 {
				t.Fatalf("window %+v: base cursor %q at base %d", tt, b.baseCursor, b.base)
			}
		}
	}
}
