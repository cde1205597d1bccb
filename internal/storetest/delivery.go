package storetest

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/store"
)

// DeliveryBackend is a store that also keeps outbound delivery.
type DeliveryBackend interface {
	store.Store
	store.DeliveryStore
}

// RunDelivery runs the [store.DeliveryStore] contract tests, in parallel,
// against stores from newStore, which must implement it.
func RunDelivery(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, DeliveryBackend)
	}{
		{"Endpoints", testEndpoints},
		{"EnqueueOrderAndFilter", testEnqueueOrderAndFilter},
		{"CreatedCursorSkipsEarlier", testCreatedCursorSkipsEarlier},
		{"PromotionInOrder", testPromotionInOrder},
		{"EnqueueHeadsPending", testEnqueueHeadsPending},
		{"ClaimConcurrent", testClaimConcurrent},
		{"LeaseExpiry", testLeaseExpiry},
		{"Redeliver", testRedeliver},
		{"EnqueueConcurrent", func(t *testing.T, s DeliveryBackend) { CheckConcurrentEnqueue(t, s, s, s, s, s) }},
		{"RaceEnqueueComplete", testRaceEnqueueComplete},
		{"CascadeDelete", testCascadeDelete},
		{"Paging", testDeliveryPaging},
		{"PauseResume", testPauseResume},
		{"Health", testHealth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			ds, ok := s.(DeliveryBackend)
			if !ok {
				t.Fatalf("%T does not implement store.DeliveryStore", s)
			}
			tt.fn(t, ds)
		})
	}
}

var noteCounter atomic.Int64

// Note is a notification to commit: a customer and a kind.
type Note struct{ CustomerID, Kind string }

// CommitNotes commits one event-only write per note, each with one
// notification, in order (several writes per Commit call), and returns
// their event IDs.
func CommitNotes(t testing.TB, s store.Store, notes ...Note) []string {
	t.Helper()
	var ids []string
	for chunk := range slices.Chunk(notes, 25) {
		var writes []store.Write
		for _, n := range chunk {
			id := fmt.Sprintf("evt_dl%d", noteCounter.Add(1))
			ids = append(ids, id)
			writes = append(writes, store.Write{
				Event: Event(id, n.CustomerID),
				Notifications: []store.Notification{{
					CustomerID: n.CustomerID, Kind: n.Kind, EventID: id, Version: 1,
					OccurredAt: created, Customer: []byte("customer at " + id),
				}},
			})
		}
		for i, err := range s.Commit(t.Context(), writes) {
			if err != nil {
				t.Fatalf("Commit(%s): %v", writes[i].Event.EventID, err)
			}
		}
	}
	return ids
}

func notes(customerID, kind string, n int) []Note {
	out := make([]Note, n)
	for i := range out {
		out[i] = Note{customerID, kind}
	}
	return out
}

func newEndpoint(t *testing.T, s store.DeliveryStore, e store.Endpoint) store.Endpoint {
	t.Helper()
	if e.URL == "" {
		e.URL = "https://example.com/hook"
	}
	out, err := s.CreateEndpoint(t.Context(), e)
	if err != nil {
		t.Fatalf("CreateEndpoint(%s): %v", e.ID, err)
	}
	return out
}

// enqueueUntil calls Enqueue until it has read wantRead notifications in
// all (a store may hold back notifications whose position is not final
// yet), and returns how many deliveries it created.
func enqueueUntil(t *testing.T, s store.DeliveryStore, endpointID string, wantRead int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var read, created int
	for read < wantRead {
		r, c, err := s.Enqueue(t.Context(), endpointID, 100)
		if err != nil {
			t.Fatalf("Enqueue(%s): %v", endpointID, err)
		}
		read, created = read+r, created+c
		if r == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("Enqueue(%s): read %d notifications, want %d", endpointID, read, wantRead)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if read != wantRead {
		t.Fatalf("Enqueue(%s): read %d notifications, want %d", endpointID, read, wantRead)
	}
	return created
}

// listAll returns every delivery the filter selects, oldest first,
// paging with pageSize.
func listAll(t *testing.T, s store.DeliveryStore, f store.DeliveryFilter) []store.Delivery {
	t.Helper()
	var all []store.Delivery
	for {
		ds, next, err := s.ListDeliveries(t.Context(), f)
		if err != nil {
			t.Fatalf("ListDeliveries: %v", err)
		}
		all = append(all, ds...)
		if next == "" {
			break
		}
		f.PageToken = next
	}
	slices.Reverse(all)
	return all
}

func deliveryEventIDs(ds []store.Delivery) []string {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.Notification.EventID)
	}
	return ids
}

func getDelivery(t *testing.T, s store.DeliveryStore, id string) store.Delivery {
	t.Helper()
	d, err := s.GetDelivery(t.Context(), id)
	if err != nil {
		t.Fatalf("GetDelivery(%s): %v", id, err)
	}
	return d
}

func claim(t *testing.T, s store.DeliveryStore, endpointID, owner string, limit int, lease time.Duration) []store.Claimed {
	t.Helper()
	cs, err := s.Claim(t.Context(), endpointID, owner, limit, lease)
	if err != nil {
		t.Fatalf("Claim(%s, %s): %v", endpointID, owner, err)
	}
	return cs
}

// result is the result of an attempt of c answered with code.
func result(c store.Claimed, outcome store.Outcome, code int) store.Result {
	r := store.Result{
		Lease:   c.Lease,
		Outcome: outcome,
		Attempt: store.Attempt{
			DeliveryID: c.ID, Attempt: c.Lease.Attempt, StartedAt: time.Now().Truncate(time.Microsecond),
			Latency: 1500 * time.Microsecond, StatusCode: code, Body: []byte("body"),
		},
	}
	if code < 200 || code >= 300 {
		r.Attempt.Error = fmt.Sprintf("HTTP %d", code)
	}
	return r
}

func complete(t *testing.T, s store.DeliveryStore, rs ...store.Result) {
	t.Helper()
	if err := s.Complete(t.Context(), rs); err != nil {
		t.Fatalf("Complete: %v", err)
	}
}

func checkStatus(t *testing.T, s store.DeliveryStore, id string, want store.DeliveryStatus) store.Delivery {
	t.Helper()
	d := getDelivery(t, s, id)
	if d.Status != want {
		t.Errorf("delivery %s (%s): status %s, want %s", id, d.Notification.EventID, d.Status, want)
	}
	return d
}

