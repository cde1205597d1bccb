package delivery

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/macpool"
	"github.com/hookd/hookd/store"
)

// secretPrefix starts every Standard Webhooks secret.
const secretPrefix = "whsec_"

// Sign returns the value of the webhook-signature header for one message:
// a space-separated "v1,<base64 HMAC-SHA256>" for every secret that still
// signs at now (a zero ExpiresAt is the current secret; a rotated-out one
// signs until its ExpiresAt), over msgID + "." + the unix seconds of ts +
// "." + body, as Standard Webhooks defines it. A secret whose key does not
// decode is skipped (the store validates secrets when they are set); ""
// means no secret signs.
func Sign(secrets []store.Secret, now time.Time, msgID string, ts time.Time, body []byte) string {
	var (
		b     strings.Builder
		tsBuf [20]byte
		sum   [sha256.Size]byte
	)
	for _, s := range secrets {
		if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
			continue
		}
		key, err := secretKey(s.Value)
		if err != nil {
			continue
		}
		k := string(key)
		mac := macpool.Get(k)
		mac.Write([]byte(msgID))
		mac.Write([]byte{'.'})
		mac.Write(strconv.AppendInt(tsBuf[:0], ts.Unix(), 10))
		mac.Write([]byte{'.'})
		mac.Write(body)
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(sum[:0])))
		macpool.Put(k, mac)
	}
	return b.String()
}

// NewSecret returns a new signing secret: "whsec_" and the standard base64
// of 32 random bytes.
func NewSecret() string {
	var key [32]byte
	rand.Read(key[:]) // never returns an error (crypto/rand, Go 1.24+)
	return secretPrefix + base64.StdEncoding.EncodeToString(key[:])
}

// ValidateSecret reports whether s is a Standard Webhooks secret that Sign
// can use: "whsec_" and a standard base64 key of at least 24 bytes.
func ValidateSecret(s string) error {
	key, err := secretKey(s)
	if err != nil {
		return err
	}
	if len(key) < 24 {
		return fmt.Errorf("signing secret: key of %d bytes is too short (at least 24)", len(key))
	}
	return nil
}

// secretKey decodes the key of a "whsec_…" secret.
func secretKey(s string) ([]byte, error) {
	enc, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return nil, fmt.Errorf("signing secret does not start with %q", secretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("signing secret: key after %q is not standard base64: %w", secretPrefix, err)
	}
	return key, nil
}
