// Package storetest checks that a [store.Store] backend keeps the contract
// documented in package store: dedup by event ID and dedup key, version
// fencing under concurrency, independent writes in a batch, chained
// writes (AfterPrevious), event listing and notification reading that
// resumes without loss or repetition.
// Each backend's tests call [Run] with a constructor of empty stores.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd/store"
)

// NewStore returns an empty store for one test and arranges (with
// t.Cleanup) for it to be closed.
type NewStore func(t *testing.T) store.Store

// Run runs the contract tests, in parallel, against stores from newStore.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"CommitAndRead", testCommitAndRead},
		{"NotFound", testNotFound},
		{"DuplicateEventID", testDuplicateEventID},
		{"DuplicateDedupKey", testDuplicateDedupKey},
		{"RecordEvent", testRecordEvent},
		{"Account", testAccount},
		{"FencingConcurrent", testFencingConcurrent},
		{"BatchIndependence", testBatchIndependence},
		{"DuplicatesInBatch", testDuplicatesInBatch},
		{"PayloadRoundTrip", testPayloadRoundTrip},
		{"ListEvents", testListEvents},
		{"ListEventsByBytes", testListEventsByBytes},
		{"ListEventsByTypeAndTime", testListEventsByTypeAndTime},
		{"CountEvents", testCountEvents},
		{"ListEventsRefusesLongFilters", testListEventsRefusesLongFilters},
		{"NotificationsConcurrent", testNotificationsConcurrent},
		{"CanceledContext", testCanceledContext},
		{"ReleaseParked", testReleaseParked},
		{"LatestCursor", testLatestCursor},
		{"ReplaceIgnored", testReplaceIgnored},
		{"InvalidArguments", testInvalidArguments},
		{"ChainCommits", testChainCommits},
		{"ChainSkipsAfterDuplicate", testChainSkipsAfterDuplicate},
		{"ChainSkipsAfterFence", testChainSkipsAfterFence},
		{"ChainSkipsAfterInvalid", testChainSkipsAfterInvalid},
		{"ChainUnchainedAfterFailure", testChainUnchainedAfterFailure},
		{"ChainFirstWrite", testChainFirstWrite},
		{"ChainUnavailable", testChainUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// created is a fixed event time, at microsecond precision as stores keep.
var created = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// Event returns an applied event for customerID with enough fields set to
// be stored.
func Event(eventID, customerID string) store.Event {
	return store.Event{
		Source:     "stripe",
		EventID:    eventID,
		Type:       "customer.updated",
		CustomerID: customerID,
		Status:     store.StatusApplied,
		Routing:    "object.id",
		Created:    created,
		APIVersion: "2024-06-20",
		ObjectID:   customerID,
		Payload:    []byte(`{"id":"` + eventID + `"}`),
	}
}

// StateWrite returns a write that applies eventID to customerID read at
// readVersion, with one notification.
func StateWrite(eventID, customerID string, readVersion int64) store.Write {
	e := Event(eventID, customerID)
	e.Version = readVersion + 1
	return store.Write{
		Event:       e,
		ReadVersion: readVersion,
		State:       []byte("state after " + eventID),
		Notifications: []store.Notification{{
			Version:    readVersion + 1,
			CustomerID: customerID,
			Kind:       "customer.updated",
			EventID:    eventID,
			OccurredAt: created,
			Customer:   []byte("customer after " + eventID),
		}},
	}
}

// commitOne commits one write and returns its result.
func commitOne(t *testing.T, s store.Store, w store.Write) error {
	t.Helper()
	errs := s.Commit(t.Context(), []store.Write{w})
	if len(errs) != 1 {
		t.Fatalf("Commit returned %d results, want 1", len(errs))
	}
	return errs[0]
}

// mustCommit commits one write that must succeed.
func mustCommit(t *testing.T, s store.Store, w store.Write) {
	t.Helper()
	if err := commitOne(t, s, w); err != nil {
		t.Fatalf("Commit(%s): got %v, want nil", w.Event.EventID, err)
	}
}

// WaitNotifications reads customerID's notifications from the start until
// at least want have appeared (a store may hold back rows of transactions
// that are not yet final), and returns all of them. It fails the test
// after 30 seconds.
func WaitNotifications(t *testing.T, s store.Store, customerID string, want int) []store.Notification {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var all []store.Notification
		cursor := ""
		for {
			ns, err := s.ReadNotifications(t.Context(), cursor, customerID, 100)
			if err != nil {
				t.Fatalf("ReadNotifications: %v", err)
			}
			if len(ns) == 0 {
				break
			}
			all = append(all, ns...)
			cursor = ns[len(ns)-1].Cursor
		}
		if len(all) >= want {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications of %s: got %d, want %d", customerID, len(all), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testCommitAndRead(t *testing.T, s store.Store) {
	w := StateWrite("evt_1", "cus_1", 0)
	w.Routes = []string{"sub_1", "in_1"}
	w.Event.DedupKey = "customer.updated/cus_1/1"
	mustCommit(t, s, w)

	c, err := s.GetCustomer(t.Context(), "cus_1")
	if err != nil {
		t.Fatalf("GetCustomer: %v", err)
	}
	if c.CustomerID != "cus_1" || c.Version != 1 || !bytes.Equal(c.State, w.State) || c.UpdatedAt.IsZero() {
		t.Errorf("GetCustomer: got %+v, want cus_1 at version 1 with state %q", c, w.State)
	}

	e, err := s.GetEvent(t.Context(), "stripe", "evt_1")
	if err != nil {
		t.Fatalf("GetEvent: %v", err)
	}
	if e.ReceivedAt.IsZero() {
		t.Errorf("GetEvent: ReceivedAt is zero, want set by the store")
	}
	want := w.Event
	want.Version = 1
	want.ReceivedAt = e.ReceivedAt
	if !e.Created.Equal(want.Created) {
		t.Errorf("GetEvent: Created got %v, want %v", e.Created, want.Created)
	}
	e.Created = want.Created
	if diff := eventDiff(want, e); diff != "" {
		t.Errorf("GetEvent: %s", diff)
	}

	for _, obj := range w.Routes {
		got, err := s.LookupRoute(t.Context(), obj)
		if err != nil || got != "cus_1" {
			t.Errorf("LookupRoute(%s): got %q, %v; want cus_1", obj, got, err)
		}
	}

	ns := WaitNotifications(t, s, "cus_1", 1)
	if len(ns) != 1 {
		t.Fatalf("notifications: got %d, want 1", len(ns))
	}
	n := ns[0]
	if n.Cursor == "" || n.CustomerID != "cus_1" || n.Version != 1 || n.Kind != "customer.updated" ||
		n.EventID != "evt_1" || !n.OccurredAt.Equal(created) || !bytes.Equal(n.Customer, w.Notifications[0].Customer) {
		t.Errorf("notification: got %+v, want cus_1 version 1 of evt_1 with a cursor", n)
	}
	if err := s.ValidateCursor(n.Cursor); err != nil {
		t.Errorf("ValidateCursor(%q): got %v, want nil", n.Cursor, err)
	}
	if err := s.ValidateCursor(""); err != nil {
		t.Errorf(`ValidateCursor(""): got %v, want nil`, err)
	}
	if err := s.ValidateCursor("not a cursor"); err == nil {
		t.Errorf(`ValidateCursor("not a cursor"): got nil, want an error`)
	}
	// Resuming from the last cursor gives nothing new.
	more, err := s.ReadNotifications(t.Context(), n.Cursor, "", 10)
	if err != nil || len(more) != 0 {
		t.Errorf("ReadNotifications after the last cursor: got %d, %v; want none", len(more), err)
	}
}

// eventDiff describes how got differs from want, or returns "".
func eventDiff(want, got store.Event) string {
	if !bytes.Equal(want.Payload, got.Payload) {
		return fmt.Sprintf("payload got %q, want %q", got.Payload, want.Payload)
	}
	want.Payload, got.Payload = nil, nil
	if fmt.Sprintf("%+v", want) != fmt.Sprintf("%+v", got) {
		return fmt.Sprintf("got %+v\nwant %+v", got, want)
	}
	return ""
}

func testNotFound(t *testing.T, s store.Store) {
	if _, err := s.GetCustomer(t.Context(), "cus_none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCustomer: got %v, want ErrNotFound", err)
	}
	if _, err := s.GetEvent(t.Context(), "stripe", "evt_none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetEvent: got %v, want ErrNotFound", err)
	}
	if _, err := s.LookupRoute(t.Context(), "sub_none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LookupRoute: got %v, want ErrNotFound", err)
	}
}

