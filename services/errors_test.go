package services

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookd/hookd/client"
	"github.com/hookd/hookd/internal/envelope"
	"github.com/hookd/hookd/internal/grainpb"
	"github.com/hookd/hookd/store"
)

// details returns st's hookd ErrorInfo and RetryInfo, nil when absent.
func details(t *testing.T, err error) (*status.Status, *errdetails.ErrorInfo, *errdetails.RetryInfo) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("%v: not a status error", err)
	}
	var (
		info  *errdetails.ErrorInfo
		retry *errdetails.RetryInfo
	)
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			info = d
		case *errdetails.RetryInfo:
			retry = d
		}
	}
	return st, info, retry
}

func TestToStatusMapsEveryDomainError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		code   codes.Code
		reason string
		field  string
		retry  bool
	}{
		{"not found", fmt.Errorf("customer x: %w", store.ErrNotFound), codes.NotFound, client.ReasonNotFound, "", false},
		{"invalid", fmt.Errorf("%w: customer_id is required", ErrInvalid), codes.InvalidArgument, client.ReasonInvalidArgument, "", false},
		{"store invalid", fmt.Errorf("page token: %w", store.ErrInvalidArgument), codes.InvalidArgument, client.ReasonInvalidArgument, "", false},
		{"field", fmt.Errorf("%w: %w", ErrInvalid, &envelope.FieldError{Field: "event_id", Problem: "required"}), codes.InvalidArgument, client.ReasonInvalidField, "event_id", false},
		{"cursor", withReason(client.ReasonInvalidCursor, fmt.Errorf("%w: after_cursor: bad", ErrInvalid)), codes.InvalidArgument, client.ReasonInvalidCursor, "", false},
		{"precondition", errorf(errFailedPrecondition, "events from %q cannot be replayed", "x"), codes.FailedPrecondition, client.ReasonNotReplayable, "", false},
		{"unauthenticated", errorf(errUnauthenticated, "unknown bearer token"), codes.Unauthenticated, client.ReasonUnauthenticated, "", false},
		{"permission", errorf(errPermissionDenied, "no scope"), codes.PermissionDenied, client.ReasonPermissionDenied, "", false},
		{"stream limit", errorf(errStreamLimit, "limit"), codes.ResourceExhausted, client.ReasonStreamLimit, "", true},
		{"shutting down", errorf(errShuttingDown, "hookd is shutting down: resume from your last cursor"), codes.Unavailable, client.ReasonShuttingDown, "", true},
		{"store unavailable", fmt.Errorf("list: %w", store.ErrUnavailable), codes.Unavailable, client.ReasonStoreUnavailable, "", true},
		// A failed actor call, whatever status it carries, is UNAVAILABLE.
		{"actor", fmt.Errorf("apply: %w: %w", store.ErrUnavailable, status.Error(codes.Internal, "remote")), codes.Unavailable, client.ReasonStoreUnavailable, "", true},
		{"deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), codes.Unavailable, client.ReasonDeadlineExceeded, "", true},
		{"canceled", fmt.Errorf("get: %w", context.Canceled), codes.Canceled, client.ReasonCanceled, "", false},
		{"grpc's own", status.Error(codes.Unavailable, "transport is closing"), codes.Unavailable, client.ReasonUnavailable, "", true},
		{"internal", errors.New("disk on fire at /var/lib/hookd"), codes.Internal, client.ReasonInternal, "", false},
		{"bare internal status", status.Error(codes.Internal, "secret detail"), codes.Internal, client.ReasonInternal, "", false},
		{"permanent apply", applyError(&grainpb.ApplyResponse{Error: "bad state", Permanent: true}), codes.InvalidArgument, client.ReasonEventRejected, "", false},
		{"transient apply", applyError(&grainpb.ApplyResponse{Error: "commit failed"}), codes.Unavailable, client.ReasonStoreUnavailable, "", true},
	} {
		got := toStatus(tc.err)
		st, info, retry := details(t, got)
		if st.Code() != tc.code {
			t.Errorf("%s: code %v, want %v", tc.name, st.Code(), tc.code)
		}
		if info == nil || info.GetReason() != tc.reason || info.GetDomain() != client.ErrorDomain {
			t.Errorf("%s: ErrorInfo %v, want reason %s in domain %s", tc.name, info, tc.reason, client.ErrorDomain)
		}
		if f := info.GetMetadata()[client.MetadataField]; f != tc.field {
			t.Errorf("%s: field metadata %q, want %q", tc.name, f, tc.field)
		}
		if (retry != nil) != tc.retry || (retry != nil && retry.GetRetryDelay().AsDuration() != time.Second) {
			t.Errorf("%s: RetryInfo %v, want one of 1s: %v", tc.name, retry, tc.retry)
		}
		switch {
		case tc.code == codes.Internal && st.Message() != "internal error":
			t.Errorf("%s: message %q, want only \"internal error\"", tc.name, st.Message())
		case tc.code != codes.Internal && st.Message() != tc.err.Error() && tc.name != "grpc's own":
			t.Errorf("%s: message %q, want the error's %q", tc.name, st.Message(), tc.err.Error())
		}
		if again := toStatus(got); again != got {
			t.Errorf("%s: toStatus of its own answer changed it: %v", tc.name, again)
		}
		// Wrapped once more, it still is what it was.
		if st2 := status.Convert(fmt.Errorf("ctx: %w", got)); st2.Code() != tc.code {
			t.Errorf("%s: wrapped: code %v", tc.name, st2.Code())
		}
	}
	if toStatus(nil) != nil || applyError(&grainpb.ApplyResponse{}) != nil {
		t.Error("nil must stay nil")
	}
}

func TestFinishLogsInternalCauseWithMethod(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	err := finish(t.Context(), log, "/hookd.v1.CustomerService/GetCustomer", errors.New("decode customer cus_1: unexpected end of JSON input"))
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Errorf("status: %v %q, want INTERNAL \"internal error\"", st.Code(), st.Message())
	}
	if client.ReasonOf(err) != client.ReasonInternal {
		t.Errorf("reason %q, want INTERNAL", client.ReasonOf(err))
	}
	if out := buf.String(); !strings.Contains(out, "GetCustomer") || !strings.Contains(out, "unexpected end of JSON input") {
		t.Errorf("log %q: want the method and the cause", out)
	}
	buf.Reset()
	_ = finish(t.Context(), log, "/m", fmt.Errorf("x: %w", store.ErrNotFound))
	if buf.Len() != 0 {
		t.Errorf("a NOT_FOUND was logged: %s", buf.String())
	}
}

func TestAuthCheckCarriesReasons(t *testing.T) {
	t.Parallel()
	a := NewAuth(AuthConfig{Static: []Token{NewToken("t", ScopeRead)}})
	if err := a.check(t.Context(), "/not.a/Method"); client.ReasonOf(err) != client.ReasonPermissionDenied {
		t.Errorf("unknown method: %v, reason %q", err, client.ReasonOf(err))
	}
	if err := a.check(t.Context(), "/hookd.v1.CustomerService/GetCustomer"); status.Code(err) != codes.Unauthenticated || client.ReasonOf(err) != client.ReasonUnauthenticated {
		t.Errorf("no token: %v, reason %q", err, client.ReasonOf(err))
	}
}
