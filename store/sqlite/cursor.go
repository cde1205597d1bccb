package sqlite

import (
	"fmt"
	"strconv"

	"github.com/hookd/hookd/store"
)

// A notification cursor is the outbox row's seq in decimal, in canonical
// form (no sign, no leading zeros). Seq order is commit order because
// SQLite commits one transaction at a time. Callers treat the cursor as
// opaque; "" means the start.

// parseCursor parses a notification cursor; "" is seq 0, before every row.
func parseCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	seq, err := strconv.ParseInt(c, 10, 64)
	if err != nil || seq < 0 || strconv.FormatInt(seq, 10) != c {
		return 0, fmt.Errorf("notification cursor %q: %w: malformed", c, store.ErrInvalidArgument)
	}
	return seq, nil
}

// ValidateCursor reports whether c is "" or a cursor that
// [Store.ReadNotifications] returned. Otherwise it returns an error
// wrapping [store.ErrInvalidArgument].
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
