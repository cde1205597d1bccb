package client

import (
	"errors"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors for hookd's answers. Every method of Client returns an
// error that wraps one of these (test with errors.Is) when hookd answered
// with the matching gRPC code, and that also wraps the original status
// error, so that status.FromError and status.Code keep working. Every
// status error, whatever its code, also comes back as an *Error (find it
// with errors.As) that carries hookd's reason.
var (
	// ErrNotFound is returned when the customer or event asked for is not
	// stored (codes.NotFound).
	ErrNotFound = errors.New("hookd: not found")
	// ErrUnauthenticated is returned when the call carried no bearer
	// token, or one hookd does not know (codes.Unauthenticated).
	// Subscribe returns it at once: retrying cannot help.
	ErrUnauthenticated = errors.New("hookd: unauthenticated")
	// ErrPermissionDenied is returned when the token lacks the scope the
	// method needs, e.g. admin for ReplayEvent (codes.PermissionDenied).
	ErrPermissionDenied = errors.New("hookd: permission denied")
	// ErrInvalidArgument is returned when hookd rejected the request, e.g.
	// a Subscribe cursor it cannot read (codes.InvalidArgument).
	ErrInvalidArgument = errors.New("hookd: invalid argument")
	// ErrUnavailable is returned by the single calls when hookd could not
	// be reached or could not serve the call for now (codes.Unavailable);
	// retrying later may succeed. Subscribe retries it itself.
	ErrUnavailable = errors.New("hookd: unavailable")
)

// Error is a gRPC error from hookd, read back: its code, and the reason,
// metadata and retry delay of its google.rpc details. It wraps the
// original status error and, for the codes that have one, the matching
// sentinel (ErrNotFound, ...), so errors.Is and status.FromError work
// through it.
type Error struct {
	Code codes.Code
	// Reason is the ErrorInfo reason (one of the Reason constants), or ""
	// when the error carried no ErrorInfo in hookd's domain (it did not
	// come from hookd, e.g. a proxy or the connection answered).
	Reason string
	// Metadata is the ErrorInfo metadata, e.g. MetadataField for
	// ReasonInvalidField; nil when there is none.
	Metadata map[string]string
	// RetryDelay is how long hookd asked the caller to wait before
	// retrying (google.rpc.RetryInfo); zero when it did not say.
	RetryDelay time.Duration

	sentinel error // nil for codes without one
	err      error // the original status error
}

func (e *Error) Error() string {
	if e.sentinel != nil {
		return e.sentinel.Error() + ": " + e.err.Error()
	}
	return e.err.Error()
}

// Unwrap returns the sentinel, if any, and the original status error.
func (e *Error) Unwrap() []error {
	if e.sentinel != nil {
		return []error{e.sentinel, e.err}
	}
	return []error{e.err}
}

// ReasonOf returns the reason hookd gave for err (one of the Reason
// constants), or "" when err carries none: nil, not a gRPC error, or not
// from hookd. It reads errors from Client's methods and raw gRPC errors
// from a generated hookdv1 client alike.
func ReasonOf(err error) string {
	if e := ErrorOf(err); e != nil {
		return e.Reason
	}
	return ""
}

// ErrorOf returns err read as an *Error: the one in err's chain if there
// is one (errors from Client's methods), else err's gRPC status read back
// (errors from a generated hookdv1 client). It returns nil when err
// carries no gRPC status.
func ErrorOf(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	e, _ = convert(err).(*Error)
	return e
}

// convert maps a gRPC error to an *Error that wraps the matching sentinel
// (if any) and the original error. nil stays nil; an error without a
// status is returned unchanged.
func convert(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), err: err}
	switch st.Code() {
	case codes.NotFound:
		e.sentinel = ErrNotFound
	case codes.Unauthenticated:
		e.sentinel = ErrUnauthenticated
	case codes.PermissionDenied:
		e.sentinel = ErrPermissionDenied
	case codes.InvalidArgument:
		e.sentinel = ErrInvalidArgument
	case codes.Unavailable:
		e.sentinel = ErrUnavailable
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() == ErrorDomain && e.Reason == "" {
				e.Reason, e.Metadata = d.GetReason(), d.GetMetadata()
			}
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				e.RetryDelay = d.GetRetryDelay().AsDuration()
			}
		}
	}
	// The one answer hookd cannot give a reason: gRPC's transport refuses
	// a message over the server's (or this client's) size limit before
	// any hookd code runs. Named here, so that callers can branch on it
	// as on every other.
	if e.Reason == "" && st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "message larger than max") {
		e.Reason = ReasonMessageTooLarge
	}
	return e
}

// transient reports whether a Subscribe stream that ended with code should
// be resumed after a back-off:
//
//   - Unavailable: hookd is restarting, shutting down (it ends streams with
//     UNAVAILABLE on SIGTERM), or unreachable.
//   - ResourceExhausted: the process serves its limit of streams
//     (--max-streams); another try, or another member, may have room.
//   - DeadlineExceeded, Aborted: a proxy or the server gave up on this
//     attempt; nothing about the request is wrong.
//   - Canceled, when the caller's context is not done: the stream was
//     cancelled by something between the client and hookd.
//
// Every other code (Unauthenticated, PermissionDenied, InvalidArgument,
// Internal, Unimplemented, ...) is permanent: the same request would fail
// the same way.
func transient(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Aborted, codes.Canceled:
		return true
	}
	return false
}

// isClosing reports whether err says the connection was already closed.
func isClosing(err error) bool { return status.Code(err) == codes.Canceled }
