package delivery

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hookd/hookd/store"
)

// verify checks a signature with the Standard Webhooks reference library
// and secret.
func verify(t *testing.T, secret, id string, ts time.Time, body []byte, sig string) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	return wh.Verify(body, h)
}

func TestSignVerifiesWithReferenceLibrary(t *testing.T) {
	t.Parallel()
	now := time.Now()
	current, rotated, expired := NewSecret(), NewSecret(), NewSecret()
	secrets := []store.Secret{
		{Value: current},
		{Value: rotated, ExpiresAt: now.Add(time.Hour)}, // rotated out, still signs
		{Value: expired, ExpiresAt: now.Add(-time.Second)},
	}
	body := []byte(`{"customerId":"cus_1","version":"3"}`)
	sig := Sign(secrets, now, "msg_1", now, body)
	if n := len(strings.Fields(sig)); n != 2 {
		t.Fatalf("Sign made %d signatures (%q), want 2 (current and rotated)", n, sig)
	}
	for _, s := range []string{current, rotated} {
		if err := verify(t, s, "msg_1", now, body, sig); err != nil {
			t.Errorf("a signing secret does not verify: %v", err)
		}
	}
	if err := verify(t, expired, "msg_1", now, body, sig); err == nil {
		t.Error("the expired secret verifies; it must not sign")
	}
	// Every part of the signed content counts.
	if err := verify(t, current, "msg_2", now, body, sig); err == nil {
		t.Error("verifies with another message ID")
	}
	if err := verify(t, current, "msg_1", now.Add(-2*time.Second), body, sig); err == nil {
		t.Error("verifies with another timestamp")
	}
	if err := verify(t, current, "msg_1", now, append(body, ' '), sig); err == nil {
		t.Error("verifies with another body")
	}
	// The reference library's own signature is the same.
	wh, err := standardwebhooks.NewWebhook(current)
	if err != nil {
		t.Fatal(err)
	}
	want, err := wh.Sign("msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	if got := Sign(secrets[:1], now, "msg_1", now, body); got != want {
		t.Errorf("Sign = %q, want the reference library's %q", got, want)
	}
}

func TestSignNoSecret(t *testing.T) {
	t.Parallel()
	now := time.Now()
	if got := Sign([]store.Secret{{Value: NewSecret(), ExpiresAt: now}}, now, "msg_1", now, nil); got != "" {
		t.Errorf("Sign with only an expired secret = %q, want \"\"", got)
	}
	if got := Sign([]store.Secret{{Value: "whsec_!!!"}}, now, "msg_1", now, nil); got != "" {
		t.Errorf("Sign with an undecodable secret = %q, want \"\"", got)
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, b := NewSecret(), NewSecret()
	if a == b {
		t.Fatal("two NewSecret calls returned the same secret")
	}
	enc, ok := strings.CutPrefix(a, "whsec_")
	if !ok {
		t.Fatalf("NewSecret() = %q, want the whsec_ prefix", a)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) != 32 {
		t.Fatalf("NewSecret() key = %d bytes, %v; want 32 bytes of standard base64", len(key), err)
	}
	if err := ValidateSecret(a); err != nil {
		t.Errorf("ValidateSecret(NewSecret()) = %v", err)
	}
	for _, bad := range []string{"", "abc", "whsec_", "whsec_***", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))} {
		if err := ValidateSecret(bad); err == nil {
			t.Errorf("ValidateSecret(%q) = nil, want an error", bad)
		}
	}
}
