package services

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/hookd/hookd/client"
	"github.com/hookd/hookd/internal/outbox"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// readBatch is how many notifications a stream reads per store round trip.
const readBatch = 500

// NotificationServer implements hookd.v1.NotificationService.
type NotificationServer struct {
	hookdv1.UnimplementedNotificationServiceServer
	store  store.Store
	wakeup *Wakeup
	// bc is the reader streams share; while it is not running (nil, not
	// started, stopped) each stream polls the store itself.
	bc         *Broadcaster
	poll       time.Duration
	maxStreams int64
	streams    atomic.Int64 // open Subscribe streams
	fellBehind atomic.Int64 // times a following stream fell out of the window (for tests)
	log        *slog.Logger
}

// Subscribe sends every notification after req.after_cursor in commit
// order, then tails new ones until the client goes away. The store returns
// only notifications whose position is final, so a client that resumes
// from the cursor of the last notification it received misses nothing and
// receives nothing twice. A process serves at most maxStreams streams at
// once; the next is answered RESOURCE_EXHAUSTED.
func (s *NotificationServer) Subscribe(req *hookdv1.SubscribeRequest, stream hookdv1.NotificationService_SubscribeServer) error {
	if s.streams.Add(1) > s.maxStreams {
		s.streams.Add(-1)
		return toStatus(errorf(errStreamLimit,
			"this hookd process already serves its limit of %d notification streams (--max-streams); retry later with back-off, or subscribe to another member", s.maxStreams))
	}
	defer s.streams.Add(-1)
	ctx := stream.Context()
	cursor := req.GetAfterCursor()
	if err := s.store.ValidateCursor(cursor); err != nil {
		return toStatus(withReason(client.ReasonInvalidCursor, fmt.Errorf("%w: after_cursor: %v", ErrInvalid, err)))
	}
	if cursor == "" && req.GetFromNow() {
		c, err := s.store.LatestCursor(ctx)
		if err != nil {
			return toStatus(fmt.Errorf("latest cursor: %w", err))
		}
		cursor = c
	}
	// Headers now tell the client where the stream starts is settled: a
	// from_now client that sends events after receiving them gets their
	// notifications, whenever this handler got to run.
	// hookd-start-cursor says where it starts, for a from_now client that
	// must reconnect before its first notification.
	if err := stream.SendHeader(metadata.Pairs(client.StartCursorHeader, cursor)); err != nil {
		return err
	}
	if s.bc.following() {
		return s.follow(ctx, stream, cursor, req.GetCustomerId())
	}
	return s.pollStore(ctx, stream, cursor, req.GetCustomerId())
}

// follow sends a stream's notifications from the Broadcaster's window,
// reading the store itself only while the window does not reach back to
// its cursor: when it starts, and when it fell behind.
func (s *NotificationServer) follow(ctx context.Context, stream hookdv1.NotificationService_SubscribeServer, cursor, customerID string) error {
	for {
		next, ok := s.bc.join(cursor)
		for !ok {
			h0 := s.bc.head()
			n, last, err := s.readStore(ctx, stream, cursor, customerID)
			if err != nil {
				return err
			}
			cursor = last
			if n == readBatch {
				continue
			}
			if next, ok, err = s.bc.settle(ctx, cursor, h0); err != nil {
				return streamEnd(ctx, err)
			}
		}
		for {
			entries, grew, ok := s.bc.since(next)
			if !ok {
				s.fellBehind.Add(1)
				break // the window moved past this stream: read the store
			}
			for _, e := range entries {
				next = e.ord
				if customerID != "" && e.customerID != customerID {
					continue
				}
				if e.err != nil {
					return toStatus(e.err)
				}
				if err := stream.Send(e.msg); err != nil {
					return err
				}
				if s.bc.lag != nil {
					s.bc.lag(time.Since(e.woke))
				}
				cursor = e.cursor
			}
			if len(entries) > 0 {
				continue
			}
			select {
			case <-ctx.Done():
				return nil
			case <-s.bc.done:
				return streamEnd(ctx, errBroadcasterStopped)
			case <-grew:
			}
		}
	}
}

// streamEnd is how a following stream ends on err: quietly when its client
// went away, else UNAVAILABLE, which tells the client to resume from its
// last cursor.
func streamEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return toStatus(errorf(store.ErrUnavailable, "%v; resume from your last cursor", err))
}

// readStore sends one batch read from the store after cursor, and returns
// how many it read and the cursor to continue from.
func (s *NotificationServer) readStore(ctx context.Context, stream hookdv1.NotificationService_SubscribeServer, cursor, customerID string) (int, string, error) {
	notes, err := s.store.ReadNotifications(ctx, cursor, customerID, readBatch)
	if err != nil {
		if ctx.Err() != nil {
			return 0, cursor, toStatus(ctx.Err())
		}
		return 0, cursor, toStatus(fmt.Errorf("read notifications: %w", err))
	}
	for _, n := range notes {
		msg, err := outbox.Message(n)
		if err != nil {
			return 0, cursor, toStatus(err)
		}
		if err := stream.Send(msg); err != nil {
			return 0, cursor, err
		}
		cursor = n.Cursor
	}
	return len(notes), cursor, nil
}

// pollStore serves a stream by reading the store itself, after every
// wake-up and at least every poll interval.
func (s *NotificationServer) pollStore(ctx context.Context, stream hookdv1.NotificationService_SubscribeServer, cursor, customerID string) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// Take the wake-up channel before reading, so a commit that lands
		// after the read still wakes this stream.
		wake := s.wakeup.C()
		n, last, err := s.readStore(ctx, stream, cursor, customerID)
		if err != nil {
			return err
		}
		cursor = last
		if n == readBatch {
			continue
		}
		timer.Reset(s.poll)
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
			timer.Stop() // since Go 1.23, Stop leaves no stale tick to drain
		case <-timer.C:
		}
	}
}
