// Package console is hookd's web console: server-rendered pages on the
// admin listener (/console/) to look at events, customers, deliveries and
// rejected webhooks, to replay an event or every event matching a filter,
// and to resolve a customer's parked events now. It requires an admin-scope
// token to log in, even though the admin listener has no authentication
// of its own; with no such token configured it refuses every login.
//
// Sessions live in memory (a random ID in an HttpOnly, SameSite=Strict
// cookie); every state-changing request is a POST carrying the session's
// CSRF token. Every page is sent with a strict Content-Security-Policy,
// X-Frame-Options DENY and Cache-Control no-store.
package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd/hookd/store"
)

// Prefix is where the console is mounted.
const Prefix = "/console/"

// Config is what the console needs from the process.
type Config struct {
	// Store is read for every page. Required.
	Store store.Store
	// Replay replays a stored event (EventService.ReplayEvent) and returns
	// its resulting status. Nil: no Replay button.
	Replay func(ctx context.Context, eventID string) (status string, err error)
	// ResolveNow resolves every parked event of a customer now, without
	// waiting for the park deadline, and returns how many it released.
	// Nil: no "Resolve now" button.
	ResolveNow func(ctx context.Context, customerID string) (released int, err error)
	// Subscribers is how many notification streams are open
	// (services.Registered.Subscribers). Nil: not shown.
	Subscribers func() int64
	// Metrics, when set, is the process's own registry: the overview
	// shows its notification lag (hookd_notification_read_lag_seconds).
	Metrics prometheus.Gatherer
	// CheckAdminToken says whether a token has the admin scope. Nil, or
	// HasAdminToken false: no login is possible.
	CheckAdminToken func(token string) bool
	// HasAdminToken says whether any admin-scope token is configured.
	HasAdminToken func() bool
	// Rejections, when set, is the ring of rejected webhooks shown.
	Rejections *Rejections
	Logger     *slog.Logger

	// SessionTTL is how long a session lasts. Default 8 h.
	SessionTTL time.Duration
	// MaxFailedLogins per remote IP per minute. Default 5.
	MaxFailedLogins int
	// Now is the clock. Default time.Now.
	Now func() time.Time

	// gatherer is sampled for the overview's events/s. Default
	// prometheus.DefaultGatherer (tests set another).
	gatherer prometheus.Gatherer
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console is the console's http.Handler.
type Console struct {
	cfg      Config
	sessions *sessions
	limit    *limiter
	pages    map[string]*template.Template
	mux      *http.ServeMux
	// eventMeter keeps the samples of the overview's events/s.
	eventMeter rateMeter
	counts     countCache
}

const cookieName = "hookd_console"

// New returns the console handler; mount it at Prefix.
func New(cfg Config) *Console {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.gatherer == nil {
		cfg.gatherer = prometheus.DefaultGatherer
	}
	if cfg.MaxFailedLogins <= 0 {
		cfg.MaxFailedLogins = 5
	}
	c := &Console{
		cfg:      cfg,
		sessions: newSessions(cfg.SessionTTL, 1000, cfg.Now),
		limit:    newLimiter(cfg.MaxFailedLogins, time.Minute, cfg.Now),
		pages:    parsePages(),
		mux:      http.NewServeMux(),
	}
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /console/login", c.loginPage)
	c.mux.HandleFunc("POST /console/login", c.login)
	c.mux.Handle("POST /console/logout", c.authed(c.logout))
	c.mux.Handle("GET /console/{$}", c.authed(c.overview))
	c.mux.Handle("GET /console/events", c.authed(c.events))
	c.mux.Handle("GET /console/events/{id}", c.authed(c.event))
	c.mux.Handle("POST /console/events/{id}/replay", c.authed(c.replay))
	c.mux.Handle("GET /console/replay-matching", c.authed(c.replayMatchingConfirm))
	c.mux.Handle("POST /console/replay-matching", c.authed(c.replayMatching))
	c.mux.Handle("GET /console/customers/{id}", c.authed(c.customer))
	c.mux.Handle("POST /console/customers/{id}/resolve", c.authed(c.resolveNow))
	c.mux.Handle("GET /console/rejected", c.authed(c.rejected))
	c.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error", nil, errorData{Title: "Not found", Message: "no such console page"})
	})
	return c
}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"fmtTime": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"login", "error", "overview", "events", "event", "customer", "rejected", "replaymatching"} {
		pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return pages
}

// ServeHTTP sets the security headers and routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

// view is what every page template gets.
type view struct {
	Title    string
	LoggedIn bool
	CSRF     string
	Flash    string
	Data     any
}

type errorData struct{ Title, Message string }

// render executes a page; se is nil for pages outside a session.
func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, page string, se *reqSession, data any) {
	v := view{Title: page, Data: data}
	if se != nil {
		v.LoggedIn, v.CSRF = true, se.csrf
		v.Flash = c.sessions.takeFlash(se.id)
	}
	if e, ok := data.(errorData); ok {
		v.Title = e.Title
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := c.pages[page].Execute(w, v); err != nil {
		c.cfg.Logger.WarnContext(r.Context(), "console: render", "page", page, "err", err)
	}
}

// reqSession is the session of a request.
type reqSession struct {
	id   string
	csrf string
}

// authed requires a live session, and for POSTs the session's CSRF token
// in the form field csrf (403 without).
func (c *Console) authed(next func(http.ResponseWriter, *http.Request, *reqSession)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(cookieName)
		var se session
		ok := err == nil
		if ok {
			se, ok = c.sessions.get(ck.Value)
		}
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
				return
			}
			c.render(w, r, http.StatusUnauthorized, "error", nil, errorData{Title: "Not logged in", Message: "log in first"})
			return
		}
		rs := &reqSession{id: ck.Value, csrf: se.csrf}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			got := r.PostFormValue("csrf")
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(se.csrf)) != 1 {
				c.render(w, r, http.StatusForbidden, "error", rs, errorData{Title: "Forbidden", Message: "missing or wrong CSRF token: reload the page and try again"})
				return
			}
		}
		next(w, r, rs)
	})
}

// loginOpen says whether any login can succeed.
func (c *Console) loginOpen() bool {
	return c.cfg.CheckAdminToken != nil && c.cfg.HasAdminToken != nil && c.cfg.HasAdminToken()
}

type loginData struct {
	Open    bool
	Message string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", nil, loginData{Open: c.loginOpen()})
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !c.loginOpen() {
		c.render(w, r, http.StatusForbidden, "login", nil, loginData{Message: "no admin-scope token is configured: the console is closed"})
		return
	}
	ip := remoteIP(r)
	if c.limit.blocked(ip) {
		w.Header().Set("Retry-After", "60")
		c.render(w, r, http.StatusTooManyRequests, "login", nil, loginData{Open: true, Message: "too many failed logins: wait a minute"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	token := r.PostFormValue("token")
	if token == "" || !c.cfg.CheckAdminToken(token) {
		c.limit.fail(ip)
		c.cfg.Logger.WarnContext(r.Context(), "console: failed login", "remote", ip)
		c.render(w, r, http.StatusUnauthorized, "login", nil, loginData{Open: true, Message: "invalid token"})
		return
	}
	id, _ := c.sessions.create()
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: id, Path: Prefix,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		MaxAge: int(c.cfg.SessionTTL / time.Second),
	})
	c.cfg.Logger.InfoContext(r.Context(), "console: login", "remote", ip)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, se *reqSession) {
	c.sessions.delete(se.id)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