func testDuplicateEventID(t *testing.T, s store.Store) {
	mustCommit(t, s, StateWrite("evt_1", "cus_1", 0))
	// Redelivered to an activation that read version 0 (it raced the
	// first) and to one that read version 1: a duplicate either way.
	for _, rv := range []int64{0, 1} {
		again := StateWrite("evt_1", "cus_1", rv)
		again.State = []byte("must not be written")
		if err := commitOne(t, s, again); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("second Commit(evt_1) from version %d: got %v, want ErrDuplicate", rv, err)
		}
	}
	c, err := s.GetCustomer(t.Context(), "cus_1")
	if err != nil || c.Version != 1 || string(c.State) != "state after evt_1" {
		t.Errorf("GetCustomer: got %+v, %v; want version 1, state of evt_1", c, err)
	}
	// Commit a marker so that every earlier row is final, then count.
	mustCommit(t, s, StateWrite("evt_2", "cus_1", 1))
	if ns := WaitNotifications(t, s, "cus_1", 2); len(ns) != 2 {
		t.Errorf("notifications: got %d, want 2 (evt_1 once, evt_2)", len(ns))
	}
}

func testDuplicateDedupKey(t *testing.T, s store.Store) {
	first := StateWrite("evt_1", "cus_1", 0)
	first.Event.DedupKey = "customer.updated/cus_1/1709294400"
	mustCommit(t, s, first)

	second := StateWrite("evt_2", "cus_1", 1)
	second.Event.DedupKey = first.Event.DedupKey
	if err := commitOne(t, s, second); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("Commit(evt_2) with evt_1's dedup key: got %v, want ErrDuplicate", err)
	}
	e, err := s.GetEvent(t.Context(), "stripe", "evt_2")
	if err != nil {
		t.Fatalf("GetEvent(evt_2): %v", err)
	}
	if e.Status != store.StatusDuplicate || e.Reason != "duplicate of evt_1" || e.DedupKey != "" || e.Version != 0 {
		t.Errorf("GetEvent(evt_2): got status %q, reason %q, dedup key %q, version %d; want duplicate, %q, none, 0",
			e.Status, e.Reason, e.DedupKey, e.Version, "duplicate of evt_1")
	}
	if !bytes.Equal(e.Payload, second.Event.Payload) {
		t.Errorf("GetEvent(evt_2): payload got %q, want %q", e.Payload, second.Event.Payload)
	}
	c, err := s.GetCustomer(t.Context(), "cus_1")
	if err != nil || c.Version != 1 {
		t.Errorf("GetCustomer: got version %d, %v; want 1", c.Version, err)
	}
	// Delivered once more, the recorded duplicate is a duplicate by ID.
	if err := commitOne(t, s, second); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("third Commit(evt_2): got %v, want ErrDuplicate", err)
	}
	mustCommit(t, s, StateWrite("evt_3", "cus_1", 1))
	ns := WaitNotifications(t, s, "cus_1", 2)
	if got := eventIDs(ns); !slices.Equal(got, []string{"evt_1", "evt_3"}) {
		t.Errorf("notifications: got %v, want [evt_1 evt_3]", got)
	}
}

func eventIDs(ns []store.Notification) []string {
	var ids []string
	for _, n := range ns {
		ids = append(ids, n.EventID)
	}
	return ids
}

func testRecordEvent(t *testing.T, s store.Store) {
	e := Event("evt_1", "")
	e.Status = store.StatusIgnored
	e.Reason = "unknown event type"
	if err := s.RecordEvent(t.Context(), e); err != nil {
		t.Fatalf("RecordEvent: %v", err)
	}
	if err := s.RecordEvent(t.Context(), e); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("second RecordEvent: got %v, want ErrDuplicate", err)
	}
	got, err := s.GetEvent(t.Context(), "stripe", "evt_1")
	if err != nil || got.Status != store.StatusIgnored || got.Reason != e.Reason || got.CustomerID != "" {
		t.Errorf("GetEvent: got %+v, %v; want ignored, %q, no customer", got, err, e.Reason)
	}
}

// testAccount checks that an event's Connect account is stored and read
// back by every path that writes or reads events: a state write, a
// recorded event, a dedup-key duplicate, GetEvent and ListEvents.
func testAccount(t *testing.T, s store.Store) {
	w := StateWrite("evt_1", "cus_1", 0)
	w.Event.Account = "acct_1"
	w.Event.DedupKey = "customer.updated/cus_1/1"
	mustCommit(t, s, w)

	dup := StateWrite("evt_2", "cus_1", 1)
	dup.Event.Account = "acct_2"
	dup.Event.DedupKey = w.Event.DedupKey
	if err := commitOne(t, s, dup); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("Commit(evt_2) with evt_1's dedup key: got %v, want ErrDuplicate", err)
	}

	rec := Event("evt_3", "")
	rec.Status, rec.Reason, rec.Account = store.StatusIgnored, "no customer", "acct_3"
	if err := s.RecordEvent(t.Context(), rec); err != nil {
		t.Fatalf("RecordEvent: %v", err)
	}
	mustCommit(t, s, StateWrite("evt_4", "cus_1", 1)) // the platform's own: no account

	want := map[string]string{"evt_1": "acct_1", "evt_2": "acct_2", "evt_3": "acct_3", "evt_4": ""}
	for id, acct := range want {
		e, err := s.GetEvent(t.Context(), "stripe", id)
		if err != nil {
			t.Fatalf("GetEvent(%s): %v", id, err)
		}
		if e.Account != acct {
			t.Errorf("GetEvent(%s): account got %q, want %q", id, e.Account, acct)
		}
	}
	events, _, err := s.ListEvents(t.Context(), store.ListEventsFilter{PageSize: 10})
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	if len(events) != len(want) {
		t.Fatalf("ListEvents: got %d events, want %d", len(events), len(want))
	}
	for _, e := range events {
		if e.Account != want[e.EventID] {
			t.Errorf("ListEvents: %s account got %q, want %q", e.EventID, e.Account, want[e.EventID])
		}
	}
}

