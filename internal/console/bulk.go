package console

import (
	"errors"
	"net/http"
	"sort"

	"github.com/hookd/hookd/store"
)

// Bounds on "Replay all matching".
const (
	// bulkReplayLimit is the most events one confirmation counts and one
	// POST replays.
	bulkReplayLimit = 10000
	bulkPageSize    = 500
	// bulkErrorsShown bounds the errors listed on the summary (all are
	// counted).
	bulkErrorsShown = 20
)

type bulkStatusCount struct {
	Status string
	Count  int
}

type replayMatchingData struct {
	Status   string
	Customer string
	Count    int
	AtLimit  bool // Count reached bulkReplayLimit: "10,000 or more"
	Limit    string
	Done     bool // the POST's summary
	Replayed int
	ByStatus []bulkStatusCount
	Failed   int
	Errors   []string
	Error    string // listing the events failed part way
}

// bulkFilter reads and checks the filter of a "Replay all matching"
// request (query or form); ok false: a page was rendered.
func (c *Console) bulkFilter(w http.ResponseWriter, r *http.Request, se *reqSession, status, customer string) (store.ListEventsFilter, bool) {
	f := store.ListEventsFilter{CustomerID: customer, Status: store.Status(status), PageSize: bulkPageSize, MaxBytes: statePageBytes}
	if c.cfg.Replay == nil {
		c.render(w, r, http.StatusNotImplemented, "error", se, errorData{Title: "Replay unavailable", Message: "this process cannot replay events"})
		return f, false
	}
	if status == "" && customer == "" {
		c.render(w, r, http.StatusBadRequest, "error", se, errorData{Title: "Filter too broad",
			Message: "replaying every stored event is refused: filter by a status or a customer (or both) first"})
		return f, false
	}
	if status != "" && !validStatus(f.Status) {
		c.render(w, r, http.StatusBadRequest, "error", se, errorData{Title: "Bad request", Message: "unknown status " + status})
		return f, false
	}
	return f, true
}

// matchingEvents pages through the events matching f, calling each for
// every one, up to bulkReplayLimit; it returns how many it saw.
func (c *Console) matchingEvents(r *http.Request, f store.ListEventsFilter, each func(store.Event)) (int, error) {
	n := 0
	for n < bulkReplayLimit {
		f.PageSize = min(bulkPageSize, bulkReplayLimit-n)
		evs, next, err := c.cfg.Store.ListEvents(r.Context(), f)
		if err != nil {
			return n, err
		}
		for _, e := range evs {
			if n == bulkReplayLimit {
				break
			}
			n++
			if each != nil {
				each(e)
			}
		}
		if next == "" {
			break
		}
		f.PageToken = next
	}
	return n, nil
}

func listError(err error) (int, string) {
	if errors.Is(err, store.ErrInvalidArgument) {
		return http.StatusBadRequest, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

// replayMatchingConfirm counts the matching events and asks to confirm.
func (c *Console) replayMatchingConfirm(w http.ResponseWriter, r *http.Request, se *reqSession) {
	q := r.URL.Query()
	d := replayMatchingData{Status: q.Get("status"), Customer: q.Get("customer"), Limit: "10,000"}
	f, ok := c.bulkFilter(w, r, se, d.Status, d.Customer)
	if !ok {
		return
	}
	n, err := c.matchingEvents(r, f, nil)
	if err != nil {
		code, msg := listError(err)
		c.render(w, r, code, "error", se, errorData{Title: "Cannot list events", Message: msg})
		return
	}
	d.Count, d.AtLimit = n, n >= bulkReplayLimit
	c.render(w, r, http.StatusOK, "replaymatching", se, d)
}

// replayMatching replays every matching event (up to bulkReplayLimit),
// one after the other, and shows what became of them. The IDs are listed
// first: a replay may change an event's status, and so the listing.
func (c *Console) replayMatching(w http.ResponseWriter, r *http.Request, se *reqSession) {
	d := replayMatchingData{Status: r.PostFormValue("status"), Customer: r.PostFormValue("customer"), Limit: "10,000", Done: true}
	f, ok := c.bulkFilter(w, r, se, d.Status, d.Customer)
	if !ok {
		return
	}
	var ids []string
	_, err := c.matchingEvents(r, f, func(e store.Event) { ids = append(ids, e.EventID) })
	if err != nil {
		d.Error = "listing the events stopped: " + err.Error() + " (only those listed before were replayed)"
	}
	by := map[string]int{}
	ctx := r.Context()
	for _, id := range ids {
		if ctx.Err() != nil {
			d.Error = "stopped: " + ctx.Err().Error()
			break
		}
		status, err := c.cfg.Replay(ctx, id)
		d.Replayed++
		if err != nil {
			d.Failed++
			if len(d.Errors) < bulkErrorsShown {
				d.Errors = append(d.Errors, id+": "+err.Error())
			}
			continue
		}
		by[status]++
	}
	for s, n := range by {
		d.ByStatus = append(d.ByStatus, bulkStatusCount{s, n})
	}
	sort.Slice(d.ByStatus, func(i, j int) bool { return d.ByStatus[i].Status < d.ByStatus[j].Status })
	d.Count, d.AtLimit = len(ids), len(ids) >= bulkReplayLimit
	c.cfg.Logger.InfoContext(ctx, "console: replay matching", "status", d.Status, "customer_id", d.Customer,
		"events", d.Replayed, "failed", d.Failed)
	c.render(w, r, http.StatusOK, "replaymatching", se, d)
}
