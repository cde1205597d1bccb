package services

import (
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

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
	poll   time.Duration
	log    *slog.Logger
}

// Subscribe sends every notification after req.after_cursor in commit
// order, then tails new ones until the client goes away. The store returns
// only notifications whose position is final, so a client that resumes
// from the cursor of the last notification it received misses nothing and
// receives nothing twice.
func (s *NotificationServer) Subscribe(req *hookdv1.SubscribeRequest, stream hookdv1.NotificationService_SubscribeServer) error {
	ctx := stream.Context()
	cursor := req.GetAfterCursor()
	if err := s.store.ValidateCursor(cursor); err != nil {
		return toStatus(fmt.Errorf("%w: after_cursor: %v", ErrInvalid, err))
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
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// Take the wake-up channel before reading, so a commit that lands
		// after the read still wakes this stream.
		wake := s.wakeup.C()
		notes, err := s.store.ReadNotifications(ctx, cursor, req.GetCustomerId(), readBatch)
		if err != nil {
			if ctx.Err() != nil {
				return toStatus(ctx.Err())
			}
			return toStatus(fmt.Errorf("read notifications: %w", err))
		}
		for _, n := range notes {
			msg, err := notificationProto(n)
			if err != nil {
				return toStatus(err)
			}
			if err := stream.Send(msg); err != nil {
				return err
			}
			cursor = n.Cursor
		}
		if len(notes) == readBatch {
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

func notificationProto(n store.Notification) (*hookdv1.Notification, error) {
	c := &hookdv1.Customer{}
	if err := proto.Unmarshal(n.Customer, c); err != nil {
		return nil, fmt.Errorf("decode notification %s customer: %w", n.Cursor, err)
	}
	return &hookdv1.Notification{
		Cursor:     n.Cursor,
		CustomerId: n.CustomerID,
		Version:    n.Version,
		Kind:       n.Kind,
		EventId:    n.EventID,
		OccurredAt: timestamppb.New(n.OccurredAt),
		Customer:   c,
		Account:    c.GetAccount(), // the customer's, at the notification's version
	}, nil
}
