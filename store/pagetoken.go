package store

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// A ListEvents page token is the unpadded URL-safe base64 of "seq:<n>",
// n being the backend's sequence number of the last event on the previous
// page. Callers treat it as opaque.
const pageTokenPrefix = "seq:"

// PageToken returns the page token that continues below seq.
func PageToken(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + strconv.FormatInt(seq, 10)))
}

// ParsePageToken returns the seq a page token continues below, or an error
// wrapping ErrInvalidArgument.
func ParsePageToken(tok string) (int64, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err == nil {
		if n, ok := strings.CutPrefix(string(b), pageTokenPrefix); ok {
			seq, err := strconv.ParseInt(n, 10, 64)
			// Only the canonical spelling: base64 decoding also accepts
			// non-zero padding bits and ignores \r and \n, so that several
			// tokens would otherwise name one page.
			if err == nil && seq > 0 && PageToken(seq) == tok {
				return seq, nil
			}
		}
	}
	return 0, fmt.Errorf("page token %q: %w: malformed", tok, ErrInvalidArgument)
}
