package bench

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hookd/hookd/internal/pbwire"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// eventIDCodec is the codec of the bench's notification stream, which
// needs only each notification's event ID (for its lag): it fills in
// EventId and skips the rest, the customer's state above all, which
// proto.Unmarshal would decode into maps and messages for nothing. The
// generator shares the machine with the hookd it measures; decoding whole
// notifications was a tenth of its CPU. Requests marshal as protobuf.
type eventIDCodec struct{ proto encoding.CodecV2 }

func newEventIDCodec() eventIDCodec { return eventIDCodec{proto: encoding.GetCodecV2("proto")} }

func (c eventIDCodec) Name() string { return c.proto.Name() }

func (c eventIDCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c eventIDCodec) Unmarshal(data mem.BufferSlice, v any) error {
	n, ok := v.(*hookdv1.Notification)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	id, err := notificationEventID(buf.ReadOnlyData())
	n.EventId = id
	return err
}

// notificationEventID returns the event_id of a hookd.v1.Notification in
// wire format (the last one, as proto.Unmarshal would).
func notificationEventID(b []byte) (string, error) {
	var id string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", fmt.Errorf("notification: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num == pbwire.NotificationEventID && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", fmt.Errorf("notification event_id: %w", protowire.ParseError(n))
			}
			id, b = string(v), b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", fmt.Errorf("notification field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return id, nil
}
