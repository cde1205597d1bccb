package console

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// session is one logged-in browser.
type session struct {
	csrf    string
	expires time.Time
	flash   string // shown once on the next page (a replay's result)
}

// sessions is the server-side session table: the cookie holds only a
// random ID.
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	max int
	m   map[string]*session
	now func() time.Time
}

func newSessions(ttl time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, max: max, m: map[string]*session{}, now: now}
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session and returns its ID. When the table is full it
// drops expired sessions, then the one nearest expiry.
func (s *sessions) create() (string, *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.m) >= s.max {
		var oldest string
		for id, se := range s.m {
			if !now.Before(se.expires) {
				delete(s.m, id)
				continue
			}
			if oldest == "" || se.expires.Before(s.m[oldest].expires) {
				oldest = id
			}
		}
		if len(s.m) >= s.max && oldest != "" {
			delete(s.m, oldest)
		}
	}
	id := randomToken()
	se := &session{csrf: randomToken(), expires: now.Add(s.ttl)}
	s.m[id] = se
	return id, se
}

// get returns the live session with this ID (a copy), dropping it when it
// has expired.
func (s *sessions) get(id string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.m[id]
	if !ok {
		return session{}, false
	}
	if !s.now().Before(se.expires) {
		delete(s.m, id)
		return session{}, false
	}
	return *se, true
}

// takeFlash returns and clears the session's flash message.
func (s *sessions) takeFlash(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.m[id]
	if !ok {
		return ""
	}
	f := se.flash
	se.flash = ""
	return f
}

func (s *sessions) setFlash(id, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if se, ok := s.m[id]; ok {
		se.flash = msg
	}
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// limiter allows a few failed logins per remote IP per window.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	m      map[string]*attempts
	now    func() time.Time
}

type attempts struct {
	n     int
	start time.Time
}

func newLimiter(max int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{max: max, window: window, m: map[string]*attempts{}, now: now}
}

// blocked says whether ip has used up its failed logins in this window.
func (l *limiter) blocked(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.m[ip]
	if !ok {
		return false
	}
	if l.now().Sub(a.start) >= l.window {
		delete(l.m, ip)
		return false
	}
	return a.n >= l.max
}

// fail counts a failed login from ip.
func (l *limiter) fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.m) > 10000 { // bound the table: forget windows that ended
		for k, a := range l.m {
			if now.Sub(a.start) >= l.window {
				delete(l.m, k)
			}
		}
	}
	a, ok := l.m[ip]
	if !ok || now.Sub(a.start) >= l.window {
		a = &attempts{start: now}
		l.m[ip] = a
	}
	a.n++
}
