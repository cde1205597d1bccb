package stripe

import (
	"bytes"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// hex64 is a well-formed but wrong v1 signature.
var hex64 = strings.Repeat("ab", 32)

func TestParseSignatureHeader(t *testing.T) {
	t.Parallel()
	sigA, sigB := strings.Repeat("0a", 32), strings.Repeat("b1", 32)
	tests := []struct {
		name    string
		header  string
		wantT   int64
		wantV1  []string // hex
		wantErr error
	}{
		{name: "one v1", header: "t=1492774577,v1=" + sigA, wantT: 1492774577, wantV1: []string{sigA}},
		{name: "two v1 and v0", header: "t=1492774577,v1=" + sigA + ",v1=" + sigB + ",v0=" + hex64, wantT: 1492774577, wantV1: []string{sigA, sigB}},
		{name: "timestamp last", header: "v1=" + sigA + ",t=5", wantT: 5, wantV1: []string{sigA}},
		{name: "spaces", header: " t = 7 , v1=" + sigA + " ", wantT: 7, wantV1: []string{sigA}},
		{name: "unknown scheme ignored", header: "t=7,v2=zzz,x=,v1=" + sigA, wantT: 7, wantV1: []string{sigA}},
		{name: "uppercase hex", header: "t=7,v1=" + strings.ToUpper(sigB), wantT: 7, wantV1: []string{sigB}},
		{name: "bad v1 skipped", header: "t=7,v1=zz,v1=abcd,v1=" + sigA, wantT: 7, wantV1: []string{sigA}},

		{name: "empty", header: "", wantErr: ErrNoSignature},
		{name: "blank", header: "  ", wantErr: ErrNoSignature},
		{name: "garbage", header: "garbage", wantErr: ErrInvalidHeader},
		{name: "no timestamp", header: "v1=" + sigA, wantErr: ErrInvalidHeader},
		{name: "bad timestamp", header: "t=abc,v1=" + sigA, wantErr: ErrInvalidHeader},
		{name: "empty timestamp", header: "t=,v1=" + sigA, wantErr: ErrInvalidHeader},
		{name: "negative timestamp", header: "t=-1,v1=" + sigA, wantErr: ErrInvalidHeader},
		{name: "plus timestamp", header: "t=+1,v1=" + sigA, wantErr: ErrInvalidHeader},
		{name: "huge timestamp", header: "t=99999999999999999999,v1=" + sigA, wantErr: ErrInvalidHeader},
		{name: "beyond year 9999", header: "t=253402300800,v1=" + sigA, wantErr: ErrInvalidHeader},
		{name: "two timestamps", header: "t=1,t=2,v1=" + sigA, wantErr: ErrInvalidHeader},
		{name: "element without =", header: "t=1,v1" + sigA, wantErr: ErrInvalidHeader},
		{name: "trailing comma", header: "t=1,v1=" + sigA + ",", wantErr: ErrInvalidHeader},
		{name: "no v1", header: "t=1492774577", wantErr: ErrNoV1Signature},
		{name: "v0 only", header: "t=1492774577,v0=" + sigA, wantErr: ErrNoV1Signature},
		{name: "only invalid v1", header: "t=1,v1=nothex", wantErr: ErrNoV1Signature},
		{name: "short v1", header: "t=1,v1=abcd", wantErr: ErrNoV1Signature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSignatureHeader(tt.header)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error: got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: got %v, want nil", err)
			}
			if got.Timestamp.Unix() != tt.wantT {
				t.Errorf("timestamp: got %v, want %v", got.Timestamp.Unix(), tt.wantT)
			}
			var gotV1 []string
			for _, s := range got.V1 {
				gotV1 = append(gotV1, hex.EncodeToString(s))
			}
			if strings.Join(gotV1, ",") != strings.Join(tt.wantV1, ",") {
				t.Errorf("v1: got %v, want %v", gotV1, tt.wantV1)
			}
		})
	}
}

func TestParseSignatureHeaderErrorsDoNotEchoSignatures(t *testing.T) {
	t.Parallel()
	secretLooking := "t=1,v1" + hex64
	_, err := ParseSignatureHeader(secretLooking)
	if err == nil || strings.Contains(err.Error(), hex64) {
		t.Fatalf("error: got %v, want an error that does not contain the signature", err)
	}
}

func TestSignFormat(t *testing.T) {
	t.Parallel()
	got := Sign([]byte(testEvent), testSecret, testNow)
	if !regexp.MustCompile(`^t=1700000000,v1=[0-9a-f]{64}$`).MatchString(got) {
		t.Fatalf("header: got %q, want t=1700000000,v1=<64 lowercase hex>", got)
	}
	// Byte-for-byte what stripe-go's test helper produces.
	want := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload: []byte(testEvent), Secret: testSecret, Timestamp: testNow,
	}).Header
	if got != want {
		t.Errorf("header: got %q, want %q", got, want)
	}
}

