package postgres

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hookd/hookd/store"
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

// rowPosition is the position of an outbox row as a query returns it:
// its txid as text (pgx has no xid8 type) and its seq.
func rowPosition(txid string, seq int64) (position, error) {
	t, err := strconv.ParseUint(txid, 10, 64)
	if err != nil || seq < 0 {
		return position{}, fmt.Errorf("outbox row at txid %q seq %d: malformed position", txid, seq)
	}
	return position{txid: t, seq: seq}, nil
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

// pageToken and parsePageToken use the page token format every backend
// shares (store.PageToken).
var (
	pageToken      = store.PageToken
	parsePageToken = store.ParsePageToken
)
