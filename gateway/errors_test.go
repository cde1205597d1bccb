package gateway

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hookd/hookd/client"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

func TestIngestHTTPStatusTable(t *testing.T) {
	t.Parallel()
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		code, retry := ingestHTTPStatus(c)
		want, wantRetry := http.StatusServiceUnavailable, true
		if c == codes.InvalidArgument {
			want, wantRetry = http.StatusBadRequest, false
		}
		if code != want || retry != wantRetry {
			t.Errorf("%v: got %d retry %v, want %d retry %v", c, code, retry, want, wantRetry)
		}
	}
	for d, want := range map[time.Duration]string{0: "1", time.Millisecond: "1", time.Second: "1", 1500 * time.Millisecond: "2", 30 * time.Second: "30", time.Hour: "300"} {
		if got := retryAfter(d); got != want {
			t.Errorf("retryAfter(%v) = %q, want %q", d, got, want)
		}
	}
}

// The gateway passes hookd's reason and RetryInfo on to the sender.
func TestIngestFailureCarriesReasonAndRetryInfo(t *testing.T) {
	t.Parallel()
	withDetails := func(c codes.Code, reason string, delay time.Duration) func(context.Context, *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
		return func(context.Context, *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
			ds := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: client.ErrorDomain}}
			if delay > 0 {
				ds = append(ds, &errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
			}
			st, err := status.New(c, "invalid request: event_id: required").WithDetails(ds...)
			if err != nil {
				return nil, err
			}
			return nil, st.Err()
		}
	}
	for _, tc := range []struct {
		name       string
		code       codes.Code
		reason     string
		delay      time.Duration
		wantHTTP   int
		wantRetry  string
		wantReason string
	}{
		{"invalid field", codes.InvalidArgument, client.ReasonInvalidField, 0, 400, "", client.ReasonInvalidField},
		{"shutting down", codes.Unavailable, client.ReasonShuttingDown, 5 * time.Second, 503, "5", client.ReasonShuttingDown},
		{"stream limit", codes.ResourceExhausted, client.ReasonStreamLimit, time.Second, 503, "1", client.ReasonStreamLimit},
		{"internal", codes.Internal, client.ReasonInternal, 0, 503, "1", client.ReasonInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := setup(t, func(f *fakeIngest, _ *Config) { f.respond = withDetails(tc.code, tc.reason, tc.delay) })
			rec := serve(env.handler, signedRequest([]byte(testEvent), testSecret, testNow))
			if rec.Code != tc.wantHTTP {
				t.Errorf("status %d, want %d", rec.Code, tc.wantHTTP)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.wantRetry {
				t.Errorf("Retry-After %q, want %q", got, tc.wantRetry)
			}
			if body := decodeBody(t, rec); body["reason"] != tc.wantReason || body["error"] == "" {
				t.Errorf("body %v, want reason %q and an error", body, tc.wantReason)
			}
		})
	}
}