func testEndpoints(t *testing.T, s DeliveryBackend) {
	ctx := t.Context()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	e := newEndpoint(t, s, store.Endpoint{
		ID: "ep_b", URL: "https://b.example/hook", Description: "b", Kinds: []string{"customer.updated"},
		CustomerIDs: []string{"cus_1"}, Secrets: []store.Secret{{Value: "whsec_new"}, {Value: "whsec_old", ExpiresAt: exp}},
	})
	if e.Origin != "api" || e.CreatedAt.IsZero() || e.UpdatedAt.IsZero() || !e.Active() || !e.FailingSince.IsZero() {
		t.Errorf("CreateEndpoint: got %+v, want origin api, times set, active", e)
	}
	if len(e.Secrets) != 2 || e.Secrets[0].Value != "whsec_new" || !e.Secrets[0].ExpiresAt.IsZero() ||
		!e.Secrets[1].ExpiresAt.Equal(exp) || !slices.Equal(e.Kinds, []string{"customer.updated"}) ||
		!slices.Equal(e.CustomerIDs, []string{"cus_1"}) {
		t.Errorf("CreateEndpoint: got secrets %+v kinds %v customers %v", e.Secrets, e.Kinds, e.CustomerIDs)
	}
	if _, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_b", URL: "https://x"}); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("CreateEndpoint of an existing ID: got %v, want ErrDuplicate", err)
	}
	newEndpoint(t, s, store.Endpoint{ID: "ep_a"})
	got, err := s.GetEndpoint(ctx, "ep_b")
	if err != nil || got.URL != e.URL || got.Description != "b" || len(got.Secrets) != 2 {
		t.Errorf("GetEndpoint: got %+v, %v", got, err)
	}
	es, err := s.ListEndpoints(ctx)
	if err != nil || len(es) != 2 || es[0].ID != "ep_a" || es[1].ID != "ep_b" {
		t.Errorf("ListEndpoints: got %v, %v; want ep_a, ep_b", es, err)
	}

	url, paused := "https://b2.example/hook", true
	kinds := []string{}
	up, err := s.UpdateEndpoint(ctx, "ep_b", store.EndpointUpdate{URL: &url, Paused: &paused, Kinds: &kinds})
	if err != nil || up.URL != url || !up.Paused || len(up.Kinds) != 0 || up.Description != "b" ||
		!slices.Equal(up.CustomerIDs, []string{"cus_1"}) || len(up.Secrets) != 2 {
		t.Errorf("UpdateEndpoint: got %+v, %v", up, err)
	}
	for _, err := range []error{
		func() error { _, err := s.GetEndpoint(ctx, "ep_none"); return err }(),
		func() error { _, err := s.UpdateEndpoint(ctx, "ep_none", store.EndpointUpdate{URL: &url}); return err }(),
		s.DeleteEndpoint(ctx, "ep_none"),
		s.DisableEndpoint(ctx, "ep_none", "gone"),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("on an unknown endpoint: got %v, want ErrNotFound", err)
		}
	}

	if err := s.DisableEndpoint(ctx, "ep_a", "HTTP 410 Gone"); err != nil {
		t.Fatalf("DisableEndpoint: %v", err)
	}
	first, _ := s.GetEndpoint(ctx, "ep_a")
	if err := s.DisableEndpoint(ctx, "ep_a", "another"); err != nil {
		t.Fatalf("DisableEndpoint again: %v", err)
	}
	a, _ := s.GetEndpoint(ctx, "ep_a")
	if a.DisabledReason != "HTTP 410 Gone" || a.DisabledAt.IsZero() || !a.DisabledAt.Equal(first.DisabledAt) || a.Active() {
		t.Errorf("after DisableEndpoint twice: got reason %q at %v, want the first", a.DisabledReason, a.DisabledAt)
	}

	// Upsert keeps the cursor, pause and disabled state.
	u, err := s.UpsertEndpoint(ctx, store.Endpoint{ID: "ep_a", URL: "https://a2", Description: "cfg", Origin: "config"})
	if err != nil || u.URL != "https://a2" || u.Origin != "config" || u.DisabledReason != "HTTP 410 Gone" || u.Cursor != a.Cursor {
		t.Errorf("UpsertEndpoint of ep_a: got %+v, %v", u, err)
	}
	u, err = s.UpsertEndpoint(ctx, store.Endpoint{ID: "ep_b", URL: "https://b3", Origin: "config"})
	if err != nil || !u.Paused || u.URL != "https://b3" {
		t.Errorf("UpsertEndpoint of paused ep_b: got %+v, %v", u, err)
	}
	u, err = s.UpsertEndpoint(ctx, store.Endpoint{ID: "ep_c", URL: "https://c", Origin: "config"})
	if err != nil || u.Origin != "config" || !u.Active() {
		t.Errorf("UpsertEndpoint of new ep_c: got %+v, %v", u, err)
	}
	up, err = s.UpdateEndpoint(ctx, "ep_a", store.EndpointUpdate{ClearDisabled: true})
	if err != nil || up.DisabledReason != "" || !up.DisabledAt.IsZero() || !up.Active() {
		t.Errorf("UpdateEndpoint(ClearDisabled): got %+v, %v", up, err)
	}
	if err := s.DeleteEndpoint(ctx, "ep_c"); err != nil {
		t.Errorf("DeleteEndpoint: %v", err)
	}
	if _, err := s.GetEndpoint(ctx, "ep_c"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetEndpoint after delete: got %v, want ErrNotFound", err)
	}
}

