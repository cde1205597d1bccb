package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// SubscribeOptions select what Subscribe follows.
type SubscribeOptions struct {
	// CustomerID, when set, follows only this customer's notifications.
	CustomerID string
	// FromNow starts after the newest notification when the CursorStore
	// holds no cursor, instead of from the beginning. It applies to the
	// first stream only until a notification arrives: hookd does not tell
	// the client where a from-now stream started, so a reconnect before the
	// first notification starts from now again, and notifications committed
	// while disconnected before that first one are not delivered.
	FromNow bool
}

// Handler processes one notification. Returning nil accepts it: its
// cursor is then saved and the next notification follows. Returning an
// error stops Subscribe, which returns that error without saving the
// cursor, so the notification is delivered again by the next Subscribe.
type Handler func(ctx context.Context, n *hookdv1.Notification) error

// recentCursors is how many delivered cursors Subscribe remembers to drop
// a notification that a resumed stream sends again.
const recentCursors = 1024

// Subscribe follows hookd's notifications, calling handler for each, one
// at a time in commit order (so, for each customer, in version order),
// until ctx is done or an error is permanent. It resumes after the cursor
// cursors.Load returns and saves each notification's cursor once handler
// has returned nil for it.
//
// Delivery: within one call of Subscribe every notification is delivered
// exactly once. When a stream ends UNAVAILABLE (hookd stopping or
// restarting, a lost connection), RESOURCE_EXHAUSTED (hookd's stream
// limit), DEADLINE_EXCEEDED, ABORTED or CANCELED (not by ctx), Subscribe
// waits a jittered exponential back-off (WithBackoff) and resumes after the
// last notification it delivered, whatever was saved; a notification it
// already delivered is never delivered again, even if a stream resends it.
// Across processes delivery is at least once: a crash after handler
// returned but before Save completed delivers that notification again
// after the restart. Handlers that must not repeat an effect can key on
// (customer_id, version), which is unique.
//
// Subscribe returns ctx.Err() when ctx is done; the handler's error
// (wrapped) when it fails; a Save or Load error (wrapped); and for a
// permanent gRPC error one that wraps ErrUnauthenticated,
// ErrPermissionDenied, ErrInvalidArgument (for instance a stored cursor
// hookd cannot read) or the status error. It never returns nil.
//
// Save runs once per notification, on the delivery path: a slow
// CursorStore slows the subscriber. cursors must not be nil.
func (c *Client) Subscribe(ctx context.Context, opts SubscribeOptions, handler Handler, cursors CursorStore) error {
	after, err := cursors.Load(ctx)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	s := &subscription{
		c:        c,
		opts:     opts,
		handler:  handler,
		cursors:  cursors,
		after:    after,
		recent:   make(map[string]struct{}, recentCursors),
		recentAt: make([]string, 0, recentCursors),
	}
	return s.run(ctx)
}

// subscription is the state of one Subscribe call; one goroutine owns it.
type subscription struct {
	c       *Client
	opts    SubscribeOptions
	handler Handler
	cursors CursorStore

	after     string              // resume after this cursor: the last delivered, else the loaded one
	delivered int64               // notifications delivered so far
	recent    map[string]struct{} // the last recentCursors cursors delivered
	recentAt  []string            // recent in delivery order, as a ring
	next      int                 // the ring slot the next cursor takes
}

func (s *subscription) run(ctx context.Context) error {
	attempt := 0
	for {
		established, err := s.stream(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var r resumable
		if !errors.As(err, &r) {
			return err
		}
		code := status.Code(r.err)
		if established {
			attempt = 0
		}
		wait := s.c.backoff.Delay(attempt)
		attempt++
		s.c.log.InfoContext(ctx, "notification stream ended; resuming",
			"code", code.String(), "after_cursor", s.after, "delivered", s.delivered, "wait", wait, "err", r.err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// resumable is a stream's end that Subscribe resumes from: a transient
// status error from hookd (never one from the handler or the CursorStore,
// whatever it wraps).
type resumable struct{ err error }

func (r resumable) Error() string { return r.err.Error() }

// stream runs one Subscribe stream until it fails. established says whether
// hookd accepted the stream (sent its headers), which resets the back-off.
// A transient end is returned as resumable; the others are converted.
func (s *subscription) stream(ctx context.Context) (established bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &hookdv1.SubscribeRequest{AfterCursor: s.after, CustomerId: s.opts.CustomerID}
	if s.after == "" {
		req.FromNow = s.opts.FromNow
	}
	st, err := s.c.notes.Subscribe(ctx, req)
	if err != nil {
		return false, s.streamErr(err)
	}
	if md, err := st.Header(); err == nil {
		established = true
		// A from_now stream says where "now" was: reconnecting before the
		// first notification resumes from there, not from a later now.
		if v := md.Get(StartCursorHeader); s.after == "" && len(v) == 1 && v[0] != "" {
			s.after = v[0]
		}
	}
	for {
		n, err := st.Recv()
		if err == io.EOF {
			// hookd ends a stream without an error only when the client
			// went away; anything else in between ended it early.
			return established, resumable{status.Error(codes.Unavailable, "notification stream ended without an error")}
		}
		if err != nil {
			return established, s.streamErr(err)
		}
		if err := s.deliver(ctx, n); err != nil {
			return established, err
		}
	}
}

// streamErr marks a transient stream error resumable and converts a
// permanent one.
func (s *subscription) streamErr(err error) error {
	if transient(status.Code(err)) {
		return resumable{err}
	}
	return fmt.Errorf("subscribe: %w", convert(err))
}

// deliver hands n to the handler unless it was delivered before, then
// saves its cursor.
func (s *subscription) deliver(ctx context.Context, n *hookdv1.Notification) error {
	cur := n.GetCursor()
	if _, dup := s.recent[cur]; dup {
		s.c.log.WarnContext(ctx, "dropped a notification delivered before", "cursor", cur, "customer_id", n.GetCustomerId(), "version", n.GetVersion())
		return nil
	}
	if err := s.handler(ctx, n); err != nil {
		return fmt.Errorf("subscribe: handler for notification %s (customer %s version %d): %w", cur, n.GetCustomerId(), n.GetVersion(), err)
	}
	s.remember(cur)
	s.after = cur
	s.delivered++
	if err := s.cursors.Save(ctx, cur); err != nil {
		return fmt.Errorf("subscribe: after notification %s: %w", cur, err)
	}
	return nil
}

func (s *subscription) remember(cur string) {
	if len(s.recentAt) < recentCursors {
		s.recentAt = append(s.recentAt, cur)
	} else {
		delete(s.recent, s.recentAt[s.next])
		s.recentAt[s.next] = cur
	}
	s.next = (s.next + 1) % recentCursors
	s.recent[cur] = struct{}{}
}
