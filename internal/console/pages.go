package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/hookd/hookd/provider/stripe"
	"github.com/hookd/hookd/store"
)

// Bounds on what one page reads from the store.
const (
	// overviewWindow is how many of the newest events the overview counts
	// by status when the store has no count query.
	overviewWindow = 1000
	// countTTL is how long the overview reuses its count of events by
	// status: counting reads the whole events index.
	countTTL = 10 * time.Second
	// parkedLimit bounds the parked count and list.
	parkedLimit   = 500
	eventsPerPage = 50
	// notificationScan bounds the customer's notifications read for an
	// event page; deliveryScan its deliveries.
	notificationScan = 1000
	deliveryScan     = 500
	timelineLimit    = 200
	statePageBytes   = 4 << 20
)

var statuses = []store.Status{store.StatusApplied, store.StatusDuplicate, store.StatusParked, store.StatusIgnored, store.StatusSuperseded}

type statusCount struct {
	Status store.Status
	Count  int64
}

type overviewData struct {
	// Counts are every stored event's, by status (of the newest
	// overviewWindow only when Windowed: a store without a count query),
	// as counted at CountedAt (at most countTTL ago).
	Counts     []statusCount
	Total      int64
	CountedAt  time.Time
	Windowed   bool
	Parked     []store.Event
	ParkedMore bool
	// ParkedCustomers are the customers of Parked, in order, each once;
	// CanResolve: each gets a "Resolve now" button.
	ParkedCustomers []string
	CanResolve      bool
	Backlog         []store.EndpointBacklog
	HasBacklog      bool
	Rejected        int
	// EventRate is the overview's events/s ("measuring" on the first
	// view); HasSubscribers: Subscribers is the open notification
	// streams.
	EventRate      string
	HasSubscribers bool
	Subscribers    int64
	// NotificationLag is the streams' lag p50 and p99 ("" when not
	// measured yet).
	NotificationLag string
	Errors          []string
}

// statusCounts is one count of the events by status.
type statusCounts struct {
	byStatus map[store.Status]int64
	at       time.Time
	windowed bool
}

// countCache keeps the overview's count for countTTL, so that a page
// reloaded (or several operators) do not each scan the events index; one
// count runs at a time.
type countCache struct {
	mu   sync.Mutex
	last statusCounts
}

func (cc *countCache) get(ctx context.Context, st store.Store, now time.Time) (statusCounts, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.last.byStatus != nil && now.Sub(cc.last.at) < countTTL {
		return cc.last, nil
	}
	c := statusCounts{byStatus: map[store.Status]int64{}, at: now}
	if counter, ok := store.Counter(st); ok {
		m, err := counter.CountEvents(ctx)
		if err != nil {
			return c, err
		}
		c.byStatus = m
	} else {
		c.windowed = true
		for n, token := 0, ""; n < overviewWindow; {
			evs, next, err := st.ListEvents(ctx, store.ListEventsFilter{PageSize: min(500, overviewWindow-n), PageToken: token, MaxBytes: statePageBytes})
			if err != nil {
				return c, err
			}
			for _, e := range evs {
				c.byStatus[e.Status]++
			}
			n += len(evs)
			if next == "" {
				break
			}
			token = next
		}
	}
	cc.last = c
	return c, nil
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, se *reqSession) {
	ctx := r.Context()
	var d overviewData
	counts, err := c.counts.get(ctx, c.cfg.Store, c.cfg.Now())
	if err != nil {
		d.Errors = append(d.Errors, "count events: "+err.Error())
	}
	for _, s := range statuses {
		d.Counts = append(d.Counts, statusCount{s, counts.byStatus[s]})
		d.Total += counts.byStatus[s]
	}
	d.CountedAt, d.Windowed = counts.at, counts.windowed
	parked, next, err := c.cfg.Store.ListEvents(ctx, store.ListEventsFilter{Status: store.StatusParked, PageSize: parkedLimit, MaxBytes: statePageBytes})
	if err != nil {
		d.Errors = append(d.Errors, "list parked events: "+err.Error())
	}
	d.Parked, d.ParkedMore = parked, next != ""
	d.CanResolve = c.cfg.ResolveNow != nil
	seen := map[string]bool{}
	for _, e := range parked {
		if e.CustomerID != "" && !seen[e.CustomerID] {
			seen[e.CustomerID] = true
			d.ParkedCustomers = append(d.ParkedCustomers, e.CustomerID)
		}
	}
	if ds, ok := store.Deliveries(c.cfg.Store); ok {
		d.HasBacklog = true
		if d.Backlog, err = ds.Backlog(ctx); err != nil {
			d.Errors = append(d.Errors, "endpoint backlog: "+err.Error())
		}
	}
	d.Rejected = len(c.cfg.Rejections.List())
	d.EventRate = c.eventRate(&d)
	if c.cfg.Subscribers != nil {
		d.HasSubscribers, d.Subscribers = true, c.cfg.Subscribers()
	}
	if c.cfg.Metrics != nil {
		if b, n, ok := histogramQuantiles(c.cfg.Metrics, lagMetric, 0.5, 0.99); ok {
			d.NotificationLag = fmt.Sprintf("p50 %s, p99 %s (%d notifications sent)", fmtBound(b[0]), fmtBound(b[1]), n)
		}
	}
	c.render(w, r, http.StatusOK, "overview", se, d)
}

