package postgres

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// A notification cursor is "<txid>-<seq>": the outbox row's transaction ID
// and sequence, both decimal, in canonical form (no sign, no leading
// zeros). Callers treat it as opaque; "" means the start.

// position is a place in the outbox order.
type position struct {
	txid uint64
	seq  int64
}

func (p position) cursor() string {
	return strconv.FormatUint(p.txid, 10) + "-" + strconv.FormatInt(p.seq, 10)
}

// parseCursor parses a notification cursor; "" is the zero position,
// before every row.
func parseCursor(c string) (position, error) {
	if c == "" {
		return position{}, nil
	}
	t, q, ok := strings.Cut(c, "-")
	txid, err1 := strconv.ParseUint(t, 10, 64)
	seq, err2 := strconv.ParseInt(q, 10, 64)
	p := position{txid: txid, seq: seq}
	if !ok || err1 != nil || err2 != nil || seq < 0 || p.cursor() != c {
		return position{}, fmt.Errorf("notification cursor %q: %w: malformed", c, ErrInvalidArgument)
	}
	return p, nil
}

// ValidateCursor reports whether c is "" or a cursor that
// [Store.ReadNotifications] returned. Otherwise it returns an error
// wrapping [ErrInvalidArgument].
func (s *Store) ValidateCursor(c string) error {
	_, err := parseCursor(c)
	return err
}

// A page token for ListEvents is the unpadded URL-safe base64 of
// "seq:<n>", n being the seq of the last event on the previous page.
const pageTokenPrefix = "seq:"

func pageToken(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + strconv.FormatInt(seq, 10)))
}

// parsePageToken returns the seq a page token continues below.
func parsePageToken(tok string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		if n, ok := strings.CutPrefix(string(b), pageTokenPrefix); ok {
			seq, err := strconv.ParseInt(n, 10, 64)
			if err == nil && seq > 0 {
				return seq, nil
			}
		}
	}
	return 0, fmt.Errorf("page token %q: %w: malformed", tok, ErrInvalidArgument)
}