// testFencingConcurrent races two activations of one customer that read
// the same version, many times: exactly one may commit.
func testFencingConcurrent(t *testing.T, s store.Store) {
	const rounds = 20
	for round := range rounds {
		for _, rv := range []int64{0, 1} {
			cus := fmt.Sprintf("cus_%d_%d", round, rv)
			if rv == 1 {
				mustCommit(t, s, StateWrite(cus+"_setup", cus, 0))
			}
			writes := []store.Write{
				StateWrite(cus+"_a", cus, rv),
				StateWrite(cus+"_b", cus, rv),
			}
			var errs [2]error
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range writes {
				wg.Go(func() {
					<-start
					errs[i] = s.Commit(t.Context(), writes[i:i+1])[0]
				})
			}
			close(start)
			wg.Wait()

			winner := -1
			for i, err := range errs {
				switch {
				case err == nil:
					winner = i
				case !errors.Is(err, store.ErrFenced):
					t.Fatalf("%s: Commit(%s): got %v, want nil or ErrFenced", cus, writes[i].Event.EventID, err)
				}
			}
			if winner < 0 || (errs[0] == nil) == (errs[1] == nil) {
				t.Fatalf("%s: results got %v, want exactly one nil and one ErrFenced", cus, errs)
			}
			c, err := s.GetCustomer(t.Context(), cus)
			if err != nil || c.Version != rv+1 || !bytes.Equal(c.State, writes[winner].State) {
				t.Fatalf("%s: GetCustomer got %+v, %v; want version %d with the winner's state", cus, c, err, rv+1)
			}
			loser := writes[1-winner].Event.EventID
			if _, err := s.GetEvent(t.Context(), "stripe", loser); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: GetEvent(%s) of the fenced write: got %v, want ErrNotFound", cus, loser, err)
			}
			// A later write makes every earlier row final.
			mustCommit(t, s, StateWrite(cus+"_after", cus, rv+1))
			ns := WaitNotifications(t, s, cus, int(rv)+2)
			var want []string
			if rv == 1 {
				want = append(want, cus+"_setup")
			}
			want = append(want, writes[winner].Event.EventID, cus+"_after")
			if got := eventIDs(ns); !slices.Equal(got, want) {
				t.Fatalf("%s: notifications got %v, want %v", cus, got, want)
			}
		}
	}
}

func testBatchIndependence(t *testing.T, s store.Store) {
	mustCommit(t, s, StateWrite("evt_old", "cus_old", 0))
	mustCommit(t, s, StateWrite("evt_fence", "cus_fence", 0))
	writes := []store.Write{
		StateWrite("evt_1", "cus_1", 0),
		StateWrite("evt_old", "cus_2", 0),   // duplicate event ID
		StateWrite("evt_3", "cus_3", 0),     //
		StateWrite("evt_4", "cus_fence", 0), // cus_fence is at version 1
		StateWrite("evt_5", "cus_5", 0),
	}
	errs := s.Commit(t.Context(), writes)
	want := []error{nil, store.ErrDuplicate, nil, store.ErrFenced, nil}
	if len(errs) != len(want) {
		t.Fatalf("Commit: got %d results, want %d", len(errs), len(want))
	}
	for i := range want {
		if (want[i] == nil && errs[i] != nil) || !errors.Is(errs[i], want[i]) {
			t.Errorf("Commit result %d: got %v, want %v", i, errs[i], want[i])
		}
	}
	for _, cus := range []string{"cus_1", "cus_3", "cus_5"} {
		if c, err := s.GetCustomer(t.Context(), cus); err != nil || c.Version != 1 {
			t.Errorf("GetCustomer(%s): got %+v, %v; want version 1", cus, c, err)
		}
	}
	if _, err := s.GetCustomer(t.Context(), "cus_2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCustomer(cus_2) of the duplicate: got %v, want ErrNotFound", err)
	}
	if c, err := s.GetCustomer(t.Context(), "cus_fence"); err != nil || string(c.State) != "state after evt_fence" {
		t.Errorf("GetCustomer(cus_fence): got %+v, %v; want evt_fence's state", c, err)
	}
	if _, err := s.GetEvent(t.Context(), "stripe", "evt_4"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetEvent(evt_4) of the fenced write: got %v, want ErrNotFound", err)
	}
	mustCommit(t, s, StateWrite("evt_last", "cus_last", 0))
	ns := WaitNotifications(t, s, "", 6)
	if got, want := eventIDs(ns), []string{"evt_old", "evt_fence", "evt_1", "evt_3", "evt_5", "evt_last"}; !slices.Equal(got, want) {
		t.Errorf("notifications: got %v, want %v", got, want)
	}
}

// testDuplicatesInBatch puts an event and its duplicates (by ID and by
// dedup key) in one batch: the first takes effect, the others are
// duplicates of it, and the write after them still commits.
func testDuplicatesInBatch(t *testing.T, s store.Store) {
	first := StateWrite("evt_1", "cus_1", 0)
	first.Event.DedupKey = "k1"
	sameID := StateWrite("evt_1", "cus_1", 1)
	sameKey := StateWrite("evt_2", "cus_1", 1)
	sameKey.Event.DedupKey = "k1"
	next := StateWrite("evt_3", "cus_1", 1)
	errs := s.Commit(t.Context(), []store.Write{first, sameID, sameKey, next})
	want := []error{nil, store.ErrDuplicate, store.ErrDuplicate, nil}
	for i := range want {
		if (want[i] == nil && errs[i] != nil) || !errors.Is(errs[i], want[i]) {
			t.Errorf("Commit result %d: got %v, want %v", i, errs[i], want[i])
		}
	}
	e, err := s.GetEvent(t.Context(), "stripe", "evt_2")
	if err != nil || e.Status != store.StatusDuplicate || e.Reason != "duplicate of evt_1" {
		t.Errorf("GetEvent(evt_2): got %+v, %v; want status duplicate, reason %q", e, err, "duplicate of evt_1")
	}
	if c, err := s.GetCustomer(t.Context(), "cus_1"); err != nil || c.Version != 2 || string(c.State) != "state after evt_3" {
		t.Errorf("GetCustomer: got %+v, %v; want version 2 with evt_3's state", c, err)
	}
	mustCommit(t, s, StateWrite("evt_4", "cus_1", 2))
	ns := WaitNotifications(t, s, "cus_1", 3)
	if got, want := eventIDs(ns), []string{"evt_1", "evt_3", "evt_4"}; !slices.Equal(got, want) {
		t.Errorf("notifications: got %v, want %v", got, want)
	}
}