func testEnqueueOrderAndFilter(t *testing.T, s DeliveryBackend) {
	newEndpoint(t, s, store.Endpoint{ID: "ep_f", Kinds: []string{"a"}, CustomerIDs: []string{"cus_1", "cus_2"}})
	all := newEndpoint(t, s, store.Endpoint{ID: "ep_all"})
	ids := CommitNotes(t, s, Note{"cus_1", "a"}, Note{"cus_3", "a"}, Note{"cus_2", "b"}, Note{"cus_2", "a"}, Note{"cus_1", "a"})
	if created := enqueueUntil(t, s, "ep_f", 5); created != 3 {
		t.Errorf("Enqueue(ep_f): created %d, want 3", created)
	}
	if r, c, err := s.Enqueue(t.Context(), "ep_f", 10); r != 0 || c != 0 || err != nil {
		t.Errorf("Enqueue(ep_f) after catching up: got %d, %d, %v; want 0, 0 (the cursor is past the filtered rows)", r, c, err)
	}
	ds := listAll(t, s, store.DeliveryFilter{EndpointID: "ep_f", PageSize: 100})
	if got, want := deliveryEventIDs(ds), []string{ids[0], ids[3], ids[4]}; !slices.Equal(got, want) {
		t.Fatalf("deliveries of ep_f: %v, want %v", got, want)
	}
	for i, want := range []store.DeliveryStatus{store.DeliveryPending, store.DeliveryPending, store.DeliveryQueued} {
		if ds[i].Status != want {
			t.Errorf("delivery %d: status %s, want %s", i, ds[i].Status, want)
		}
	}
	d := ds[1]
	if d.EndpointID != "ep_f" || d.CustomerID != "cus_2" || d.Notification.Kind != "a" || d.Notification.CustomerID != "cus_2" ||
		string(d.Notification.Customer) != "customer at "+ids[3] || d.Notification.Cursor == "" || d.Attempts != 0 ||
		d.CreatedAt.IsZero() || d.NextAttemptAt.IsZero() || len(d.ID) != 36 || d.ID[:4] != "msg_" || !d.Notification.OccurredAt.Equal(created) {
		t.Errorf("delivery: got %+v", d)
	}
	ns := WaitNotifications(t, s, "", 5)
	if e, _ := s.GetEndpoint(t.Context(), "ep_f"); e.Cursor != ns[4].Cursor {
		t.Errorf("ep_f cursor: %q, want the last notification's %q", e.Cursor, ns[4].Cursor)
	}
	if d.Notification.Cursor != ns[3].Cursor {
		t.Errorf("delivery's notification cursor %q, want %q", d.Notification.Cursor, ns[3].Cursor)
	}

	// A limit reads no more than it says; every notification of ep_all.
	r, _, err := s.Enqueue(t.Context(), all.ID, 2)
	if err != nil || r > 2 {
		t.Errorf("Enqueue(limit 2): read %d, %v", r, err)
	}
	enqueueUntil(t, s, all.ID, 5-r)
	if got := deliveryEventIDs(listAll(t, s, store.DeliveryFilter{EndpointID: all.ID, PageSize: 2})); !slices.Equal(got, ids) {
		t.Errorf("deliveries of ep_all: %v, want %v", got, ids)
	}
	if _, _, err := s.Enqueue(t.Context(), "ep_none", 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Enqueue of an unknown endpoint: got %v, want ErrNotFound", err)
	}
	if _, _, err := s.Enqueue(t.Context(), all.ID, 0); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("Enqueue with limit 0: got %v, want ErrInvalidArgument", err)
	}
}

