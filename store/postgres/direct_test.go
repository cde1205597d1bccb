package postgres_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres"
)

// webhookID is the form of a delivery ID (Standard Webhooks webhook-id).
var webhookID = regexp.MustCompile(`^msg_[0-9a-f]{32}$`)

// takeUntil calls TakeDirect as owner until the batch has read at least
// want notifications (those of transactions that are not final yet are
// held back, and any open transaction of the server holds them back),
// and returns that batch. It fails the test when the endpoint is not
// taken, or after 30 seconds.
func takeUntil(t *testing.T, s *postgres.Store, endpointID, owner string, want int, lease time.Duration) store.DirectBatch {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := s.TakeDirect(t.Context(), endpointID, owner, 100, lease)
		if err != nil {
			t.Fatalf("TakeDirect(%s, %s): %v", endpointID, owner, err)
		}
		if !b.Taken {
			t.Fatalf("TakeDirect(%s, %s): not taken", endpointID, owner)
		}
		if b.Read >= want {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("TakeDirect(%s, %s): read %d notifications, want %d", endpointID, owner, b.Read, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// enqueueAll calls Enqueue until it has read want notifications in all.
func enqueueAll(t *testing.T, s *postgres.Store, endpointID string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for read := 0; read < want; {
		r, _, err := s.Enqueue(t.Context(), endpointID, 100)
		if err != nil {
			t.Fatalf("Enqueue(%s): %v", endpointID, err)
		}
		read += r
		if r == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("Enqueue(%s): read %d notifications, want %d", endpointID, read, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// notificationsByEvent waits until the store has want notifications and
// returns them by event ID.
func notificationsByEvent(t *testing.T, s *postgres.Store, want int) map[string]store.Notification {
	t.Helper()
	m := map[string]store.Notification{}
	for _, n := range storetest.WaitNotifications(t, s, "", want) {
		m[n.EventID] = n
	}
	return m
}

func itemEvents(its []store.DirectItem) []string {
	var ids []string
	for _, it := range its {
		ids = append(ids, it.Notification.EventID)
	}
	return ids
}

func itemIDs(its []store.DirectItem) []string {
	var ids []string
	for _, it := range its {
		ids = append(ids, it.ID)
	}
	return ids
}

func itemBusy(its []store.DirectItem) []bool {
	var busy []bool
	for _, it := range its {
		busy = append(busy, it.Busy)
	}
	return busy
}

// attempted is the result of an attempt of it started at at and answered
// with code: 2xx with the body "ok", another code with "oops", 0 with no
// answer (a transport error).
func attempted(it store.DirectItem, o store.Outcome, code int, at time.Time) store.DirectResult {
	r := store.DirectResult{Attempted: true, Outcome: o, Attempt: store.Attempt{
		DeliveryID: it.ID, Attempt: 1, StartedAt: at.Truncate(time.Microsecond), Latency: 1500 * time.Microsecond,
		StatusCode: code, Body: []byte("ok"),
	}}
	switch {
	case code == 0:
		r.Attempt.Error, r.Attempt.Body = "dial tcp 127.0.0.1:9: connect: connection refused", nil
	case code < 200 || code >= 300:
		r.Attempt.Error, r.Attempt.Body = fmt.Sprintf("HTTP %d", code), []byte("oops")
	}
	return r
}

// allDelivered answers every item of b 200.
func allDelivered(b store.DirectBatch) []store.DirectResult {
	rs := make([]store.DirectResult, len(b.Items))
	for i, it := range b.Items {
		rs[i] = attempted(it, store.OutcomeDelivered, 200, time.Now())
	}
	return rs
}

// queueViolations counts the customers of the endpoint with queued or
// pending deliveries and not exactly one of them pending.
func queueViolations(t *testing.T, s *postgres.Store, endpointID string) int {
	t.Helper()
	pending := map[string]int{} // customer → pending deliveries
	active := map[string]bool{}
	for _, d := range listDeliveries(t, s, store.DeliveryFilter{EndpointID: endpointID, PageSize: 1000}) {
		switch d.Status {
		case store.DeliveryPending:
			pending[d.CustomerID]++
			active[d.CustomerID] = true
		case store.DeliveryQueued:
			active[d.CustomerID] = true
		}
	}
	n := 0
	for c := range active {
		if pending[c] != 1 {
			t.Logf("customer %s: %d pending deliveries among its queued and pending ones", c, pending[c])
			n++
		}
	}
	return n
}

// TestDirectTakeBatch takes an endpoint's direct delivery over
// notifications of several customers and kinds: the batch holds the
// notifications after the endpoint's cursor that its filter selects, in
// commit order, whole; Read counts those passed over too, and To is the
// cursor of the last one read; each item's ID is a webhook-id derived
// from the endpoint and the notification, the same when the batch is
// taken again (by its owner before it commits, or by another owner after
// a release) and another for another endpoint; Busy marks exactly the
// items whose customer has a queued or pending delivery to this endpoint
// (not an ended one, not one to another endpoint).
func TestDirectTakeBatch(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := t.Context()
	ep, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_take", URL: "https://example.com/hook",
		Kinds: []string{"invoice.paid"}, CustomerIDs: []string{"cus_1", "cus_2", "cus_4"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_other", URL: "https://example.com/other"})
	if err != nil {
		t.Fatal(err)
	}

	// Through the classic path: cus_1's delivery to ep ends delivered,
	// cus_2's stays pending (claimed, then released), cus_4's stays
	// claimed. On other, all three stay pending.
	pre := storetest.CommitNotes(t, s,
		storetest.Note{CustomerID: "cus_1", Kind: "invoice.paid"},
		storetest.Note{CustomerID: "cus_2", Kind: "invoice.paid"},
		storetest.Note{CustomerID: "cus_4", Kind: "invoice.paid"})
	enqueueAll(t, s, ep.ID, len(pre))
	enqueueAll(t, s, other.ID, len(pre))
	cs, err := s.Claim(ctx, ep.ID, "classic", 10, time.Minute)
	if err != nil || len(cs) != 3 {
		t.Fatalf("Claim: %d claimed, %v; want 3", len(cs), err)
	}
	var rs []store.Result
	for _, c := range cs {
		switch c.CustomerID {
		case "cus_1":
			rs = append(rs, deliveredResults([]store.Claimed{c})...)
		case "cus_2":
			rs = append(rs, store.Result{Lease: c.Lease, Outcome: store.OutcomeReleased, NextAttemptAt: time.Now()})
		}
	}
	if err := s.Complete(ctx, rs); err != nil {
		t.Fatal(err)
	}

	evts := storetest.CommitNotes(t, s,
		storetest.Note{CustomerID: "cus_1", Kind: "invoice.paid"},     // 0: item
		storetest.Note{CustomerID: "cus_2", Kind: "customer.updated"}, // 1: another kind
		storetest.Note{CustomerID: "cus_3", Kind: "invoice.paid"},     // 2: another customer
		storetest.Note{CustomerID: "cus_2", Kind: "invoice.paid"},     // 3: item, busy
		storetest.Note{CustomerID: "cus_4", Kind: "invoice.paid"},     // 4: item, busy
		storetest.Note{CustomerID: "cus_1", Kind: "invoice.paid"},     // 5: item
		storetest.Note{CustomerID: "cus_3", Kind: "customer.updated"}) // 6: neither
	ns := notificationsByEvent(t, s, len(pre)+len(evts))

	b := takeUntil(t, s, ep.ID, "owner_a", len(evts), time.Minute)
	if b.EndpointID != ep.ID || b.Owner != "owner_a" || !b.Taken {
		t.Errorf("batch of %s for %s, taken %v; want %s, owner_a, taken", b.EndpointID, b.Owner, b.Taken, ep.ID)
	}
	if want := ns[pre[2]].Cursor; b.From != want {
		t.Errorf("From: %q, want the endpoint's cursor %q", b.From, want)
	}
	if b.Read != len(evts) || b.To != ns[evts[6]].Cursor {
		t.Errorf("Read %d, To %q; want %d and the cursor of the last one read, %q", b.Read, b.To, len(evts), ns[evts[6]].Cursor)
	}
	wantEvents := []string{evts[0], evts[3], evts[4], evts[5]}
	if got := itemEvents(b.Items); !slices.Equal(got, wantEvents) {
		t.Fatalf("items: %v, want %v (the filter's, in commit order)", got, wantEvents)
	}
	if got, want := itemBusy(b.Items), []bool{false, true, true, false}; !slices.Equal(got, want) {
		t.Errorf("Busy: %v, want %v (cus_2 pending, cus_4 claimed; cus_1's ended, and pending only on another endpoint)", got, want)
	}
	seen := map[string]bool{}
	for _, it := range b.Items {
		n, w := it.Notification, ns[it.Notification.EventID]
		if n.Cursor != w.Cursor || n.CustomerID != w.CustomerID || n.Kind != w.Kind || n.Version != w.Version ||
			!n.OccurredAt.Equal(w.OccurredAt) || !bytes.Equal(n.Customer, w.Customer) || len(n.Customer) == 0 {
			t.Errorf("item %s: notification %+v, want %+v", it.ID, n, w)
		}
		if !webhookID.MatchString(it.ID) || seen[it.ID] {
			t.Errorf("item of %s: ID %q, want msg_ and 32 hex digits, unique", n.EventID, it.ID)
		}
		seen[it.ID] = true
	}

	same := func(what string, again store.DirectBatch) {
		t.Helper()
		if !again.Taken || again.From != b.From || again.To != b.To || again.Read != b.Read ||
			!slices.Equal(itemIDs(again.Items), itemIDs(b.Items)) || !slices.Equal(itemEvents(again.Items), wantEvents) ||
			!slices.Equal(itemBusy(again.Items), itemBusy(b.Items)) {
			t.Errorf("%s: taken %v, %s..%s, read %d, items %v %v busy %v; want the first batch, %s..%s, read %d, items %v %v busy %v",
				what, again.Taken, again.From, again.To, again.Read, itemIDs(again.Items), itemEvents(again.Items), itemBusy(again.Items),
				b.From, b.To, b.Read, itemIDs(b.Items), wantEvents, itemBusy(b.Items))
		}
	}
	again, err := s.TakeDirect(ctx, ep.ID, "owner_a", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	same("taken again by its owner", again)
	if err := s.ReleaseDirect(ctx, ep.ID, "owner_a"); err != nil {
		t.Fatal(err)
	}
	same("taken by another owner after the release", takeUntil(t, s, ep.ID, "owner_b", len(evts), time.Minute))

	// A limit reads that many, filtered or not.
	short, err := s.TakeDirect(ctx, ep.ID, "owner_b", 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if short.Read != 2 || short.To != ns[evts[1]].Cursor || !slices.Equal(itemEvents(short.Items), []string{evts[0]}) ||
		short.Items[0].ID != b.Items[0].ID {
		t.Errorf("TakeDirect with limit 2: read %d to %s, items %v %v; want 2 to %s, [%s] %s",
			short.Read, short.To, itemEvents(short.Items), itemIDs(short.Items), ns[evts[1]].Cursor, evts[0], b.Items[0].ID)
	}

	// Another endpoint has no filter, and all three customers of pre
	// pending: the same notifications have other IDs there.
	ob := takeUntil(t, s, other.ID, "owner_a", len(evts), time.Minute)
	if got := itemEvents(ob.Items); !slices.Equal(got, evts) {
		t.Fatalf("items of %s: %v, want %v", other.ID, got, evts)
	}
	for _, it := range ob.Items {
		if !webhookID.MatchString(it.ID) || seen[it.ID] {
			t.Errorf("item of %s to %s: ID %q, want msg_ and 32 hex digits, not one of %s's", it.Notification.EventID, other.ID, it.ID, ep.ID)
		}
		if want := it.Notification.CustomerID != "cus_3"; it.Busy != want {
			t.Errorf("item of %s (%s) to %s: Busy %v, want %v", it.Notification.EventID, it.Notification.CustomerID, other.ID, it.Busy, want)
		}
	}

	// An endpoint deleted and created again under its ID, from the same
	// cursor, is sent the notifications as new deliveries: other IDs, so
	// that a receiver deduplicating on webhook-id does not drop them.
	if err := s.DeleteEndpoint(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	re := ep
	re.Cursor = b.From
	if _, err := s.CreateEndpoint(ctx, re); err != nil {
		t.Fatal(err)
	}
	rb := takeUntil(t, s, ep.ID, "owner_a", len(evts), time.Minute)
	if got := itemEvents(rb.Items); !slices.Equal(got, wantEvents) {
		t.Fatalf("items of %s created again: %v, want %v", ep.ID, got, wantEvents)
	}
	for _, it := range rb.Items {
		if seen[it.ID] {
			t.Errorf("item of %s to %s created again: ID %s, as before it was deleted", it.Notification.EventID, ep.ID, it.ID)
		}
	}
}

// TestDirectLease checks the lease on an endpoint's direct delivery:
// while one owner's lease holds, another owner's TakeDirect is not Taken
// and has no items (and its ReleaseDirect releases nothing); the holder
// takes it again meanwhile; once it is released, or once it expired,
// another owner takes the same batch. A paused or disabled endpoint is
// not taken, and taken again once resumed; an unknown one is
// ErrNotFound.
func TestDirectLease(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := t.Context()
	ep, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_lease", URL: "https://example.com/hook"})
	if err != nil {
		t.Fatal(err)
	}
	storetest.CommitNotes(t, s, storetest.Note{CustomerID: "cus_1", Kind: "k"},
		storetest.Note{CustomerID: "cus_2", Kind: "k"}, storetest.Note{CustomerID: "cus_1", Kind: "k"})
	a := takeUntil(t, s, ep.ID, "owner_a", 3, time.Minute)
	if len(a.Items) != 3 {
		t.Fatalf("batch: %d items, want 3", len(a.Items))
	}

	notTaken := func(what, owner string) {
		t.Helper()
		b, err := s.TakeDirect(ctx, ep.ID, owner, 100, time.Minute)
		if err != nil {
			t.Fatalf("%s: TakeDirect(%s): %v", what, owner, err)
		}
		if b.Taken || len(b.Items) != 0 {
			t.Errorf("%s: TakeDirect(%s): taken %v with %d items, want not taken, none", what, owner, b.Taken, len(b.Items))
		}
	}
	takenSame := func(what string, b store.DirectBatch) {
		t.Helper()
		if !b.Taken || b.From != a.From || !slices.Equal(itemIDs(b.Items), itemIDs(a.Items)) {
			t.Errorf("%s: taken %v from %s, items %v; want taken from %s, %v", what, b.Taken, b.From, itemIDs(b.Items), a.From, itemIDs(a.Items))
		}
	}

	notTaken("while owner_a's lease holds", "owner_b")
	if err := s.ReleaseDirect(ctx, ep.ID, "owner_b"); err != nil {
		t.Fatal(err)
	}
	notTaken("after owner_b released a lease it does not hold", "owner_b")
	again, err := s.TakeDirect(ctx, ep.ID, "owner_a", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	takenSame("owner_a again", again)
	if err := s.ReleaseDirect(ctx, ep.ID, "owner_a"); err != nil {
		t.Fatal(err)
	}
	takenSame("owner_b after owner_a's release", takeUntil(t, s, ep.ID, "owner_b", 3, time.Minute))
	notTaken("while owner_b's lease holds", "owner_a")

	// A short lease: not taken before it expires, taken once it did.
	if err := s.ReleaseDirect(ctx, ep.ID, "owner_b"); err != nil {
		t.Fatal(err)
	}
	const lease = 500 * time.Millisecond
	start := time.Now()
	takeUntil(t, s, ep.ID, "owner_a", 3, lease)
	notTaken("within owner_a's short lease", "owner_b")
	var b store.DirectBatch
	for deadline := time.Now().Add(10 * time.Second); ; {
		if b, err = s.TakeDirect(ctx, ep.ID, "owner_b", 100, time.Minute); err != nil {
			t.Fatal(err)
		}
		if b.Taken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("owner_b: not taken %v after owner_a's lease of %v", time.Since(start), lease)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if elapsed := time.Since(start); elapsed < lease {
		t.Errorf("owner_b took the endpoint %v after owner_a's lease of %v began", elapsed, lease)
	}
	takenSame("owner_b after owner_a's lease expired", b)
	notTaken("while owner_b's lease holds", "owner_a")

	// Paused, then disabled: nobody takes it, its holder included.
	paused, resumed := true, false
	if _, err := s.UpdateEndpoint(ctx, ep.ID, store.EndpointUpdate{Paused: &paused}); err != nil {
		t.Fatal(err)
	}
	notTaken("paused", "owner_b")
	notTaken("paused", "owner_c")
	if _, err := s.UpdateEndpoint(ctx, ep.ID, store.EndpointUpdate{Paused: &resumed}); err != nil {
		t.Fatal(err)
	}
	takenSame("owner_b once resumed", takeUntil(t, s, ep.ID, "owner_b", 3, time.Minute))
	if err := s.DisableEndpoint(ctx, ep.ID, "410 Gone"); err != nil {
		t.Fatal(err)
	}
	notTaken("disabled", "owner_b")
	if _, err := s.UpdateEndpoint(ctx, ep.ID, store.EndpointUpdate{ClearDisabled: true}); err != nil {
		t.Fatal(err)
	}
	takenSame("owner_b once the disabling is cleared", takeUntil(t, s, ep.ID, "owner_b", 3, time.Minute))

	if _, err := s.TakeDirect(ctx, "ep_unknown", "owner_a", 100, time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeDirect of an unknown endpoint: %v, want ErrNotFound", err)
	}
}

// TestDirectCommitOutcomes commits a batch with every kind of result and
// reads back what was stored: a delivered item is a delivered delivery
// with its one attempt; a retried one is pending, due at its retry, with
// its attempt, and its customer's later items (not attempted) are queued
// behind it; a failed one is failed, and its customer's next item is its
// head, pending; an item not attempted whose customer has nothing active
// is pending; busy items are queued behind their customer's pending
// delivery, or, when that delivery ended (Complete) between TakeDirect
// and CommitDirect, the first of them is pending instead. Rows are in
// commit order, no customer is left with queued deliveries and none
// pending, the cursor moves to To, and Claim then serves the stored
// heads that are due.
func TestDirectCommitOutcomes(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := t.Context()
	ep, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_outcomes", URL: "https://example.com/hook"})
	if err != nil {
		t.Fatal(err)
	}
	// cus_busy and cus_busy2 each have a claimed (pending) delivery.
	pre := storetest.CommitNotes(t, s, storetest.Note{CustomerID: "cus_busy", Kind: "k"},
		storetest.Note{CustomerID: "cus_busy2", Kind: "k"})
	enqueueAll(t, s, ep.ID, len(pre))
	cs, err := s.Claim(ctx, ep.ID, "classic", 10, time.Minute)
	if err != nil || len(cs) != 2 {
		t.Fatalf("Claim: %d claimed, %v; want 2", len(cs), err)
	}
	claimed := map[string]store.Claimed{}
	for _, c := range cs {
		claimed[c.CustomerID] = c
	}

	var notes []storetest.Note
	for _, c := range []string{"cus_ok", "cus_retry", "cus_ok", "cus_retry", "cus_fail", "cus_fail",
		"cus_busy", "cus_busy2", "cus_busy2", "cus_left", "cus_retry", "cus_busy"} {
		notes = append(notes, storetest.Note{CustomerID: c, Kind: "k"})
	}
	evts := storetest.CommitNotes(t, s, notes...)
	b := takeUntil(t, s, ep.ID, "owner_a", len(evts), time.Minute)
	if !slices.Equal(itemEvents(b.Items), evts) {
		t.Fatalf("items: %v, want %v", itemEvents(b.Items), evts)
	}
	for i, it := range b.Items {
		c := it.Notification.CustomerID
		if want := c == "cus_busy" || c == "cus_busy2"; it.Busy != want {
			t.Fatalf("item %d (%s): Busy %v, want %v", i, c, it.Busy, want)
		}
	}
	// cus_busy2's pending delivery ends before the batch commits.
	if err := s.Complete(ctx, deliveredResults([]store.Claimed{claimed["cus_busy2"]})); err != nil {
		t.Fatal(err)
	}

	started := time.Now().Add(-time.Second)
	retryAt := time.Now().Add(time.Hour)
	results := make([]store.DirectResult, len(b.Items)) // not attempted unless set
	results[0] = attempted(b.Items[0], store.OutcomeDelivered, 200, started)
	results[1] = attempted(b.Items[1], store.OutcomeRetry, 500, started)
	results[1].NextAttemptAt = retryAt
	results[2] = attempted(b.Items[2], store.OutcomeDelivered, 200, started)
	results[4] = attempted(b.Items[4], store.OutcomeFailed, 0, started)
	if err := s.CommitDirect(ctx, b, results); err != nil {
		t.Fatalf("CommitDirect: %v", err)
	}

	want := []struct {
		status   store.DeliveryStatus
		attempts int
		code     int
	}{
		{store.DeliveryDelivered, 1, 200}, // 0 cus_ok
		{store.DeliveryPending, 1, 500},   // 1 cus_retry: retried
		{store.DeliveryDelivered, 1, 200}, // 2 cus_ok
		{store.DeliveryQueued, 0, 0},      // 3 cus_retry: behind 1
		{store.DeliveryFailed, 1, 0},      // 4 cus_fail
		{store.DeliveryPending, 0, 0},     // 5 cus_fail: its head after 4 failed
		{store.DeliveryQueued, 0, 0},      // 6 cus_busy: behind the claimed one
		{store.DeliveryPending, 0, 0},     // 7 cus_busy2: the claimed one was delivered meanwhile
		{store.DeliveryQueued, 0, 0},      // 8 cus_busy2: behind 7
		{store.DeliveryPending, 0, 0},     // 9 cus_left: not attempted, nothing active
		{store.DeliveryQueued, 0, 0},      // 10 cus_retry: behind 3
		{store.DeliveryQueued, 0, 0},      // 11 cus_busy: behind 6
	}
	for i, it := range b.Items {
		w := want[i]
		d, err := s.GetDelivery(ctx, it.ID)
		if err != nil {
			t.Errorf("item %d: GetDelivery(%s): %v", i, it.ID, err)
			continue
		}
		ended := w.status == store.DeliveryDelivered || w.status == store.DeliveryFailed
		if d.Status != w.status || d.Attempts != w.attempts || d.Step != w.attempts || d.LastStatus != w.code ||
			d.EndedAt.IsZero() == ended || d.EndpointID != ep.ID || d.CustomerID != it.Notification.CustomerID ||
			d.Notification.EventID != evts[i] || d.Notification.Cursor != it.Notification.Cursor {
			t.Errorf("item %d (%s): %s, attempts %d, step %d, last status %d, ended at %v, of %s/%s/%s; want %s, %d, %d, %d, ended %v, of %s/%s/%s",
				i, it.Notification.CustomerID, d.Status, d.Attempts, d.Step, d.LastStatus, d.EndedAt, d.EndpointID, d.CustomerID, d.Notification.EventID,
				w.status, w.attempts, w.attempts, w.code, ended, ep.ID, it.Notification.CustomerID, evts[i])
		}
		if results[i].Attempted && d.LastError != results[i].Attempt.Error {
			t.Errorf("item %d: last error %q, want %q", i, d.LastError, results[i].Attempt.Error)
		}
		as, _, err := s.ListAttempts(ctx, it.ID, 10, "")
		if err != nil {
			t.Fatalf("ListAttempts(%s): %v", it.ID, err)
		}
		if !results[i].Attempted {
			if len(as) != 0 {
				t.Errorf("item %d, not attempted: %d attempts stored, want none", i, len(as))
			}
			continue
		}
		r := results[i].Attempt
		if len(as) != 1 || as[0].Attempt != 1 || as[0].StatusCode != r.StatusCode || as[0].Error != r.Error ||
			!bytes.Equal(as[0].Body, r.Body) || !as[0].StartedAt.Equal(r.StartedAt) || as[0].Latency != r.Latency {
			t.Errorf("item %d: attempts %+v, want one: %+v", i, as, r)
		}
	}
	if d, err := s.GetDelivery(ctx, b.Items[1].ID); err == nil {
		if diff := d.NextAttemptAt.Sub(retryAt); diff < -time.Second || diff > time.Second {
			t.Errorf("retried item: due at %v, want %v", d.NextAttemptAt, retryAt)
		}
	}
	ds := listDeliveries(t, s, store.DeliveryFilter{EndpointID: ep.ID, PageSize: 1000})
	slices.Reverse(ds)
	var got []string
	for _, d := range ds {
		got = append(got, d.Notification.EventID)
	}
	if w := append(slices.Clone(pre), evts...); !slices.Equal(got, w) {
		t.Errorf("deliveries in the order %v, want commit order %v", got, w)
	}
	if n := queueViolations(t, s, ep.ID); n > 0 {
		t.Errorf("%d customers with queued deliveries and not one pending", n)
	}

	// The cursor moved to To: nothing is read again, only what comes
	// after, busy where the batch left a head.
	if e, err := s.GetEndpoint(ctx, ep.ID); err != nil || e.Cursor != b.To {
		t.Errorf("endpoint cursor after CommitDirect: %q (%v), want To %q", e.Cursor, err, b.To)
	}
	next, err := s.TakeDirect(ctx, ep.ID, "owner_a", 100, time.Minute)
	if err != nil || !next.Taken || next.Read != 0 || len(next.Items) != 0 || next.From != b.To {
		t.Errorf("TakeDirect after CommitDirect: taken %v from %s, read %d, %d items (%v); want from %s, nothing read",
			next.Taken, next.From, next.Read, len(next.Items), err, b.To)
	}
	later := storetest.CommitNotes(t, s, storetest.Note{CustomerID: "cus_ok", Kind: "k"},
		storetest.Note{CustomerID: "cus_retry", Kind: "k"}, storetest.Note{CustomerID: "cus_new", Kind: "k"})
	next = takeUntil(t, s, ep.ID, "owner_a", len(later), time.Minute)
	if next.From != b.To || !slices.Equal(itemEvents(next.Items), later) || !slices.Equal(itemBusy(next.Items), []bool{false, true, false}) {
		t.Errorf("next batch: from %s, items %v busy %v; want from %s, %v busy [false true false]",
			next.From, itemEvents(next.Items), itemBusy(next.Items), b.To, later)
	}

	// Claim serves the heads that are due: not the retried one (due in
	// an hour), nor cus_busy's (still claimed).
	cs, err = s.Claim(ctx, ep.ID, "classic", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	wantIDs := []string{b.Items[5].ID, b.Items[7].ID, b.Items[9].ID}
	slices.Sort(wantIDs)
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("Claim after CommitDirect: %v, want the due heads %v", ids, wantIDs)
	}
	if err := s.Complete(ctx, deliveredResults(cs)); err != nil {
		t.Fatal(err)
	}
	if d, err := s.GetDelivery(ctx, b.Items[8].ID); err != nil || d.Status != store.DeliveryPending {
		t.Errorf("cus_busy2's second item after its head was delivered: %s (%v), want pending", d.Status, err)
	}
}

// TestDirectCommitHealth checks that CommitDirect records the endpoint's
// health as Complete does: a batch whose attempts all failed sets
// FailingSince to its earliest attempt's start, a later failing batch
// keeps it, a batch with no attempt leaves it, and a batch with a
// delivered attempt clears it, failed ones in the batch or not.
func TestDirectCommitHealth(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := t.Context()
	ep, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_health", URL: "https://example.com/hook"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	batch := func(results func(b store.DirectBatch) []store.DirectResult, customers ...string) {
		t.Helper()
		var notes []storetest.Note
		for _, c := range customers {
			notes = append(notes, storetest.Note{CustomerID: c, Kind: "k"})
		}
		storetest.CommitNotes(t, s, notes...)
		b := takeUntil(t, s, ep.ID, "owner_a", len(customers), time.Minute)
		if err := s.CommitDirect(ctx, b, results(b)); err != nil {
			t.Fatalf("CommitDirect: %v", err)
		}
	}
	failingSince := func(what string, want time.Time) {
		t.Helper()
		e, err := s.GetEndpoint(ctx, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !e.FailingSince.Equal(want) {
			t.Errorf("%s: FailingSince %v, want %v", what, e.FailingSince, want)
		}
	}

	batch(func(b store.DirectBatch) []store.DirectResult {
		r0 := attempted(b.Items[0], store.OutcomeRetry, 503, t0.Add(time.Second))
		r0.NextAttemptAt = time.Now()
		return []store.DirectResult{r0, attempted(b.Items[1], store.OutcomeFailed, 0, t0)}
	}, "cus_a", "cus_b")
	failingSince("after a batch of failed attempts", t0)
	batch(func(b store.DirectBatch) []store.DirectResult {
		r := attempted(b.Items[0], store.OutcomeRetry, 500, t0.Add(time.Minute))
		r.NextAttemptAt = time.Now()
		return []store.DirectResult{r}
	}, "cus_c")
	failingSince("after a second failing batch", t0)
	batch(func(b store.DirectBatch) []store.DirectResult { return make([]store.DirectResult, len(b.Items)) }, "cus_d")
	failingSince("after a batch with no attempt", t0)
	batch(func(b store.DirectBatch) []store.DirectResult {
		r := attempted(b.Items[1], store.OutcomeRetry, 500, t0)
		r.NextAttemptAt = time.Now()
		return []store.DirectResult{attempted(b.Items[0], store.OutcomeDelivered, 200, time.Now()), r}
	}, "cus_e", "cus_f")
	failingSince("after a batch with a delivered attempt", time.Time{})
}

// TestDirectCommitAfterTakeover lets owner_a's short lease expire and
// owner_b take the batch over: owner_a's commit is refused with
// ErrLeaseLost and stores nothing (no delivery, no attempt, no health,
// the cursor unchanged), both before owner_b commits and after; owner_b's
// commit stores each notification once.
func TestDirectCommitAfterTakeover(t *testing.T) {
	t.Parallel()
	s, url := setup(t)
	ctx := t.Context()
	conn := connect(t, url)
	ep, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_takeover", URL: "https://example.com/hook"})
	if err != nil {
		t.Fatal(err)
	}
	storetest.CommitNotes(t, s, storetest.Note{CustomerID: "cus_1", Kind: "k"},
		storetest.Note{CustomerID: "cus_2", Kind: "k"}, storetest.Note{CustomerID: "cus_1", Kind: "k"})
	a := takeUntil(t, s, ep.ID, "owner_a", 3, 200*time.Millisecond)
	var b store.DirectBatch
	for deadline := time.Now().Add(10 * time.Second); ; {
		if b, err = s.TakeDirect(ctx, ep.ID, "owner_b", 100, time.Minute); err != nil {
			t.Fatal(err)
		}
		if b.Taken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("owner_b: not taken after owner_a's lease of 200ms")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b.From != a.From || b.Read != a.Read || !slices.Equal(itemIDs(b.Items), itemIDs(a.Items)) {
		t.Fatalf("owner_b's batch: from %s, read %d, %v; want owner_a's: from %s, read %d, %v",
			b.From, b.Read, itemIDs(b.Items), a.From, a.Read, itemIDs(a.Items))
	}

	// owner_a's results differ from owner_b's: all failed.
	failedAll := func(b store.DirectBatch) []store.DirectResult {
		rs := make([]store.DirectResult, len(b.Items))
		for i, it := range b.Items {
			rs[i] = attempted(it, store.OutcomeFailed, 500, time.Now())
		}
		return rs
	}
	storedNothing := func(what string, cursor string) {
		t.Helper()
		if err := s.CommitDirect(ctx, a, failedAll(a)); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("%s: owner_a's CommitDirect: %v, want ErrLeaseLost", what, err)
		}
		e, err := s.GetEndpoint(ctx, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if e.Cursor != cursor || !e.FailingSince.IsZero() {
			t.Errorf("%s, after owner_a's refused commit: cursor %s, failing since %v; want %s, healthy", what, e.Cursor, e.FailingSince, cursor)
		}
		if n := count(t, conn, `SELECT count(*) FROM deliveries WHERE status = 'failed'`); n != 0 {
			t.Errorf("%s, after owner_a's refused commit: %d failed deliveries stored, want none", what, n)
		}
	}
	storedNothing("before owner_b commits", a.From)
	if n := count(t, conn, `SELECT count(*) FROM deliveries`) + count(t, conn, `SELECT count(*) FROM delivery_attempts`); n != 0 {
		t.Errorf("after owner_a's refused commit: %d deliveries and attempts, want none", n)
	}
	if err := s.CommitDirect(ctx, b, allDelivered(b)); err != nil {
		t.Fatalf("owner_b's CommitDirect: %v", err)
	}
	storedNothing("after owner_b committed", b.To)
	for _, it := range b.Items {
		if d, err := s.GetDelivery(ctx, it.ID); err != nil || d.Status != store.DeliveryDelivered {
			t.Errorf("item %s: %s (%v), want delivered (owner_b's result)", it.ID, d.Status, err)
		}
	}
	if n := count(t, conn, `SELECT count(*) FROM deliveries`); n != len(b.Items) {
		t.Errorf("%d deliveries, want %d", n, len(b.Items))
	}
	if n := count(t, conn, `SELECT count(*) FROM delivery_attempts`); n != len(b.Items) {
		t.Errorf("%d attempts, want %d (owner_b's)", n, len(b.Items))
	}
}

// TestDirectCommitTwice commits a batch a second time, and another batch
// its owner took from the same cursor: once the first commit moved the
// cursor, both are refused with ErrLeaseLost and store nothing (no second
// row of any notification, no second attempt, the cursor where the first
// commit left it).
func TestDirectCommitTwice(t *testing.T) {
	t.Parallel()
	s, url := setup(t)
	ctx := t.Context()
	conn := connect(t, url)
	ep, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_twice", URL: "https://example.com/hook"})
	if err != nil {
		t.Fatal(err)
	}
	storetest.CommitNotes(t, s, storetest.Note{CustomerID: "cus_1", Kind: "k"},
		storetest.Note{CustomerID: "cus_2", Kind: "k"}, storetest.Note{CustomerID: "cus_1", Kind: "k"})
	b1 := takeUntil(t, s, ep.ID, "owner_a", 3, time.Minute)
	b2 := takeUntil(t, s, ep.ID, "owner_a", 3, time.Minute)
	if err := s.CommitDirect(ctx, b1, allDelivered(b1)); err != nil {
		t.Fatalf("first CommitDirect: %v", err)
	}
	retried := func(b store.DirectBatch) []store.DirectResult {
		rs := make([]store.DirectResult, len(b.Items))
		for i, it := range b.Items {
			rs[i] = attempted(it, store.OutcomeRetry, 500, time.Now())
			rs[i].NextAttemptAt = time.Now()
		}
		return rs
	}
	if err := s.CommitDirect(ctx, b1, retried(b1)); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("the batch committed again: %v, want ErrLeaseLost", err)
	}
	if err := s.CommitDirect(ctx, b2, retried(b2)); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("another batch from the same cursor: %v, want ErrLeaseLost", err)
	}
	if n := count(t, conn, `SELECT count(*) FROM deliveries`); n != len(b1.Items) {
		t.Errorf("%d deliveries, want %d", n, len(b1.Items))
	}
	if n := count(t, conn, `SELECT count(DISTINCT outbox_seq) FROM deliveries WHERE status = 'delivered'`); n != len(b1.Items) {
		t.Errorf("%d notifications delivered once, want %d", n, len(b1.Items))
	}
	if n := count(t, conn, `SELECT count(*) FROM delivery_attempts`); n != len(b1.Items) {
		t.Errorf("%d attempts, want %d", n, len(b1.Items))
	}
	if e, err := s.GetEndpoint(ctx, ep.ID); err != nil || e.Cursor != b1.To || !e.FailingSince.IsZero() {
		t.Errorf("endpoint: cursor %s, failing since %v (%v); want %s, healthy", e.Cursor, e.FailingSince, err, b1.To)
	}
}

// TestDirectRaceTwoStores delivers one endpoint directly from two stores
// on one database, as two members would, with short leases: each owner
// takes batches, answers them at random (mostly delivered, some retried,
// failed or left unattempted; a customer's items after one that did not
// end delivered, and busy ones, are not attempted) and commits them,
// sometimes after its lease expired, sometimes never (as if it died);
// meanwhile notifications of 40 customers are committed and a classic
// claimer on each store delivers the pending rows. Every committed
// notification ends with exactly one delivery, each customer's
// deliveries are in commit order and ended in that order, and no
// committed state has two pending deliveries of one customer, or queued
// ones and none pending.
func TestDirectRaceTwoStores(t *testing.T) {
	t.Parallel()
	const (
		customers = 40
		total     = 800
		endpoint  = "ep_direct_race"
	)
	a, url := setup(t)
	b, err := postgres.Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	stores := []*postgres.Store{a, b}
	if _, err := a.CreateEndpoint(t.Context(), store.Endpoint{ID: endpoint, URL: "https://example.com"}); err != nil {
		t.Fatal(err)
	}

	var (
		wg         sync.WaitGroup
		errs       = make(chan error, 64)
		produced   atomic.Bool
		drained    atomic.Bool
		stop       atomic.Bool // an error or a violation: the run ends there
		commits    atomic.Int64
		lost       atomic.Int64
		abandoned  atomic.Int64
		violations atomic.Int64
		mu         sync.Mutex
		committed  = map[string][]string{} // customer → event IDs in commit order
		eventOf    = map[string]string{}   // event ID → customer
	)
	report := func(err error) {
		stop.Store(true)
		select {
		case errs <- err:
		default:
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	over := func() bool { return drained.Load() || stop.Load() || time.Now().After(deadline) }
	wg.Go(func() { // producer, in small random batches over random customers
		defer produced.Store(true)
		for left := total; left > 0 && !stop.Load(); {
			k := min(left, 1+rand.IntN(8))
			var ns []storetest.Note
			for range k {
				ns = append(ns, storetest.Note{CustomerID: fmt.Sprintf("cus_%d", rand.IntN(customers)), Kind: "k"})
			}
			ids := storetest.CommitNotes(t, stores[rand.IntN(2)], ns...)
			mu.Lock()
			for i, id := range ids {
				committed[ns[i].CustomerID] = append(committed[ns[i].CustomerID], id)
				eventOf[id] = ns[i].CustomerID
			}
			mu.Unlock()
			left -= k
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		}
	})
	for i, s := range stores {
		owner := fmt.Sprintf("direct%d", i)
		wg.Go(func() { // direct owner
			for n := 1; !over(); {
				lease := time.Duration(100+rand.IntN(200)) * time.Millisecond
				bt, err := s.TakeDirect(t.Context(), endpoint, owner, 1+rand.IntN(40), lease)
				if err != nil {
					report(fmt.Errorf("%s: TakeDirect: %w", owner, err))
					return
				}
				if !bt.Taken || bt.Read == 0 {
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
					continue
				}
				n++
				results := make([]store.DirectResult, len(bt.Items))
				stopped := map[string]bool{} // customers with an item that did not end delivered
				for j, it := range bt.Items {
					c := it.Notification.CustomerID
					if it.Busy || stopped[c] {
						continue
					}
					switch x := rand.IntN(100); {
					case x < 80:
						results[j] = attempted(it, store.OutcomeDelivered, 200, time.Now())
					case x < 90:
						results[j] = attempted(it, store.OutcomeRetry, 503, time.Now())
						results[j].NextAttemptAt = time.Now().Add(time.Duration(rand.IntN(20)) * time.Millisecond)
					case x < 93:
						results[j] = attempted(it, store.OutcomeFailed, 400, time.Now())
					default: // the batch ran out of time
					}
					stopped[c] = !results[j].Attempted || results[j].Outcome != store.OutcomeDelivered
				}
				switch x := rand.IntN(100); {
				case x < 4: // dies before committing: the batch is taken again once its lease expired
					abandoned.Add(1)
					time.Sleep(lease + 20*time.Millisecond)
					continue
				case x < 8 || n%15 == 2: // stalls past its lease, then commits (its first batch always)
					time.Sleep(lease + 20*time.Millisecond)
				}
				switch err := s.CommitDirect(t.Context(), bt, results); {
				case err == nil:
					commits.Add(1)
				case errors.Is(err, store.ErrLeaseLost):
					lost.Add(1)
				default:
					report(fmt.Errorf("%s: CommitDirect: %w", owner, err))
					return
				}
				if rand.IntN(20) == 0 { // stops, so that the other need not wait for the lease
					if err := s.ReleaseDirect(t.Context(), endpoint, owner); err != nil {
						report(fmt.Errorf("%s: ReleaseDirect: %w", owner, err))
						return
					}
				}
			}
		})
		wg.Go(func() { // classic claimer of the pending rows
			owner := fmt.Sprintf("classic%d", i)
			for !over() {
				cs, err := s.Claim(t.Context(), endpoint, owner, 1+rand.IntN(16), time.Minute)
				if err != nil {
					report(fmt.Errorf("%s: Claim: %w", owner, err))
					return
				}
				if len(cs) == 0 {
					time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
					continue
				}
				if err := s.Complete(t.Context(), deliveredResults(cs)); err != nil {
					report(fmt.Errorf("%s: Complete: %w", owner, err))
					return
				}
			}
		})
	}
	wg.Go(func() { // checker: every committed state, one statement each; and whether all is delivered
		conn := connect(t, url)
		for !over() {
			var bad, rows, active int64
			err := conn.QueryRow(t.Context(), `
SELECT (SELECT count(*) FROM (
            SELECT customer_id FROM deliveries WHERE endpoint_id = $1 AND status IN ('queued', 'pending')
            GROUP BY customer_id
            HAVING count(*) FILTER (WHERE status = 'pending') <> 1) x),
       (SELECT count(*) FROM deliveries WHERE endpoint_id = $1),
       (SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND status IN ('queued', 'pending'))`,
				endpoint).Scan(&bad, &rows, &active)
			if err != nil {
				report(fmt.Errorf("checker: %w", err))
				return
			}
			if bad > 0 {
				violations.Add(bad)
				stop.Store(true)
			}
			if produced.Load() && rows >= total && active == 0 {
				drained.Store(true)
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d batches committed, %d refused (lease lost), %d abandoned", commits.Load(), lost.Load(), abandoned.Load())
	if n := violations.Load(); n > 0 {
		t.Errorf("%d times a customer had queued deliveries and none pending, or two pending", n)
	}
	if lost.Load() == 0 {
		t.Errorf("no commit was refused: no batch was taken over")
	}
	if !drained.Load() {
		t.Fatalf("not every notification delivered within the deadline (or the run stopped at a failure)")
	}

	rows, err := connect(t, url).Query(t.Context(), `
SELECT o.event_id, d.customer_id, d.status, d.ended_at FROM deliveries d JOIN outbox o ON o.seq = d.outbox_seq
WHERE d.endpoint_id = $1 ORDER BY d.seq`, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	order := map[string][]string{} // customer → event IDs by delivery seq
	lastEnd := map[string]time.Time{}
	var n int
	for rows.Next() {
		var (
			event, customer, status string
			ended                   *time.Time
		)
		if err := rows.Scan(&event, &customer, &status, &ended); err != nil {
			t.Fatal(err)
		}
		n++
		seen[event]++
		order[customer] = append(order[customer], event)
		if eventOf[event] != customer {
			t.Errorf("delivery of %s: customer %s, notification of %s", event, customer, eventOf[event])
		}
		if status != string(store.DeliveryDelivered) && status != string(store.DeliveryFailed) || ended == nil {
			t.Errorf("delivery of %s: %s, ended at %v; want delivered or failed", event, status, ended)
			continue
		}
		if ended.Before(lastEnd[customer]) {
			t.Errorf("delivery of %s (%s) ended at %v, before the customer's previous one (%v)", event, customer, *ended, lastEnd[customer])
		}
		lastEnd[customer] = *ended
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != total || len(seen) != total {
		t.Errorf("%d deliveries of %d notifications, want %d of %d", n, len(seen), total, total)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("notification %s: %d deliveries, want 1", id, k)
		}
	}
	for c, want := range committed {
		if got := order[c]; !slices.Equal(got, want) {
			t.Errorf("%s: deliveries in the order %v, committed %v", c, got, want)
		}
	}
}
