package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scriptedStream is what the fake server does on one Subscribe call: send
// these cursors, then end with end (nil: wait for the client to go away).
type scriptedStream struct {
	cursors []string
	end     error
	start   string // the hookd-start-cursor header, when set
}

// fakeNotifications is a NotificationService that plays a script, one
// entry per Subscribe call, and records the after_cursor of each. It
// stands in for a server that misbehaves in ways hookd must not (resending
// what it sent), which a real hookd cannot be made to do; the tests
// against a real hookd are in cmd/hookd/client_test.go.
type fakeNotifications struct {
	hookdv1.UnimplementedNotificationServiceServer
	script []scriptedStream

	mu      sync.Mutex // guards after and fromNow
	after   []string
	fromNow []bool
}

func (f *fakeNotifications) Subscribe(req *hookdv1.SubscribeRequest, st hookdv1.NotificationService_SubscribeServer) error {
	f.mu.Lock()
	i := len(f.after)
	f.after = append(f.after, req.GetAfterCursor())
	f.fromNow = append(f.fromNow, req.GetFromNow())
	f.mu.Unlock()
	if i >= len(f.script) {
		return status.Error(codes.Internal, "script exhausted")
	}
	var md metadata.MD
	if c := f.script[i].start; c != "" {
		md = metadata.Pairs(StartCursorHeader, c)
	}
	if err := st.SendHeader(md); err != nil {
		return err
	}
	for _, c := range f.script[i].cursors {
		if err := st.Send(&hookdv1.Notification{Cursor: c, CustomerId: "cus_1"}); err != nil {
			return err
		}
	}
	if f.script[i].end != nil {
		return f.script[i].end
	}
	<-st.Context().Done()
	return nil
}

func (f *fakeNotifications) afterCursors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.after)
}

// setup serves f on loopback and returns a Client for it.
func setup(t *testing.T, f *fakeNotifications) *Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hookdv1.RegisterNotificationServiceServer(srv, f)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }()
	c, err := New(l.Addr().String(), WithInsecure(), WithToken("t"), WithBackoff(Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Stop()
		<-done
	})
	return c
}

// A stream that resends what an earlier one delivered does not make the
// client deliver it twice, and every reconnect resumes after the last
// notification delivered, not after the cursor loaded at the start.
func TestSubscribeDeliversOnceAndResumesAfterTheLastDelivered(t *testing.T) {
	t.Parallel()
	f := &fakeNotifications{script: []scriptedStream{
		{cursors: []string{"c1", "c2", "c3"}, end: status.Error(codes.Unavailable, "shutting down")},
		{cursors: []string{"c3", "c2", "c4", "c5"}, end: status.Error(codes.ResourceExhausted, "stream limit")},
		{end: status.Error(codes.Unavailable, "no headers this time")},
		{cursors: []string{"c5", "c6"}},
	}}
	c := setup(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	cursors := &MemoryCursor{}
	cursors.Save(ctx, "c0")
	err := c.Subscribe(ctx, SubscribeOptions{}, func(_ context.Context, n *hookdv1.Notification) error {
		got = append(got, n.GetCursor())
		if n.GetCursor() == "c6" {
			cancel()
		}
		return nil
	}, cursors)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe = %v, want context.Canceled", err)
	}
	if want := []string{"c1", "c2", "c3", "c4", "c5", "c6"}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v (each once)", got, want)
	}
	if want := []string{"c0", "c3", "c5", "c5"}; !slices.Equal(f.afterCursors(), want) {
		t.Errorf("streams asked for after_cursor %q, want %q", f.afterCursors(), want)
	}
	if saved, _ := cursors.Load(context.Background()); saved != "c6" {
		t.Errorf("saved cursor %q, want c6", saved)
	}
}

