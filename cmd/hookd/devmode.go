package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// secretFile is where hookd keeps the webhook secret it generated when none
// was configured, so that restarts (and `hookd send`) use the same one.
const secretFile = "stripe-webhook-secret"

func readSecretFile(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, secretFile))
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", filepath.Join(dataDir, secretFile))
	}
	return s, nil
}

// loadOrCreateSecret returns the secret kept in dataDir, generating and
// keeping one (mode 0600) when there is none.
func loadOrCreateSecret(dataDir string) (secret string, created bool, err error) {
	s, err := readSecretFile(dataDir)
	if err == nil {
		return s, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("create data dir: %w", err)
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, err
	}
	s = "whsec_" + hex.EncodeToString(b[:])
	f, err := os.OpenFile(filepath.Join(dataDir, secretFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("keep generated secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", false, err
	}
	return s, true, f.Close()
}

// banner tells a person what is running and how to try it.
type banner struct {
	httpAddr, grpcAddr string
	adminAddr          string // the admin listener; "" when disabled
	store              string // where the data is
	secretNote         string // set when the secret came from the data dir
	sendFlags          string // flags `hookd send` needs beyond the defaults
	grpcFlags          string // flags grpcurl needs beyond -plaintext (a token header)
	scheme             string // of the webhook URL: http (empty) or https
	grpcurlFlags       string // how grpcurl reaches the gRPC listener (empty: -plaintext)
}

func (b banner) print(w io.Writer) {
	fmt.Fprintf(w, "\nhookd is running\n")
	if b.scheme == "" {
		b.scheme = "http"
	}
	if b.grpcurlFlags == "" {
		b.grpcurlFlags = "-plaintext"
	}
	if b.httpAddr != "" {
		fmt.Fprintf(w, "  webhooks  POST %s://%s/v1/webhooks/stripe\n", b.scheme, b.httpAddr)
	}
	if b.grpcAddr != "" {
		fmt.Fprintf(w, "  grpc      %s (reflection on: grpcurl %s%s %s list)\n", b.grpcAddr, b.grpcurlFlags, b.grpcFlags, b.grpcAddr)
	}
	if b.adminAddr != "" {
		fmt.Fprintf(w, "  admin     http://%s/metrics and /debug/pprof/ (no authentication: keep it private)\n", b.adminAddr)
	}
	if b.store != "" {
		fmt.Fprintf(w, "  data      %s\n", b.store)
	}
	if b.secretNote != "" {
		fmt.Fprintf(w, "  secret    %s\n", b.secretNote)
	}
	if b.httpAddr != "" {
		fmt.Fprintf(w, "\nSend a first event (in another terminal):\n  go run ./cmd/hookd send%s --type customer.created --customer cus_123\n", b.sendFlags)
	}
	if b.grpcAddr != "" {
		fmt.Fprintf(w, "Watch notifications:\n  grpcurl %s%s -d '{}' %s hookd.v1.NotificationService/Subscribe\n\n", b.grpcurlFlags, b.grpcFlags, b.grpcAddr)
	}
}
