package stripe

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/macpool"
)

// SignatureHeaderName is the HTTP header that carries Stripe's webhook
// signature.
const SignatureHeaderName = "Stripe-Signature"

// DefaultTolerance is how far a signature's timestamp may lie from the
// receiver's clock, in either direction. It matches Stripe's own libraries.
const DefaultTolerance = 300 * time.Second

// Errors returned by ParseSignatureHeader and Verify. Each is wrapped
// with detail; test for them with errors.Is. None of their messages contain
// a secret or a signature, so they are safe to show to the sender.
var (
	// ErrNoSignature is returned by ParseSignatureHeader and Verify
	// when the Stripe-Signature header is absent or empty.
	ErrNoSignature = errors.New("missing " + SignatureHeaderName + " header")

	// ErrInvalidHeader is returned by ParseSignatureHeader and Verify
	// when the header is present but cannot be parsed: an element without
	// "=", no timestamp, a timestamp that is not a decimal Unix time, or
	// more than one timestamp.
	ErrInvalidHeader = errors.New("invalid " + SignatureHeaderName + " header")

	// ErrNoV1Signature is returned by ParseSignatureHeader and Verify
	// when the header parses but carries no usable v1 signature (for
	// example only v0 signatures, or v1 values that are not 32 hex-encoded
	// bytes).
	ErrNoV1Signature = errors.New("no v1 signature in " + SignatureHeaderName + " header")

	// ErrBadSignature is returned by Verify when no configured secret
	// produces any of the header's v1 signatures for this payload and
	// timestamp (wrong secret, tampered payload, or no secret configured).
	ErrBadSignature = errors.New("signature does not match payload")

	// ErrTimestampOutOfTolerance is returned (wrapped in ErrTimestampTooOld
	// or ErrTimestampInFuture) by Verify when a correctly signed
	// header's timestamp lies further than the tolerance from now.
	ErrTimestampOutOfTolerance = errors.New("signature timestamp outside tolerance")

	// ErrTimestampTooOld is returned by Verify when the timestamp is
	// older than the tolerance: most likely a replay. It wraps
	// ErrTimestampOutOfTolerance.
	ErrTimestampTooOld = fmt.Errorf("%w: too old", ErrTimestampOutOfTolerance)

	// ErrTimestampInFuture is returned by Verify when the timestamp
	// is further in the future than the tolerance (stripe-go v76 accepts
	// these; hookd does not). It wraps ErrTimestampOutOfTolerance.
	ErrTimestampInFuture = fmt.Errorf("%w: in the future", ErrTimestampOutOfTolerance)
)

// SignatureHeader is a parsed Stripe-Signature header.
type SignatureHeader struct {
	// Timestamp is the header's t= value, at one-second resolution.
	Timestamp time.Time
	// V1 holds every v1 signature in header order, hex-decoded; each is
	// sha256.Size (32) bytes. Never empty in a header returned without
	// error. Several appear while Stripe rolls an endpoint's secret.
	V1 [][]byte
}

// ParseSignatureHeader parses a Stripe-Signature header value of the form
//
//	t=1492774577,v1=5257a869...,v1=...,v0=...
//
// It returns the timestamp and every v1 signature. Schemes other than v1
// (v0, which Stripe sends only in test mode, and any unknown scheme) are
// ignored, as are v1 values that are not 32 hex-encoded bytes: they cannot
// match any HMAC-SHA256 and stripe-go ignores them too. Whitespace around
// elements is tolerated.
//
// Errors wrap ErrNoSignature (empty header), ErrInvalidHeader (malformed
// element, missing, repeated or non-numeric timestamp) or ErrNoV1Signature.
// ParseSignatureHeader never panics, whatever its input.
func ParseSignatureHeader(h string) (SignatureHeader, error) {
	var sh SignatureHeader
	if strings.TrimSpace(h) == "" {
		return sh, ErrNoSignature
	}
	haveTimestamp := false
	i := -1
	for elem := range strings.SplitSeq(h, ",") {
		i++
		key, value, ok := strings.Cut(elem, "=")
		if !ok {
			// Say which element without echoing it: it may be a signature.
			return SignatureHeader{}, fmt.Errorf("%w: element %d has no '='", ErrInvalidHeader, i)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "t":
			if haveTimestamp {
				return SignatureHeader{}, fmt.Errorf("%w: more than one timestamp", ErrInvalidHeader)
			}
			sec, err := parseUnixSeconds(value)
			if err != nil {
				return SignatureHeader{}, fmt.Errorf("%w: timestamp: %w", ErrInvalidHeader, err)
			}
			sh.Timestamp = time.Unix(sec, 0)
			haveTimestamp = true
		case "v1":
			if hex.DecodedLen(len(value)) != sha256.Size {
				continue
			}
			sig, err := hex.DecodeString(value)
			if err != nil {
				continue
			}
			sh.V1 = append(sh.V1, sig)
		default:
			// v0 and schemes Stripe may add later.
		}
	}
	if !haveTimestamp {
		return SignatureHeader{}, fmt.Errorf("%w: no timestamp (t=)", ErrInvalidHeader)
	}
	if len(sh.V1) == 0 {
		return SignatureHeader{}, ErrNoV1Signature
	}
	return sh, nil
}

