package console

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hookd/hookd/store"
)

// timeInputLayout is what an <input type="datetime-local"> sends; the
// console reads and shows it as UTC.
const timeInputLayout = "2006-01-02T15:04"

// eventQuery is the events filter of the events page and of "Replay all
// matching", as it travels in a query string or a form.
type eventQuery struct {
	Status, Customer, Type string
	// From and Until are as typed (datetime-local, UTC, or RFC 3339).
	From, Until string
}

func readEventQuery(get func(string) string) eventQuery {
	return eventQuery{
		Status:   strings.TrimSpace(get("status")),
		Customer: strings.TrimSpace(get("customer")),
		Type:     strings.TrimSpace(get("type")),
		From:     strings.TrimSpace(get("from")),
		Until:    strings.TrimSpace(get("until")),
	}
}

// any reports whether any filter is set.
func (q eventQuery) any() bool {
	return q.Status != "" || q.Customer != "" || q.Type != "" || q.From != "" || q.Until != ""
}

// values is q as a query string's values, without the empty ones.
func (q eventQuery) values() url.Values {
	v := url.Values{}
	for _, kv := range [][2]string{{"status", q.Status}, {"customer", q.Customer}, {"type", q.Type}, {"from", q.From}, {"until", q.Until}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v
}

// errBadFilter marks a filter the console cannot use; its message is for
// the operator.
var errBadFilter = errors.New("bad filter")

// filter is q as a store filter (PageSize and the rest left to the caller).
func (q eventQuery) filter() (store.ListEventsFilter, error) {
	f := store.ListEventsFilter{CustomerID: q.Customer, Status: store.Status(q.Status), Type: q.Type}
	if q.Status != "" && !validStatus(f.Status) {
		return f, fmt.Errorf("%w: unknown status %s", errBadFilter, q.Status)
	}
	var err error
	if f.ReceivedFrom, err = parseFilterTime("from", q.From); err != nil {
		return f, err
	}
	if f.ReceivedBefore, err = parseFilterTime("until", q.Until); err != nil {
		return f, err
	}
	if !f.ReceivedFrom.IsZero() && !f.ReceivedBefore.IsZero() && !f.ReceivedFrom.Before(f.ReceivedBefore) {
		return f, fmt.Errorf("%w: received from %s is not before until %s", errBadFilter, q.From, q.Until)
	}
	return f, nil
}

func parseFilterTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{timeInputLayout, timeInputLayout + ":05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %s %q is not a time: want 2026-12-01T10:00 (UTC) or RFC 3339", errBadFilter, name, s)
}
