package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hookd/hookd/client"
	"github.com/hookd/hookd/internal/envelope"
	"github.com/hookd/hookd/internal/grainpb"
	"github.com/hookd/hookd/store"
)

// This file is hookd's one mapping from domain errors to gRPC status
// errors. Every error a hookd gRPC method answers, from a handler, the
// auth interceptor, the stream limit or the StreamDrain, is built by
// toStatus: it carries a google.rpc.ErrorInfo in client.ErrorDomain with
// one of the client.Reason constants, and a google.rpc.RetryInfo when
// retrying later helps. The client package reads them back (client.Error);
// the gateway maps the codes to HTTP in one table (gateway/handler.go).

// Errors the services raise themselves; toStatus maps each to its code.
var (
	// errUnauthenticated: the call's bearer token is missing, malformed or
	// unknown (auth.check).
	errUnauthenticated = errors.New("unauthenticated")
	// errPermissionDenied: the token lacks the method's scope, or the
	// method is not in the scope table (auth.check).
	errPermissionDenied = errors.New("permission denied")
	// errStreamLimit: the process serves its limit of Subscribe streams.
	errStreamLimit = errors.New("stream limit reached")
	// errShuttingDown: the StreamDrain ended the stream.
	errShuttingDown = errors.New("hookd is shutting down")
	// errFailedPrecondition: the request is valid but the stored state
	// does not allow it (ReplayEvent of an event that cannot be replayed).
	errFailedPrecondition = errors.New("failed precondition")
)

// retryDelay is the RetryInfo delay of UNAVAILABLE and RESOURCE_EXHAUSTED
// answers: the Retry-After the gateway has always sent.
const retryDelay = time.Second

// internalMessage is all a caller learns of an INTERNAL error.
const internalMessage = "internal error"

// kindError is an error of one of the kinds above with its own message
// (what the caller reads), for toStatus.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// errorf is an error of kind (a sentinel toStatus maps) whose message is
// exactly the formatted text.
func errorf(kind error, format string, args ...any) error {
	return &kindError{kind, fmt.Sprintf(format, args...)}
}

// reasonError gives err a more specific reason than its kind's default;
// its message is err's.
type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// withReason marks err with a client.Reason constant for toStatus.
func withReason(reason string, err error) error { return &reasonError{reason, err} }

// internalError is the status error of an INTERNAL answer. The caller
// sees only internalMessage (GRPCStatus); the cause stays for the server's
// log (logInternal), which Error includes.
type internalError struct {
	st    *status.Status
	cause error
}

func (e *internalError) Error() string              { return internalMessage + ": " + e.cause.Error() }
func (e *internalError) GRPCStatus() *status.Status { return e.st }
func (e *internalError) Unwrap() error              { return e.cause }

// toStatus maps a domain error to a gRPC status error with details; nil
// stays nil. The domain errors in err's chain decide first (so an actor
// call's status error wrapped with store.ErrUnavailable is UNAVAILABLE),
// then fromStatus. An error toStatus made is returned unchanged, so it
// may be applied again on the way out (the interceptors do). Anything
// unrecognised becomes INTERNAL, whose message never carries err.Error().
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if ie := (*internalError)(nil); errors.As(err, &ie) {
		return err
	}
	var (
		code   codes.Code
		reason string
		meta   map[string]string
	)
	var fe *envelope.FieldError
	switch {
	case errors.Is(err, store.ErrNotFound):
		code, reason = codes.NotFound, client.ReasonNotFound
	case errors.Is(err, store.ErrDuplicate):
		code, reason = codes.AlreadyExists, client.ReasonAlreadyExists
	case errors.As(err, &fe):
		code, reason = codes.InvalidArgument, client.ReasonInvalidField
		meta = map[string]string{client.MetadataField: fe.Field}
	case errors.Is(err, ErrInvalid), errors.Is(err, store.ErrInvalidArgument):
		code, reason = codes.InvalidArgument, client.ReasonInvalidArgument
	case errors.Is(err, errFailedPrecondition):
		code, reason = codes.FailedPrecondition, client.ReasonNotReplayable
	case errors.Is(err, errUnauthenticated):
		code, reason = codes.Unauthenticated, client.ReasonUnauthenticated
	case errors.Is(err, errPermissionDenied):
		code, reason = codes.PermissionDenied, client.ReasonPermissionDenied
	case errors.Is(err, errStreamLimit):
		code, reason = codes.ResourceExhausted, client.ReasonStreamLimit
	case errors.Is(err, errShuttingDown):
		code, reason = codes.Unavailable, client.ReasonShuttingDown
	case errors.Is(err, store.ErrUnavailable):
		code, reason = codes.Unavailable, client.ReasonStoreUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		code, reason = codes.Unavailable, client.ReasonDeadlineExceeded
	case errors.Is(err, context.Canceled):
		code, reason = codes.Canceled, client.ReasonCanceled
	default:
		return fromStatus(err)
	}
	if re := (*reasonError)(nil); errors.As(err, &re) {
		reason = re.reason
	}
	return build(code, reason, meta, err.Error())
}