func testPayloadRoundTrip(t *testing.T, s store.Store) {
	payloads := map[string][]byte{
		"evt_spaces": []byte("{ \"type\" :\"customer.created\",\n  \"id\": \"evt_spaces\",\t\"data\":{\"z\":1, \"a\" : [ 1.0 ,2e0 ] } }\n"),
		"evt_order":  []byte(`{"z":"last","a":"first","dup":1,"dup":2,"u":"\u00e9\ud83d\ude00"}`),
		"evt_binary": {0x00, 0xff, 0xfe, '{', 0x80, '}'},
		"evt_empty":  {},
	}
	for id, p := range payloads {
		e := Event(id, "")
		e.Status = store.StatusIgnored
		e.Payload = p
		if err := s.RecordEvent(t.Context(), e); err != nil {
			t.Fatalf("RecordEvent(%s): %v", id, err)
		}
	}
	for id, p := range payloads {
		e, err := s.GetEvent(t.Context(), "stripe", id)
		if err != nil {
			t.Fatalf("GetEvent(%s): %v", id, err)
		}
		if !bytes.Equal(e.Payload, p) {
			t.Errorf("GetEvent(%s): payload got %q, want %q", id, e.Payload, p)
		}
	}
}

// testListEventsByBytes pages through events of varied payload sizes
// (some larger than the byte bound) with MaxBytes set: every page holds at
// most PageSize events and, unless it holds one, at most MaxBytes of
// payloads; it ends only where the next event would not fit; and the
// listing returns every event once, newest first.
func testListEventsByBytes(t *testing.T, s store.Store) {
	const n = 40
	var all []string
	sizes := map[string]int{}
	for i := range n {
		id := fmt.Sprintf("evt_%02d", i)
		e := Event(id, fmt.Sprintf("cus_%d", i%2))
		size := 100 + (i*7919)%3000 // 100 … 3099 bytes
		if i%11 == 5 {
			size = 5000 // larger than every bound below
		}
		e.Payload = bytes.Repeat([]byte{'x'}, size)
		if err := s.RecordEvent(t.Context(), e); err != nil {
			t.Fatalf("RecordEvent(%s): %v", id, err)
		}
		all, sizes[id] = append(all, id), size
	}
	slices.Reverse(all)
	for _, f := range []store.ListEventsFilter{
		{PageSize: 100, MaxBytes: 4000},
		{PageSize: 3, MaxBytes: 4000},
		{PageSize: 100, MaxBytes: 1},
		{PageSize: 100, MaxBytes: 1 << 20},
		{PageSize: 5, MaxBytes: 2500, CustomerID: "cus_1"},
		{PageSize: 100, MaxBytes: 3500, Status: store.StatusApplied},
	} {
		var want []string
		for _, id := range all {
			var i int
			fmt.Sscanf(id, "evt_%d", &i)
			if f.CustomerID == "" || f.CustomerID == fmt.Sprintf("cus_%d", i%2) {
				want = append(want, id)
			}
		}
		var got []string
		for page := 0; ; page++ {
			es, next, err := s.ListEvents(t.Context(), f)
			if err != nil {
				t.Fatalf("ListEvents(%+v): %v", f, err)
			}
			total := 0
			for _, e := range es {
				got = append(got, e.EventID)
				total += len(e.Payload)
				if len(e.Payload) != sizes[e.EventID] {
					t.Fatalf("ListEvents(%+v): %s payload of %d bytes, want %d", f, e.EventID, len(e.Payload), sizes[e.EventID])
				}
			}
			if len(es) == 0 || len(es) > f.PageSize || (len(es) > 1 && int64(total) > f.MaxBytes) {
				t.Fatalf("ListEvents(%+v): page of %d events, %d bytes; want 1 to %d events within %d bytes (or one event)",
					f, len(es), total, f.PageSize, f.MaxBytes)
			}
			if next == "" {
				break
			}
			// A page that ends early ends only where the next event
			// would not fit.
			if rest := len(got); len(es) < f.PageSize && rest < len(want) {
				if following := sizes[want[rest]]; int64(total+following) <= f.MaxBytes {
					t.Fatalf("ListEvents(%+v): page of %d events, %d bytes, ended before %s of %d bytes, which fits",
						f, len(es), total, want[rest], following)
				}
			}
			if page > n {
				t.Fatalf("ListEvents(%+v): more pages than events", f)
			}
			f.PageToken = next
		}
		if !slices.Equal(got, want) {
			t.Errorf("ListEvents(%+v): got %v, want %v", f, got, want)
		}
	}
}

func testListEvents(t *testing.T, s store.Store) {
	// Ten events, oldest first: customers alternate, every third ignored.
	var all []string
	for i := range 10 {
		id := fmt.Sprintf("evt_%02d", i)
		e := Event(id, fmt.Sprintf("cus_%d", i%2))
		if i%3 == 0 {
			e.Status = store.StatusIgnored
		}
		if err := s.RecordEvent(t.Context(), e); err != nil {
			t.Fatalf("RecordEvent(%s): %v", id, err)
		}
		all = append(all, id)
	}
	slices.Reverse(all)

	list := func(f store.ListEventsFilter) []string {
		t.Helper()
		var ids []string
		for page := 0; ; page++ {
			es, next, err := s.ListEvents(t.Context(), f)
			if err != nil {
				t.Fatalf("ListEvents(%+v): %v", f, err)
			}
			if len(es) > f.PageSize || (next != "" && len(es) != f.PageSize) {
				t.Fatalf("ListEvents(%+v): got %d events and next %q, want full pages", f, len(es), next)
			}
			for _, e := range es {
				ids = append(ids, e.EventID)
			}
			if next == "" {
				return ids
			}
			if page > 20 {
				t.Fatalf("ListEvents(%+v): more pages than events", f)
			}
			f.PageToken = next
		}
	}
	filter := func(keep func(i int) bool) []string {
		var ids []string
		for _, id := range all {
			var i int
			fmt.Sscanf(id, "evt_%d", &i)
			if keep(i) {
				ids = append(ids, id)
			}
		}
		return ids
	}
	tests := []struct {
		f    store.ListEventsFilter
		want []string
	}{
		{store.ListEventsFilter{PageSize: 3}, all},
		{store.ListEventsFilter{PageSize: 10}, all},
		{store.ListEventsFilter{PageSize: 100}, all},
		{store.ListEventsFilter{PageSize: 2, CustomerID: "cus_1"}, filter(func(i int) bool { return i%2 == 1 })},
		{store.ListEventsFilter{PageSize: 2, Status: store.StatusIgnored}, filter(func(i int) bool { return i%3 == 0 })},
		{store.ListEventsFilter{PageSize: 1, CustomerID: "cus_0", Status: store.StatusApplied}, filter(func(i int) bool { return i%2 == 0 && i%3 != 0 })},
		{store.ListEventsFilter{PageSize: 5, CustomerID: "cus_none"}, nil},
	}
	for _, tt := range tests {
		if got := list(tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("ListEvents(%+v): got %v, want %v", tt.f, got, tt.want)
		}
	}
	if _, _, err := s.ListEvents(t.Context(), store.ListEventsFilter{PageSize: 2, PageToken: "garbage!"}); err == nil {
		t.Errorf("ListEvents with a malformed page token: got nil error, want one")
	}
}

