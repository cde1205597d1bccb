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

// PageLength returns how many events of a ListEvents page to keep, given
// the payload sizes of the candidates in page order (newest first): at
// most pageSize, and with maxBytes > 0 only as many as keep the total of
// their payloads at or below maxBytes — but always at least one, so that a
// listing moves on past an event larger than maxBytes. Every backend cuts
// its pages with it, so that all page alike.
func PageLength(payloadSizes []int64, pageSize int, maxBytes int64) int {
	n := min(len(payloadSizes), pageSize)
	if maxBytes <= 0 {
		return n
	}
	var total int64
	for i, size := range payloadSizes[:n] {
		total += size
		if i > 0 && total > maxBytes {
			return i
		}
	}
	return n
}

// KeepMeasured keeps the items (events with the given seqs, newest first)
// whose seq is in measured (newest first too): the page a backend measured
// for PageLength. An event that committed between measuring a page and
// reading it, with a seq inside the page's range, is not on it, so that
// the page stays within its bounds; that listing misses it, as it misses
// an event committed after a later page was read.
func KeepMeasured[T any](items []T, seqs, measured []int64) []T {
	out := items[:0]
	j := 0
	for i, seq := range seqs {
		for j < len(measured) && measured[j] > seq {
			j++
		}
		if j < len(measured) && measured[j] == seq {
			out = append(out, items[i])
		}
	}
	return out
}