// fromStatus maps an error that matched no domain error: one that
// already has hookd's ErrorInfo is returned unchanged; a status error
// without it (gRPC's own, e.g. from stream.Send) keeps its code and
// message and gets the code's reason, unless it is INTERNAL or UNKNOWN;
// everything else becomes INTERNAL.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	switch {
	case !ok || st.Code() == codes.Internal || st.Code() == codes.Unknown:
		return newInternal(err)
	case hasReason(st):
		return err
	}
	return build(st.Code(), codeReason(st.Code()), nil, st.Message())
}

// applyError converts a grain's answer that carries an error (its
// wire-format Error and Permanent fields) to a domain error for toStatus:
// a permanent one is INVALID_ARGUMENT (EVENT_REJECTED), any other
// UNAVAILABLE. It returns nil when out carries no error.
func applyError(out *grainpb.ApplyResponse) error {
	switch {
	case out.GetError() == "":
		return nil
	case out.GetPermanent():
		return withReason(client.ReasonEventRejected, fmt.Errorf("%w: %s", ErrInvalid, out.GetError()))
	default:
		return fmt.Errorf("%w: %s", store.ErrUnavailable, out.GetError())
	}
}

// codeReason is the reason of a status error that came without one.
func codeReason(c codes.Code) string {
	switch c {
	case codes.NotFound:
		return client.ReasonNotFound
	case codes.InvalidArgument:
		return client.ReasonInvalidArgument
	case codes.Unauthenticated:
		return client.ReasonUnauthenticated
	case codes.PermissionDenied:
		return client.ReasonPermissionDenied
	case codes.Unavailable:
		return client.ReasonUnavailable
	case codes.DeadlineExceeded:
		return client.ReasonDeadlineExceeded
	case codes.Canceled:
		return client.ReasonCanceled
	case codes.Unimplemented:
		return client.ReasonUnimplemented
	case codes.AlreadyExists:
		return client.ReasonAlreadyExists
	}
	return client.ReasonInternal
}

func newInternal(cause error) error {
	return &internalError{st: withDetails(codes.Internal, client.ReasonInternal, nil, internalMessage), cause: cause}
}

func build(code codes.Code, reason string, meta map[string]string, msg string) error {
	return withDetails(code, reason, meta, msg).Err()
}

// withDetails is a status with hookd's ErrorInfo, and RetryInfo for the
// codes where retrying later helps.
func withDetails(code codes.Code, reason string, meta map[string]string, msg string) *status.Status {
	st := status.New(code, msg)
	info := &errdetails.ErrorInfo{Reason: reason, Domain: client.ErrorDomain, Metadata: meta}
	var err error
	if code == codes.Unavailable || code == codes.ResourceExhausted {
		st, err = st.WithDetails(info, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay)})
	} else {
		st, err = st.WithDetails(info)
	}
	if err != nil { // only if the details cannot be marshalled
		return status.New(code, msg)
	}
	return st
}

// hasReason reports whether st carries hookd's ErrorInfo.
func hasReason(st *status.Status) bool {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == client.ErrorDomain {
			return true
		}
	}
	return false
}

// finish is the last step of every gRPC call's error: mapped by toStatus,
// and, when INTERNAL, its cause logged with the method, since the caller
// is told only "internal error".
func finish(ctx context.Context, log *slog.Logger, method string, err error) error {
	err = toStatus(err)
	var ie *internalError
	if errors.As(err, &ie) && log != nil {
		log.ErrorContext(ctx, "grpc call failed", "method", method, "err", ie.cause)
	}
	return err
}
