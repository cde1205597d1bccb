package loglimit_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hookd/hookd/internal/loglimit"
)

func TestString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"cus_1", "cus_1"},
		{strings.Repeat("a", loglimit.MaxString), strings.Repeat("a", loglimit.MaxString)},
		{strings.Repeat("a", loglimit.MaxString+1), strings.Repeat("a", loglimit.MaxString) + "…"},
		// A cut inside a rune backs off to its start.
		{strings.Repeat("a", loglimit.MaxString-1) + "é", strings.Repeat("a", loglimit.MaxString-1) + "…"},
		{strings.Repeat("a", loglimit.MaxString-2) + "😀", strings.Repeat("a", loglimit.MaxString-2) + "…"},
	} {
		if got := loglimit.String(tc.in); got != tc.want {
			t.Errorf("String(%d bytes): got %q, want %q", len(tc.in), got, tc.want)
		}
	}
	huge := strings.Repeat("é", 1<<20)
	if got := loglimit.String(huge); len(got) > loglimit.MaxString+len("…") || !utf8.ValidString(got) {
		t.Errorf("String of 2 MiB: got %d bytes (valid UTF-8 %v), want at most %d", len(got), utf8.ValidString(got), loglimit.MaxString+len("…"))
	}
	if got := loglimit.Err(errors.New(huge)); len(got) > loglimit.MaxErr+len("…") {
		t.Errorf("Err of 2 MiB: got %d bytes, want at most %d", len(got), loglimit.MaxErr+len("…"))
	}
	if got := loglimit.Err(nil); got != "" {
		t.Errorf("Err(nil): got %q, want empty", got)
	}
}

// At most N lines per reason per second pass; the next one that passes
// says how many were refused; reasons do not share a budget.
func TestLimiter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	l := loglimit.NewLimiter(3)
	l.SetClockForTest(func() time.Time { return now })
	allowed := func(reason string, n int) (passed int, suppressed int64) {
		for range n {
			if ok, s := l.Allow(reason); ok {
				passed++
				suppressed += s
			}
		}
		return passed, suppressed
	}
	if p, s := allowed("bad_signature", 1000); p != 3 || s != 0 {
		t.Fatalf("first second: %d passed, %d suppressed reported; want 3 and 0", p, s)
	}
	if p, _ := allowed("malformed", 10); p != 3 {
		t.Fatalf("another reason: %d passed, want its own 3", p)
	}
	now = now.Add(999 * time.Millisecond)
	if p, _ := allowed("bad_signature", 10); p != 0 {
		t.Fatalf("same second: %d passed, want 0", p)
	}
	now = now.Add(time.Second)
	ok, s := l.Allow("bad_signature")
	if !ok || s != 1007 {
		t.Fatalf("next second: allowed %v with %d suppressed, want true with 1007", ok, s)
	}
	if ok, s := l.Allow("bad_signature"); !ok || s != 0 {
		t.Fatalf("after the report: allowed %v with %d suppressed, want true with 0", ok, s)
	}
	// A clock that steps back starts a new window rather than blocking.
	now = now.Add(-time.Hour)
	if ok, _ := l.Allow("malformed"); !ok {
		t.Fatal("after the clock stepped back: refused, want allowed")
	}
}

func TestLimiterConcurrent(t *testing.T) {
	t.Parallel()
	l := loglimit.NewLimiter(5)
	l.SetClockForTest(func() time.Time { return time.Unix(1, 0) })
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		passed int
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if ok, _ := l.Allow("x"); ok {
					mu.Lock()
					passed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if passed != 5 {
		t.Fatalf("%d of 8000 concurrent lines passed, want 5", passed)
	}
}