// A from_now subscription that loses its stream before its first
// notification resumes after where that stream started (its
// hookd-start-cursor header), not from a later "now" that would skip what
// was committed in between.
func TestSubscribeFromNowResumesAtTheFirstStreamsStart(t *testing.T) {
	t.Parallel()
	f := &fakeNotifications{script: []scriptedStream{
		{start: "s7", end: status.Error(codes.Unavailable, "shutting down")},
		{start: "s7", cursors: []string{"c8"}},
	}}
	c := setup(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	err := c.Subscribe(ctx, SubscribeOptions{FromNow: true}, func(_ context.Context, n *hookdv1.Notification) error {
		got = append(got, n.GetCursor())
		cancel()
		return nil
	}, &MemoryCursor{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe = %v, want context.Canceled", err)
	}
	if !slices.Equal(got, []string{"c8"}) {
		t.Errorf("delivered %v, want [c8]", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []string{"", "s7"}; !slices.Equal(f.after, want) {
		t.Errorf("streams asked for after_cursor %q, want %q", f.after, want)
	}
	if want := []bool{true, false}; !slices.Equal(f.fromNow, want) {
		t.Errorf("streams asked for from_now %v, want %v", f.fromNow, want)
	}
}

// Permanent codes end Subscribe at once, with an error that wraps both the
// sentinel and the status.
func TestSubscribeReturnsPermanentErrors(t *testing.T) {
	t.Parallel()
	for code, want := range map[codes.Code]error{
		codes.Unauthenticated:  ErrUnauthenticated,
		codes.PermissionDenied: ErrPermissionDenied,
		codes.InvalidArgument:  ErrInvalidArgument,
	} {
		t.Run(code.String(), func(t *testing.T) {
			t.Parallel()
			f := &fakeNotifications{script: []scriptedStream{
				{cursors: []string{"c1"}, end: status.Error(code, "no")},
				{cursors: []string{"c2"}},
			}}
			c := setup(t, f)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.Subscribe(ctx, SubscribeOptions{}, func(context.Context, *hookdv1.Notification) error { return nil }, &MemoryCursor{})
			if !errors.Is(err, want) || status.Code(err) != code {
				t.Fatalf("Subscribe = %v (code %v), want %v with code %v", err, status.Code(err), want, code)
			}
			if n := len(f.afterCursors()); n != 1 {
				t.Fatalf("%d streams, want 1: %v is not retried", n, code)
			}
		})
	}
}

// An error from the handler that wraps a transient status (a downstream
// call that failed UNAVAILABLE) stops Subscribe: it is the handler's
// error, not the stream's.
func TestSubscribeReturnsHandlerErrors(t *testing.T) {
	t.Parallel()
	f := &fakeNotifications{script: []scriptedStream{{cursors: []string{"c1", "c2"}}}}
	c := setup(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	downstream := fmt.Errorf("write to the warehouse: %w", status.Error(codes.Unavailable, "warehouse down"))
	cursors := &MemoryCursor{}
	err := c.Subscribe(ctx, SubscribeOptions{}, func(_ context.Context, n *hookdv1.Notification) error {
		if n.GetCursor() == "c2" {
			return downstream
		}
		return nil
	}, cursors)
	if !errors.Is(err, downstream) {
		t.Fatalf("Subscribe = %v, want the handler's error", err)
	}
	if saved, _ := cursors.Load(ctx); saved != "c1" {
		t.Fatalf("saved cursor %q, want c1 (c2 was not accepted)", saved)
	}
	if n := len(f.afterCursors()); n != 1 {
		t.Fatalf("%d streams, want 1", n)
	}
}

func TestNewRejectsInsecureWithTLS(t *testing.T) {
	t.Parallel()
	if c, err := New("127.0.0.1:1", WithInsecure(), WithTLS(&tls.Config{})); err == nil {
		c.Close()
		t.Fatal("New with WithInsecure and WithTLS succeeded, want an error")
	}
	c, err := New("127.0.0.1:1", WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v, want nil", err)
	}
}

// WithToken without WithInsecure never sends the token in plaintext: gRPC
// refuses the combination when dial options make the connection plaintext.
func TestTokenNeedsTLSUnlessInsecure(t *testing.T) {
	t.Parallel()
	c, err := New("127.0.0.1:1", WithToken("secret"), WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err == nil {
		c.Close()
		t.Fatal("New with a token over plaintext without WithInsecure succeeded, want an error")
	}
	c, err = New("127.0.0.1:1", WithToken("secret"), WithInsecure())
	if err != nil {
		t.Fatalf("New with a token and WithInsecure: %v", err)
	}
	c.Close()
}
