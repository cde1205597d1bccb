// Package certs keeps hookd's TLS certificates current: a Reloader serves
// the key pair in two PEM files and re-reads them when they change on disk
// (cert-manager and Kubernetes secret mounts replace them in place), and
// ServerConfig and ClientConfig build the tls.Configs hookd's listeners and
// clients use from it.
//
// A Reloader starts no goroutine: the handshake that needs the pair looks
// at the files, at most once per check interval, and re-reads them only
// when their modification time or size changed. A new pair that does not
// load (a half-written file, a key that does not match its certificate) is
// logged and the old pair is kept, so a bad rotation never takes a
// listener down.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultCheckInterval is how often, at most, a Reloader looks at its files.
const DefaultCheckInterval = time.Second

// Reloader serves the certificate and key in CertFile and KeyFile. Its
// methods are safe for concurrent use.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger
	interval          time.Duration
	now               func() time.Time

	mu      sync.Mutex // guards the fields below
	current *tls.Certificate
	loaded  fileStamps // the files as they were when current was read
	seen    fileStamps // the files as they were when last looked at
	checked time.Time  // when the files were last looked at
}

// fileStamps is what tells a changed file: its modification time and size,
// for the certificate and the key.
type fileStamps struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// NewReloader loads the key pair in certFile and keyFile (PEM) and returns a
// Reloader that serves it. It fails when the pair does not load: a process
// should not start without its certificate. log may be nil (slog.Default).
func NewReloader(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log, interval: DefaultCheckInterval, now: time.Now}
	st, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.current, r.loaded, r.seen, r.checked = cert, st, st, r.now()
	return r, nil
}

// Certificate returns the pair to present now, re-reading the files first
// when the check interval has passed and they changed. It never fails once
// NewReloader succeeded: when the new files do not load it returns the
// previous pair.
func (r *Reloader) Certificate() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < r.interval {
		return r.current
	}
	r.checked = now
	st, err := r.stat()
	if err != nil {
		if st != r.seen {
			r.log.Warn("tls certificate files unreadable; keeping the previous certificate", "cert_file", r.certFile, "key_file", r.keyFile, "err", err)
		}
		r.seen = st
		return r.current
	}
	if st == r.loaded || st == r.seen {
		// Unchanged since loaded, or since a load that failed (logged
		// once; the next change is tried again).
		return r.current
	}
	r.seen = st
	cert, err := r.load()
	if err != nil {
		r.log.Warn("tls certificate files changed but do not load; keeping the previous certificate", "cert_file", r.certFile, "key_file", r.keyFile, "err", err)
		return r.current
	}
	r.current, r.loaded = cert, st
	r.log.Info("tls certificate reloaded", "cert_file", r.certFile, "serial", cert.Leaf.SerialNumber.String(), "not_after", cert.Leaf.NotAfter)
	return r.current
}

// GetCertificate is a tls.Config.GetCertificate for servers.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// GetClientCertificate is a tls.Config.GetClientCertificate for clients.
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

func (r *Reloader) stat() (fileStamps, error) {
	var st fileStamps
	c, errc := os.Stat(r.certFile)
	if errc == nil {
		st.certMod, st.certSize = c.ModTime(), c.Size()
	}
	k, errk := os.Stat(r.keyFile)
	if errk == nil {
		st.keyMod, st.keySize = k.ModTime(), k.Size()
	}
	return st, errors.Join(errc, errk)
}

func (r *Reloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load key pair %s, %s: %w", r.certFile, r.keyFile, err)
	}
	if cert.Leaf == nil { // Go 1.23 sets it; older releases leave it nil
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse certificate %s: %w", r.certFile, err)
		}
	}
	return &cert, nil
}

// LoadPool reads a PEM bundle of CA certificates. It fails when the file
// holds none.
func LoadPool(file string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", file)
	}
	return pool, nil
}

// ServerConfig is a server's TLS config presenting r's certificate. When
// clientCAs is not nil, clients must present a certificate signed by one
// of them (mutual TLS).
func ServerConfig(r *Reloader, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
	if clientCAs != nil {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = clientCAs
	}
	return c
}

// ClientConfig is a client's TLS config that verifies servers against
// rootCAs (nil: the system's roots) and, when r is not nil, presents r's
// certificate to servers that ask for one.
func ClientConfig(rootCAs *x509.CertPool, r *Reloader) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: rootCAs}
	if r != nil {
		c.GetClientCertificate = r.GetClientCertificate
	}
	return c
}

// ClientConfigFromFiles is the TLS config of hookd's own command-line
// clients (hookd send, hookd bench), from their --ca, --cert and --key
// flags: it trusts the CA bundle in caFile and, when certFile is set,
// presents that pair. It is nil (plaintext, or the system's roots for
// https:// URLs) when no file is named.
func ClientConfigFromFiles(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--cert and --key go together")
	}
	var pool *x509.CertPool
	if caFile != "" {
		var err error
		if pool, err = LoadPool(caFile); err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
	}
	var r *Reloader
	if certFile != "" {
		var err error
		if r, err = NewReloader(certFile, keyFile, nil); err != nil {
			return nil, fmt.Errorf("--cert: %w", err)
		}
	}
	return ClientConfig(pool, r), nil
}
