package certs

import (
	"crypto/tls"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/certs/certstest"
)

// fakeClock is a Reloader's clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setup(t *testing.T) (*certstest.CA, certstest.Pair, *Reloader, *fakeClock) {
	t.Helper()
	ca := certstest.NewCA(t, "test")
	pair := ca.Server(t, "server")
	r, err := NewReloader(pair.CertFile, pair.KeyFile, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	r.now = clock.now
	r.checked = clock.now()
	return ca, pair, r, clock
}

func serialOf(t *testing.T, r *Reloader) *big.Int {
	t.Helper()
	c, err := r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber
}

func wantSerial(t *testing.T, r *Reloader, want *big.Int, when string) {
	t.Helper()
	if got := serialOf(t, r); got.Cmp(want) != 0 {
		t.Errorf("%s: serving serial %v, want %v", when, got, want)
	}
}

func TestReloaderPicksUpRotation(t *testing.T) {
	t.Parallel()
	ca, old, r, clock := setup(t)
	wantSerial(t, r, old.Serial, "at start")
	rotated := ca.Server(t, "server") // same files, new serial
	wantSerial(t, r, old.Serial, "rotated within the check interval")
	clock.advance(DefaultCheckInterval)
	wantSerial(t, r, rotated.Serial, "rotated, after the check interval")
}

func TestReloaderKeepsOldPairWhenNewFilesDoNotLoad(t *testing.T) {
	t.Parallel()
	ca, old, r, clock := setup(t)
	other := ca.Server(t, "other")

	cases := []struct {
		name      string
		cert, key []byte
	}{
		{"garbage certificate", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), old.KeyPEM},
		{"empty files", nil, nil},
		{"key of another certificate", old.CertPEM, other.KeyPEM},
		{"half-written certificate", old.CertPEM[:len(old.CertPEM)/2], old.KeyPEM},
	}
	for _, c := range cases {
		certstest.WriteFile(t, old.CertFile, c.cert)
		certstest.WriteFile(t, old.KeyFile, c.key)
		clock.advance(DefaultCheckInterval)
		wantSerial(t, r, old.Serial, c.name)
		clock.advance(DefaultCheckInterval)
		wantSerial(t, r, old.Serial, c.name+", checked again")
	}

	if err := os.Remove(old.CertFile); err != nil {
		t.Fatal(err)
	}
	clock.advance(DefaultCheckInterval)
	wantSerial(t, r, old.Serial, "certificate file removed")

	// A good pair after the bad ones is served.
	good := ca.Server(t, "server")
	clock.advance(DefaultCheckInterval)
	wantSerial(t, r, good.Serial, "good pair after bad ones")
}

func TestReloaderRetriesWhenKeyArrivesAfterCertificate(t *testing.T) {
	t.Parallel()
	ca, old, r, clock := setup(t)
	next := ca.Server(t, "next")
	// The certificate is replaced first; the handshake in between sees a
	// certificate that does not match the key on disk.
	certstest.WriteFile(t, old.CertFile, next.CertPEM)
	clock.advance(DefaultCheckInterval)
	wantSerial(t, r, old.Serial, "certificate replaced, key not yet")
	certstest.WriteFile(t, old.KeyFile, next.KeyPEM)
	clock.advance(DefaultCheckInterval)
	wantSerial(t, r, next.Serial, "key replaced too")
}

func TestNewReloaderFailsOnBadFiles(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t, "test")
	a, b := ca.Server(t, "a"), ca.Server(t, "b")
	if _, err := NewReloader(a.CertFile, b.KeyFile, nil); err == nil {
		t.Error("NewReloader with a key that is not the certificate's: got nil error")
	}
	if _, err := NewReloader(a.CertFile, a.KeyFile+".missing", nil); err == nil {
		t.Error("NewReloader with a missing key file: got nil error")
	}
	if _, err := LoadPool(a.KeyFile); err == nil {
		t.Error("LoadPool of a key file: got nil error")
	}
}

// TestConfigsMutualTLS checks ServerConfig and ClientConfig over loopback:
// a client with a certificate from the CA gets through, one without a
// certificate does not.
func TestConfigsMutualTLS(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t, "test")
	srvPair, cliPair := ca.Server(t, "server"), ca.Client(t, "client")
	srvR, err := NewReloader(srvPair.CertFile, srvPair.KeyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	cliR, err := NewReloader(cliPair.CertFile, cliPair.KeyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(srvR, ca.Pool()))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { ln.Close(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Handshake, then answer one byte so the client learns
			// whether the server accepted it.
			if c.(*tls.Conn).Handshake() == nil {
				c.Write([]byte{1})
			}
			c.Close()
		}
	}()
	try := func(cfg *tls.Config) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Read(make([]byte, 1))
		return err
	}
	if err := try(ClientConfig(ca.Pool(), cliR)); err != nil {
		t.Errorf("client with a certificate: %v, want success", err)
	}
	if err := try(ClientConfig(ca.Pool(), nil)); err == nil {
		t.Error("client without a certificate: got through, want refused")
	}
	if err := try(ClientConfig(nil, cliR)); err == nil {
		t.Error("client that does not trust the CA: got through, want refused")
	}
}
