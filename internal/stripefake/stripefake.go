// Package stripefake is a small fake of the Stripe API's list endpoints
// (GET /v1/events, /v1/customers, /v1/subscriptions) over real HTTP on
// loopback, for tests that need many events, exact paging or 429s, which
// stripe-mock (internal/stripemock) does not offer: stripe-mock answers
// every list with the same fixture. Its envelopes and errors have Stripe's
// shape (checked against stripe-mock by the package's tests).
package stripefake

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	seq      int64
	lists    map[string][]item // by path ("/v1/events")
	requests []string
	every    int // answer every n-th request with a 429 (0: never)
	count    int // requests seen
}

type item struct {
	id      string
	created int64
	seq     int64 // insertion order
	typ     string
	status  string
	raw     json.RawMessage
}

// New starts a fake on 127.0.0.1; Close stops it.
func New() *Server {
	s := &Server{lists: make(map[string][]item)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the fake's base URL (for the client's API URL).
func (s *Server) URL() string { return s.srv.URL }

// Close stops the fake.
func (s *Server) Close() { s.srv.Close() }

// AddEvent adds an event; its id, created and type are read from it. It
// panics on JSON without an id (a broken test).
func (s *Server) AddEvent(raw []byte) { s.add("/v1/events", raw) }

// AddObject adds an object of kind "customers" or "subscriptions" (its
// id, created and, for a subscription, status are read from it). It
// panics on another kind or JSON without an id.
func (s *Server) AddObject(kind string, raw []byte) {
	switch kind {
	case "customers", "subscriptions":
	default:
		panic("stripefake: unknown object kind " + kind)
	}
	s.add("/v1/"+kind, raw)
}

func (s *Server) add(path string, raw []byte) {
	var head struct {
		ID      string `json:"id"`
		Created int64  `json:"created"`
		Type    string `json:"type"`
		Status  string `json:"status"`
	}
	if err := json.Unmarshal(raw, &head); err != nil || head.ID == "" {
		panic(fmt.Sprintf("stripefake: %s item without an id (%v): %s", path, err, raw))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.lists[path] = append(s.lists[path], item{
		id: head.ID, created: head.Created, seq: s.seq, typ: head.Type, status: head.Status,
		raw: append(json.RawMessage(nil), raw...),
	})
}

// Requests returns the path and query of every request seen, in order
// (429s and 401s included).
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Fail429Every makes every n-th request (counting from now on, all paths)
// answer 429 with Retry-After: 1 and Stripe's rate-limit error; n <= 0
// stops it.
func (s *Server) Fail429Every(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.every, s.count = n, 0
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.RequestURI())
	s.count++
	limited := s.every > 0 && s.count%s.every == 0
	n := len(s.requests)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_fake_"+strconv.Itoa(n))
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer sk_") {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "",
			"You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
		return
	}
	if limited {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "invalid_request_error", "rate_limit",
			"Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.")
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "", "stripefake serves GET only")
		return
	}
	switch r.URL.Path {
	case "/v1/events", "/v1/customers", "/v1/subscriptions":
	default:
		writeError(w, http.StatusNotFound, "invalid_request_error", "",
			fmt.Sprintf("Unrecognized request URL (GET: %s).", r.URL.Path))
		return
	}
	body, status, err := s.list(r.URL.Path, r.URL.Query())
	if err != nil {
		writeError(w, status, "invalid_request_error", "", err.Error())
		return
	}
	_, _ = w.Write(body)
}

// list answers one list request: filter, order newest first, page.
func (s *Server) list(path string, q url.Values) ([]byte, int, error) {
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, http.StatusBadRequest, fmt.Errorf("Invalid integer: %s", v)
		}
		limit = n
	}
	var bounds [4]*int64 // gte, gt, lte, lt
	for i, op := range []string{"gte", "gt", "lte", "lt"} {
		if v := q.Get("created[" + op + "]"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, http.StatusBadRequest, fmt.Errorf("Invalid integer: %s", v)
			}
			bounds[i] = &n
		}
	}
	after, before := q.Get("starting_after"), q.Get("ending_before")
	if after != "" && before != "" {
		return nil, http.StatusBadRequest, fmt.Errorf("You may only specify one of these parameters: ending_before, starting_after.")
	}
	typ, status := q.Get("type"), q.Get("status")

	s.mu.Lock()
	all := slices.Clone(s.lists[path])
	s.mu.Unlock()
	slices.SortStableFunc(all, func(a, b item) int {
		return cmp.Or(cmp.Compare(b.created, a.created), cmp.Compare(b.seq, a.seq))
	})
	var sel []item
	for _, it := range all {
		switch {
		case bounds[0] != nil && it.created < *bounds[0],
			bounds[1] != nil && it.created <= *bounds[1],
			bounds[2] != nil && it.created > *bounds[2],
			bounds[3] != nil && it.created >= *bounds[3]:
			continue
		case path == "/v1/events" && typ != "" && !matchType(typ, it.typ):
			continue
		case path == "/v1/subscriptions" && !matchStatus(status, it.status):
			continue
		}
		sel = append(sel, it)
	}

	var page []item
	var more bool
	switch {
	case after != "":
		i := slices.IndexFunc(sel, func(it item) bool { return it.id == after })
		if i < 0 {
			return nil, http.StatusBadRequest, fmt.Errorf("No such object: '%s'", after)
		}
		rest := sel[i+1:]
		page, more = rest[:min(limit, len(rest))], len(rest) > limit
	case before != "":
		i := slices.IndexFunc(sel, func(it item) bool { return it.id == before })
		if i < 0 {
			return nil, http.StatusBadRequest, fmt.Errorf("No such object: '%s'", before)
		}
		rest := sel[:i]
		page, more = rest[max(0, len(rest)-limit):], len(rest) > limit
	default:
		page, more = sel[:min(limit, len(sel))], len(sel) > limit
	}
	// Built by hand: json.Marshal would compact the items, which are
	// served exactly as added.
	body := fmt.Appendf(nil, `{"object":"list","data":[`)
	for i, it := range page {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, it.raw...)
	}
	body = fmt.Appendf(body, `],"has_more":%t,"url":%q}`, more, path)
	return body, http.StatusOK, nil
}

// matchType is the Events API's type filter: an exact type, or a prefix
// with a trailing "*" ("invoice.*").
func matchType(filter, typ string) bool {
	if p, ok := strings.CutSuffix(filter, "*"); ok {
		return strings.HasPrefix(typ, p)
	}
	return filter == typ
}

// matchStatus is the subscription list's status filter: by default every
// subscription but canceled ones, "all" every one.
func matchStatus(filter, status string) bool {
	switch filter {
	case "":
		return status != "canceled"
	case "all":
		return true
	}
	return filter == status
}

// writeError answers with Stripe's error shape.
func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	e := map[string]string{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	body, _ := json.Marshal(map[string]any{"error": e})
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
