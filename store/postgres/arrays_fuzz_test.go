package postgres

import (
	"bytes"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// FuzzArrayCodecs encodes arrays with the store's text[] and bytea[]
// encoders and decodes them with pgx's binary decoder: what comes back
// must be what went in (NULL and empty elements told apart), after any
// bytes already in the buffer.
func FuzzArrayCodecs(f *testing.F) {
	f.Add([]byte("a\x00bc\x00\x00d"), []byte{0, 1, 2}, uint8(3))
	f.Add([]byte{}, []byte{}, uint8(0))
	f.Add([]byte("日本\x00💳\x00\"\\{}"), []byte{1, 1, 0}, uint8(200))
	m := pgtype.NewMap()
	registerArrayCodecs(m)
	plain := pgtype.NewMap()
	f.Fuzz(func(t *testing.T, data, kinds []byte, prefix uint8) {
		// data split at NUL bytes gives the elements; kinds says which
		// bytea elements are NULL (0) or empty (1).
		parts := bytes.Split(data, []byte{0})
		strs := make([]string, len(parts))
		blobs := make([][]byte, len(parts))
		for i, p := range parts {
			strs[i] = string(p)
			blobs[i] = p
			if i < len(kinds) {
				switch kinds[i] % 4 {
				case 0:
					blobs[i] = nil
				case 1:
					blobs[i] = []byte{}
				}
			}
		}
		head := bytes.Repeat([]byte{0xAB}, int(prefix))
		for _, c := range []struct {
			oid  uint32
			in   any
			back func(pgtype.ScanPlan, []byte) (any, error)
		}{
			{pgtype.TextArrayOID, strs, func(p pgtype.ScanPlan, b []byte) (any, error) {
				var out []string
				err := p.Scan(b, &out)
				return out, err
			}},
			{pgtype.ByteaArrayOID, blobs, func(p pgtype.ScanPlan, b []byte) (any, error) {
				var out [][]byte
				err := p.Scan(b, &out)
				return out, err
			}},
		} {
			buf, err := m.Encode(c.oid, pgtype.BinaryFormatCode, c.in, slices.Clone(head))
			if err != nil {
				t.Fatalf("encode %T: %v", c.in, err)
			}
			if !bytes.Equal(buf[:len(head)], head) {
				t.Fatalf("encode %T overwrote the bytes before it", c.in)
			}
			var probe any
			switch c.in.(type) {
			case []string:
				probe = new([]string)
			default:
				probe = new([][]byte)
			}
			got, err := c.back(plain.PlanScan(c.oid, pgtype.BinaryFormatCode, probe), buf[len(head):])
			if err != nil {
				t.Fatalf("decode %T: %v", c.in, err)
			}
			switch want := c.in.(type) {
			case []string:
				if !slices.Equal(got.([]string), want) {
					t.Fatalf("text[]: got %q, want %q", got, want)
				}
			case [][]byte:
				g := got.([][]byte)
				if len(g) != len(want) {
					t.Fatalf("bytea[]: got %d elements, want %d", len(g), len(want))
				}
				for i := range want {
					if (g[i] == nil) != (want[i] == nil) || !bytes.Equal(g[i], want[i]) {
						t.Fatalf("bytea[] element %d: got %q (nil %v), want %q (nil %v)", i, g[i], g[i] == nil, want[i], want[i] == nil)
					}
				}
			}
		}
	})
}