func testListEventsByTypeAndTime(t *testing.T, s store.Store) {
	// Twelve events, oldest first, a few milliseconds apart: types cycle
	// through three, customers alternate.
	types := []string{"customer.updated", "invoice.paid", "customer.subscription.updated"}
	for i := range 12 {
		e := Event(fmt.Sprintf("evt_%02d", i), fmt.Sprintf("cus_%d", i%2))
		e.Type = types[i%3]
		if err := s.RecordEvent(t.Context(), e); err != nil {
			t.Fatalf("RecordEvent: %v", err)
		}
		time.Sleep(3 * time.Millisecond)
	}
	stored, _, err := s.ListEvents(t.Context(), store.ListEventsFilter{PageSize: 100})
	if err != nil || len(stored) != 12 {
		t.Fatalf("ListEvents: %d events, %v; want 12", len(stored), err)
	}
	// stored is newest first: the window holds the 4th to the 9th oldest
	// by the times the store gave them.
	from, before := stored[8].ReceivedAt, stored[2].ReceivedAt
	if !from.Before(before) {
		t.Fatalf("received times %v and %v: want the older first", from, before)
	}
	want := func(keep func(e store.Event) bool) []string {
		var ids []string
		for _, e := range stored {
			if keep(e) {
				ids = append(ids, e.EventID)
			}
		}
		return ids
	}
	inWindow := func(e store.Event) bool { return !e.ReceivedAt.Before(from) && e.ReceivedAt.Before(before) }
	tests := []struct {
		f    store.ListEventsFilter
		want []string
	}{
		{store.ListEventsFilter{Type: "invoice.paid"}, want(func(e store.Event) bool { return e.Type == "invoice.paid" })},
		{store.ListEventsFilter{Type: "invoice.paid", CustomerID: "cus_1"},
			want(func(e store.Event) bool { return e.Type == "invoice.paid" && e.CustomerID == "cus_1" })},
		{store.ListEventsFilter{Type: "charge.succeeded"}, nil},
		{store.ListEventsFilter{ReceivedFrom: from}, want(func(e store.Event) bool { return !e.ReceivedAt.Before(from) })},
		{store.ListEventsFilter{ReceivedBefore: before}, want(func(e store.Event) bool { return e.ReceivedAt.Before(before) })},
		{store.ListEventsFilter{ReceivedFrom: from, ReceivedBefore: before}, want(inWindow)},
		{store.ListEventsFilter{ReceivedFrom: from, ReceivedBefore: before, Type: "customer.updated", CustomerID: "cus_0", Status: store.StatusApplied},
			want(func(e store.Event) bool {
				return inWindow(e) && e.Type == "customer.updated" && e.CustomerID == "cus_0"
			})},
		{store.ListEventsFilter{ReceivedFrom: before, ReceivedBefore: from}, nil},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 2, 100} {
			f := tt.f
			f.PageSize = size
			var got []string
			for page := 0; ; page++ {
				es, next, err := s.ListEvents(t.Context(), f)
				if err != nil {
					t.Fatalf("ListEvents(%+v): %v", f, err)
				}
				for _, e := range es {
					got = append(got, e.EventID)
				}
				if next == "" {
					break
				}
				if page > 20 {
					t.Fatalf("ListEvents(%+v): more pages than events", f)
				}
				f.PageToken = next
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ListEvents(%+v): got %v, want %v", f, got, tt.want)
			}
			// The same listing bounded by bytes reads the same events.
			f.PageToken, f.MaxBytes = "", 1<<20
			if es, _, err := s.ListEvents(t.Context(), f); err != nil || (len(tt.want) > 0 && (len(es) == 0 || es[0].EventID != tt.want[0])) {
				t.Errorf("ListEvents(%+v) by bytes: first page %d events, %v; want it to start at %v", f, len(es), err, tt.want)
			}
		}
	}
}

func testListEventsRefusesLongFilters(t *testing.T, s store.Store) {
	long := strings.Repeat("x", store.MaxFilterLen+1)
	for _, f := range []store.ListEventsFilter{{PageSize: 1, Type: long}, {PageSize: 1, CustomerID: long}} {
		if _, _, err := s.ListEvents(t.Context(), f); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("ListEvents with a %d-byte filter: %v, want ErrInvalidArgument", len(long), err)
		}
	}
}

func testCountEvents(t *testing.T, s store.Store) {
	c, ok := store.Counter(s)
	if !ok {
		t.Fatalf("%T is not a store.EventCounter", s)
	}
	counts, err := c.CountEvents(t.Context())
	if err != nil || len(counts) != 0 {
		t.Fatalf("CountEvents of an empty store: %v, %v; want no counts", counts, err)
	}
	want := map[store.Status]int64{}
	for i := range 17 {
		e := Event(fmt.Sprintf("evt_%02d", i), "cus_1")
		e.Status = []store.Status{store.StatusApplied, store.StatusIgnored, store.StatusParked}[i%3]
		if err := s.RecordEvent(t.Context(), e); err != nil {
			t.Fatalf("RecordEvent: %v", err)
		}
		want[e.Status]++
	}
	if counts, err = c.CountEvents(t.Context()); err != nil || !maps.Equal(counts, want) {
		t.Errorf("CountEvents: %v, %v; want %v", counts, err, want)
	}
}

