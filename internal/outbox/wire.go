package outbox

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hookd/hookd/internal/pbwire"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

var (
	customerDescriptor = (&hookdv1.Customer{}).ProtoReflect().Descriptor()
	// customerShape is what scanCustomer checks stored customers against.
	customerShape = newShape(customerDescriptor, map[protoreflect.FullName]*shape{})
)

// shape is a message descriptor's fields by number, for validMessage: a
// slice index where the descriptor's lookup is a map access per field.
type shape struct {
	fields []shapeField // by field number; kind 0 where there is none
}

type shapeField struct {
	kind protoreflect.Kind
	list bool
	msg  *shape // for a message field
}

func newShape(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*shape) *shape {
	if s, ok := seen[md.FullName()]; ok {
		return s
	}
	s := &shape{}
	seen[md.FullName()] = s
	fds := md.Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		num := int(fd.Number())
		if num >= len(s.fields) {
			s.fields = append(s.fields, make([]shapeField, num+1-len(s.fields))...)
		}
		f := shapeField{kind: fd.Kind(), list: fd.IsList()}
		if fd.Message() != nil {
			f.msg = newShape(fd.Message(), seen)
		}
		s.fields[num] = f
	}
	return s
}

func (s *shape) field(num protowire.Number) shapeField {
	if int(num) < len(s.fields) {
		return s.fields[num]
	}
	return shapeField{}
}

// AppendWire appends n in wire format: a hookd.v1.Notification that
// decodes to the message Proto(n) returns (the stored customer is copied
// as it is, so it decodes as it would there, unknown fields included).
// It fails where Proto fails, and where marshalling Proto(n) fails (a
// string that is not UTF-8), and then returns b unchanged.
func AppendWire(b []byte, n store.Notification) ([]byte, error) {
	account, err := scanCustomer(n.Customer)
	if err != nil {
		return b, fmt.Errorf("decode notification %s customer: %w", n.Cursor, err)
	}
	for _, s := range [...]string{n.Cursor, n.CustomerID, n.Kind, n.EventID} {
		if !utf8.ValidString(s) {
			return b, fmt.Errorf("encode notification %s: %w", n.Cursor, errInvalidUTF8)
		}
	}
	// timestamppb.New(n.OccurredAt), set even for the zero time.
	seconds, nanos := n.OccurredAt.Unix(), int32(n.OccurredAt.Nanosecond())
	tsLen := 0
	if seconds != 0 {
		tsLen += 1 + protowire.SizeVarint(uint64(seconds))
	}
	if nanos != 0 {
		tsLen += 1 + protowire.SizeVarint(uint64(nanos))
	}
	b = appendString(b, pbwire.NotificationCursor, n.Cursor)
	b = appendString(b, pbwire.NotificationCustomerID, n.CustomerID)
	if n.Version != 0 {
		b = protowire.AppendTag(b, pbwire.NotificationVersion, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(n.Version))
	}
	b = appendString(b, pbwire.NotificationKind, n.Kind)
	b = appendString(b, pbwire.NotificationEventID, n.EventID)
	b = protowire.AppendTag(b, pbwire.NotificationOccurredAt, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(tsLen))
	if seconds != 0 {
		b = protowire.AppendTag(b, pbwire.TimestampSeconds, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(seconds))
	}
	if nanos != 0 {
		b = protowire.AppendTag(b, pbwire.TimestampNanos, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(nanos))
	}
	b = protowire.AppendTag(b, pbwire.NotificationCustomer, protowire.BytesType)
	b = protowire.AppendBytes(b, n.Customer)
	if len(account) > 0 {
		b = protowire.AppendTag(b, pbwire.NotificationAccount, protowire.BytesType)
		b = protowire.AppendBytes(b, account)
	}
	return b, nil
}

// Message returns n as a hookd.v1.Notification to send: a message whose
// fields are all empty and whose unknown fields are n in wire format
// (AppendWire), which marshalling writes out as they are. Whoever
// receives it decodes the message Proto(n) returns; in this process its
// fields read empty, so it is only for sending. A Subscribe stream sends
// every notification: building it with Proto (proto.Unmarshal of the
// stored customer) for gRPC to marshal it again, per stream, was about
// 5% of hookd's CPU per event with one stream, and most of the objects
// the Broadcaster's window holds. Its error is Proto's.
func Message(n store.Notification) (*hookdv1.Notification, error) {
	size := len(n.Cursor) + len(n.CustomerID) + len(n.Kind) + len(n.EventID) + len(n.Customer) + 64
	b, err := AppendWire(make([]byte, 0, size), n)
	if err != nil {
		return nil, err
	}
	m := &hookdv1.Notification{}
	m.ProtoReflect().SetUnknown(b)
	return m, nil
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

var (
	errMalformed   = errors.New("proto: cannot parse invalid wire-format data")
	errInvalidUTF8 = errors.New("string field contains invalid UTF-8")
)

// scanCustomer checks the stored customer b as proto.Unmarshal into
// hookd.v1.Customer checks it, and returns its account (the last one, as
// proto.Unmarshal keeps it).
func scanCustomer(b []byte) (account []byte, err error) {
	err = validMessage(b, customerShape, func(num protowire.Number, v []byte) {
		if num == pbwire.CustomerAccount {
			account = v
		}
	})
	return account, err
}

// validMessage reports whether proto.Unmarshal accepts b as a message of
// md: every tag and length well formed, every string field (singular,
// repeated or a map's key or value) of the matching wire type UTF-8, and
// every message field (maps' entries included) valid in turn. A field
// of another wire type than its declaration's is an unknown field there,
// and only has to be well formed. top, when set, sees each top-level
// string field's value.
func validMessage(b []byte, md *shape, top func(protowire.Number, []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return errMalformed
		}
		b = b[n:]
		fd := md.field(num)
		if typ != protowire.BytesType || fd.kind == 0 {
			if typ == protowire.EndGroupType {
				return errMalformed
			}
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errMalformed
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		switch fd.kind {
		case protoreflect.StringKind:
			if !utf8.Valid(v) {
				return errInvalidUTF8
			}
			if top != nil {
				top(num, v)
			}
		case protoreflect.MessageKind:
			if err := validMessage(v, fd.msg, nil); err != nil {
				return err
			}
		case protoreflect.BytesKind, protoreflect.GroupKind:
		default:
			// A packed repeated scalar: every element must parse.
			if fd.list && !validPacked(v, fd.kind) {
				return errMalformed
			}
		}
	}
	return nil
}

// validPacked reports whether v is a well-formed packed run of kind's
// elements.
func validPacked(v []byte, kind protoreflect.Kind) bool {
	switch kind {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return len(v)%4 == 0
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return len(v)%8 == 0
	}
	for len(v) > 0 {
		_, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return false
		}
		v = v[n:]
	}
	return true
}
