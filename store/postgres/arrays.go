package postgres

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// The set-based statements send a batch's columns as text[] and bytea[]
// parameters: every event's payload, every customer's state. pgx encodes
// a []string or [][]byte through reflection, element by element into a
// buffer it grows by doubling (and drops after each statement), which
// made its array encoding a fifth of all the bytes hookd allocated under
// load and a twentieth of its CPU. arrayCodec encodes the two shapes
// directly: the exact size first, then one pass. Everything else goes to
// pgx's own codec.
//
// The statements put their largest array (payloads, states, snapshots)
// last, so that the buffer pgx keeps for one statement's parameters is
// grown once to its final size rather than copied again by a parameter
// appended after it.

// registerArrayCodecs installs arrayCodec for text[] and bytea[] on one
// connection's type map.
func registerArrayCodecs(m *pgtype.Map) {
	for _, a := range []struct{ array, element uint32 }{
		{pgtype.TextArrayOID, pgtype.TextOID},
		{pgtype.ByteaArrayOID, pgtype.ByteaOID},
		{pgtype.TimestamptzArrayOID, pgtype.TimestamptzOID},
	} {
		t, ok := m.TypeForOID(a.array)
		if !ok {
			continue
		}
		m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID, Codec: arrayCodec{Codec: t.Codec, element: a.element}})
	}
}

// arrayCodec is pgx's codec for one array type, but for a []string,
// [][]byte or []time.Time (timestamptz[]: pgx boxes every element, an
// allocation each) in binary format.
type arrayCodec struct {
	pgtype.Codec
	element uint32
}

func (c arrayCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if format == pgtype.BinaryFormatCode {
		switch value.(type) {
		case []string:
			if c.element == pgtype.TextOID {
				return textArrayPlan{}
			}
		case [][]byte:
			if c.element == pgtype.ByteaOID {
				return byteaArrayPlan{}
			}
		case []time.Time:
			if c.element == pgtype.TimestamptzOID {
				return timestamptzArrayPlan{}
			}
		}
	}
	return c.Codec.PlanEncode(m, oid, format, value)
}

// arrayHeaderLen is the binary array header of one dimension: dimensions,
// has-null flag, element type, length, lower bound.
const arrayHeaderLen = 20

// appendArrayHeader appends PostgreSQL's binary header of a
// one-dimensional array of n elements (array_recv's input; pgx sends an
// empty slice the same way, one dimension of length 0).
func appendArrayHeader(buf []byte, element uint32, n int, hasNull bool) []byte {
	var null uint32
	if hasNull {
		null = 1
	}
	buf = binary.BigEndian.AppendUint32(buf, 1)
	buf = binary.BigEndian.AppendUint32(buf, null)
	buf = binary.BigEndian.AppendUint32(buf, element)
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	return binary.BigEndian.AppendUint32(buf, 1)
}

type textArrayPlan struct{}

func (textArrayPlan) Encode(value any, buf []byte) ([]byte, error) {
	a := value.([]string)
	if a == nil {
		return nil, nil // NULL, as pgx sends a nil slice
	}
	size := arrayHeaderLen + 4*len(a)
	for _, s := range a {
		size += len(s)
	}
	buf = slices.Grow(buf, size) // once, to the exact size when it is the largest yet
	buf = appendArrayHeader(buf, pgtype.TextOID, len(a), false)
	for _, s := range a {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
		buf = append(buf, s...)
	}
	return buf, nil
}

type byteaArrayPlan struct{}

func (byteaArrayPlan) Encode(value any, buf []byte) ([]byte, error) {
	a := value.([][]byte)
	if a == nil {
		return nil, nil
	}
	size, hasNull := arrayHeaderLen+4*len(a), false
	for _, b := range a {
		size += len(b)
		hasNull = hasNull || b == nil
	}
	buf = slices.Grow(buf, size) // once, to the exact size when it is the largest yet
	buf = appendArrayHeader(buf, pgtype.ByteaOID, len(a), hasNull)
	for _, b := range a {
		if b == nil { // NULL, as pgx sends a nil []byte
			buf = binary.BigEndian.AppendUint32(buf, 0xFFFFFFFF)
			continue
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)))
		buf = append(buf, b...)
	}
	return buf, nil
}

// microsecondsToY2K is PostgreSQL's epoch (2000-01-01 UTC) in Unix
// microseconds: binary timestamptz values count from it.
const microsecondsToY2K = 946684800 * 1000000

type timestamptzArrayPlan struct{}

func (timestamptzArrayPlan) Encode(value any, buf []byte) ([]byte, error) {
	a := value.([]time.Time)
	if a == nil {
		return nil, nil
	}
	buf = slices.Grow(buf, arrayHeaderLen+12*len(a))
	buf = appendArrayHeader(buf, pgtype.TimestamptzOID, len(a), false)
	for _, t := range a {
		// As pgx encodes a time.Time: microseconds, truncated.
		us := t.Unix()*1000000 + int64(t.Nanosecond())/1000 - microsecondsToY2K
		buf = binary.BigEndian.AppendUint32(buf, 8)
		buf = binary.BigEndian.AppendUint64(buf, uint64(us))
	}
	return buf, nil
}
