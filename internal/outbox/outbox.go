// Package outbox converts stored notifications (outbox rows) to the
// public hookd.v1.Notification, one way for every reader: Subscribe
// streams and push deliveries send the same message.
package outbox

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// Proto returns n as hookd.v1.Notification. Its error means the stored
// customer state does not decode.
func Proto(n store.Notification) (*hookdv1.Notification, error) {
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
