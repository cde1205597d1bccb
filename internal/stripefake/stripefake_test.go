package stripefake_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookd/hookd/internal/stripefake"
	"github.com/hookd/hookd/internal/stripemock"
	"github.com/hookd/hookd/provider/stripe"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// list is a decoded list answer.
type list struct {
	Object  string            `json:"object"`
	URL     string            `json:"url"`
	HasMore bool              `json:"has_more"`
	Data    []json.RawMessage `json:"data"`
}

func get(t *testing.T, base, pathQuery, key string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+pathQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func ids(t *testing.T, body []byte) ([]string, bool) {
	t.Helper()
	var l list
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	var out []string
	for _, d := range l.Data {
		var h struct{ ID string }
		if err := json.Unmarshal(d, &h); err != nil {
			t.Fatal(err)
		}
		out = append(out, h.ID)
	}
	return out, l.HasMore
}

// Events list newest first (created desc, then the later added first);
// starting_after, ending_before, has_more, limit and the created and type
// filters page as Stripe's do.
func TestEventsPaging(t *testing.T) {
	t.Parallel()
	f := stripefake.New()
	t.Cleanup(f.Close)
	// evt_1..evt_6 at created 100,100,200,200,300,300.
	for i := 1; i <= 6; i++ {
		typ := "customer.updated"
		if i%2 == 0 {
			typ = "invoice.paid"
		}
		f.AddEvent(fmt.Appendf(nil, `{"id":"evt_%d","object":"event","type":%q,"created":%d}`, i, typ, 100*((i+1)/2)))
	}
	const key = "sk_test_x"
	for _, tc := range []struct {
		query string
		want  []string
		more  bool
	}{
		{"", []string{"evt_6", "evt_5", "evt_4", "evt_3", "evt_2", "evt_1"}, false},
		{"?limit=2", []string{"evt_6", "evt_5"}, true},
		{"?limit=2&starting_after=evt_5", []string{"evt_4", "evt_3"}, true},
		{"?limit=2&starting_after=evt_3", []string{"evt_2", "evt_1"}, false},
		{"?limit=2&ending_before=evt_2", []string{"evt_4", "evt_3"}, true},
		{"?limit=2&ending_before=evt_4", []string{"evt_6", "evt_5"}, false},
		{"?created[gte]=200&created[lte]=200", []string{"evt_4", "evt_3"}, false},
		{"?created[gt]=100&created[lt]=300", []string{"evt_4", "evt_3"}, false},
		{"?created[gte]=200&limit=3&starting_after=evt_5", []string{"evt_4", "evt_3"}, false},
		{"?type=invoice.paid", []string{"evt_6", "evt_4", "evt_2"}, false},
		{"?type=customer.*&limit=1", []string{"evt_5"}, true},
	} {
		code, body := get(t, f.URL(), "/v1/events"+tc.query, key)
		if code != http.StatusOK {
			t.Errorf("%s: status %d: %s", tc.query, code, body)
			continue
		}
		got, more := ids(t, body)
		if !slices.Equal(got, tc.want) || more != tc.more {
			t.Errorf("%s: got %v has_more=%v, want %v has_more=%v", tc.query, got, more, tc.want, tc.more)
		}
	}
	if code, body := get(t, f.URL(), "/v1/events?starting_after=evt_404", key); code != http.StatusBadRequest || !strings.Contains(string(body), `"error"`) {
		t.Errorf("unknown cursor: got %d %s, want 400 with an error", code, body)
	}
	if code, body := get(t, f.URL(), "/v1/events?limit=101", key); code != http.StatusBadRequest {
		t.Errorf("limit=101: got %d %s, want 400", code, body)
	}
	code, body := get(t, f.URL(), "/v1/events", "")
	var e struct {
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal(body, &e); code != http.StatusUnauthorized || err != nil || e.Error.Type != "invalid_request_error" {
		t.Errorf("no key: got %d %s, want 401 with Stripe's error", code, body)
	}
	if reqs := f.Requests(); len(reqs) != 14 || reqs[1] != "/v1/events?limit=2" {
		t.Errorf("Requests: got %d %q, want 14 starting /v1/events, /v1/events?limit=2", len(reqs), reqs)
	}
}

// Subscriptions list without canceled ones unless status=all; customers
// page like events.
func TestObjectsPaging(t *testing.T) {
	t.Parallel()
	f := stripefake.New()
	t.Cleanup(f.Close)
	f.AddObject("subscriptions", []byte(`{"id":"sub_1","object":"subscription","created":1,"status":"active"}`))
	f.AddObject("subscriptions", []byte(`{"id":"sub_2","object":"subscription","created":2,"status":"canceled"}`))
	f.AddObject("customers", []byte(`{"id":"cus_1","object":"customer","created":5}`))
	f.AddObject("customers", []byte(`{"id":"cus_2","object":"customer","created":5}`))
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/v1/subscriptions", []string{"sub_1"}},
		{"/v1/subscriptions?status=all", []string{"sub_2", "sub_1"}},
		{"/v1/subscriptions?status=canceled", []string{"sub_2"}},
		{"/v1/customers", []string{"cus_2", "cus_1"}},
		{"/v1/customers?starting_after=cus_2", []string{"cus_1"}},
	} {
		code, body := get(t, f.URL(), tc.path, "sk_test_x")
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.path, code, body)
		}
		if got, _ := ids(t, body); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.path, got, tc.want)
		}
	}
}