// testNotificationsConcurrent commits from many goroutines while a reader
// follows the outbox from its last cursor, and checks that the reader
// sees every notification exactly once and each customer's in version
// order.
func testNotificationsConcurrent(t *testing.T, s store.Store) {
	const writers, perWriter = 20, 50
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	writeErrs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			cus := fmt.Sprintf("cus_%02d", w)
			for v := range int64(perWriter) {
				write := StateWrite(fmt.Sprintf("evt_%02d_%03d", w, v), cus, v)
				if err := s.Commit(ctx, []store.Write{write})[0]; err != nil {
					writeErrs <- fmt.Errorf("Commit(%s): %w", write.Event.EventID, err)
					return
				}
			}
		})
	}

	seen := make(map[string]bool)         // event IDs
	lastVersion := make(map[string]int64) // by customer
	cursor, reads := "", 0
	for len(seen) < writers*perWriter {
		if ctx.Err() != nil {
			t.Fatalf("reader: saw %d notifications before the deadline, want %d", len(seen), writers*perWriter)
		}
		// Read in small pages, as a subscriber that reconnects often
		// would, resuming from the last cursor it saw.
		ns, err := s.ReadNotifications(ctx, cursor, "", 7)
		if err != nil {
			t.Fatalf("ReadNotifications(%q): %v", cursor, err)
		}
		reads++
		if len(ns) == 0 {
			time.Sleep(time.Millisecond)
			continue
		}
		for _, n := range ns {
			if seen[n.EventID] {
				t.Fatalf("notification of %s seen twice (cursor %s)", n.EventID, n.Cursor)
			}
			seen[n.EventID] = true
			if n.Version != lastVersion[n.CustomerID]+1 {
				t.Fatalf("%s: version %d after %d, want %d", n.CustomerID, n.Version, lastVersion[n.CustomerID], lastVersion[n.CustomerID]+1)
			}
			lastVersion[n.CustomerID] = n.Version
		}
		cursor = ns[len(ns)-1].Cursor
	}
	wg.Wait()
	close(writeErrs)
	for err := range writeErrs {
		t.Error(err)
	}
	t.Logf("read %d notifications in %d reads", len(seen), reads)
}

func testCanceledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	writes := []store.Write{StateWrite("evt_1", "cus_1", 0), StateWrite("evt_2", "cus_2", 0)}
	errs := s.Commit(ctx, writes)
	for i, err := range errs {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Commit with a canceled context, result %d: got %v, want ErrUnavailable", i, err)
		}
	}
	for _, w := range writes {
		if _, err := s.GetEvent(t.Context(), "stripe", w.Event.EventID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetEvent(%s) after a failed commit: got %v, want ErrNotFound", w.Event.EventID, err)
		}
		if _, err := s.GetCustomer(t.Context(), w.Event.CustomerID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetCustomer(%s) after a failed commit: got %v, want ErrNotFound", w.Event.CustomerID, err)
		}
	}
}

// A write can release parked events of its customer: their rows become
// applied with the version given, in the same transaction; notifications
// keep the versions they carry.
func testReleaseParked(t *testing.T, s store.Store) {
	parked := Event("evt_p", "cus_r")
	parked.Status, parked.Reason, parked.DedupKey = store.StatusParked, "waiting for subscription sub_1", "k_p"
	mustCommit(t, s, store.Write{Event: parked, ReadVersion: 0, State: []byte("parked evt_p")})

	w := StateWrite("evt_s", "cus_r", 1)
	w.Event.Version = 1
	w.Notifications[0].Version = 1
	w.Notifications = append(w.Notifications, store.Notification{
		CustomerID: "cus_r", Version: 2, Kind: "invoice.paid", EventID: "evt_p", OccurredAt: created, Customer: []byte("v2"),
	})
	w.Released = []store.Release{
		{Source: "stripe", EventID: "evt_p", Version: 2, Reason: "released by evt_s"},
		{Source: "stripe", EventID: "evt_s_unknown", Version: 3, Reason: "no such parked event"},
	}
	mustCommit(t, s, w)

	e, err := s.GetEvent(t.Context(), "stripe", "evt_p")
	if err != nil || e.Status != store.StatusApplied || e.Version != 2 || e.Reason != "released by evt_s" {
		t.Fatalf("released event: %s v%d %q (%v), want applied v2 \"released by evt_s\"", e.Status, e.Version, e.Reason, err)
	}
	if _, err := s.GetEvent(t.Context(), "stripe", "evt_s_unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a release of an unknown event created a row: %v", err)
	}
	notes := WaitNotifications(t, s, "cus_r", 2)
	if len(notes) != 2 || notes[0].Version != 1 || notes[1].Version != 2 || notes[1].EventID != "evt_p" {
		t.Fatalf("notifications %+v, want v1 (evt_s) then v2 (evt_p)", notes)
	}
	// A release with version 0 settles a parked event as superseded.
	stale := Event("evt_q", "cus_r")
	stale.Status, stale.DedupKey = store.StatusParked, "k_q"
	w1 := StateWrite("evt_q", "cus_r", 2)
	w1.Event, w1.Notifications = stale, nil
	mustCommit(t, s, w1)
	w3 := StateWrite("evt_u", "cus_r", 3)
	w3.Released = []store.Release{{Source: "stripe", EventID: "evt_q", Version: 0, Reason: "superseded while parked"}}
	mustCommit(t, s, w3)
	if e, _ := s.GetEvent(t.Context(), "stripe", "evt_q"); e.Status != store.StatusSuperseded || e.Version != 0 || e.Reason != "superseded while parked" {
		t.Fatalf("settled stale event: %s v%d %q, want superseded v0", e.Status, e.Version, e.Reason)
	}
	// Releasing an event that is not parked changes nothing.
	w2 := StateWrite("evt_t", "cus_r", 4)
	w2.Released = []store.Release{{Source: "stripe", EventID: "evt_s", Version: 9, Reason: "not parked"}}
	mustCommit(t, s, w2)
	if e, _ := s.GetEvent(t.Context(), "stripe", "evt_s"); e.Version != 1 || e.Reason != "" {
		t.Fatalf("an applied event was changed by a release: v%d %q", e.Version, e.Reason)
	}
}

// testInvalidArguments checks that what no retry can fix is answered with
// an error wrapping store.ErrInvalidArgument (which the services map to
// InvalidArgument), and that an invalid write in a batch fails alone.
func testInvalidArguments(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.ValidateCursor("not a cursor"); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("ValidateCursor(%q): got %v, want ErrInvalidArgument", "not a cursor", err)
	}
	if _, err := s.ReadNotifications(ctx, "not a cursor", "", 10); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("ReadNotifications with a malformed cursor: got %v, want ErrInvalidArgument", err)
	}
	if _, err := s.ReadNotifications(ctx, "", "", 0); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("ReadNotifications with limit 0: got %v, want ErrInvalidArgument", err)
	}
	if _, _, err := s.ListEvents(ctx, store.ListEventsFilter{PageSize: 0}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("ListEvents with page size 0: got %v, want ErrInvalidArgument", err)
	}
	if _, _, err := s.ListEvents(ctx, store.ListEventsFilter{PageSize: 2, PageToken: "garbage!"}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("ListEvents with a malformed page token: got %v, want ErrInvalidArgument", err)
	}

	noID := StateWrite("", "cus_1", 0)
	noCustomer := StateWrite("evt_nocus", "", 0)
	good := StateWrite("evt_good", "cus_good", 0)
	errs := s.Commit(ctx, []store.Write{noID, noCustomer, good})
	if len(errs) != 3 {
		t.Fatalf("Commit: got %d results, want 3", len(errs))
	}
	for i, err := range errs[:2] {
		if !errors.Is(err, store.ErrInvalidArgument) || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Commit result %d: got %v, want ErrInvalidArgument", i, err)
		}
	}
	if errs[2] != nil {
		t.Errorf("Commit result 2: got %v, want nil", errs[2])
	}
	if _, err := s.GetEvent(ctx, "stripe", "evt_nocus"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetEvent(evt_nocus) of the invalid write: got %v, want ErrNotFound", err)
	}
}