func testCreatedCursorSkipsEarlier(t *testing.T, s DeliveryBackend) {
	CommitNotes(t, s, notes("cus_1", "k", 3)...)
	ns := WaitNotifications(t, s, "", 3)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := s.LatestCursor(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if c == ns[2].Cursor {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("LatestCursor %q, want %q", c, ns[2].Cursor)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e := newEndpoint(t, s, store.Endpoint{ID: "ep_late"})
	if e.Cursor != ns[2].Cursor {
		t.Errorf("created endpoint's cursor %q, want the latest %q", e.Cursor, ns[2].Cursor)
	}
	later := CommitNotes(t, s, notes("cus_1", "k", 2)...)
	if created := enqueueUntil(t, s, e.ID, 2); created != 2 {
		t.Errorf("created %d, want 2", created)
	}
	if got := deliveryEventIDs(listAll(t, s, store.DeliveryFilter{EndpointID: e.ID, PageSize: 10})); !slices.Equal(got, later) {
		t.Errorf("deliveries: %v, want only the later %v", got, later)
	}
}

func testPromotionInOrder(t *testing.T, s DeliveryBackend) {
	e := newEndpoint(t, s, store.Endpoint{ID: "ep_p"})
	CommitNotes(t, s, notes("cus_1", "k", 3)...)
	CommitNotes(t, s, Note{"cus_2", "k"})
	enqueueUntil(t, s, e.ID, 4)
	ds := listAll(t, s, store.DeliveryFilter{EndpointID: e.ID, CustomerID: "cus_1", PageSize: 10})
	if len(ds) != 3 {
		t.Fatalf("deliveries of cus_1: %d, want 3", len(ds))
	}
	cs := claim(t, s, e.ID, "w1", 10, time.Minute)
	if len(cs) != 2 || !slices.ContainsFunc(cs, func(c store.Claimed) bool { return c.ID == ds[0].ID }) {
		t.Fatalf("Claim: got %d (%v), want the heads of cus_1 and cus_2", len(cs), cs)
	}
	for _, c := range cs {
		if c.Lease.Attempt != 1 || c.Attempts != 1 || c.Lease.Owner != "w1" || c.Notification.EventID == "" {
			t.Errorf("claimed: %+v", c)
		}
	}
	var head store.Claimed
	for _, c := range cs {
		if c.ID == ds[0].ID {
			head = c
		}
	}
	complete(t, s, result(head, store.OutcomeDelivered, 200))
	d := checkStatus(t, s, ds[0].ID, store.DeliveryDelivered)
	if d.EndedAt.IsZero() || d.LastStatus != 200 || d.Attempts != 1 || d.LastError != "" {
		t.Errorf("delivered: %+v", d)
	}
	checkStatus(t, s, ds[1].ID, store.DeliveryPending)
	checkStatus(t, s, ds[2].ID, store.DeliveryQueued)

	cs = claim(t, s, e.ID, "w1", 10, time.Minute)
	if len(cs) != 1 || cs[0].ID != ds[1].ID {
		t.Fatalf("Claim after the head was delivered: got %v, want the second of cus_1", cs)
	}
	complete(t, s, result(cs[0], store.OutcomeFailed, 500))
	d = checkStatus(t, s, ds[1].ID, store.DeliveryFailed)
	if d.EndedAt.IsZero() || d.LastStatus != 500 || d.LastError != "HTTP 500" {
		t.Errorf("failed: %+v", d)
	}
	checkStatus(t, s, ds[2].ID, store.DeliveryPending)
	as, next, err := s.ListAttempts(t.Context(), ds[1].ID, 10, "")
	if err != nil || next != "" || len(as) != 1 || as[0].Attempt != 1 || as[0].StatusCode != 500 ||
		as[0].Error != "HTTP 500" || string(as[0].Body) != "body" || as[0].Latency != 1500*time.Microsecond || as[0].StartedAt.IsZero() {
		t.Errorf("ListAttempts: got %+v, %q, %v", as, next, err)
	}
	bl, err := s.Backlog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, b := range bl {
		if b.EndpointID == e.ID {
			found = true
			if b.Undelivered != 2 || b.OldestCreatedAt.IsZero() {
				t.Errorf("Backlog: %+v, want 2 undelivered", b)
			}
		}
	}
	if !found {
		t.Errorf("Backlog %v: no entry for %s", bl, e.ID)
	}
}

// testEnqueueHeadsPending checks the queues Enqueue leaves: each
// customer's oldest undelivered delivery pending, the rest queued, in
// commit order, across Enqueue calls and whether or not the customer had
// deliveries before.
func testEnqueueHeadsPending(t *testing.T, s DeliveryBackend) {
	e := newEndpoint(t, s, store.Endpoint{ID: "ep_heads"})
	check := func(when string, want map[string][]store.DeliveryStatus) {
		t.Helper()
		for c, statuses := range want {
			ds := listAll(t, s, store.DeliveryFilter{EndpointID: e.ID, CustomerID: c, PageSize: 100})
			var got []store.DeliveryStatus
			for _, d := range ds {
				got = append(got, d.Status)
			}
			if !slices.Equal(got, statuses) {
				t.Errorf("%s: %s's deliveries, oldest first: %v, want %v", when, c, got, statuses)
			}
		}
	}
	const (
		P = store.DeliveryPending
		Q = store.DeliveryQueued
		D = store.DeliveryDelivered
	)
	// Interleaved customers in one Enqueue, and one Enqueue per note.
	ids := CommitNotes(t, s, Note{"cus_a", "k"}, Note{"cus_b", "k"}, Note{"cus_a", "k"}, Note{"cus_c", "k"},
		Note{"cus_b", "k"}, Note{"cus_a", "k"})
	enqueueUntil(t, s, e.ID, len(ids))
	check("first enqueue", map[string][]store.DeliveryStatus{"cus_a": {P, Q, Q}, "cus_b": {P, Q}, "cus_c": {P}})
	a := listAll(t, s, store.DeliveryFilter{EndpointID: e.ID, CustomerID: "cus_a", PageSize: 100})
	if got := deliveryEventIDs(a); !slices.Equal(got, []string{ids[0], ids[2], ids[5]}) {
		t.Errorf("cus_a's deliveries: %v, want %v in commit order", got, []string{ids[0], ids[2], ids[5]})
	}

	// A later Enqueue: behind the pending heads, and a head again for a
	// customer whose deliveries all ended.
	cs := claim(t, s, e.ID, "w1", 10, time.Minute)
	for _, c := range cs {
		if c.CustomerID == "cus_c" {
			complete(t, s, result(c, store.OutcomeDelivered, 200))
		}
	}
	more := CommitNotes(t, s, Note{"cus_c", "k"}, Note{"cus_b", "k"}, Note{"cus_d", "k"}, Note{"cus_c", "k"})
	for read := 0; read < len(more); {
		// One notification per call: each is a batch of its own.
		r, _, err := s.Enqueue(t.Context(), e.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r == 0 {
			enqueueUntil(t, s, e.ID, len(more)-read) // waits for the rest to be final
			break
		}
		read += r
	}
	check("second enqueue", map[string][]store.DeliveryStatus{
		"cus_a": {P, Q, Q}, "cus_b": {P, Q, Q}, "cus_c": {D, P, Q}, "cus_d": {P},
	})
	want := []string{ids[3], more[0], more[3]}
	if got := deliveryEventIDs(listAll(t, s, store.DeliveryFilter{EndpointID: e.ID, CustomerID: "cus_c", PageSize: 100})); !slices.Equal(got, want) {
		t.Errorf("cus_c's deliveries: %v, want %v in commit order", got, want)
	}
}

func testClaimConcurrent(t *testing.T, s DeliveryBackend) {
	const (
		customers = 20
		each      = 10
		claimers  = 8
		rounds    = 3
	)
	for round := range rounds {
		ep := newEndpoint(t, s, store.Endpoint{ID: fmt.Sprintf("ep_cc%d", round)})
		var ns []Note
		for i := range customers * each {
			ns = append(ns, Note{fmt.Sprintf("cus_%d", i%customers), "k"})
		}
		ids := CommitNotes(t, s, ns...)
		order := map[string][]string{} // customer -> event IDs in commit order
		for i, n := range ns {
			order[n.CustomerID] = append(order[n.CustomerID], ids[i])
		}
		enqueueUntil(t, s, ep.ID, len(ns))

		var (
			mu        sync.Mutex
			held      = map[string]string{} // delivery ID -> owner
			heldCus   = map[string]string{} // customer -> delivery ID
			delivered = map[string]int{}    // customer -> count
			total     atomic.Int64
			failures  []string
			wg        sync.WaitGroup
		)
		fail := func(format string, args ...any) {
			mu.Lock()
			failures = append(failures, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
		deadline := time.Now().Add(60 * time.Second)
		for w := range claimers {
			owner := fmt.Sprintf("w%d", w)
			wg.Go(func() {
				for total.Load() < customers*each && time.Now().Before(deadline) {
					cs, err := s.Claim(t.Context(), ep.ID, owner, 3, time.Minute)
					if err != nil {
						fail("Claim: %v", err)
						return
					}
					mu.Lock()
					for _, c := range cs {
						if o, ok := held[c.ID]; ok {
							failures = append(failures, fmt.Sprintf("%s claimed %s while %s holds it", owner, c.ID, o))
						}
						if d, ok := heldCus[c.CustomerID]; ok {
							failures = append(failures, fmt.Sprintf("%s claimed %s of %s while %s of the same customer is held", owner, c.ID, c.CustomerID, d))
						}
						if k := delivered[c.CustomerID]; k >= len(order[c.CustomerID]) {
							failures = append(failures, fmt.Sprintf("claimed %s of %s after all its deliveries were delivered", c.Notification.EventID, c.CustomerID))
						} else if want := order[c.CustomerID][k]; c.Notification.EventID != want {
							failures = append(failures, fmt.Sprintf("claimed %s of %s, want its head %s", c.Notification.EventID, c.CustomerID, want))
						}
						held[c.ID], heldCus[c.CustomerID] = owner, c.ID
					}
					mu.Unlock()
					if len(cs) == 0 {
						time.Sleep(time.Millisecond)
						continue
					}
					var rs []store.Result
					for _, c := range cs {
						rs = append(rs, result(c, store.OutcomeDelivered, 204))
					}
					// Released from the test's books before Complete: once it
					// commits, the next of the customer may be claimed.
					mu.Lock()
					for _, c := range cs {
						delete(held, c.ID)
						delete(heldCus, c.CustomerID)
						delivered[c.CustomerID]++
					}
					mu.Unlock()
					if err := s.Complete(t.Context(), rs); err != nil {
						fail("Complete: %v", err)
						return
					}
					total.Add(int64(len(cs)))
				}
			})
		}
		wg.Wait()
		for _, f := range failures[:min(len(failures), 10)] {
			t.Error(f)
		}
		if n := total.Load(); n != customers*each {
			t.Fatalf("round %d: %d delivered, want %d", round, n, customers*each)
		}
		for _, d := range listAll(t, s, store.DeliveryFilter{EndpointID: ep.ID, PageSize: 1000}) {
			if d.Status != store.DeliveryDelivered || d.Attempts != 1 {
				t.Errorf("delivery %s: %s after %d attempts, want delivered after 1", d.ID, d.Status, d.Attempts)
			}
		}
	}
}

func testLeaseExpiry(t *testing.T, s DeliveryBackend) {
	e := newEndpoint(t, s, store.Endpoint{ID: "ep_l"})
	CommitNotes(t, s, Note{"cus_1", "k"})
	enqueueUntil(t, s, e.ID, 1)
	a := claim(t, s, e.ID, "a", 10, 200*time.Millisecond)
	if len(a) != 1 {
		t.Fatalf("Claim(a): got %d, want 1", len(a))
	}
	if b := claim(t, s, e.ID, "b", 10, time.Minute); len(b) != 0 {
		t.Fatalf("Claim(b) while a's lease holds: got %v, want nothing", b)
	}
	time.Sleep(300 * time.Millisecond)
	b := claim(t, s, e.ID, "b", 10, time.Minute)
	if len(b) != 1 || b[0].ID != a[0].ID || b[0].Lease.Attempt != 2 {
		t.Fatalf("Claim(b) after a's lease expired: got %+v, want attempt 2", b)
	}
	// a, stalled, reports: its attempt is recorded, its outcome ignored.
	complete(t, s, result(a[0], store.OutcomeDelivered, 200))
	d := checkStatus(t, s, a[0].ID, store.DeliveryPending)
	if d.Attempts != 2 || d.LastStatus != 0 {
		t.Errorf("after the stale owner's Complete: %+v, want untouched", d)
	}
	if as, _, _ := s.ListAttempts(t.Context(), a[0].ID, 10, ""); len(as) != 1 || as[0].Attempt != 1 || as[0].StatusCode != 200 {
		t.Errorf("attempts after the stale owner's Complete: %+v, want its attempt 1", as)
	}
	// b retries in 400ms: not due before.
	r := result(b[0], store.OutcomeRetry, 503)
	r.NextAttemptAt = time.Now().Add(400 * time.Millisecond)
	complete(t, s, r)
	d = checkStatus(t, s, a[0].ID, store.DeliveryPending)
	if d.Step != 1 || d.LastStatus != 503 || d.LastError != "HTTP 503" || !d.NextAttemptAt.Equal(r.NextAttemptAt.Truncate(time.Microsecond)) {
		t.Errorf("after Retry: %+v", d)
	}
	if c := claim(t, s, e.ID, "c", 10, time.Minute); len(c) != 0 {
		t.Fatalf("Claim before the retry is due: got %v, want nothing", c)
	}
	time.Sleep(time.Until(r.NextAttemptAt) + 50*time.Millisecond)
	c := claim(t, s, e.ID, "c", 10, time.Minute)
	if len(c) != 1 || c[0].Lease.Attempt != 3 || c[0].Step != 1 {
		t.Fatalf("Claim when the retry is due: got %+v, want attempt 3", c)
	}
	// Released: no attempt happened.
	rel := store.Result{Lease: c[0].Lease, Outcome: store.OutcomeReleased, NextAttemptAt: time.Now()}
	complete(t, s, rel)
	d = checkStatus(t, s, a[0].ID, store.DeliveryPending)
	if d.Attempts != 2 || d.Step != 1 || d.LastStatus != 503 {
		t.Errorf("after Released: %+v, want attempts 2, step 1, last status 503", d)
	}
	c = claim(t, s, e.ID, "c", 10, time.Minute)
	if len(c) != 1 || c[0].Lease.Attempt != 3 {
		t.Fatalf("Claim after Released: got %+v, want attempt 3 again", c)
	}
	complete(t, s, result(c[0], store.OutcomeDelivered, 200))
	d = checkStatus(t, s, a[0].ID, store.DeliveryDelivered)
	as, _, err := s.ListAttempts(t.Context(), a[0].ID, 10, "")
	if err != nil || len(as) != 3 || as[0].Attempt != 3 || as[1].Attempt != 2 || as[2].Attempt != 1 || d.Attempts != 3 {
		t.Errorf("attempts: %+v, %v; want 3, 2, 1", as, err)
	}
	// b's lease is long gone; its late result changes nothing.
	complete(t, s, result(b[0], store.OutcomeFailed, 500))
	checkStatus(t, s, a[0].ID, store.DeliveryDelivered)
}

func testRedeliver(t *testing.T, s DeliveryBackend) {
	ctx := t.Context()
	e := newEndpoint(t, s, store.Endpoint{ID: "ep_r"})
	CommitNotes(t, s, notes("cus_1", "k", 3)...)
	enqueueUntil(t, s, e.ID, 3)
	ds := listAll(t, s, store.DeliveryFilter{EndpointID: e.ID, PageSize: 10})
	before := time.Now().Add(-time.Second)

	c := claim(t, s, e.ID, "w", 1, time.Minute)
	complete(t, s, result(c[0], store.OutcomeFailed, 500)) // d0 failed, d1 pending
	if ok, err := s.Redeliver(ctx, ds[1].ID); ok || err != nil {
		t.Errorf("Redeliver of a pending delivery: got %v, %v; want false, nil", ok, err)
	}
	if _, err := s.Redeliver(ctx, "msg_none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Redeliver of an unknown delivery: got %v, want ErrNotFound", err)
	}
	if ok, err := s.Redeliver(ctx, ds[0].ID); !ok || err != nil {
		t.Fatalf("Redeliver: got %v, %v; want true", ok, err)
	}
	d := checkStatus(t, s, ds[0].ID, store.DeliveryQueued) // behind d1, pending
	if d.Step != 0 || !d.EndedAt.IsZero() || d.Attempts != 1 {
		t.Errorf("redelivered: %+v", d)
	}
	c = claim(t, s, e.ID, "w", 1, time.Minute)
	if len(c) != 1 || c[0].ID != ds[1].ID {
		t.Fatalf("Claim: got %v, want d1", c)
	}
	complete(t, s, result(c[0], store.OutcomeDelivered, 200))
	// d0 goes before d2: its place in commit order.
	checkStatus(t, s, ds[0].ID, store.DeliveryPending)
	checkStatus(t, s, ds[2].ID, store.DeliveryQueued)
	c = claim(t, s, e.ID, "w", 1, time.Minute)
	if len(c) != 1 || c[0].ID != ds[0].ID || c[0].Lease.Attempt != 2 || c[0].Step != 0 {
		t.Fatalf("Claim after redelivery: got %+v, want d0 at attempt 2, step 0", c)
	}
	complete(t, s, result(c[0], store.OutcomeFailed, 500))
	c = claim(t, s, e.ID, "w", 1, time.Minute)
	if len(c) != 1 || c[0].ID != ds[2].ID {
		t.Fatalf("Claim: got %v, want d2", c)
	}
	complete(t, s, result(c[0], store.OutcomeFailed, 500))
	// Both failed, nothing pending: RedeliverFailed puts both back, d0
	// pending and d2 queued behind it.
	if n, err := s.RedeliverFailed(ctx, e.ID, time.Now().Add(time.Hour)); n != 0 || err != nil {
		t.Errorf("RedeliverFailed since a later time: got %d, %v; want 0", n, err)
	}
	if n, err := s.RedeliverFailed(ctx, e.ID, before); n != 2 || err != nil {
		t.Fatalf("RedeliverFailed: got %d, %v; want 2", n, err)
	}
	checkStatus(t, s, ds[0].ID, store.DeliveryPending)
	checkStatus(t, s, ds[2].ID, store.DeliveryQueued)
	if _, err := s.RedeliverFailed(ctx, "ep_none", before); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RedeliverFailed of an unknown endpoint: got %v, want ErrNotFound", err)
	}
}

// CheckConcurrentEnqueue commits notifications through writer and calls
// Enqueue for one endpoint from many goroutines, spread over the stores
// (which share one database), and checks that every notification is
// enqueued exactly once, in order.
func CheckConcurrentEnqueue(t *testing.T, writer store.Store, stores ...DeliveryBackend) {
	const n = 300
	ep := newEndpoint(t, stores[0], store.Endpoint{ID: "ep_ce"})
	var ns []Note
	for i := range n {
		ns = append(ns, Note{fmt.Sprintf("cus_%d", i%7), "k"})
	}
	ids := CommitNotes(t, writer, ns...)
	var (
		created, read atomic.Int64
		wg            sync.WaitGroup
		errs          = make(chan error, 64)
	)
	deadline := time.Now().Add(30 * time.Second)
	for i := range 2 * len(stores) {
		s := stores[i%len(stores)]
		wg.Go(func() {
			for read.Load() < n && time.Now().Before(deadline) {
				r, c, err := s.Enqueue(t.Context(), ep.ID, 7)
				if err != nil {
					errs <- err
					return
				}
				read.Add(int64(r))
				created.Add(int64(c))
				if r == 0 {
					time.Sleep(2 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Enqueue: %v", err)
	}
	if read.Load() != n || created.Load() != n {
		t.Fatalf("concurrent Enqueue: read %d, created %d; want %d each", read.Load(), created.Load(), n)
	}
	got := deliveryEventIDs(listAll(t, stores[0], store.DeliveryFilter{EndpointID: ep.ID, PageSize: 1000}))
	if !slices.Equal(got, ids) {
		t.Errorf("deliveries: %d, want each of the %d notifications once, in commit order", len(got), n)
	}
}

// testRaceEnqueueComplete runs Enqueue, Claim and Complete concurrently
// for few customers, so that an Enqueue that leaves a delivery queued
// behind a head races the Complete that ends the head: a store that lets
// the Complete miss it leaves the delivery queued for ever, and the round
// stalls.
func testRaceEnqueueComplete(t *testing.T, s DeliveryBackend) {
	const (
		rounds    = 6
		perRound  = 100
		customers = 2
		stall     = 3 * time.Second
	)
	for round := range rounds {
		ep := newEndpoint(t, s, store.Endpoint{ID: fmt.Sprintf("ep_race%d", round)})
		var (
			delivered, enqueued atomic.Int64
			progress            atomic.Int64 // unix nanoseconds of the last delivery
			wg                  sync.WaitGroup
			errs                = make(chan error, 16)
		)
		progress.Store(time.Now().UnixNano())
		deadline := time.Now().Add(60 * time.Second)
		stalled := func() bool {
			return time.Now().After(deadline) ||
				(enqueued.Load() == perRound && time.Since(time.Unix(0, progress.Load())) > stall)
		}
		wg.Go(func() { // producer, in small random batches
			for left := perRound; left > 0; {
				k := min(left, 1+rand.IntN(3))
				var ns []Note
				for range k {
					ns = append(ns, Note{fmt.Sprintf("cus_%d", rand.IntN(customers)), "k"})
				}
				CommitNotes(t, s, ns...)
				left -= k
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
			}
		})
		wg.Go(func() { // enqueuer
			for enqueued.Load() < perRound && time.Now().Before(deadline) {
				_, c, err := s.Enqueue(t.Context(), ep.ID, 1+rand.IntN(3))
				if err != nil {
					errs <- err
					return
				}
				enqueued.Add(int64(c))
				if c == 0 {
					time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
				}
			}
		})
		var violations atomic.Int64
		wg.Go(func() { // checker: no committed state has a customer queued with none pending
			for delivered.Load() < perRound && !stalled() {
				// One statement: one snapshot.
				ds, _, err := s.ListDeliveries(t.Context(), store.DeliveryFilter{EndpointID: ep.ID, PageSize: 1000})
				if err != nil {
					errs <- err
					return
				}
				queued, pending := map[string]bool{}, map[string]int{}
				for _, d := range ds {
					switch d.Status {
					case store.DeliveryQueued:
						queued[d.CustomerID] = true
					case store.DeliveryPending:
						pending[d.CustomerID]++
					}
				}
				for c := range queued {
					if pending[c] == 0 {
						violations.Add(1)
					}
				}
				for _, n := range pending {
					if n > 1 {
						violations.Add(1)
					}
				}
				time.Sleep(200 * time.Microsecond)
			}
		})
		for w := range 2 { // workers
			wg.Go(func() {
				for delivered.Load() < perRound && !stalled() {
					cs, err := s.Claim(t.Context(), ep.ID, fmt.Sprintf("w%d", w), 1+rand.IntN(3), time.Minute)
					if err != nil {
						errs <- err
						return
					}
					if len(cs) == 0 {
						time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
						continue
					}
					var rs []store.Result
					for _, c := range cs {
						rs = append(rs, result(c, store.OutcomeDelivered, 200))
					}
					if err := s.Complete(t.Context(), rs); err != nil {
						errs <- err
						return
					}
					delivered.Add(int64(len(cs)))
					progress.Store(time.Now().UnixNano())
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		if n := violations.Load(); n > 0 {
			t.Errorf("round %d: %d times a customer had queued deliveries and none pending, or two pending", round, n)
		}
		if n := delivered.Load(); n != perRound {
			counts := map[store.DeliveryStatus]int{}
			for _, d := range listAll(t, s, store.DeliveryFilter{EndpointID: ep.ID, PageSize: 1000}) {
				counts[d.Status]++
			}
			t.Fatalf("round %d: %d of %d delivered (enqueued %d), then nothing claimable; deliveries by status: %v",
				round, n, perRound, enqueued.Load(), counts)
		}
	}
}

func testCascadeDelete(t *testing.T, s DeliveryBackend) {
	ctx := t.Context()
	e := newEndpoint(t, s, store.Endpoint{ID: "ep_d"})
	keep := newEndpoint(t, s, store.Endpoint{ID: "ep_keep"})
	CommitNotes(t, s, Note{"cus_1", "k"}, Note{"cus_2", "k"})
	enqueueUntil(t, s, e.ID, 2)
	enqueueUntil(t, s, keep.ID, 2)
	cs := claim(t, s, e.ID, "w", 10, time.Minute)
	if len(cs) != 2 {
		t.Fatalf("Claim: %d, want 2", len(cs))
	}
	complete(t, s, result(cs[0], store.OutcomeRetry, 500))
	cs2 := claim(t, s, e.ID, "w", 10, time.Minute)
	if err := s.DeleteEndpoint(ctx, e.ID); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	for _, c := range cs {
		if _, err := s.GetDelivery(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetDelivery after the endpoint was deleted: got %v, want ErrNotFound", err)
		}
		if _, _, err := s.ListAttempts(ctx, c.ID, 10, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ListAttempts after the endpoint was deleted: got %v, want ErrNotFound", err)
		}
	}
	// A result for a deleted delivery is no error.
	var rs []store.Result
	for _, c := range append(cs, cs2...) {
		rs = append(rs, result(c, store.OutcomeDelivered, 200))
	}
	complete(t, s, rs...)
	if ds := listAll(t, s, store.DeliveryFilter{EndpointID: e.ID, PageSize: 10}); len(ds) != 0 {
		t.Errorf("deliveries of the deleted endpoint: %d, want none", len(ds))
	}
	if ds := listAll(t, s, store.DeliveryFilter{PageSize: 10}); len(ds) != 2 || ds[0].EndpointID != keep.ID {
		t.Errorf("deliveries left: %v, want ep_keep's 2", ds)
	}
	if err := s.DeleteEndpoint(ctx, e.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteEndpoint again: got %v, want ErrNotFound", err)
	}
}

func testDeliveryPaging(t *testing.T, s DeliveryBackend) {
	ctx := t.Context()
	e := newEndpoint(t, s, store.Endpoint{ID: "ep_pg"})
	var ns []Note
	for i := range 25 {
		ns = append(ns, Note{fmt.Sprintf("cus_%d", i%3), "k"})
	}
	ids := CommitNotes(t, s, ns...)
	enqueueUntil(t, s, e.ID, 25)
	var got []string
	seen := map[string]bool{}
	f := store.DeliveryFilter{EndpointID: e.ID, PageSize: 7}
	for page := 0; ; page++ {
		ds, next, err := s.ListDeliveries(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) > 7 || (next != "" && len(ds) != 7) {
			t.Fatalf("page %d: %d deliveries, next %q", page, len(ds), next)
		}
		for _, d := range ds {
			if seen[d.ID] {
				t.Errorf("delivery %s listed twice", d.ID)
			}
			seen[d.ID] = true
			got = append(got, d.Notification.EventID)
		}
		if next == "" {
			break
		}
		f.PageToken = next
	}
	slices.Reverse(got)
	if !slices.Equal(got, ids) {
		t.Errorf("paged listing (newest first, reversed): %v, want %v", got, ids)
	}
	pending := listAll(t, s, store.DeliveryFilter{Status: store.DeliveryPending, PageSize: 2})
	if len(pending) != 3 {
		t.Errorf("pending deliveries: %d, want 3 (one per customer)", len(pending))
	}
	c1 := listAll(t, s, store.DeliveryFilter{CustomerID: "cus_1", Status: store.DeliveryQueued, EndpointID: e.ID, PageSize: 3})
	if len(c1) != 7 {
		t.Errorf("queued deliveries of cus_1: %d, want 7", len(c1))
	}
	if _, _, err := s.ListDeliveries(ctx, store.DeliveryFilter{}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("ListDeliveries with page size 0: got %v, want ErrInvalidArgument", err)
	}
	if _, _, err := s.ListDeliveries(ctx, store.DeliveryFilter{PageSize: 1, PageToken: "garbage!"}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("ListDeliveries with a bad token: got %v, want ErrInvalidArgument", err)
	}

	// Attempts, paged.
	id := pending[0].ID
	for range 5 {
		cs := claim(t, s, e.ID, "w", 10, time.Minute)
		var rs []store.Result
		for _, c := range cs {
			r := result(c, store.OutcomeRetry, 500)
			r.NextAttemptAt = time.Now().Add(-time.Second)
			rs = append(rs, r)
		}
		complete(t, s, rs...)
	}
	var attempts []int
	tok := ""
	for {
		as, next, err := s.ListAttempts(ctx, id, 2, tok)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			attempts = append(attempts, a.Attempt)
		}
		if next == "" {
			break
		}
		tok = next
	}
	if !slices.Equal(attempts, []int{5, 4, 3, 2, 1}) {
		t.Errorf("ListAttempts paged: %v, want 5..1", attempts)
	}
	if _, _, err := s.ListAttempts(ctx, id, 0, ""); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("ListAttempts with page size 0: got %v, want ErrInvalidArgument", err)
	}
	if _, _, err := s.ListAttempts(ctx, "msg_none", 1, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ListAttempts of an unknown delivery: got %v, want ErrNotFound", err)
	}
}

func testPauseResume(t *testing.T, s DeliveryBackend) {
	ctx := t.Context()
	e := newEndpoint(t, s, store.Endpoint{ID: "ep_pr"})
	first := CommitNotes(t, s, Note{"cus_1", "k"}, Note{"cus_2", "k"}, Note{"cus_3", "k"})
	enqueueUntil(t, s, e.ID, 3)
	yes, no := true, false
	if _, err := s.UpdateEndpoint(ctx, e.ID, store.EndpointUpdate{Paused: &yes}); err != nil {
		t.Fatal(err)
	}
	second := CommitNotes(t, s, Note{"cus_1", "k"}, Note{"cus_4", "k"}, Note{"cus_5", "k"})
	WaitNotifications(t, s, "", 6)
	time.Sleep(20 * time.Millisecond)
	if r, c, err := s.Enqueue(ctx, e.ID, 100); r != 0 || c != 0 || err != nil {
		t.Errorf("Enqueue while paused: got %d, %d, %v; want nothing", r, c, err)
	}
	if cs := claim(t, s, e.ID, "w", 10, time.Minute); len(cs) != 0 {
		t.Errorf("Claim while paused: got %d, want none", len(cs))
	}
	if _, err := s.UpdateEndpoint(ctx, e.ID, store.EndpointUpdate{Paused: &no}); err != nil {
		t.Fatal(err)
	}
	enqueueUntil(t, s, e.ID, 3)
	if got := deliveryEventIDs(listAll(t, s, store.DeliveryFilter{EndpointID: e.ID, PageSize: 100})); !slices.Equal(got, append(first, second...)) {
		t.Errorf("deliveries after resume: %v, want %v", got, append(first, second...))
	}
	if cs := claim(t, s, e.ID, "w", 10, time.Minute); len(cs) != 5 {
		t.Errorf("Claim after resume: got %d, want 5 (cus_1's second waits)", len(cs))
	}

	// Disabled behaves as paused until cleared.
	d := newEndpoint(t, s, store.Endpoint{ID: "ep_dis"})
	CommitNotes(t, s, Note{"cus_1", "k"})
	enqueueUntil(t, s, d.ID, 1)
	if err := s.DisableEndpoint(ctx, d.ID, "gone"); err != nil {
		t.Fatal(err)
	}
	if cs := claim(t, s, d.ID, "w", 10, time.Minute); len(cs) != 0 {
		t.Errorf("Claim while disabled: got %d, want none", len(cs))
	}
	if _, err := s.UpdateEndpoint(ctx, d.ID, store.EndpointUpdate{ClearDisabled: true}); err != nil {
		t.Fatal(err)
	}
	if cs := claim(t, s, d.ID, "w", 10, time.Minute); len(cs) != 1 {
		t.Errorf("Claim after re-enabling: got %d, want 1", len(cs))
	}
}

func testHealth(t *testing.T, s DeliveryBackend) {
	ctx := t.Context()
	e := newEndpoint(t, s, store.Endpoint{ID: "ep_h"})
	CommitNotes(t, s, Note{"cus_1", "k"}, Note{"cus_2", "k"}, Note{"cus_3", "k"})
	enqueueUntil(t, s, e.ID, 3)
	cs := claim(t, s, e.ID, "w", 10, time.Minute)
	if len(cs) != 3 {
		t.Fatalf("Claim: %d, want 3", len(cs))
	}
	r0 := result(cs[0], store.OutcomeRetry, 500)
	r0.NextAttemptAt = time.Now()
	complete(t, s, r0)
	got, _ := s.GetEndpoint(ctx, e.ID)
	if !got.FailingSince.Equal(r0.Attempt.StartedAt) {
		t.Errorf("FailingSince after a failed attempt: %v, want %v", got.FailingSince, r0.Attempt.StartedAt)
	}
	r1 := result(cs[1], store.OutcomeFailed, 0)
	r1.Attempt.StartedAt = r0.Attempt.StartedAt.Add(time.Second)
	complete(t, s, r1)
	if got, _ = s.GetEndpoint(ctx, e.ID); !got.FailingSince.Equal(r0.Attempt.StartedAt) {
		t.Errorf("FailingSince after a second failure: %v, want the first %v", got.FailingSince, r0.Attempt.StartedAt)
	}
	complete(t, s, result(cs[2], store.OutcomeDelivered, 200))
	if got, _ = s.GetEndpoint(ctx, e.ID); !got.FailingSince.IsZero() {
		t.Errorf("FailingSince after a success: %v, want zero", got.FailingSince)
	}
	bl, err := s.Backlog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]store.EndpointBacklog{}
	for _, b := range bl {
		m[b.EndpointID] = b
	}
	if b := m[e.ID]; b.Undelivered != 1 {
		t.Errorf("Backlog: %v, want 1 undelivered for %s", slices.Collect(maps.Values(m)), e.ID)
	}
}
