package postgres_test

import (
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/store/postgres"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// TestArrayCodecsSendWhatPgxSends sends random text[], bytea[] and
// timestamptz[] parameters (empty and nil slices, empty and nil elements, multibyte
// text, large values) through the store's encoders on one connection and
// through pgx's own on another, and compares what PostgreSQL received, as
// text: the store's set-based statements send every payload and state
// this way, so a difference would corrupt them.
func TestArrayCodecsSendWhatPgxSends(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	ctx := t.Context()
	open := func(fast bool) *pgx.Conn {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		if fast {
			postgres.RegisterArrayCodecs(conn.TypeMap())
		}
		return conn
	}
	plain, fast := open(false), open(true)
	received := func(conn *pgx.Conn, sql string, arg any) (string, bool) {
		t.Helper()
		var s *string
		if err := conn.QueryRow(ctx, sql, arg).Scan(&s); err != nil {
			t.Fatalf("%s with %T (%d bytes or elements): %v", sql, arg, size(arg), err)
		}
		if s == nil {
			return "", false
		}
		return *s, true
	}
	check := func(sql string, arg any) {
		t.Helper()
		want, wantOK := received(plain, sql, arg)
		got, gotOK := received(fast, sql, arg)
		if want != got || wantOK != gotOK {
			t.Fatalf("%s: the store's encoder sent %.200q (non-NULL %v), pgx's %.200q (non-NULL %v)", sql, got, gotOK, want, wantOK)
		}
	}
	const (
		textSQL  = `SELECT $1::text[]::text || ' ' || coalesce(array_length($1::text[], 1), 0)`
		timeSQL  = `SELECT (SELECT string_agg(extract(epoch FROM t)::text, ',' ORDER BY o) FROM unnest($1::timestamptz[]) WITH ORDINALITY u(t, o)) || ' ' || coalesce(array_length($1::timestamptz[], 1), 0)`
		byteaSQL = `SELECT $1::bytea[]::text || ' ' || coalesce(array_length($1::bytea[], 1), 0) || ' ' || (SELECT count(*) FROM unnest($1::bytea[]) b WHERE b IS NULL)`
	)
	check(textSQL, []string(nil))
	check(textSQL, []string{})
	check(textSQL, []string{""})
	check(byteaSQL, [][]byte(nil))
	check(byteaSQL, [][]byte{})
	check(byteaSQL, [][]byte{nil})
	check(byteaSQL, [][]byte{{}})
	check(byteaSQL, [][]byte{nil, {}, []byte("x")})

	r := mrand.New(mrand.NewPCG(1, 2))
	pieces := []string{"", "a", "é", "日本", "\"", "\\", "{", "}", ",", " ", "NULL", "\n", "'", "💳"}
	for range 300 {
		n := r.IntN(20)
		if r.IntN(20) == 0 {
			n = 2000 // more than one buffer doubling
		}
		strs, blobs := make([]string, n), make([][]byte, n)
		for i := range n {
			var b strings.Builder
			for range r.IntN(8) {
				b.WriteString(pieces[r.IntN(len(pieces))])
			}
			if r.IntN(50) == 0 {
				b.WriteString(strings.Repeat("x", 20_000))
			}
			strs[i] = b.String()
			switch r.IntN(10) {
			case 0: // NULL
			case 1:
				blobs[i] = []byte{}
			default:
				blobs[i] = make([]byte, r.IntN(64))
				for j := range blobs[i] {
					blobs[i][j] = byte(r.Uint32())
				}
			}
		}
		check(textSQL, strs)
		check(byteaSQL, blobs)
		times := make([]time.Time, n)
		for i := range times {
			// Around now, and far from it both ways, to the nanosecond
			// (sent truncated to microseconds), in several zones.
			ns := time.Now().UnixNano() + r.Int64N(2e18) - 1e18
			if r.IntN(3) == 0 {
				ns = r.Int64N(1e12) - 5e11
			}
			times[i] = time.Unix(0, ns).In([]*time.Location{time.UTC, time.Local, time.FixedZone("x", -5*3600+1800)}[r.IntN(3)])
		}
		check(timeSQL, times)
	}
	check(timeSQL, []time.Time(nil))
	check(timeSQL, []time.Time{})
	check(timeSQL, []time.Time{{}, time.Unix(0, 0), time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC)})
}

func size(arg any) int {
	switch a := arg.(type) {
	case []string:
		return len(a)
	case [][]byte:
		return len(a)
	case []time.Time:
		return len(a)
	}
	panic(fmt.Sprintf("size of %T", arg))
}