// LatestCursor starts a reader after everything committed so far.
func testLatestCursor(t *testing.T, s store.Store) {
	if c, err := s.LatestCursor(t.Context()); err != nil || c != "" {
		t.Fatalf("LatestCursor of an empty store: %q, %v; want \"\", nil", c, err)
	}
	mustCommit(t, s, StateWrite("evt_l1", "cus_l", 0))
	WaitNotifications(t, s, "cus_l", 1)
	c, err := s.LatestCursor(t.Context())
	if err != nil || s.ValidateCursor(c) != nil || c == "" {
		t.Fatalf("LatestCursor: %q, %v; want a valid cursor", c, err)
	}
	if notes, err := s.ReadNotifications(t.Context(), c, "", 10); err != nil || len(notes) != 0 {
		t.Fatalf("after the latest cursor: %d notifications (%v), want none", len(notes), err)
	}
	mustCommit(t, s, StateWrite("evt_l2", "cus_l", 1))
	deadline := time.Now().Add(30 * time.Second)
	for {
		notes, err := s.ReadNotifications(t.Context(), c, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(notes) == 1 && notes[0].EventID == "evt_l2" {
			return
		}
		if len(notes) > 1 || time.Now().After(deadline) {
			t.Fatalf("after the latest cursor: %+v, want only evt_l2", notes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A replay (Write.Replace) of an ignored event takes effect; a replay of
// an event with any other status is a duplicate and changes nothing.
func testReplaceIgnored(t *testing.T, s store.Store) {
	ignored := Event("evt_i", "")
	ignored.Status, ignored.Reason = store.StatusIgnored, "no customer"
	if err := s.RecordEvent(t.Context(), ignored); err != nil {
		t.Fatal(err)
	}
	w := StateWrite("evt_i", "cus_i", 0)
	if err := commitOne(t, s, w); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("write over an ignored event without Replace: %v, want ErrDuplicate", err)
	}
	w.Replace = true
	mustCommit(t, s, w)
	e, err := s.GetEvent(t.Context(), "stripe", "evt_i")
	if err != nil || e.Status != store.StatusApplied || e.CustomerID != "cus_i" {
		t.Fatalf("replayed event: %s for %q (%v), want applied for cus_i", e.Status, e.CustomerID, err)
	}
	again := StateWrite("evt_i", "cus_i", 1)
	again.Replace = true
	if err := commitOne(t, s, again); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("replay of an applied event: %v, want ErrDuplicate", err)
	}
	if c, err := s.GetCustomer(t.Context(), "cus_i"); err != nil || c.Version != 1 {
		t.Fatalf("customer version %d (%v), want 1: the second replay changed state", c.Version, err)
	}
}

// Chain returns the writes of one customer's events, applied in turn from
// readVersion in one call: each reads the version the one before it
// produces and is chained to it (AfterPrevious), the first is not.
func Chain(customerID string, readVersion int64, eventIDs ...string) []store.Write {
	writes := make([]store.Write, len(eventIDs))
	for i, id := range eventIDs {
		writes[i] = StateWrite(id, customerID, readVersion+int64(i))
		writes[i].AfterPrevious = i > 0
	}
	return writes
}

// checkResults fails the test unless errs match want: nil where want is
// nil, else an error that is (errors.Is) the one wanted.
func checkResults(t *testing.T, errs, want []error) {
	t.Helper()
	if len(errs) != len(want) {
		t.Fatalf("Commit: got %d results, want %d", len(errs), len(want))
	}
	for i := range want {
		if (want[i] == nil && errs[i] != nil) || !errors.Is(errs[i], want[i]) {
			t.Errorf("Commit result %d: got %v, want %v", i, errs[i], want[i])
		}
	}
}

// checkNotStored fails the test if any of the events is stored.
func checkNotStored(t *testing.T, s store.Store, eventIDs ...string) {
	t.Helper()
	for _, id := range eventIDs {
		if _, err := s.GetEvent(t.Context(), "stripe", id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetEvent(%s): got %v, want ErrNotFound", id, err)
		}
	}
}

// A chain whose writes all succeed commits them all, in one call, each
// fenced on the version the one before it produced.
func testChainCommits(t *testing.T, s store.Store) {
	writes := Chain("cus_c", 0, "evt_c1", "evt_c2", "evt_c3")
	checkResults(t, s.Commit(t.Context(), writes), []error{nil, nil, nil})
	c, err := s.GetCustomer(t.Context(), "cus_c")
	if err != nil || c.Version != 3 || string(c.State) != "state after evt_c3" {
		t.Errorf("GetCustomer: got %+v, %v; want version 3 with evt_c3's state", c, err)
	}
	for i, id := range []string{"evt_c1", "evt_c2", "evt_c3"} {
		if e, err := s.GetEvent(t.Context(), "stripe", id); err != nil || e.Version != int64(i)+1 {
			t.Errorf("GetEvent(%s): got version %d, %v; want %d", id, e.Version, err, i+1)
		}
	}
	ns := WaitNotifications(t, s, "cus_c", 3)
	if got, want := eventIDs(ns), []string{"evt_c1", "evt_c2", "evt_c3"}; !slices.Equal(got, want) {
		t.Errorf("notifications: got %v, want %v", got, want)
	}
}

// A duplicate in a chain, by event ID or by dedup key, skips the rest of
// the chain; the writes before it stand.
func testChainSkipsAfterDuplicate(t *testing.T, s store.Store) {
	mustCommit(t, s, StateWrite("evt_c2", "cus_other", 0))
	writes := Chain("cus_c", 0, "evt_c1", "evt_c2", "evt_c3")
	checkResults(t, s.Commit(t.Context(), writes), []error{nil, store.ErrDuplicate, store.ErrSkipped})
	c, err := s.GetCustomer(t.Context(), "cus_c")
	if err != nil || c.Version != 1 || string(c.State) != "state after evt_c1" {
		t.Errorf("GetCustomer(cus_c): got %+v, %v; want version 1 with evt_c1's state", c, err)
	}
	if e, err := s.GetEvent(t.Context(), "stripe", "evt_c2"); err != nil || e.CustomerID != "cus_other" {
		t.Errorf("GetEvent(evt_c2): got %+v, %v; want the event stored before, of cus_other", e, err)
	}
	checkNotStored(t, s, "evt_c3")

	// A dedup-key duplicate is recorded, with status duplicate, but did
	// not take effect: its follower is skipped, though it would apply.
	first := StateWrite("evt_k1", "cus_k", 0)
	first.Event.DedupKey = "k1"
	mustCommit(t, s, first)
	writes = Chain("cus_k", 1, "evt_k2", "evt_k3")
	writes[1].Event.DedupKey = "k1"
	follower := StateWrite("evt_k4", "cus_k", 2)
	follower.State, follower.Notifications = nil, nil // an event row only: would apply
	follower.AfterPrevious = true
	writes = append(writes, follower)
	checkResults(t, s.Commit(t.Context(), writes), []error{nil, store.ErrDuplicate, store.ErrSkipped})
	if e, err := s.GetEvent(t.Context(), "stripe", "evt_k3"); err != nil || e.Status != store.StatusDuplicate {
		t.Errorf("GetEvent(evt_k3): got %+v, %v; want status duplicate", e, err)
	}
	checkNotStored(t, s, "evt_k4")
	if c, err := s.GetCustomer(t.Context(), "cus_k"); err != nil || c.Version != 2 {
		t.Errorf("GetCustomer(cus_k): got version %d, %v; want 2", c.Version, err)
	}

	// Later writes make every earlier row final.
	mustCommit(t, s, StateWrite("evt_c4", "cus_c", 1))
	ns := WaitNotifications(t, s, "cus_c", 2)
	if got, want := eventIDs(ns), []string{"evt_c1", "evt_c4"}; !slices.Equal(got, want) {
		t.Errorf("notifications of cus_c: got %v, want %v", got, want)
	}
	mustCommit(t, s, StateWrite("evt_k5", "cus_k", 2))
	ns = WaitNotifications(t, s, "cus_k", 3)
	if got, want := eventIDs(ns), []string{"evt_k1", "evt_k2", "evt_k5"}; !slices.Equal(got, want) {
		t.Errorf("notifications of cus_k: got %v, want %v", got, want)
	}
}

// A chain whose first write is fenced takes no effect at all, even where
// a follower would have applied on its own.
func testChainSkipsAfterFence(t *testing.T, s store.Store) {
	mustCommit(t, s, StateWrite("evt_setup", "cus_c", 0))
	// Read at version 0, but cus_c is at 1: the second write, reading 1,
	// would apply if it were attempted.
	writes := Chain("cus_c", 0, "evt_c1", "evt_c2", "evt_c3")
	checkResults(t, s.Commit(t.Context(), writes), []error{store.ErrFenced, store.ErrSkipped, store.ErrSkipped})
	checkNotStored(t, s, "evt_c1", "evt_c2", "evt_c3")
	c, err := s.GetCustomer(t.Context(), "cus_c")
	if err != nil || c.Version != 1 || string(c.State) != "state after evt_setup" {
		t.Errorf("GetCustomer: got %+v, %v; want version 1 with evt_setup's state", c, err)
	}
	mustCommit(t, s, StateWrite("evt_after", "cus_c", 1))
	ns := WaitNotifications(t, s, "cus_c", 2)
	if got, want := eventIDs(ns), []string{"evt_setup", "evt_after"}; !slices.Equal(got, want) {
		t.Errorf("notifications: got %v, want %v", got, want)
	}
}

// A write no retry can fix skips its chain too; the invalid write keeps
// its own result.
func testChainSkipsAfterInvalid(t *testing.T, s store.Store) {
	writes := Chain("cus_c", 0, "", "evt_c2", "evt_c3")
	writes = append(writes, StateWrite("evt_d1", "cus_d", 0))
	errs := s.Commit(t.Context(), writes)
	checkResults(t, errs[1:], []error{store.ErrSkipped, store.ErrSkipped, nil})
	if !errors.Is(errs[0], store.ErrInvalidArgument) || errors.Is(errs[0], store.ErrUnavailable) {
		t.Errorf("Commit result 0: got %v, want ErrInvalidArgument", errs[0])
	}
	checkNotStored(t, s, "evt_c2", "evt_c3")
	if _, err := s.GetCustomer(t.Context(), "cus_c"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCustomer(cus_c): got %v, want ErrNotFound", err)
	}
}

// A write without AfterPrevious is independent of the writes before it,
// failed or skipped, and may start a chain of its own.
func testChainUnchainedAfterFailure(t *testing.T, s store.Store) {
	mustCommit(t, s, StateWrite("evt_old", "cus_old", 0))
	mustCommit(t, s, StateWrite("evt_fence", "cus_fence", 0))
	var writes []store.Write
	writes = append(writes, Chain("cus_a", 0, "evt_old", "evt_a2")...) // duplicate, skipped
	writes = append(writes, Chain("cus_b", 0, "evt_b1", "evt_b2")...)  // after a skipped write
	writes = append(writes, StateWrite("evt_f", "cus_fence", 0))       // fenced
	writes = append(writes, StateWrite("evt_e", "cus_e", 0))           // after a failed write
	checkResults(t, s.Commit(t.Context(), writes),
		[]error{store.ErrDuplicate, store.ErrSkipped, nil, nil, store.ErrFenced, nil})
	checkNotStored(t, s, "evt_a2", "evt_f")
	if c, err := s.GetCustomer(t.Context(), "cus_b"); err != nil || c.Version != 2 {
		t.Errorf("GetCustomer(cus_b): got version %d, %v; want 2", c.Version, err)
	}
	if c, err := s.GetCustomer(t.Context(), "cus_e"); err != nil || c.Version != 1 {
		t.Errorf("GetCustomer(cus_e): got version %d, %v; want 1", c.Version, err)
	}
	if _, err := s.GetCustomer(t.Context(), "cus_a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCustomer(cus_a): got %v, want ErrNotFound", err)
	}
}

// AfterPrevious on the first write of a call is ignored: there is no
// write before it.
func testChainFirstWrite(t *testing.T, s store.Store) {
	w := StateWrite("evt_1", "cus_1", 0)
	w.AfterPrevious = true
	mustCommit(t, s, w)
	writes := Chain("cus_1", 1, "evt_2", "evt_3")
	writes[0].AfterPrevious = true
	checkResults(t, s.Commit(t.Context(), writes), []error{nil, nil})
	if c, err := s.GetCustomer(t.Context(), "cus_1"); err != nil || c.Version != 3 {
		t.Errorf("GetCustomer: got version %d, %v; want 3", c.Version, err)
	}
}

// testChainUnavailable checks the results of a call that fails as a whole
// (here, its context is canceled): every write is unavailable, a chain all
// along, except an invalid write and the writes skipped after it, whose
// results no retry changes.
func testChainUnavailable(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	writes := Chain("cus_bad", 0, "", "evt_b2")
	writes = append(writes, Chain("cus_good", 0, "evt_g1", "evt_g2")...)
	errs := s.Commit(ctx, writes)
	if !errors.Is(errs[0], store.ErrInvalidArgument) || errors.Is(errs[0], store.ErrUnavailable) {
		t.Errorf("Commit result 0: got %v, want ErrInvalidArgument", errs[0])
	}
	for i, want := range []error{store.ErrSkipped, store.ErrUnavailable, store.ErrUnavailable} {
		if err := errs[i+1]; !errors.Is(err, want) {
			t.Errorf("Commit result %d: got %v, want %v", i+1, err, want)
		}
	}
}
