// Package loglimit keeps sender-supplied data from filling a disk through
// the logs: String and Err cut what a sender controls (IDs, error messages
// that quote a body) to a bounded length, and a Limiter lets through at
// most a few lines per second for each kind of repeated rejection, counting
// the rest so that the next line that passes says how many were
// suppressed. Counters of every rejection belong in /metrics, not in the
// logs: the Limiter only decides which lines are written.
package loglimit

import (
	"sync"
	"time"
	"unicode/utf8"
)

const (
	// MaxString is the most bytes String keeps of a value.
	MaxString = 128
	// MaxErr is the most bytes Err keeps of an error message.
	MaxErr = 512
)

// String returns s cut to at most MaxString bytes, at a rune boundary,
// with "…" appended when it was cut. Use it for every sender-supplied
// value in a log line (slog's handlers already escape what they print).
func String(s string) string { return cut(s, MaxString) }

// Err returns err's message cut to at most MaxErr bytes as String cuts
// values, or "" for nil.
func Err(err error) string {
	if err == nil {
		return ""
	}
	return cut(err.Error(), MaxErr)
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Back off to the start of a rune so that the cut does not create
	// invalid UTF-8 (at most utf8.UTFMax-1 bytes).
	i := n
	for i > n-utf8.UTFMax && i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// Limiter decides which lines of a repeated kind are logged: at most
// PerSecond lines per reason in each one-second window. It is safe for
// concurrent use; its zero value is not usable, call NewLimiter. Reasons
// must come from a small fixed set (constants, never sender data): the
// Limiter keeps a window per reason and never forgets one.
type Limiter struct {
	perSecond int
	now       func() time.Time

	mu      sync.Mutex // guards windows
	windows map[string]*window
}

// window is one reason's current second.
type window struct {
	start      time.Time
	logged     int   // lines allowed in this window
	suppressed int64 // lines refused since the last one allowed
}

// NewLimiter returns a Limiter that allows perSecond lines per reason per
// second (at least 1).
func NewLimiter(perSecond int) *Limiter {
	return &Limiter{perSecond: max(perSecond, 1), now: time.Now, windows: map[string]*window{}}
}

// SetClockForTest makes l read the time from now.
func (l *Limiter) SetClockForTest(now func() time.Time) { l.now = now }

// Allow reports whether a line for reason may be written now and, when it
// may, how many lines for reason were refused since the last one allowed
// (to be logged with it, e.g. as "suppressed").
func (l *Limiter) Allow(reason string) (ok bool, suppressed int64) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[reason]
	if w == nil {
		w = &window{start: now}
		l.windows[reason] = w
	}
	if now.Sub(w.start) >= time.Second || now.Before(w.start) {
		w.start, w.logged = now, 0
	}
	if w.logged >= l.perSecond {
		w.suppressed++
		return false, 0
	}
	w.logged++
	suppressed, w.suppressed = w.suppressed, 0
	return true, suppressed
}