// maxUnixSeconds is the last second of year 9999. No real signature
// carries a larger timestamp; rejecting them keeps time.Unix well inside
// time.Time's range.
const maxUnixSeconds = 253402300799

// parseUnixSeconds parses a non-negative decimal count of seconds up to
// maxUnixSeconds. It is stricter than strconv.ParseInt: no sign, no empty
// string.
func parseUnixSeconds(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || sec > maxUnixSeconds {
		return 0, errors.New("out of range")
	}
	return sec, nil
}

// Verify checks that header is a valid Stripe signature of payload.
//
// It computes HMAC-SHA256 over "<t>.<payload>" with each non-empty secret
// and accepts when any secret produces any of the header's v1 signatures;
// comparisons use hmac.Equal, which takes constant time. Several secrets
// allow rotation: every configured secret is active. Empty secrets are
// skipped (an empty HMAC key is no secret at all).
//
// Only a correctly signed header's timestamp is trusted. It must lie
// within tolerance of now in both directions: older is a replay
// (ErrTimestampTooOld), newer is a clock or forgery problem
// (ErrTimestampInFuture). A non-positive tolerance means DefaultTolerance.
//
// The returned error wraps one of the package's sentinel errors and is safe
// to show to the sender. Verify never looks at the payload's content,
// so it accepts any Stripe API version.
func Verify(payload []byte, header string, secrets []string, tolerance time.Duration, now time.Time) error {
	_, err := VerifySigned(payload, header, secrets, tolerance, now)
	return err
}

// VerifySigned is Verify, which also returns the time the header says the
// payload was signed at once the signature checks out (a zero time with
// any error).
func VerifySigned(payload []byte, header string, secrets []string, tolerance time.Duration, now time.Time) (time.Time, error) {
	sh, err := ParseSignatureHeader(header)
	if err != nil {
		return time.Time{}, err
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if !sh.matchesAny(payload, secrets) {
		return time.Time{}, ErrBadSignature
	}
	// Compare instants, not durations: time.Time.Sub saturates at about
	// 292 years, and negating a saturated Duration overflows.
	switch {
	case sh.Timestamp.Before(now.Add(-tolerance)):
		return time.Time{}, fmt.Errorf("%w (signed %s ago, tolerance %s)",
			ErrTimestampTooOld, now.Sub(sh.Timestamp).Round(time.Second), tolerance)
	case sh.Timestamp.After(now.Add(tolerance)):
		return time.Time{}, fmt.Errorf("%w (signed %s ahead, tolerance %s)",
			ErrTimestampInFuture, sh.Timestamp.Sub(now).Round(time.Second), tolerance)
	}
	return sh.Timestamp, nil
}

// matchesAny reports whether any non-empty secret signs payload at the
// header's timestamp with any of its v1 signatures.
func (sh SignatureHeader) matchesAny(payload []byte, secrets []string) bool {
	var sum [sha256.Size]byte
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		expected := stripeMAC(sum[:0], payload, secret, sh.Timestamp)
		for _, sig := range sh.V1 {
			if hmac.Equal(expected, sig) {
				return true
			}
		}
	}
	return false
}

// stripeMAC appends HMAC-SHA256(secret, "<t>.<payload>") to dst, without
// building the concatenated string.
func stripeMAC(dst, payload []byte, secret string, t time.Time) []byte {
	var ts [20]byte // enough for any int64
	mac := macpool.Get(secret)
	defer macpool.Put(secret, mac)
	mac.Write(strconv.AppendInt(ts[:0], t.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(payload)
	return mac.Sum(dst)
}

// Sign returns a Stripe-Signature header value for payload, exactly
// as Stripe produces it: "t=<unix seconds>,v1=<lowercase hex HMAC>". It is
// used by `hookd send` and by tests; Verify accepts its output for
// the same secret within tolerance of t.
func Sign(payload []byte, secret string, t time.Time) string {
	var sum [sha256.Size]byte
	mac := stripeMAC(sum[:0], payload, secret, t)
	return "t=" + strconv.FormatInt(t.Unix(), 10) + ",v1=" + hex.EncodeToString(mac)
}
