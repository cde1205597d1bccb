package client

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors for hookd's answers. Every method of Client returns an
// error that wraps one of these (test with errors.Is) when hookd answered
// with the matching gRPC code, and that also wraps the original status
// error, so that status.FromError and status.Code keep working. Other
// codes come back as the status error alone.
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

// convert maps a gRPC error to one that wraps the matching sentinel and
// the original error. nil stays nil; an error without a status, or with a
// code that has no sentinel, is returned unchanged.
func convert(err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch status.Code(err) {
	case codes.NotFound:
		sentinel = ErrNotFound
	case codes.Unauthenticated:
		sentinel = ErrUnauthenticated
	case codes.PermissionDenied:
		sentinel = ErrPermissionDenied
	case codes.InvalidArgument:
		sentinel = ErrInvalidArgument
	case codes.Unavailable:
		sentinel = ErrUnavailable
	default:
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
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
