package sqlite

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

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

// A page token for ListEvents is the unpadded URL-safe base64 of
// "seq:<n>", n being the seq of the last event on the previous page (the
// PostgreSQL backend's format).
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
	return 0, fmt.Errorf("page token %q: %w: malformed", tok, store.ErrInvalidArgument)
}