// Through the Client: every page of 250 events in turn, each item's JSON
// byte for byte as added; every 2nd request answered 429 is waited out
// (Retry-After: 1).
func TestClientPagesThroughFake(t *testing.T) {
	t.Parallel()
	f := stripefake.New()
	t.Cleanup(f.Close)
	want := map[string]string{}
	for i := range 250 {
		raw := fmt.Sprintf(`{"id":"evt_%03d", "object":"event","created":%d,"type":"x"}`, i, 1_000+i)
		f.AddEvent([]byte(raw))
		want[fmt.Sprintf("evt_%03d", i)] = raw
	}
	c := stripe.NewClient("sk_test_x", f.URL(), slog.New(slog.DiscardHandler))
	f.Fail429Every(2)
	var (
		cursor string
		pages  int
		seen   = map[string]bool{}
	)
	start := time.Now()
	for {
		p, err := c.ListEvents(t.Context(), time.Unix(1_000, 0), time.Unix(2_000, 0), cursor)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		for _, it := range p.Items {
			if string(it.JSON) != want[it.ID] || seen[it.ID] {
				t.Fatalf("item %s: got %s (seen before: %v), want %s", it.ID, it.JSON, seen[it.ID], want[it.ID])
			}
			seen[it.ID] = true
		}
		if !p.HasMore {
			break
		}
		cursor = p.Next
	}
	if pages != 3 || len(seen) != 250 {
		t.Errorf("got %d pages, %d events; want 3, 250", pages, len(seen))
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("3 pages with two 429s took %v; Retry-After: 1 was not honoured", d)
	}
	reqs := f.Requests()
	if len(reqs) != 5 || !strings.Contains(reqs[0], "created[gte]=1000") || !strings.Contains(reqs[0], "created[lte]=2000") || !strings.Contains(reqs[0], "limit=100") {
		t.Errorf("requests: got %q, want 5 (3 pages, 2 answered 429) with limit and created bounds", reqs)
	}
}

// The fake's envelopes have the keys stripe-mock's (a real server for the
// Stripe API) have, and the Client decodes both alike.
func TestShapeMatchesStripeMock(t *testing.T) {
	t.Parallel()
	mock := stripemock.Start(t) // skips unless installed or HOOKD_REQUIRE_STRIPE_MOCK
	f := stripefake.New()
	t.Cleanup(f.Close)
	f.AddEvent([]byte(`{"id":"evt_1","object":"event","type":"customer.updated","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}}}`))
	f.AddObject("customers", []byte(`{"id":"cus_1","object":"customer","created":1700000000}`))
	f.AddObject("subscriptions", []byte(`{"id":"sub_1","object":"subscription","created":1700000000,"status":"active"}`))
	const key = "sk_test_hookd"
	for _, path := range []string{"/v1/events", "/v1/customers", "/v1/subscriptions"} {
		keys := func(base string) []string {
			code, body := get(t, base, path, key)
			if code != http.StatusOK {
				t.Fatalf("%s%s: %d %s", base, path, code, body)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			var ks []string
			for k := range m {
				ks = append(ks, k)
			}
			slices.Sort(ks)
			return ks
		}
		if got, want := keys(f.URL()), keys(mock); !slices.Equal(got, want) {
			t.Errorf("%s: fake's envelope keys %v, stripe-mock's %v", path, got, want)
		}
	}
	for name, base := range map[string]string{"fake": f.URL(), "stripe-mock": mock} {
		c := stripe.NewClient(key, base, slog.New(slog.DiscardHandler))
		ev, err := c.ListEvents(t.Context(), time.Now().Add(-24*time.Hour), time.Now(), "")
		if err != nil {
			t.Errorf("%s: ListEvents: %v", name, err)
		}
		for _, kind := range []string{"customers", "subscriptions"} {
			p, err := c.ListObjects(t.Context(), kind, "")
			if err != nil {
				t.Errorf("%s: ListObjects(%s): %v", name, kind, err)
				continue
			}
			if len(p.Items) == 0 || p.Items[0].ID == "" || p.Items[0].Created.IsZero() || p.Next != p.Items[len(p.Items)-1].ID {
				t.Errorf("%s: ListObjects(%s): got %+v, want items with id and created", name, kind, p)
			}
		}
		_ = ev // stripe-mock lists its fixture whatever the created bounds
	}
}
