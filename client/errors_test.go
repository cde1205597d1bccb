package client

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestConvertKeepsTheStatus(t *testing.T) {
	t.Parallel()
	sentinels := []error{ErrNotFound, ErrUnauthenticated, ErrPermissionDenied, ErrInvalidArgument, ErrUnavailable}
	for code, want := range map[codes.Code]error{
		codes.NotFound:           ErrNotFound,
		codes.Unauthenticated:    ErrUnauthenticated,
		codes.PermissionDenied:   ErrPermissionDenied,
		codes.InvalidArgument:    ErrInvalidArgument,
		codes.Unavailable:        ErrUnavailable,
		codes.Internal:           nil,
		codes.FailedPrecondition: nil,
	} {
		orig := status.Error(code, "the server's words")
		// As a method returns it: converted, then wrapped with context.
		err := fmt.Errorf("get customer cus_1: %w", convert(orig))
		for _, s := range sentinels {
			if got := errors.Is(err, s); got != (s == want) {
				t.Errorf("%v: errors.Is(err, %v) = %v, want %v", code, s, got, s == want)
			}
		}
		st, ok := status.FromError(err)
		if !ok || st.Code() != code {
			t.Errorf("%v: status.FromError = %v, %v; want code %v", code, st.Code(), ok, code)
		}
		var withStatus interface{ GRPCStatus() *status.Status }
		if !errors.As(err, &withStatus) || withStatus.GRPCStatus().Message() != "the server's words" {
			t.Errorf("%v: errors.As found no status carrying the original message", code)
		}
		if !errors.Is(err, orig) {
			t.Errorf("%v: the original status error is not in the chain", code)
		}
	}
	if convert(nil) != nil {
		t.Error("convert(nil) != nil")
	}
	plain := errors.New("not a status")
	if convert(plain) != plain {
		t.Error("an error without a status was changed")
	}
}

func TestTransientCodes(t *testing.T) {
	t.Parallel()
	for _, c := range []codes.Code{codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Aborted, codes.Canceled} {
		if !transient(c) {
			t.Errorf("%v is not transient, want a resume", c)
		}
	}
	for _, c := range []codes.Code{codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument, codes.NotFound, codes.Internal, codes.Unimplemented, codes.Unknown} {
		if transient(c) {
			t.Errorf("%v is transient, want Subscribe to return it", c)
		}
	}
}

func TestConvertReadsDetails(t *testing.T) {
	t.Parallel()
	st, err := status.New(codes.InvalidArgument, "invalid request: event_id: required").WithDetails(
		&errdetails.ErrorInfo{Reason: ReasonInvalidField, Domain: ErrorDomain, Metadata: map[string]string{MetadataField: "event_id"}})
	if err != nil {
		t.Fatal(err)
	}
	orig := st.Err()
	wrapped := fmt.Errorf("ingest: %w", convert(orig))
	var e *Error
	if !errors.As(wrapped, &e) {
		t.Fatalf("errors.As found no *Error in %v", wrapped)
	}
	if e.Code != codes.InvalidArgument || e.Reason != ReasonInvalidField || e.Metadata[MetadataField] != "event_id" || e.RetryDelay != 0 {
		t.Errorf("got %+v", e)
	}
	if !errors.Is(wrapped, ErrInvalidArgument) || !errors.Is(wrapped, orig) || status.Code(wrapped) != codes.InvalidArgument {
		t.Errorf("sentinel, original or code lost: %v", wrapped)
	}
	// A raw error from a generated client reads the same.
	if got := ReasonOf(orig); got != ReasonInvalidField {
		t.Errorf("ReasonOf(raw) = %q", got)
	}

	st, _ = status.New(codes.Unavailable, "shutting down").WithDetails(
		&errdetails.ErrorInfo{Reason: ReasonShuttingDown, Domain: ErrorDomain},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(2 * time.Second)})
	e = ErrorOf(st.Err())
	if e == nil || e.Reason != ReasonShuttingDown || e.RetryDelay != 2*time.Second || !errors.Is(e, ErrUnavailable) {
		t.Errorf("got %+v", e)
	}

	// Another domain's ErrorInfo is not hookd's reason; an error without a
	// status has none.
	st, _ = status.New(codes.Internal, "x").WithDetails(&errdetails.ErrorInfo{Reason: "OTHER", Domain: "proxy.example"})
	if got := ReasonOf(st.Err()); got != "" {
		t.Errorf("foreign reason read: %q", got)
	}
	if ReasonOf(errors.New("plain")) != "" || ReasonOf(nil) != "" || ErrorOf(nil) != nil {
		t.Error("a reason for an error without a status")
	}
}
