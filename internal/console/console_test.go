package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	st      store.Store
	c       *Console
	mu      sync.Mutex
	replays []string
}

func newFixture(t *testing.T, hasAdmin bool) *fixture {
	t.Helper()
	return newFixtureWith(t, hasAdmin, nil)
}

// newFixtureWith is newFixture with its Config changed by edit (when not
// nil) before the console is made; edit gets the fixture's store.
func newFixtureWith(t *testing.T, hasAdmin bool, edit func(st store.Store, cfg *Config)) *fixture {
	t.Helper()
	st := openStore(t)
	err := st.RecordEvent(context.Background(), store.Event{Source: "stripe", EventID: "evt_1", Type: "customer.created",
		CustomerID: "cus_1", Status: store.StatusIgnored, Reason: "test", Routing: "object.id", Created: time.Unix(1700000000, 0),
		Payload: []byte(`{"id":"evt_1","note":"<script>alert(1)</script>"}`)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st}
	rej := NewRejections(3)
	cfg := Config{
		Store: st,
		Replay: func(ctx context.Context, id string) (string, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.replays = append(f.replays, id)
			return "applied", nil
		},
		CheckAdminToken: func(tok string) bool { return hasAdmin && tok == adminToken },
		HasAdminToken:   func() bool { return hasAdmin },
		Rejections:      rej,
		MaxFailedLogins: 3,
	}
	if edit != nil {
		edit(st, &cfg)
	}
	c := New(cfg)
	f.c = c
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

// recordEvents stores events evt_<prefix><i> of customer with status.
func recordEvents(t *testing.T, st store.Store, prefix, customer string, status store.Status, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("evt_%s%d", prefix, i)
		err := st.RecordEvent(context.Background(), store.Event{Source: "stripe", EventID: id, Type: "customer.updated",
			CustomerID: customer, Status: status, Reason: "test", Routing: "object.id", Created: time.Unix(1700000000+int64(i), 0),
			Payload: []byte(`{"id":"` + id + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestReplayAllMatching(t *testing.T) {
	var mu sync.Mutex
	var replayed []string
	f := newFixtureWith(t, true, func(st store.Store, cfg *Config) {
		recordEvents(t, st, "park", "cus_2", store.StatusParked, 3)
		recordEvents(t, st, "ign", "cus_2", store.StatusIgnored, 2)
		recordEvents(t, st, "other", "cus_3", store.StatusParked, 1)
		cfg.Replay = func(ctx context.Context, id string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			replayed = append(replayed, id)
			switch id {
			case "evt_ign0":
				return "", errors.New("boom <b>")
			case "evt_ign1":
				return "duplicate", nil
			}
			return "applied", nil
		}
	})
	csrf := f.login(t)

	_, body := f.do(t, "GET", "/console/events?customer=cus_2", nil)
	if !strings.Contains(body, `id="replay-matching"`) || !strings.Contains(body, `action="/console/replay-matching"`) {
		t.Errorf("no Replay all matching button on a filtered events page:\n%s", body)
	}
	if _, body := f.do(t, "GET", "/console/events", nil); strings.Contains(body, `id="replay-matching"`) {
		t.Error("Replay all matching offered without a filter")
	}
	for _, p := range []string{"/console/replay-matching", "/console/replay-matching?status=&customer="} {
		resp, body := f.do(t, "GET", p, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Filter too broad") {
			t.Errorf("GET %s: %d, want 400 too broad:\n%s", p, resp.StatusCode, body)
		}
	}
	if resp, _ := f.do(t, "GET", "/console/replay-matching?status=bogus", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown status: %d", resp.StatusCode)
	}

	resp, body := f.do(t, "GET", "/console/replay-matching?customer=cus_2", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "Replay 5 events?") || !csrfRE.MatchString(body) ||
		!strings.Contains(body, `name="customer" value="cus_2"`) {
		t.Fatalf("confirmation: %d\n%s", resp.StatusCode, body)
	}
	_, body = f.do(t, "GET", "/console/replay-matching?status=parked", nil)
	if !strings.Contains(body, "Replay 4 events?") {
		t.Errorf("parked confirmation:\n%s", body)
	}
	_, body = f.do(t, "GET", "/console/replay-matching?status=parked&customer=cus_nobody", nil)
	if !strings.Contains(body, "No events match") || strings.Contains(body, `id="replay-matching-confirm"`) {
		t.Errorf("empty confirmation:\n%s", body)
	}
	if len(replayed) != 0 {
		t.Fatalf("a GET replayed: %v", replayed)
	}

	// The POST needs the CSRF token and a filter.
	for _, bad := range []url.Values{{"customer": {"cus_2"}}, {"customer": {"cus_2"}, "csrf": {"wrong"}}} {
		if resp, _ := f.do(t, "POST", "/console/replay-matching", bad); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %v: %d, want 403", bad, resp.StatusCode)
		}
	}
	if resp, body := f.do(t, "POST", "/console/replay-matching", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Filter too broad") {
		t.Errorf("POST without a filter: %d", resp.StatusCode)
	}
	if len(replayed) != 0 {
		t.Fatalf("replayed without a valid request: %v", replayed)
	}

	resp, body = f.do(t, "POST", "/console/replay-matching", url.Values{"csrf": {csrf}, "customer": {"cus_2"}})
	if resp.StatusCode != 200 {
		t.Fatalf("replay matching: %d\n%s", resp.StatusCode, body)
	}
	sort.Strings(replayed)
	if got := strings.Join(replayed, ","); got != "evt_ign0,evt_ign1,evt_park0,evt_park1,evt_park2" {
		t.Errorf("replayed %s", got)
	}
	for _, want := range []string{"Replayed 5 events, 1 failed.", `<td class="status-applied">applied</td><td>3</td>`,
		`<td class="status-duplicate">duplicate</td><td>1</td>`, "evt_ign0: boom &lt;b&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("summary lacks %q:\n%s", want, body)
		}
	}
}

// endlessStore lists endless pages of parked events.
type endlessStore struct {
	store.Store
	mu    sync.Mutex
	pages int
}

func (s *endlessStore) ListEvents(_ context.Context, f store.ListEventsFilter) ([]store.Event, string, error) {
	s.mu.Lock()
	s.pages++
	n := s.pages
	s.mu.Unlock()
	evs := make([]store.Event, f.PageSize)
	for i := range evs {
		evs[i] = store.Event{Source: "stripe", EventID: fmt.Sprintf("evt_%d_%d", n, i), CustomerID: "cus_big", Status: store.StatusParked}
	}
	return evs, fmt.Sprint("page", n), nil
}

func TestReplayAllMatchingIsBounded(t *testing.T) {
	var mu sync.Mutex
	replays := 0
	f := newFixtureWith(t, true, func(st store.Store, cfg *Config) {
		cfg.Store = &endlessStore{Store: st}
		cfg.Replay = func(context.Context, string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			replays++
			return "applied", nil
		}
	})
	csrf := f.login(t)
	_, body := f.do(t, "GET", "/console/replay-matching?customer=cus_big", nil)
	if !strings.Contains(body, "Replay 10,000 or more events?") {
		t.Fatalf("confirmation:\n%s", body)
	}
	_, body = f.do(t, "POST", "/console/replay-matching", url.Values{"csrf": {csrf}, "customer": {"cus_big"}})
	if replays != bulkReplayLimit || !strings.Contains(body, "Replayed 10000 events (the first 10,000") {
		t.Fatalf("%d replays:\n%s", replays, body)
	}
}

func TestResolveNow(t *testing.T) {
	var mu sync.Mutex
	var resolved []string
	f := newFixtureWith(t, true, func(st store.Store, cfg *Config) {
		recordEvents(t, st, "park", "cus_p", store.StatusParked, 2)
		recordEvents(t, st, "q", "cus_<q>", store.StatusParked, 1)
		cfg.ResolveNow = func(ctx context.Context, id string) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			resolved = append(resolved, id)
			if id == "cus_fail" {
				return 0, errors.New("actor unreachable")
			}
			return 2, nil
		}
	})
	csrf := f.login(t)
	_, body := f.do(t, "GET", "/console/", nil)
	for _, want := range []string{`action="/console/customers/cus_p/resolve"`, `action="/console/customers/cus_%3cq%3e/resolve"`} {
		if strings.Count(body, want) != 1 {
			t.Errorf("overview: want one %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "cus_<q>") {
		t.Error("customer ID not escaped")
	}
	// The event page of a parked event has the button; of another not.
	if _, body := f.do(t, "GET", "/console/events/evt_park0", nil); !strings.Contains(body, `id="resolve-now"`) || !strings.Contains(body, `name="event" value="evt_park0"`) {
		t.Errorf("parked event page lacks Resolve now:\n%s", body)
	}
	if _, body := f.do(t, "GET", "/console/events/evt_1", nil); strings.Contains(body, `id="resolve-now"`) {
		t.Error("Resolve now on an ignored event")
	}

	for _, bad := range []url.Values{{}, {"csrf": {"wrong"}}} {
		if resp, _ := f.do(t, "POST", "/console/customers/cus_p/resolve", bad); resp.StatusCode != http.StatusForbidden {
			t.Errorf("resolve with %v: %d, want 403", bad, resp.StatusCode)
		}
	}
	if len(resolved) != 0 {
		t.Fatalf("resolved without a valid CSRF token: %v", resolved)
	}
	resp, body := f.do(t, "POST", "/console/customers/cus_p/resolve", url.Values{"csrf": {csrf}})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/console/" || !strings.Contains(body, "resolve now for cus_p: 2 parked events released") {
		t.Errorf("resolve from the overview: %d %s\n%s", resp.StatusCode, resp.Request.URL.Path, body)
	}
	resp, body = f.do(t, "POST", "/console/customers/cus_fail/resolve", url.Values{"csrf": {csrf}, "event": {"evt_park0"}})
	if resp.Request.URL.Path != "/console/events/evt_park0" || !strings.Contains(body, "resolve now for cus_fail failed: actor unreachable") {
		t.Errorf("failed resolve from an event page: %s\n%s", resp.Request.URL.Path, body)
	}
	if strings.Join(resolved, ",") != "cus_p,cus_fail" {
		t.Errorf("resolved %v", resolved)
	}

	// Without ResolveNow: no button, and the POST is refused.
	g := newFixture(t, true)
	csrf = g.login(t)
	recordEvents(t, g.st, "park", "cus_p", store.StatusParked, 1)
	if _, body := g.do(t, "GET", "/console/", nil); strings.Contains(body, "Resolve now") {
		t.Error("Resolve now offered without Config.ResolveNow")
	}
	if resp, _ := g.do(t, "POST", "/console/customers/cus_p/resolve", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("resolve without Config.ResolveNow: %d", resp.StatusCode)
	}
}

func TestOverviewFigures(t *testing.T) {
	reg := prometheus.NewRegistry()
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookd_webhook_events_total", Help: "test"}, []string{"status"})
	reg.MustRegister(events)
	var mu sync.Mutex
	now := time.Unix(1700000000, 0)
	var subs atomic.Int64
	subs.Store(3)
	f := newFixtureWith(t, true, func(_ store.Store, cfg *Config) {
		cfg.gatherer = reg
		cfg.Now = func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		}
		cfg.Subscribers = subs.Load
	})
	advance := func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
	}
	rateRE := regexp.MustCompile(`id="event-rate">([^<]*)<`)
	overview := func() (rate, body string) {
		t.Helper()
		_, body = f.do(t, "GET", "/console/", nil)
		m := rateRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no events/s on the overview:\n%s", body)
		}
		return m[1], body
	}
	f.login(t) // the first view of the overview
	if rate, body := overview(); !strings.HasPrefix(rate, "measuring") || !strings.Contains(body, `id="subscribers">3<`) {
		t.Errorf("second view in the same second: %q (want measuring), subscribers:\n%s", rate, body)
	}
	events.WithLabelValues("applied").Add(100)
	events.WithLabelValues("duplicate").Add(20)
	advance(20 * time.Second)
	subs.Store(5)
	if rate, body := overview(); rate != "6.0 (over the last 20s)" || !strings.Contains(body, `id="subscribers">5<`) {
		t.Errorf("after 120 events in 20 s: %q", rate)
	}
	// Measured over the last minute: the first sample falls out.
	advance(50 * time.Second)
	events.WithLabelValues("applied").Add(50)
	if rate, _ := overview(); rate != "1.0 (over the last 50s)" {
		t.Errorf("after 50 more events in 50 s: %q", rate)
	}
	// Long after every sample: the rate over the span since the last.
	advance(10 * time.Minute)
	if rate, _ := overview(); rate != "0.0 (over the last 10m0s)" {
		t.Errorf("10 minutes later: %q", rate)
	}

	// Without Subscribers: not shown.
	if _, body := newFixture(t, true).loginBody(t); strings.Contains(body, `id="subscribers"`) || !strings.Contains(body, `id="event-rate">measuring`) {
		t.Errorf("overview without Subscribers:\n%s", body)
	}
}

func (f *fixture) loginBody(t *testing.T) (string, string) {
	t.Helper()
	csrf := f.login(t)
	_, body := f.do(t, "GET", "/console/", nil)
	return csrf, body
}

func TestRateMeterCounterReset(t *testing.T) {
	var m rateMeter
	t0 := time.Unix(1700000000, 0)
	m.observe(t0, 100)
	if r, _, ok := m.observe(t0.Add(10*time.Second), 200); !ok || r != 10 {
		t.Fatalf("rate %v %v", r, ok)
	}
	if _, _, ok := m.observe(t0.Add(20*time.Second), 5); ok {
		t.Fatal("a counter that went back gave a rate")
	}
	if r, _, ok := m.observe(t0.Add(30*time.Second), 25); !ok || r != 2 {
		t.Fatalf("after the reset: rate %v %v", r, ok)
	}
}

func TestNewPostsNeedASession(t *testing.T) {
	var called atomic.Int64
	f := newFixtureWith(t, true, func(_ store.Store, cfg *Config) {
		cfg.ResolveNow = func(context.Context, string) (int, error) { called.Add(1); return 0, nil }
	})
	for _, p := range []string{"/console/replay-matching", "/console/customers/cus_1/resolve"} {
		resp, _ := f.do(t, "POST", p, url.Values{"csrf": {"x"}, "customer": {"cus_1"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without a session: %d, want 401", p, resp.StatusCode)
		}
	}
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if resp, _ := f.do(t, "GET", "/console/replay-matching?customer=cus_1", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("confirmation without a session: %d", resp.StatusCode)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.replays) != 0 || called.Load() != 0 {
		t.Errorf("acted without a session: %v, %d", f.replays, called.Load())
	}
}

// The overview shows the notification streams' lag from the process's
// registry, as bucket bounds of its histogram, once anything was sent.
func TestOverviewNotificationLag(t *testing.T) {
	reg := prometheus.NewRegistry()
	lag := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hookd_notification_read_lag_seconds", Help: "test",
		Buckets: []float64{0.001, 0.005, 0.025, 0.1}})
	reg.MustRegister(lag)
	f := newFixtureWith(t, true, func(_ store.Store, cfg *Config) { cfg.Metrics = reg })
	f.login(t)
	if _, body := f.do(t, "GET", "/console/", nil); !strings.Contains(body, `id="figures"`) || strings.Contains(body, `id="notification-lag"`) {
		t.Fatal("notification lag shown before any notification was sent")
	}
	for range 98 {
		lag.Observe(0.003)
	}
	lag.Observe(0.02)
	lag.Observe(0.5)
	_, body := f.do(t, "GET", "/console/", nil)
	if !strings.Contains(body, `id="notification-lag">p50 ≤ 5 ms, p99 ≤ 25 ms (100 notifications sent)`) {
		t.Fatalf("overview lag:\n%s\nwant p50 ≤ 5 ms, p99 ≤ 25 ms", body)
	}
}

// TestEventsFilterByTypeAndTime: the type and received-time filters
// select events, carry over to the next page and to "Replay all
// matching", and bad values are a 400.
func TestEventsFilterByTypeAndTime(t *testing.T) {
	f := newFixture(t, true)
	csrf := f.login(t)
	ctx := context.Background()
	for i := range 120 {
		typ := "invoice.paid"
		if i%2 == 1 {
			typ = "customer.updated"
		}
		err := f.st.RecordEvent(ctx, store.Event{Source: "stripe", EventID: fmt.Sprintf("evt_t%02d", i), Type: typ, CustomerID: "cus_t",
			Status: store.StatusIgnored, Routing: "object.id", Created: time.Unix(1700000000, 0), Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
	}
	all, _, err := f.st.ListEvents(ctx, store.ListEventsFilter{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(body string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`href="/console/events/(evt_[a-z0-9]+)"`).FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}

	// By type: 60 invoices, over a full page and a next one whose link
	// keeps the filter.
	_, body := f.do(t, "GET", "/console/events?type=invoice.paid", nil)
	first := ids(body)
	if len(first) != eventsPerPage || strings.Contains(body, "<td>customer.updated</td>") {
		t.Fatalf("type filter: %d events, want %d invoices only", len(first), eventsPerPage)
	}
	next := regexp.MustCompile(`href="/console/events\?([^"]+)" id="next"`).FindStringSubmatch(body)
	if next == nil {
		t.Fatalf("no next page link:\n%s", body)
	}
	q, err := url.ParseQuery(strings.ReplaceAll(next[1], "&amp;", "&"))
	if err != nil || q.Get("type") != "invoice.paid" || q.Get("page") == "" {
		t.Fatalf("next page link %q: %v, %v; want the type filter and a page", next[1], q, err)
	}
	_, body = f.do(t, "GET", "/console/events?"+q.Encode(), nil)
	rest := ids(body)
	if len(first)+len(rest) != 60 || strings.Contains(body, "<td>customer.updated</td>") {
		t.Fatalf("type filter over two pages: %d + %d events, want 60 invoices", len(first), len(rest))
	}

	// By received time: the window of the 10th to the 20th newest.
	from, until := all[20].ReceivedAt, all[10].ReceivedAt
	v := url.Values{"from": {from.UTC().Format(time.RFC3339Nano)}, "until": {until.UTC().Format(time.RFC3339Nano)}}
	var want []string
	for _, e := range all {
		if !e.ReceivedAt.Before(from) && e.ReceivedAt.Before(until) {
			want = append(want, e.EventID)
		}
	}
	_, body = f.do(t, "GET", "/console/events?"+v.Encode(), nil)
	if got := ids(body); strings.Join(got, ",") != strings.Join(want, ",") || len(want) == 0 {
		t.Errorf("time filter: got %v, want %v", got, want)
	}
	v.Set("type", "customer.updated")
	resp, body := f.do(t, "GET", "/console/replay-matching?"+v.Encode(), nil)
	wantReplay := 0
	for _, e := range all {
		if !e.ReceivedAt.Before(from) && e.ReceivedAt.Before(until) && e.Type == "customer.updated" {
			wantReplay++
		}
	}
	if resp.StatusCode != 200 || !strings.Contains(body, fmt.Sprintf("Replay %d events?", wantReplay)) {
		t.Fatalf("replay matching type and time: %d, want %d events:\n%s", resp.StatusCode, wantReplay, body)
	}
	post := url.Values{"csrf": {csrf}}
	for k := range v {
		post.Set(k, v.Get(k))
	}
	f.mu.Lock()
	f.replays = nil
	f.mu.Unlock()
	if resp, body := f.do(t, "POST", "/console/replay-matching", post); resp.StatusCode != 200 || !strings.Contains(body, fmt.Sprintf("Replayed %d events", wantReplay)) {
		t.Fatalf("replay matching POST: %d\n%s", resp.StatusCode, body)
	}
	f.mu.Lock()
	for _, id := range f.replays {
		var e store.Event
		for _, x := range all {
			if x.EventID == id {
				e = x
			}
		}
		if e.Type != "customer.updated" || e.ReceivedAt.Before(from) || !e.ReceivedAt.Before(until) {
			t.Errorf("replayed %s (%s, received %v): outside the filter", id, e.Type, e.ReceivedAt)
		}
	}
	f.mu.Unlock()

	// A datetime-local value (UTC) is accepted; bad ones are a 400.
	if resp, _ := f.do(t, "GET", "/console/events?from=2026-12-01T10:00", nil); resp.StatusCode != 200 {
		t.Errorf("datetime-local from: %d", resp.StatusCode)
	}
	for _, bad := range []string{"from=yesterday", "until=2026-13-01T00:00", "from=2026-12-02T00:00&until=2026-12-01T00:00", "type=" + strings.Repeat("x", 300)} {
		if resp, _ := f.do(t, "GET", "/console/events?"+bad, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /console/events?%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}

// TestOverviewCountsEveryEvent: the overview counts every stored event by
// status, not a window of the newest, and recounts after countTTL.
func TestOverviewCountsEveryEvent(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	f := newFixtureWith(t, true, func(st store.Store, cfg *Config) {
		recordEvents(t, st, "p", "cus_c", store.StatusParked, 7)
		recordEvents(t, st, "a", "cus_c", store.StatusApplied, 1200)
		cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	f.login(t)
	cell := regexp.MustCompile(`(?s)<table class="counts" id="counts">.*?</table>`)
	counts := func() string {
		_, body := f.do(t, "GET", "/console/", nil)
		return cell.FindString(body)
	}
	got := counts()
	// applied, duplicate, parked, ignored (evt_1 of the fixture), superseded
	for _, want := range []string{`status=applied">1200<`, `status=parked">7<`, `status=ignored">1<`, `status=duplicate">0<`} {
		if !strings.Contains(got, want) {
			t.Errorf("overview counts: no %s in\n%s", want, got)
		}
	}
	recordEvents(t, f.st, "q", "cus_c", store.StatusParked, 3)
	if got := counts(); !strings.Contains(got, `status=parked">7<`) {
		t.Errorf("within countTTL the count is reused; got\n%s", got)
	}
	mu.Lock()
	now = now.Add(countTTL)
	mu.Unlock()
	if got := counts(); !strings.Contains(got, `status=parked">10<`) {
		t.Errorf("after countTTL: want 10 parked, got\n%s", got)
	}
}