// TestVerifyAgainstStripeGo cross-checks the verifier with what
// stripe-go v76 signs, and stripe-go's verifier with what Sign signs.
func TestVerifyAgainstStripeGo(t *testing.T) {
	t.Parallel()
	payloads := [][]byte{[]byte(testEvent), []byte("{}"), {}, []byte("not json at all \x00\xff"), bytes.Repeat([]byte("x"), 10000)}
	for _, payload := range payloads {
		signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
			Payload: payload, Secret: testSecret, Timestamp: testNow,
		})
		if err := Verify(payload, signed.Header, []string{testSecret}, 0, testNow); err != nil {
			t.Errorf("Verify(stripe-go header %q): got %v, want nil", signed.Header, err)
		}
		sh, err := ParseSignatureHeader(Sign(payload, testSecret, testNow))
		if err != nil {
			t.Fatalf("ParseSignatureHeader(Sign(...)): got %v, want nil", err)
		}
		if want := webhook.ComputeSignature(testNow, payload, testSecret); !bytes.Equal(sh.V1[0], want) {
			t.Errorf("signature: got %x, want %x", sh.V1[0], want)
		}
		// stripe-go's verifier uses the real clock.
		now := time.Now()
		if err := webhook.ValidatePayload(payload, Sign(payload, testSecret, now), testSecret); err != nil {
			t.Errorf("stripe-go ValidatePayload(Sign(...)): got %v, want nil", err)
		}
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	payload := []byte(testEvent)
	sign := func(secret string, offset time.Duration) string {
		return Sign(payload, secret, testNow.Add(offset))
	}
	tests := []struct {
		name      string
		payload   []byte
		header    string
		secrets   []string
		tolerance time.Duration
		wantErr   error // nil: accepted
	}{
		{name: "valid", header: sign(testSecret, 0), secrets: []string{testSecret}},
		{name: "second secret", header: sign("whsec_new", 0), secrets: []string{testSecret, "whsec_new"}},
		{name: "empty secrets skipped", header: sign(testSecret, 0), secrets: []string{"", testSecret}},
		{name: "one of several v1", header: sign(testSecret, 0) + ",v1=" + hex64, secrets: []string{testSecret}},
		{name: "matching v1 last", header: "t=1700000000,v1=" + hex64 + ",v1=" + strings.TrimPrefix(sign(testSecret, 0), "t=1700000000,v1="), secrets: []string{testSecret}},
		{name: "300s old", header: sign(testSecret, -300*time.Second), secrets: []string{testSecret}},
		{name: "300s ahead", header: sign(testSecret, 300*time.Second), secrets: []string{testSecret}},
		{name: "custom tolerance", header: sign(testSecret, -time.Hour), secrets: []string{testSecret}, tolerance: 2 * time.Hour},

		{name: "301s old", header: sign(testSecret, -301*time.Second), secrets: []string{testSecret}, wantErr: ErrTimestampTooOld},
		{name: "301s ahead", header: sign(testSecret, 301*time.Second), secrets: []string{testSecret}, wantErr: ErrTimestampInFuture},
		{name: "year 9999", header: Sign(payload, testSecret, time.Unix(maxUnixSeconds, 0)), secrets: []string{testSecret}, wantErr: ErrTimestampInFuture},
		{name: "epoch", header: Sign(payload, testSecret, time.Unix(0, 0)), secrets: []string{testSecret}, wantErr: ErrTimestampTooOld},
		{name: "custom tolerance exceeded", header: sign(testSecret, -11*time.Second), secrets: []string{testSecret}, tolerance: 10 * time.Second, wantErr: ErrTimestampTooOld},
		{name: "wrong secret", header: sign("whsec_other", 0), secrets: []string{testSecret}, wantErr: ErrBadSignature},
		{name: "wrong signature", header: "t=1700000000,v1=" + hex64, secrets: []string{testSecret}, wantErr: ErrBadSignature},
		{name: "tampered payload", payload: append([]byte(testEvent), ' '), header: sign(testSecret, 0), secrets: []string{testSecret}, wantErr: ErrBadSignature},
		{name: "timestamp changed", header: strings.Replace(sign(testSecret, 0), "t=1700000000", "t=1700000001", 1), secrets: []string{testSecret}, wantErr: ErrBadSignature},
		{name: "no secrets", header: sign(testSecret, 0), secrets: nil, wantErr: ErrBadSignature},
		{name: "empty secret never verifies", header: sign("", 0), secrets: []string{""}, wantErr: ErrBadSignature},
		{name: "bad signature beats bad timestamp", header: sign("whsec_other", -time.Hour), secrets: []string{testSecret}, wantErr: ErrBadSignature},
		{name: "v0 only", header: "t=1700000000,v0=" + strings.TrimPrefix(sign(testSecret, 0), "t=1700000000,v1="), secrets: []string{testSecret}, wantErr: ErrNoV1Signature},
		{name: "missing header", header: "", secrets: []string{testSecret}, wantErr: ErrNoSignature},
		{name: "garbled header", header: "t=now,v1=yes", secrets: []string{testSecret}, wantErr: ErrInvalidHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := payload
			if tt.payload != nil {
				p = tt.payload
			}
			err := Verify(p, tt.header, tt.secrets, tt.tolerance, testNow)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("error: got %v, want %v", err, tt.wantErr)
			}
			// VerifySigned agrees, and gives the header's time only for a
			// signature it accepts.
			at, serr := VerifySigned(p, tt.header, tt.secrets, tt.tolerance, testNow)
			if (serr == nil) != (err == nil) {
				t.Fatalf("VerifySigned: %v, Verify: %v", serr, err)
			}
			if sh, _ := ParseSignatureHeader(tt.header); err == nil && !at.Equal(sh.Timestamp) {
				t.Errorf("VerifySigned: signed at %v, header says %v", at, sh.Timestamp)
			} else if err != nil && !at.IsZero() {
				t.Errorf("VerifySigned refused (%v) but returned %v", serr, at)
			}
			if tt.wantErr != nil {
				for _, s := range tt.secrets {
					if s != "" && strings.Contains(err.Error(), s) {
						t.Errorf("error %q contains a secret", err)
					}
				}
			}
		})
	}
}

func TestTimestampErrorsWrapOutOfTolerance(t *testing.T) {
	t.Parallel()
	for _, err := range []error{ErrTimestampTooOld, ErrTimestampInFuture} {
		if !errors.Is(err, ErrTimestampOutOfTolerance) {
			t.Errorf("errors.Is(%v, ErrTimestampOutOfTolerance): got false, want true", err)
		}
	}
}
