package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrRefused is what every refusal of an endpoint address matches
// (errors.Is): the address is loopback, private, link-local, CGNAT,
// multicast or unspecified, and private endpoints are not allowed.
var ErrRefused = errors.New("endpoint address refused")

// RefusedError is returned by [CheckURL] and by the dialers of
// [NewDialer] for an address that deliveries must not reach. It matches
// [ErrRefused].
type RefusedError struct {
	Addr netip.Addr
	// Class says why: "loopback", "private", "link-local", …
	Class string
}

// Error says which address was refused, why, and which flag allows it.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("endpoint address %s is %s; refused (--allow-private-endpoints allows it)", e.Addr, e.Class)
}

// Is makes a RefusedError match ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Resolver looks host names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var (
	// cgnat is the shared address space of RFC 6598.
	cgnat = netip.MustParsePrefix("100.64.0.0/10")
	// thisNetwork is 0.0.0.0/8 (RFC 1122), which Linux connects to the
	// local host.
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	broadcast   = netip.MustParseAddr("255.255.255.255")
)

// addrClass returns why a delivery must not reach a, or "" when it may.
// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
func addrClass(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified(), a.Is4() && thisNetwork.Contains(a):
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast(), a == broadcast:
		return "multicast"
	case cgnat.Contains(a):
		return "shared (CGNAT)"
	}
	return ""
}

// checkAddr returns a *RefusedError when a deliveries must not reach a.
func checkAddr(a netip.Addr, allowPrivate bool) error {
	if allowPrivate {
		return nil
	}
	if class := addrClass(a); class != "" {
		return &RefusedError{Addr: a.WithZone(""), Class: class}
	}
	return nil
}

// CheckURL reports whether rawURL may be an endpoint: http or https, with
// a host and without userinfo, and (unless allowPrivate) a host whose
// every address is public. The host is an IP literal or a name resolved
// with r (nil: net.DefaultResolver). A refused address is reported as a
// *RefusedError (errors.Is ErrRefused).
//
// CheckURL is for telling a user early; it does not protect deliveries by
// itself, since a name may resolve elsewhere later (DNS rebinding): the
// dialers of NewDialer refuse the same addresses when they connect.
func CheckURL(ctx context.Context, rawURL string, allowPrivate bool, r Resolver) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("endpoint url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("endpoint url %q: scheme must be http or https", rawURL)
	}
	if u.User != nil {
		return fmt.Errorf("endpoint url: must not carry a user or password")
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("endpoint url %q: no host", rawURL)
	}
	if allowPrivate {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return checkAddr(a, false)
	}
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("endpoint url: resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("endpoint url: %s resolves to no address", host)
	}
	for _, a := range addrs {
		if err := checkAddr(a, false); err != nil {
			return fmt.Errorf("endpoint url: %s resolves to a refused address: %w", host, err)
		}
	}
	return nil
}

// NewDialer returns a dialer that refuses, unless allowPrivate, to connect
// to any address CheckURL refuses: its Control runs after name resolution
// and before the connect system call, for every address tried, so no
// packet reaches a refused address whatever a name resolves to at that
// moment. timeout bounds each connection attempt (0: none).
func NewDialer(allowPrivate bool, timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("endpoint address %q: %w", address, err)
			}
			return checkAddr(ap.Addr(), allowPrivate)
		},
	}
}
