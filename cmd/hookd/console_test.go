package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

const (
	consoleToken   = "console-admin-token-0123456789"
	chromiumPath   = "/usr/bin/chromium"
	requireBrowser = "HOOKD_REQUIRE_CHROMIUM"
	// consoleShots, when set, also saves the screenshots to
	// /tmp/console-overview.png and /tmp/console-event.png.
	consoleShots = "HOOKD_CONSOLE_SCREENSHOTS"
)

// chromium returns the Chromium to drive, skipping the test when there is
// none unless HOOKD_REQUIRE_CHROMIUM is set (CI sets it).
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if os.Getenv(requireBrowser) != "" {
			t.Fatalf("%s is set but %s is missing: apt-get install -y chromium", requireBrowser, chromiumPath)
		}
		t.Skipf("%s not installed (apt-get install -y chromium); set %s=1 to fail instead of skipping", chromiumPath, requireBrowser)
	}
	return chromiumPath
}

// browser starts a headless Chromium for the test. Run each step with
// step, which bounds it by a timeout (a timeout on the browser's own
// context would stop the browser).
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// step runs the actions in the browser, within 30 s.
func step(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// into stores an action's value in *v, as a step.
func into[T any](v *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		var err error
		*v, err = a(ctx, t)
		return chromedp.Void{}, err
	}
}

