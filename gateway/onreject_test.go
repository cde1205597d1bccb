package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestOnRejectSeesFourHundredsWithReasonAndBodyPrefix(t *testing.T) {
	type seen struct {
		status int
		reason string
		body   string
	}
	var got []seen
	env := setup(t, func(_ *fakeIngest, cfg *Config) {
		cfg.OnReject = func(r *http.Request, status int, reason string) {
			b, _ := io.ReadAll(r.Body)
			got = append(got, seen{status, reason, string(b)})
		}
	})
	body := `{"id":"evt_1","padding":"` + strings.Repeat("x", 3000) + `"}`
	req := httptest.NewRequest(http.MethodPost, StripeWebhookPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", "t=1,v1=00")
	rec := httptest.NewRecorder()
	env.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("answer %d", rec.Code)
	}
	// A healthz is no rejection.
	env.handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, HealthzPath, nil))
	if len(got) != 1 {
		t.Fatalf("OnReject calls: %+v", got)
	}
	if got[0].status != 400 || !strings.HasPrefix(got[0].reason, "BAD_SIGNATURE") {
		t.Errorf("status %d reason %q", got[0].status, got[0].reason)
	}
	if len(got[0].body) != rejectBodyPrefix || !strings.HasPrefix(body, got[0].body) {
		t.Errorf("body prefix of %d bytes", len(got[0].body))
	}
}
