//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package delivery

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// peerOpen reports whether an idle connection can take a request: its
// peer has not closed it, and sent nothing unasked (a server's 408 before
// it closes, say). One non-blocking peek at the socket; for TLS, at the
// connection under it (a close_notify alert is data there, and means the
// same).
func peerOpen(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing to read, the connection is quiet and open.
		// Anything else (0 bytes: closed; data; an error): do not reuse.
		open = errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && open
}
