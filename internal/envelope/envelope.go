// Package envelope holds hookd's input limits: what a decoded event
// envelope must satisfy before anything of it is stored. Both entry points
// call Check, the HTTP gateway after it has verified and decoded a webhook
// and IngestService.Ingest on every request, so that the two accept the
// same events and so do both stores.
//
// The rules live here rather than in provider/stripe because they are not
// about Stripe's wire format: they are what hookd's storage and logs can
// take (PostgreSQL's text refuses NUL bytes and invalid UTF-8, while the
// embedded store folds different invalid byte strings into one), they hold
// for any provider, and Ingest takes envelopes from callers other than the
// gateway (grpcurl, another provider's decoder).
//
// The limits:
//
//	field                                      limit
//	source, event_id, type                     required
//	source, event_id, type, api_version,       at most MaxTextBytes (255) bytes, valid UTF-8,
//	account, object_id, object_type,           no control characters (C0, DEL, C1), no U+FFFD
//	customer_id, routing, related_object_ids[]
//	related_object_ids                         at most MaxRelatedObjectIDs (16) entries, none empty
//	created                                    from MinCreated (2009-01-01, before Stripe)
//	                                           to Limits.Latest and before MaxCreated (2100-01-01)
//	payload                                    required, at most Limits.MaxPayloadBytes
//
// A thin event without created decodes as created 0 and is accepted:
// Stripe disables an endpoint that keeps refusing its thin events, and
// hookd orders no thin event by its created (it records them ignored).
package envelope

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

const (
	// MaxTextBytes is the longest accepted ID, type, source, account,
	// routing or API version, in bytes.
	MaxTextBytes = 255
	// MaxRelatedObjectIDs is the most related object IDs an envelope may
	// name (Stripe's decoder names at most four).
	MaxRelatedObjectIDs = 16
	// DefaultMaxPayloadBytes is the payload limit when Limits.MaxPayloadBytes
	// is zero; it equals the gateway's default body limit.
	DefaultMaxPayloadBytes = 1 << 20
)

// MinCreated and MaxCreated bound an event's created time: nothing was
// created before 2009 (Stripe was founded in 2009), and nothing after 2100
// (a timestamp that far ahead is an attack or a bug, and would freeze its
// customer: every real update after it would be superseded).
var (
	MinCreated = time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxCreated = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// ErrInvalid is wrapped by every error Check returns: the envelope breaks
// an input limit, and no retry can fix it.
var ErrInvalid = errors.New("invalid envelope")

// FieldError is the error Check returns: the field that breaks a limit
// (by its name in the Envelope message, e.g. "event_id" or
// "related_object_ids[2]") and how. Its message never quotes the field's
// value, so that it is short and safe to log and to answer with.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Limits are the bounds that depend on the entry point.
type Limits struct {
	// MaxPayloadBytes is the largest accepted payload; zero means
	// DefaultMaxPayloadBytes. Use the same value as the HTTP body limit
	// (--max-body-bytes).
	MaxPayloadBytes int64
	// Latest is the latest accepted created time: for a webhook, its
	// signature's timestamp plus the tolerance; for Ingest, now plus the
	// tolerance. The zero value leaves only MaxCreated.
	Latest time.Time
}

// Check reports the first limit env breaks, as a *FieldError, or nil. A
// nil env is invalid. Check does not modify env and is cheap: it reads
// each field once and allocates only on failure.
func Check(env *hookdv1.Envelope, l Limits) error {
	if env == nil {
		return &FieldError{"envelope", "required"}
	}
	for _, f := range [...]struct {
		name, value string
		required    bool
	}{
		{"source", env.GetSource(), true},
		{"event_id", env.GetEventId(), true},
		{"type", env.GetType(), true},
		{"customer_id", env.GetCustomerId(), false},
		{"object_id", env.GetObjectId(), false},
		{"object_type", env.GetObjectType(), false},
		{"account", env.GetAccount(), false},
		{"api_version", env.GetApiVersion(), false},
		{"routing", env.GetRouting(), false},
	} {
		if f.required && f.value == "" {
			return &FieldError{f.name, "required"}
		}
		if problem := checkText(f.value); problem != "" {
			return &FieldError{f.name, problem}
		}
	}
	ids := env.GetRelatedObjectIds()
	if len(ids) > MaxRelatedObjectIDs {
		return &FieldError{"related_object_ids", "more than " + strconv.Itoa(MaxRelatedObjectIDs) + " entries"}
	}
	for i, id := range ids {
		problem := checkText(id)
		if id == "" {
			problem = "empty"
		}
		if problem != "" {
			return &FieldError{"related_object_ids[" + strconv.Itoa(i) + "]", problem}
		}
	}
	if env.GetThin() && env.GetCreated() == 0 {
		// see the package comment
	} else if problem := checkCreated(env.GetCreated(), l.Latest); problem != "" {
		return &FieldError{"created", problem}
	}
	maxPayload := l.MaxPayloadBytes
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayloadBytes
	}
	switch n := len(env.GetPayload()); {
	case n == 0:
		return &FieldError{"payload", "required"}
	case int64(n) > maxPayload:
		return &FieldError{"payload", "larger than " + strconv.FormatInt(maxPayload, 10) + " bytes"}
	}
	return nil
}

// checkText says what is wrong with one text field, or "".
func checkText(s string) string {
	if len(s) > MaxTextBytes {
		return "longer than " + strconv.Itoa(MaxTextBytes) + " bytes"
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError {
			// Also the character itself: JSON decoding turns invalid bytes
			// and lone surrogates into U+FFFD, so that distinct IDs
			// (cus_\xff\xfe, cus_\xc0\xc1) would become one.
			return fmt.Sprintf("invalid UTF-8 (or U+FFFD, which stands for it) at byte %d", i)
		}
		if unicode.IsControl(r) {
			return fmt.Sprintf("control character U+%04X at byte %d", r, i)
		}
		i += size
	}
	return ""
}

// checkCreated says what is wrong with an event's created, or "".
func checkCreated(sec int64, latest time.Time) string {
	switch {
	case sec < MinCreated.Unix():
		return "before " + MinCreated.Format(time.DateOnly) + " (missing, or not Unix seconds)"
	case sec >= MaxCreated.Unix():
		return "after " + MaxCreated.Format(time.DateOnly)
	case !latest.IsZero() && sec > latest.Unix():
		return "in the future (" + strconv.FormatInt(sec-latest.Unix(), 10) + " s past the latest allowed: the signature timestamp, or now, plus the tolerance)"
	}
	return ""
}