type eventsData struct {
	Query    eventQuery
	Statuses []store.Status
	Events   []store.Event
	Filtered bool // some filter is set: "Replay all matching" is offered
	// NextQuery is the next page's query string ("" on the last):
	// template.URL, or html/template would escape its "=" and "&" (it
	// comes from url.Values.Encode).
	NextQuery template.URL
	CanReplay bool
	Error     string
}

func (c *Console) events(w http.ResponseWriter, r *http.Request, se *reqSession) {
	q := r.URL.Query()
	d := eventsData{Query: readEventQuery(q.Get), Statuses: statuses, CanReplay: c.cfg.Replay != nil}
	d.Filtered = d.Query.any()
	f, err := d.Query.filter()
	if err != nil {
		c.render(w, r, http.StatusBadRequest, "error", se, errorData{Title: "Bad request", Message: err.Error()})
		return
	}
	f.PageSize, f.PageToken, f.MaxBytes = eventsPerPage, q.Get("page"), statePageBytes
	evs, next, err := c.cfg.Store.ListEvents(r.Context(), f)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, store.ErrInvalidArgument) {
			code = http.StatusBadRequest
		}
		c.render(w, r, code, "error", se, errorData{Title: "Cannot list events", Message: err.Error()})
		return
	}
	d.Events = evs
	if next != "" {
		v := d.Query.values()
		v.Set("page", next)
		d.NextQuery = template.URL(v.Encode())
	}
	c.render(w, r, http.StatusOK, "events", se, d)
}

func validStatus(s store.Status) bool {
	for _, v := range statuses {
		if v == s {
			return true
		}
	}
	return false
}

type notificationRow struct {
	Version int64
	Kind    string
	EventID string
	At      string
}

type eventData struct {
	Event         store.Event
	Payload       string
	Notifications []notificationRow
	NotesBounded  bool
	Deliveries    []store.Delivery
	HasDeliveries bool
	CanReplay     bool
	CanResolve    bool // a parked event of a customer, and ResolveNow set
	Errors        []string
}

func prettyJSON(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}

func (c *Console) event(w http.ResponseWriter, r *http.Request, se *reqSession) {
	ctx := r.Context()
	e, err := c.cfg.Store.GetEvent(ctx, stripe.Source, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		c.render(w, r, http.StatusNotFound, "error", se, errorData{Title: "Not found", Message: "no event " + r.PathValue("id")})
		return
	}
	if err != nil {
		c.render(w, r, http.StatusInternalServerError, "error", se, errorData{Title: "Cannot read event", Message: err.Error()})
		return
	}
	d := eventData{Event: e, Payload: prettyJSON(e.Payload), CanReplay: c.cfg.Replay != nil,
		CanResolve: c.cfg.ResolveNow != nil && e.Status == store.StatusParked && e.CustomerID != ""}
	if e.CustomerID != "" {
		notes, err := c.cfg.Store.ReadNotifications(ctx, "", e.CustomerID, notificationScan)
		if err != nil {
			d.Errors = append(d.Errors, "notifications: "+err.Error())
		}
		d.NotesBounded = len(notes) == notificationScan
		for _, n := range notes {
			if n.EventID == e.EventID || (e.Version != 0 && n.Version == e.Version) {
				d.Notifications = append(d.Notifications, notificationRow{n.Version, n.Kind, n.EventID, n.OccurredAt.UTC().Format("2006-01-02 15:04:05Z")})
			}
		}
		if ds, ok := store.Deliveries(c.cfg.Store); ok {
			d.HasDeliveries = true
			dels, _, err := ds.ListDeliveries(ctx, store.DeliveryFilter{CustomerID: e.CustomerID, PageSize: deliveryScan})
			if err != nil {
				d.Errors = append(d.Errors, "deliveries: "+err.Error())
			}
			for _, dl := range dels {
				if dl.Notification.EventID == e.EventID {
					d.Deliveries = append(d.Deliveries, dl)
				}
			}
		}
	}
	c.render(w, r, http.StatusOK, "event", se, d)
}

