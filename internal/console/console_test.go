package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/sqlite"
)

const adminToken = "test-admin-token-0123456789"

func openStore(t *testing.T) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

type fixture struct {
	srv     *httptest.Server
	client  *http.Client
	replays []string
}

func newFixture(t *testing.T, hasAdmin bool) *fixture {
	t.Helper()
	st := openStore(t)
	err := st.RecordEvent(context.Background(), store.Event{Source: "stripe", EventID: "evt_1", Type: "customer.created",
		CustomerID: "cus_1", Status: store.StatusIgnored, Reason: "test", Routing: "object.id", Created: time.Unix(1700000000, 0),
		Payload: []byte(`{"id":"evt_1","note":"<script>alert(1)</script>"}`)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{}
	rej := NewRejections(3)
	c := New(Config{
		Store: st,
		Replay: func(ctx context.Context, id string) (string, error) {
			f.replays = append(f.replays, id)
			return "applied", nil
		},
		CheckAdminToken: func(tok string) bool { return hasAdmin && tok == adminToken },
		HasAdminToken:   func() bool { return hasAdmin },
		Rejections:      rej,
		MaxFailedLogins: 3,
	})
	mux := http.NewServeMux()
	mux.Handle(Prefix, c)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	jar, _ := cookiejar.New(nil)
	f.client = &http.Client{Jar: jar, Timeout: 10 * time.Second}
	return f
}

func (f *fixture) do(t *testing.T, method, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (f *fixture) login(t *testing.T) string {
	t.Helper()
	resp, body := f.do(t, "POST", "/console/login", url.Values{"token": {adminToken}})
	if resp.StatusCode != 200 || !strings.Contains(body, "Events by status") {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token on the overview")
	}
	return m[1]
}

func TestPagesNeedASession(t *testing.T) {
	f := newFixture(t, true)
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, p := range []string{"/console/", "/console/events", "/console/events/evt_1", "/console/customers/cus_1", "/console/rejected"} {
		resp, _ := f.do(t, "GET", p, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
			t.Errorf("GET %s without a session: %d %q, want a redirect to the login", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, _ := f.do(t, "POST", "/console/events/evt_1/replay", url.Values{"csrf": {"x"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("replay without a session: %d, want 401", resp.StatusCode)
	}
	if len(f.replays) != 0 {
		t.Errorf("replayed without a session: %v", f.replays)
	}
}

func TestLoginSetsAStrictCookie(t *testing.T) {
	f := newFixture(t, true)
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := f.do(t, "POST", "/console/login", url.Values{"token": {adminToken}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cks := resp.Cookies()
	if len(cks) != 1 {
		t.Fatalf("cookies: %v", cks)
	}
	ck := cks[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" || ck.Secure || len(ck.Value) < 40 {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/console/, not Secure over plain HTTP, a long random value", ck)
	}
	if strings.Contains(ck.Value, adminToken) {
		t.Error("the cookie holds the token")
	}
}

func TestWrongTokenIsRefusedAndRateLimited(t *testing.T) {
	f := newFixture(t, true)
	for i := range 3 {
		resp, body := f.do(t, "POST", "/console/login", url.Values{"token": {"wrong"}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "invalid token") {
			t.Fatalf("attempt %d: %d %s", i, resp.StatusCode, body)
		}
		if len(resp.Cookies()) != 0 {
			t.Fatal("a failed login set a cookie")
		}
	}
	resp, _ := f.do(t, "POST", "/console/login", url.Values{"token": {adminToken}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after 3 failures: %d, want 429 even with the right token", resp.StatusCode)
	}
}

func TestNoAdminTokenMeansNoLogin(t *testing.T) {
	f := newFixture(t, false)
	resp, body := f.do(t, "GET", "/console/login", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "No admin-scope token is configured") || strings.Contains(body, `name="token"`) {
		t.Fatalf("login page: %d %s", resp.StatusCode, body)
	}
	resp, _ = f.do(t, "POST", "/console/login", url.Values{"token": {adminToken}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login with no admin token configured: %d, want 403", resp.StatusCode)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t, true)
	csrf := f.login(t)
	for _, bad := range []url.Values{{}, {"csrf": {"wrong"}}, {"csrf": {csrf + "x"}}} {
		resp, body := f.do(t, "POST", "/console/events/evt_1/replay", bad)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("replay with csrf %v: %d, want 403", bad, resp.StatusCode)
		}
	}
	if len(f.replays) != 0 {
		t.Fatalf("replayed without a valid CSRF token: %v", f.replays)
	}
	resp, body := f.do(t, "POST", "/console/events/evt_1/replay", url.Values{"csrf": {csrf}})
	if resp.StatusCode != 200 || !strings.Contains(body, "replay of evt_1: applied") {
		t.Fatalf("replay: %d %s", resp.StatusCode, body)
	}
	if len(f.replays) != 1 || f.replays[0] != "evt_1" {
		t.Fatalf("replays: %v", f.replays)
	}
	// Logout needs the token too, and ends the session.
	if resp, _ := f.do(t, "POST", "/console/logout", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout without csrf: %d", resp.StatusCode)
	}
	f.do(t, "POST", "/console/logout", url.Values{"csrf": {csrf}})
	if _, body := f.do(t, "GET", "/console/", nil); !strings.Contains(body, `name="token"`) {
		t.Error("still logged in after logout")
	}
}

func TestSecurityHeadersAndEscaping(t *testing.T) {
	f := newFixture(t, true)
	f.login(t)
	for _, p := range []string{"/console/login", "/console/", "/console/events/evt_1", "/console/nope"} {
		resp, _ := f.do(t, "GET", p, nil)
		h := resp.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") || h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: headers %v", p, h)
		}
	}
	_, body := f.do(t, "GET", "/console/events/evt_1", nil)
	if strings.Contains(body, "<script>alert(1)</script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Error("the payload is not escaped")
	}
	if !strings.Contains(body, `&#34;note&#34;: &#34;`) {
		t.Errorf("the payload is not pretty-printed:\n%s", body)
	}
}

func TestEventsFilterAndCustomer(t *testing.T) {
	f := newFixture(t, true)
	f.login(t)
	_, body := f.do(t, "GET", "/console/events?customer=cus_1", nil)
	if !strings.Contains(body, `href="/console/events/evt_1"`) {
		t.Errorf("filtered by customer: no evt_1:\n%s", body)
	}
	_, body = f.do(t, "GET", "/console/events?customer=cus_other", nil)
	if strings.Contains(body, "evt_1") {
		t.Error("filter by another customer shows evt_1")
	}
	if resp, _ := f.do(t, "GET", "/console/events?status=bogus", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown status: %d", resp.StatusCode)
	}
	resp, body := f.do(t, "GET", "/console/customers/cus_1", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "evt_1") {
		t.Errorf("customer page: %d", resp.StatusCode)
	}
}

func TestRejectionsRingDropsSecrets(t *testing.T) {
	x := NewRejections(2)
	for i, id := range []string{"a", "b", "c"} {
		r := httptest.NewRequest("POST", "/v1/webhooks/stripe", strings.NewReader(strings.Repeat(id, 3000)))
		r.Header.Set("Stripe-Signature", "t=1,v1=secretsig")
		r.Header.Set("Authorization", "Bearer secret")
		r.Header.Set("Cookie", "x=secret")
		r.Header.Set("User-Agent", "Stripe/1.0")
		x.Record(r, 400+i, "BAD_SIGNATURE")
	}
	l := x.List()
	if len(l) != 2 || l[0].Status != 402 || l[1].Status != 401 {
		t.Fatalf("ring: %+v", l)
	}
	for _, rej := range l {
		if len(rej.Body) != MaxRejectBody {
			t.Errorf("body kept %d bytes", len(rej.Body))
		}
		for _, h := range rej.Headers {
			if strings.Contains(h[1], "secret") {
				t.Errorf("header %s kept its value", h[0])
			}
		}
	}
}

func TestSessionExpiry(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s := newSessions(time.Hour, 2, func() time.Time { return now })
	id, _ := s.create()
	if _, ok := s.get(id); !ok {
		t.Fatal("fresh session missing")
	}
	now = now.Add(time.Hour)
	if _, ok := s.get(id); ok {
		t.Fatal("expired session accepted")
	}
	a, _ := s.create()
	s.create()
	s.create() // full: drops the oldest
	if len(s.m) != 2 {
		t.Fatalf("table holds %d", len(s.m))
	}
	_ = a
}
