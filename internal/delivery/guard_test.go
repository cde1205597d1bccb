package delivery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeResolver resolves names from a table.
type fakeResolver map[string][]string

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	res := fakeResolver{
		"public.example":  {"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"},
		"rebind.example":  {"93.184.216.34", "10.1.2.3"}, // one bad address is enough
		"metadata.google": {"169.254.169.254"},
	}
	for _, tc := range []struct {
		url     string
		refused string // the class when refused without the flag
		invalid bool   // refused whatever the flag
	}{
		{url: "https://public.example/hook"},
		{url: "http://93.184.216.34:8080/x"},
		{url: "http://[2606:2800:220:1:248:1893:25c8:1946]/"},
		{url: "http://169.254.169.254/latest/meta-data/", refused: "link-local"},
		{url: "http://metadata.google/", refused: "link-local"},
		{url: "http://10.0.0.1/", refused: "private"},
		{url: "http://172.16.5.4/", refused: "private"},
		{url: "http://192.168.1.1/", refused: "private"},
		{url: "http://[fd00::1]/", refused: "private"},
		{url: "http://[::1]:8080/", refused: "loopback"},
		{url: "http://127.0.0.2/", refused: "loopback"},
		{url: "http://localhost:9/", refused: "loopback"}, // real resolver
		{url: "http://[fe80::1%25eth0]/", refused: "link-local"},
		{url: "http://0.0.0.0/", refused: "unspecified"},
		{url: "http://[::]/", refused: "unspecified"},
		{url: "http://224.0.0.1/", refused: "multicast"},
		{url: "http://100.64.0.1/", refused: "shared (CGNAT)"},
		{url: "http://[::ffff:10.0.0.1]/", refused: "private"},
		{url: "http://[::ffff:169.254.169.254]/", refused: "link-local"},
		{url: "http://rebind.example/", refused: "private"},
		{url: "ftp://public.example/", invalid: true},
		{url: "file:///etc/passwd", invalid: true},
		{url: "http:///path", invalid: true},
		{url: "https://user:pw@public.example/", invalid: true},
		{url: "http://nosuch.example/", invalid: true},
		{url: "://bad", invalid: true},
	} {
		var r Resolver = res
		if strings.Contains(tc.url, "localhost") {
			r = nil // net.DefaultResolver: localhost is 127.0.0.1 or ::1
		}
		err := CheckURL(context.Background(), tc.url, false, r)
		switch {
		case tc.invalid:
			if err == nil || errors.Is(err, ErrRefused) {
				t.Errorf("CheckURL(%q) = %v, want an invalid-URL error", tc.url, err)
			}
			continue
		case tc.refused == "":
			if err != nil {
				t.Errorf("CheckURL(%q) = %v, want nil", tc.url, err)
			}
		default:
			var re *RefusedError
			if !errors.As(err, &re) || !errors.Is(err, ErrRefused) || re.Class != tc.refused {
				t.Errorf("CheckURL(%q) = %v, want refused as %s", tc.url, err, tc.refused)
			} else if !strings.Contains(err.Error(), "; refused (--allow-private-endpoints allows it)") {
				t.Errorf("CheckURL(%q) error %q does not name the flag", tc.url, err)
			}
		}
		if tc.url == "http://nosuch.example/" {
			continue
		}
		if err := CheckURL(context.Background(), tc.url, true, res); err != nil {
			t.Errorf("CheckURL(%q, allowPrivate) = %v, want nil", tc.url, err)
		}
	}
}

func TestRefusedErrorMessage(t *testing.T) {
	t.Parallel()
	err := CheckURL(context.Background(), "http://10.0.0.1/", false, nil)
	want := "endpoint address 10.0.0.1 is private; refused (--allow-private-endpoints allows it)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// countingListener listens on addr and counts the connections it accepts.
func countingListener(t *testing.T, network, addr string) (net.Listener, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln, &n
}

// The dialer refuses in its Control, before connect: a listener at the
// refused address sees nothing, and with the flag it sees the connection.
func TestDialerRefusesBeforeConnecting(t *testing.T) {
	t.Parallel()
	ln4, n4 := countingListener(t, "tcp4", "127.0.0.1:0")
	port := ln4.Addr().(*net.TCPAddr).Port
	targets := []string{
		ln4.Addr().String(),
		net.JoinHostPort("localhost", itoa(port)), // the name resolves to a loopback address
	}
	var n6 *atomic.Int32
	if ln6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln6.Close()
		var l net.Listener
		l, n6 = countingListener(t, "tcp6", "[::1]:0")
		targets = append(targets, l.Addr().String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	refusing := NewDialer(false, time.Second)
	for _, addr := range append(targets, "169.254.169.254:80", "10.0.0.1:80", "[::ffff:127.0.0.1]:"+itoa(port)) {
		start := time.Now()
		c, err := refusing.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			t.Errorf("dial %s: connected, want refused", addr)
			continue
		}
		if !errors.Is(err, ErrRefused) {
			t.Errorf("dial %s = %v, want ErrRefused", addr, err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("dial %s took %v: refused late, not before connecting", addr, d)
		}
	}
	if n := n4.Load(); n != 0 {
		t.Fatalf("the 127.0.0.1 listener saw %d connections from a refusing dialer, want 0", n)
	}
	if n6 != nil && n6.Load() != 0 {
		t.Fatalf("the [::1] listener saw %d connections from a refusing dialer, want 0", n6.Load())
	}

	allowing := NewDialer(true, time.Second)
	for _, addr := range targets {
		c, err := allowing.DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Errorf("dial %s with allowPrivate: %v", addr, err)
			continue
		}
		c.Close()
	}
	if !waitUntil(ctx, func() bool { return n4.Load() >= 2 && (n6 == nil || n6.Load() >= 1) }) {
		t.Fatalf("listeners saw %d (and %v) connections from an allowing dialer, want them all", n4.Load(), n6)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// waitUntil polls cond until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}
