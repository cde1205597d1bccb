package console

import (
	"errors"
	"html/template"
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
	Query    eventQuery
	BackQS   template.URL // the events page's query string for this filter (see eventsData.MatchQS)
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

// bulkFilter checks the filter of a "Replay all matching" request (query
// or form); ok false: a page was rendered.
func (c *Console) bulkFilter(w http.ResponseWriter, r *http.Request, se *reqSession, q eventQuery) (store.ListEventsFilter, bool) {
	f, err := q.filter()
	f.PageSize, f.MaxBytes = bulkPageSize, statePageBytes
	if c.cfg.Replay == nil {
		c.render(w, r, http.StatusNotImplemented, "error", se, errorData{Title: "Replay unavailable", Message: "this process cannot replay events"})
		return f, false
	}
	if !q.any() {
		c.render(w, r, http.StatusBadRequest, "error", se, errorData{Title: "Filter too broad",
			Message: "replaying every stored event is refused: filter by a status, customer, type or time first"})
		return f, false
	}
	if err != nil {
		c.render(w, r, http.StatusBadRequest, "error", se, errorData{Title: "Bad request", Message: err.Error()})
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
	d := replayMatchingData{Query: readEventQuery(r.URL.Query().Get), Limit: "10,000"}
	d.BackQS = template.URL(d.Query.values().Encode())
	f, ok := c.bulkFilter(w, r, se, d.Query)
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
	d := replayMatchingData{Query: readEventQuery(r.PostFormValue), Limit: "10,000", Done: true}
	d.BackQS = template.URL(d.Query.values().Encode())
	f, ok := c.bulkFilter(w, r, se, d.Query)
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
	c.cfg.Logger.InfoContext(ctx, "console: replay matching", "status", d.Query.Status, "customer_id", d.Query.Customer,
		"type", d.Query.Type, "from", d.Query.From, "until", d.Query.Until,
		"events", d.Replayed, "failed", d.Failed)
	c.render(w, r, http.StatusOK, "replaymatching", se, d)
}