func saveShot(t *testing.T, name string, png []byte) {
	t.Helper()
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("%s: not a PNG (%d bytes)", name, len(png))
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getenv(consoleShots) != "" {
		if err := os.WriteFile(filepath.Join(os.TempDir(), name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", filepath.Join(os.TempDir(), name))
	}
}

// TestConsoleInBrowser drives the console in a real headless Chromium: a
// wrong token is refused, the admin token logs in, the overview counts the
// events, an event is found by its customer, opened and replayed, and the
// rejected webhook shows without its signature.
func TestConsoleInBrowser(t *testing.T) {
	chromium(t)
	t.Parallel()
	h := startHookdOn(t, storeEmbedded, "--admin-token", consoleToken)
	for _, a := range []webhookAnswer{
		h.post(t, customerEvent("evt_console_1", "customer.created", "cus_console", 1700000000, "a@example.com")),
		h.post(t, customerEvent("evt_console_2", "customer.updated", "cus_console", 1700000100, "b@example.com")),
		h.post(t, customerEvent("evt_other_1", "customer.created", "cus_other", 1700000000, "o@example.com")),
	} {
		if a.Code != 200 || a.Status != "applied" {
			t.Fatalf("webhook: %+v", a)
		}
	}
	bad := h.postWith(t, customerEvent("evt_forged", "customer.created", "cus_console", 1700000000, "x@example.com"),
		"application/json", "t=1,v1=forgedsignature0000")
	if bad.Code != 400 {
		t.Fatalf("forged webhook: %+v", bad)
	}

	ctx := browser(t)
	var errText, overview string
	var overviewPNG, eventPNG []byte
	err := step(ctx,
		chromedp.Navigate(h.adminURL+"/console/"),
		chromedp.WaitVisible(chromedp.ID("token")), // redirected to the login
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("error")),
		into(&errText, chromedp.Text(chromedp.ID("error"))),
	)
	if err != nil {
		t.Fatalf("wrong token: %v", err)
	}
	if errText != "invalid token" {
		t.Fatalf("wrong token: page says %q, want \"invalid token\"", errText)
	}
	err = step(ctx,
		// The refusal page has an empty token field again.
		chromedp.SendKeys(chromedp.ID("token"), consoleToken),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("counts")),
		into(&overview, chromedp.Text(chromedp.CSS("main"))),
		into(&overviewPNG, chromedp.FullScreenshot(100)),
	)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if !strings.Contains(overview, "All 3 stored events, counted at") || !strings.Contains(overview, "1 recent") {
		t.Errorf("overview:\n%s", overview)
	}
	saveShot(t, "console-overview.png", overviewPNG)

	var listed, status, flash, payload, after string
	err = step(ctx,
		chromedp.Click(chromedp.CSS(`a[href="/console/events"]`)),
		chromedp.WaitVisible(chromedp.ID("customer")),
		chromedp.SendKeys(chromedp.ID("customer"), "cus_console"),
		chromedp.Click(chromedp.ID("filter")),
		// The filtered page renders the filter's value as an attribute.
		chromedp.WaitVisible(chromedp.CSS(`#customer[value="cus_console"]`)),
		into(&listed, chromedp.Text(chromedp.ID("events"))),
		chromedp.Click(chromedp.CSS(`a[href="/console/events/evt_console_1"]`)),
		chromedp.WaitVisible(chromedp.ID("event-status")),
		into(&status, chromedp.Text(chromedp.ID("event-status"))),
		into(&payload, chromedp.Text(chromedp.ID("payload"))),
		chromedp.Click(chromedp.ID("replay")),
		chromedp.WaitVisible(chromedp.ID("flash")),
		into(&flash, chromedp.Text(chromedp.ID("flash"))),
		into(&after, chromedp.Text(chromedp.ID("event-status"))),
		into(&eventPNG, chromedp.FullScreenshot(100)),
	)
	if err != nil {
		t.Fatalf("event page: %v", err)
	}
	if !strings.Contains(listed, "evt_console_1") || !strings.Contains(listed, "evt_console_2") || strings.Contains(listed, "evt_other_1") {
		t.Errorf("events of cus_console:\n%s", listed)
	}
	if status != "applied" || after != "applied" {
		t.Errorf("event status %q, after the replay %q; want applied", status, after)
	}
	if !strings.Contains(payload, `"email": "a@example.com"`) {
		t.Errorf("payload not pretty-printed:\n%s", payload)
	}
	// An applied event replays as a duplicate: it takes effect once.
	if flash != "replay of evt_console_1: duplicate" {
		t.Errorf("replay result %q", flash)
	}
	saveShot(t, "console-event.png", eventPNG)

	// The customer's timeline, and the rejected webhook without its
	// signature.
	var timeline, rejected string
	err = step(ctx,
		chromedp.Click(chromedp.CSS(`a[href="/console/customers/cus_console"]`)),
		chromedp.WaitVisible(chromedp.ID("timeline")),
		into(&timeline, chromedp.Text(chromedp.ID("timeline"))),
		chromedp.Click(chromedp.CSS(`a[href="/console/rejected"]`)),
		chromedp.WaitVisible(chromedp.ID("rejected")),
		into(&rejected, chromedp.Text(chromedp.ID("rejected"))),
	)
	if err != nil {
		t.Fatalf("customer and rejected pages: %v", err)
	}
	if i, j := strings.Index(timeline, "evt_console_1"), strings.Index(timeline, "evt_console_2"); i < 0 || j < i {
		t.Errorf("timeline (oldest first):\n%s", timeline)
	}
	if !strings.Contains(rejected, "BAD_SIGNATURE") || strings.Contains(rejected, "forgedsignature") || !strings.Contains(rejected, "Stripe-Signature: (removed)") {
		t.Errorf("rejected webhooks:\n%s", rejected)
	}

	// The browser's session cookie, used by a plain client: a POST
	// without the CSRF token is refused and replays nothing.
	var cookies []*network.Cookie
	err = step(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{h.adminURL + "/console/"}})
		cookies = res.Cookies
		return err
	}))
	if err != nil || len(cookies) != 1 {
		t.Fatalf("session cookie: %v %v", cookies, err)
	}
	if !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteStrict {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict", cookies[0])
	}
	for _, form := range []url.Values{{}, {"csrf": {"forged"}}} {
		req, _ := http.NewRequest("POST", h.adminURL+"/console/events/evt_console_1/replay", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: cookies[0].Name, Value: cookies[0].Value})
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "CSRF") {
			t.Errorf("POST with csrf %v: %d, want 403", form, resp.StatusCode)
		}
	}
	// With the session but through the GET of a page, the cookie works.
	req, _ := http.NewRequest("GET", h.adminURL+"/console/events/evt_console_1", nil)
	req.AddCookie(&http.Cookie{Name: cookies[0].Name, Value: cookies[0].Value})
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET with the session cookie: %d", resp.StatusCode)
	}
}

// TestConsoleClosedWithoutAdminToken: a hookd with no admin-scope token
// serves a console that says so and accepts no login.
func TestConsoleClosedWithoutAdminToken(t *testing.T) {
	t.Parallel()
	h := startHookdOn(t, storeEmbedded)
	resp, err := h.http.Get(h.adminURL + "/console/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "No admin-scope token is configured") {
		t.Fatalf("login page: %d\n%s", resp.StatusCode, body)
	}
	for _, tok := range []string{"", "anything"} {
		resp, err := h.http.PostForm(h.adminURL+"/console/login", url.Values{"token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("login with %q: %d %v, want 403 and no cookie", tok, resp.StatusCode, resp.Cookies())
		}
	}
	// Never on the public port.
	resp, err = h.http.Get(h.baseURL + "/console/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("public port serves /console/: %d", resp.StatusCode)
	}
}