func (c *Console) replay(w http.ResponseWriter, r *http.Request, se *reqSession) {
	id := r.PathValue("id")
	if c.cfg.Replay == nil {
		c.render(w, r, http.StatusNotImplemented, "error", se, errorData{Title: "Replay unavailable", Message: "this process cannot replay events"})
		return
	}
	status, err := c.cfg.Replay(r.Context(), id)
	msg := "replay of " + id + ": " + status
	if err != nil {
		msg = "replay of " + id + " failed: " + err.Error()
	}
	c.cfg.Logger.InfoContext(r.Context(), "console: replay", "event_id", id, "status", status, "err", err)
	c.sessions.setFlash(se.id, msg)
	http.Redirect(w, r, Prefix+"events/"+url.PathEscape(id), http.StatusSeeOther)
}

type customerData struct {
	ID        string
	Found     bool
	Version   int64
	UpdatedAt string
	State     string
	Timeline  []store.Event
	More      bool
	Errors    []string
}

func (c *Console) customer(w http.ResponseWriter, r *http.Request, se *reqSession) {
	ctx := r.Context()
	d := customerData{ID: r.PathValue("id")}
	cu, err := c.cfg.Store.GetCustomer(ctx, d.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		d.Errors = append(d.Errors, "customer: "+err.Error())
	default:
		d.Found, d.Version, d.State = true, cu.Version, prettyJSON(cu.State)
		d.UpdatedAt = cu.UpdatedAt.UTC().Format("2006-01-02 15:04:05Z")
	}
	evs, next, err := c.cfg.Store.ListEvents(ctx, store.ListEventsFilter{CustomerID: d.ID, PageSize: timelineLimit, MaxBytes: statePageBytes})
	if err != nil {
		d.Errors = append(d.Errors, "events: "+err.Error())
	}
	// Oldest first: the version timeline.
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	d.Timeline, d.More = evs, next != ""
	if !d.Found && len(evs) == 0 && len(d.Errors) == 0 {
		c.render(w, r, http.StatusNotFound, "error", se, errorData{Title: "Not found", Message: "no customer " + d.ID})
		return
	}
	c.render(w, r, http.StatusOK, "customer", se, d)
}

func (c *Console) rejected(w http.ResponseWriter, r *http.Request, se *reqSession) {
	c.render(w, r, http.StatusOK, "rejected", se, struct {
		Enabled bool
		List    []Rejection
	}{c.cfg.Rejections != nil, c.cfg.Rejections.List()})
}

// resolveNow resolves the customer's parked events now; back to the event
// page when the form names an event, else to the overview.
func (c *Console) resolveNow(w http.ResponseWriter, r *http.Request, se *reqSession) {
	id := r.PathValue("id")
	if c.cfg.ResolveNow == nil {
		c.render(w, r, http.StatusNotImplemented, "error", se, errorData{Title: "Resolve unavailable", Message: "this process cannot resolve parked events"})
		return
	}
	n, err := c.cfg.ResolveNow(r.Context(), id)
	msg := fmt.Sprintf("resolve now for %s: %d parked events released", id, n)
	if err != nil {
		msg = "resolve now for " + id + " failed: " + err.Error()
	}
	c.cfg.Logger.InfoContext(r.Context(), "console: resolve now", "customer_id", id, "released", n, "err", err)
	c.sessions.setFlash(se.id, msg)
	back := Prefix
	if ev := r.PostFormValue("event"); ev != "" {
		back = Prefix + "events/" + url.PathEscape(ev)
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// eventRate samples the webhook events counter and says its rate over
// about the last minute.
func (c *Console) eventRate(d *overviewData) string {
	total, found, err := counterTotal(c.cfg.gatherer, webhookEventsMetric)
	if err != nil {
		d.Errors = append(d.Errors, "metrics: "+err.Error())
		if !found {
			return "unknown"
		}
	}
	rate, over, ok := c.eventMeter.observe(c.cfg.Now(), total)
	if !ok {
		return "measuring (reload in a few seconds)"
	}
	return fmt.Sprintf("%.1f (over the last %s)", rate, over.Round(time.Second))
}
