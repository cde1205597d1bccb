package client

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
