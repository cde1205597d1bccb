package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd/store"
)

// BackfillBackend is a store that also runs backfills.
type BackfillBackend interface {
	store.Store
	store.BackfillStore
}

// RunBackfill runs the [store.BackfillStore] contract tests, in parallel,
// against stores from newStore, which must implement it.
func RunBackfill(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.BackfillStore)
	}{
		{"CreateAndGet", testBackfillCreateAndGet},
		{"Unfinished", testBackfillUnfinished},
		{"StageDedup", testBackfillStageDedup},
		{"StageOnlyWhileListing", testBackfillStageOnlyWhileListing},
		{"ApplyOrder", testBackfillApplyOrder},
		{"ApplyOrderMany", testBackfillApplyOrderMany},
		{"StagedEventsPaging", testBackfillStagedEventsPaging},
		{"AdvanceCounts", testBackfillAdvanceCounts},
		{"DoneDropsStaged", testBackfillDoneDropsStaged},
		{"Checkpoints", testCheckpoints},
		{"LeaseConcurrent", func(t *testing.T, s store.BackfillStore) {
			CheckLeaseExclusive(t, s, s, s, s, s, s, s, s)
		}},
		{"LeaseExpiry", testBackfillLeaseExpiry},
		{"LeaseRenew", testLeaseRenew},
		{"LeaseRelease", testLeaseRelease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, backfillStore(t, newStore(t)))
		})
	}
}

// NewShared returns an empty store for one test and a function that opens
// another store on the same database (or directory), as a restarted
// process or a second member would, closing it when the test finishes.
type NewShared func(t *testing.T) (first store.Store, another func() store.Store)

// RunBackfillShared runs the [store.BackfillStore] contract tests that
// need more than one store on one database: a run resumed after a crash by
// a new store, and leases contended from several stores.
func RunBackfillShared(t *testing.T, newShared NewShared) {
	t.Run("ResumeAfterCrash", func(t *testing.T) {
		t.Parallel()
		first, another := newShared(t)
		testBackfillResume(t, backfillStore(t, first), func() store.BackfillStore { return backfillStore(t, another()) })
	})
	t.Run("LeaseTwoStores", func(t *testing.T) {
		t.Parallel()
		first, another := newShared(t)
		a, b := backfillStore(t, first), backfillStore(t, another())
		CheckLeaseExclusive(t, a, b, a, b, a, b, a, b)
	})
}

func backfillStore(t *testing.T, s store.Store) store.BackfillStore {
	t.Helper()
	bs, ok := store.Backfills(s)
	if !ok {
		t.Fatalf("%T does not implement store.BackfillStore", s)
	}
	return bs
}

// at is a Stripe event time (whole seconds) after the fixed created.
func at(sec int) time.Time { return created.Add(time.Duration(sec) * time.Second) }

func staged(id string, sec int) store.StagedEvent {
	return store.StagedEvent{EventID: id, Created: at(sec), Payload: []byte(`{"id":"` + id + `"}`)}
}

func newRun(t *testing.T, s store.BackfillStore, kind string) store.BackfillRun {
	t.Helper()
	r, err := s.CreateBackfillRun(t.Context(), store.BackfillRun{Kind: kind, Origin: "manual", Since: at(-3600), Until: at(3600)})
	if err != nil {
		t.Fatalf("CreateBackfillRun: %v", err)
	}
	return r
}

func getRun(t *testing.T, s store.BackfillStore, id int64) store.BackfillRun {
	t.Helper()
	r, err := s.GetBackfillRun(t.Context(), id)
	if err != nil {
		t.Fatalf("GetBackfillRun(%d): %v", id, err)
	}
	return r
}

func stage(t *testing.T, s store.BackfillStore, runID int64, next string, last bool, events ...store.StagedEvent) {
	t.Helper()
	if err := s.StageBackfillPage(t.Context(), runID, events, next, last); err != nil {
		t.Fatalf("StageBackfillPage(%d, %d events, %q, %v): %v", runID, len(events), next, last, err)
	}
}

// allStaged reads every staged event of a run, 7 at a time.
func allStaged(t *testing.T, s store.BackfillStore, runID int64) []store.StagedEvent {
	t.Helper()
	var out []store.StagedEvent
	after := int64(0)
	for {
		page, err := s.StagedEvents(t.Context(), runID, after, 7)
		if err != nil {
			t.Fatalf("StagedEvents(%d, %d, 7): %v", runID, after, err)
		}
		if len(page) > 7 {
			t.Fatalf("StagedEvents(limit 7) returned %d", len(page))
		}
		out = append(out, page...)
		if len(page) < 7 {
			return out
		}
		after = page[len(page)-1].Ord
	}
}

func stagedIDs(es []store.StagedEvent) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.EventID
	}
	return ids
}

func testBackfillCreateAndGet(t *testing.T, s store.BackfillStore) {
	ctx := t.Context()
	before := time.Now().Add(-time.Minute)
	r, err := s.CreateBackfillRun(ctx, store.BackfillRun{
		Kind: "objects:customers,subscriptions", Origin: "reconcile", Since: at(-60), Until: at(60),
	})
	if err != nil {
		t.Fatalf("CreateBackfillRun: %v", err)
	}
	if r.ID == 0 || r.Phase != store.BackfillListing || r.Counts == nil || len(r.Counts) != 0 ||
		r.Listed != 0 || r.Applied != 0 || r.Cursor != "" || !r.FinishedAt.IsZero() ||
		r.CreatedAt.Before(before) || r.UpdatedAt.Before(before) {
		t.Fatalf("created run = %+v", r)
	}
	got := getRun(t, s, r.ID)
	if got.Kind != "objects:customers,subscriptions" || got.Origin != "reconcile" || !got.Since.Equal(at(-60)) ||
		!got.Until.Equal(at(60)) || got.Phase != store.BackfillListing || got.Counts == nil || !got.CreatedAt.Equal(r.CreatedAt) {
		t.Fatalf("GetBackfillRun = %+v, created %+v", got, r)
	}
	// Unbounded.
	u, err := s.CreateBackfillRun(ctx, store.BackfillRun{Kind: "events", Origin: "manual"})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID <= r.ID {
		t.Errorf("second run's ID %d, first %d: want increasing", u.ID, r.ID)
	}
	if got := getRun(t, s, u.ID); !got.Since.IsZero() || !got.Until.IsZero() {
		t.Errorf("unbounded run: Since %v Until %v, want zero", got.Since, got.Until)
	}
	if _, err := s.GetBackfillRun(ctx, u.ID+1000); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetBackfillRun(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.CreateBackfillRun(ctx, store.BackfillRun{}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("CreateBackfillRun(no kind) = %v, want ErrInvalidArgument", err)
	}
}

func testBackfillUnfinished(t *testing.T, s store.BackfillStore) {
	ctx := t.Context()
	if _, err := s.UnfinishedBackfillRun(ctx, "events"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UnfinishedBackfillRun(empty store) = %v, want ErrNotFound", err)
	}
	older := newRun(t, s, "events")
	newer := newRun(t, s, "events")
	other := newRun(t, s, "objects:customers")
	check := func(kind string, want int64) {
		t.Helper()
		r, err := s.UnfinishedBackfillRun(ctx, kind)
		if want == 0 {
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("UnfinishedBackfillRun(%q) = %+v, %v; want ErrNotFound", kind, r, err)
			}
			return
		}
		if err != nil || r.ID != want {
			t.Fatalf("UnfinishedBackfillRun(%q) = run %d, %v; want run %d", kind, r.ID, err, want)
		}
	}
	check("events", newer.ID)
	check("objects:customers", other.ID)
	check("objects:subscriptions", 0)

	// An applying run is unfinished too; a done one is not.
	stage(t, s, newer.ID, "", true, staged("evt_u1", 1))
	check("events", newer.ID)
	if err := s.AdvanceBackfillRun(ctx, newer.ID, 1, map[string]int64{"applied": 1}, true); err != nil {
		t.Fatal(err)
	}
	check("events", older.ID)
	stage(t, s, older.ID, "", true)
	if err := s.AdvanceBackfillRun(ctx, older.ID, 0, nil, true); err != nil {
		t.Fatal(err)
	}
	check("events", 0)
	check("objects:customers", other.ID)
}

func testBackfillStageDedup(t *testing.T, s store.BackfillStore) {
	r := newRun(t, s, "events")
	// The Events API lists newest first.
	stage(t, s, r.ID, "evt_d3", false, staged("evt_d5", 5), staged("evt_d4", 4), staged("evt_d3", 3))
	got := getRun(t, s, r.ID)
	if got.Cursor != "evt_d3" || got.Listed != 3 || got.Phase != store.BackfillListing {
		t.Fatalf("after page 1: cursor %q listed %d phase %s; want evt_d3, 3, listing", got.Cursor, got.Listed, got.Phase)
	}
	if got.UpdatedAt.Before(r.CreatedAt) {
		t.Errorf("UpdatedAt %v before CreatedAt %v", got.UpdatedAt, r.CreatedAt)
	}
	// A page listed again (a retry after the cursor was stored, or an
	// overlap) and a duplicate within one page are staged once.
	dupe := staged("evt_d3", 3)
	dupe.Payload = []byte("second copy")
	stage(t, s, r.ID, "evt_d1", false, dupe, staged("evt_d2", 2), staged("evt_d2", 2), staged("evt_d1", 1))
	got = getRun(t, s, r.ID)
	if got.Cursor != "evt_d1" || got.Listed != 5 {
		t.Fatalf("after page 2: cursor %q listed %d; want evt_d1, 5", got.Cursor, got.Listed)
	}
	// The last page can be empty (the API answered has_more false).
	stage(t, s, r.ID, "", true)
	got = getRun(t, s, r.ID)
	if got.Listed != 5 || got.Phase != store.BackfillApplying || got.Cursor != "" {
		t.Fatalf("after last page: listed %d phase %s cursor %q; want 5, applying, \"\"", got.Listed, got.Phase, got.Cursor)
	}
	es := allStaged(t, s, r.ID)
	if ids := stagedIDs(es); !slices.Equal(ids, []string{"evt_d1", "evt_d2", "evt_d3", "evt_d4", "evt_d5"}) {
		t.Fatalf("staged = %v", ids)
	}
	for i, e := range es {
		if e.Ord != int64(i+1) {
			t.Errorf("%s: Ord %d, want %d", e.EventID, e.Ord, i+1)
		}
	}
	if string(es[2].Payload) != `{"id":"evt_d3"}` {
		t.Errorf("evt_d3 payload %q: want the first copy staged", es[2].Payload)
	}
	// A second run stages the same events again: dedup is per run.
	r2 := newRun(t, s, "events")
	stage(t, s, r2.ID, "", true, staged("evt_d5", 5), staged("evt_d4", 4))
	if got := getRun(t, s, r2.ID); got.Listed != 2 {
		t.Errorf("second run listed %d, want 2", got.Listed)
	}
	if got := getRun(t, s, r.ID); got.Listed != 5 {
		t.Errorf("first run listed %d after the second staged, want 5", got.Listed)
	}
}

func testBackfillStageOnlyWhileListing(t *testing.T, s store.BackfillStore) {
	ctx := t.Context()
	if err := s.StageBackfillPage(ctx, 987654, []store.StagedEvent{staged("evt_x", 1)}, "", false); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("StageBackfillPage(unknown run) = %v, want ErrNotFound", err)
	}
	r := newRun(t, s, "events")
	if err := s.StageBackfillPage(ctx, r.ID, []store.StagedEvent{{Created: at(1)}}, "", false); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("StageBackfillPage(empty event ID) = %v, want ErrInvalidArgument", err)
	}
	// Listing phase: StagedEvents and AdvanceBackfillRun refuse.
	stage(t, s, r.ID, "c1", false, staged("evt_l1", 1))
	if _, err := s.StagedEvents(ctx, r.ID, 0, 10); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("StagedEvents(listing run) = %v, want ErrInvalidArgument", err)
	}
	if err := s.AdvanceBackfillRun(ctx, r.ID, 0, nil, false); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("AdvanceBackfillRun(listing run) = %v, want ErrInvalidArgument", err)
	}
	stage(t, s, r.ID, "", true, staged("evt_l2", 2))
	// Applying: no more pages, and nothing changed by the refused one.
	err := s.StageBackfillPage(ctx, r.ID, []store.StagedEvent{staged("evt_l3", 3)}, "c9", false)
	if !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("StageBackfillPage(applying run) = %v, want ErrInvalidArgument", err)
	}
	if err := s.StageBackfillPage(ctx, r.ID, nil, "", true); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("StageBackfillPage(applying run, last) = %v, want ErrInvalidArgument", err)
	}
	got := getRun(t, s, r.ID)
	if got.Listed != 2 || got.Cursor != "" || got.Phase != store.BackfillApplying {
		t.Errorf("after refused page: listed %d cursor %q phase %s", got.Listed, got.Cursor, got.Phase)
	}
	if ids := stagedIDs(allStaged(t, s, r.ID)); !slices.Equal(ids, []string{"evt_l1", "evt_l2"}) {
		t.Errorf("staged = %v, want [evt_l1 evt_l2]", ids)
	}
	// Done: refused too.
	if err := s.AdvanceBackfillRun(ctx, r.ID, 2, nil, true); err != nil {
		t.Fatal(err)
	}
	if err := s.StageBackfillPage(ctx, r.ID, []store.StagedEvent{staged("evt_l4", 4)}, "", false); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("StageBackfillPage(done run) = %v, want ErrInvalidArgument", err)
	}
}

func testBackfillApplyOrder(t *testing.T, s store.BackfillStore) {
	r := newRun(t, s, "events")
	// Listed newest first, as the Events API does, with ties within one
	// second: the apply order is oldest first, and within one second the
	// reverse of listing order (the API lists newest first).
	stage(t, s, r.ID, "p2", false, staged("evt_a", 10), staged("evt_b", 10), staged("evt_c", 9))
	stage(t, s, r.ID, "p3", false, staged("evt_d", 9), staged("evt_e", 8))
	stage(t, s, r.ID, "", true, staged("evt_f", 8), staged("evt_g", 12))
	es := allStaged(t, s, r.ID)
	want := []string{"evt_f", "evt_e", "evt_d", "evt_c", "evt_b", "evt_a", "evt_g"}
	if ids := stagedIDs(es); !slices.Equal(ids, want) {
		t.Fatalf("apply order = %v, want %v", ids, want)
	}
	for i, e := range es {
		if e.Ord != int64(i+1) {
			t.Errorf("%s: Ord %d, want %d", e.EventID, e.Ord, i+1)
		}
		if want := `{"id":"` + e.EventID + `"}`; string(e.Payload) != want {
			t.Errorf("%s: payload %q, want %q", e.EventID, e.Payload, want)
		}
	}
	if !es[0].Created.Equal(at(8)) || !es[6].Created.Equal(at(12)) {
		t.Errorf("created times %v, %v; want %v, %v", es[0].Created, es[6].Created, at(8), at(12))
	}
}

// testBackfillApplyOrderMany stages pages of events listed newest first,
// many to a second, with the dedup of overlapping pages, and checks the
// apply order against the rule.
func testBackfillApplyOrderMany(t *testing.T, s store.BackfillStore) {
	r := newRun(t, s, "events")
	const n = 230
	// Event i (0 = newest, listed first) was created at second (n-i)/4.
	var listing []store.StagedEvent
	for i := range n {
		listing = append(listing, staged(fmt.Sprintf("evt_m%03d", i), (n-i)/4))
	}
	for i := 0; i < n; i += 40 {
		// Each page also repeats the last event of the one before.
		page := listing[max(i-1, 0):min(i+40, n)]
		stage(t, s, r.ID, fmt.Sprintf("cursor_%d", i), false, page...)
	}
	stage(t, s, r.ID, "", true)
	if got := getRun(t, s, r.ID); got.Listed != n {
		t.Fatalf("listed %d, want %d", got.Listed, n)
	}
	// Oldest first; within one second, the reverse of listing order:
	// simply the reverse of the listing.
	var want []string
	for i := n - 1; i >= 0; i-- {
		want = append(want, listing[i].EventID)
	}
	if ids := stagedIDs(allStaged(t, s, r.ID)); !slices.Equal(ids, want) {
		t.Fatalf("apply order = %v\nwant %v", ids, want)
	}
}

func testBackfillStagedEventsPaging(t *testing.T, s store.BackfillStore) {
	ctx := t.Context()
	r := newRun(t, s, "events")
	var page []store.StagedEvent
	for i := range 25 {
		page = append(page, staged(fmt.Sprintf("evt_p%02d", i), 100-i))
	}
	stage(t, s, r.ID, "", true, page...)
	for _, limit := range []int{0, -1} {
		if _, err := s.StagedEvents(ctx, r.ID, 0, limit); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("StagedEvents(limit %d) = %v, want ErrInvalidArgument", limit, err)
		}
	}
	if _, err := s.StagedEvents(ctx, r.ID+1000, 0, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("StagedEvents(unknown run) = %v, want ErrNotFound", err)
	}
	var sizes []int
	var ords []int64
	after := int64(0)
	for range 10 {
		es, err := s.StagedEvents(ctx, r.ID, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(es))
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			ords = append(ords, e.Ord)
		}
		after = es[len(es)-1].Ord
	}
	if !slices.Equal(sizes, []int{10, 10, 5, 0}) {
		t.Errorf("page sizes %v, want [10 10 5 0]", sizes)
	}
	for i, o := range ords {
		if o != int64(i+1) {
			t.Fatalf("ords %v, want 1..25", ords)
		}
	}
	// From the middle: after 17, the 18th on.
	es, err := s.StagedEvents(ctx, r.ID, 17, 3)
	if err != nil {
		t.Fatal(err)
	}
	if ids := stagedIDs(es); !slices.Equal(ids, []string{"evt_p07", "evt_p06", "evt_p05"}) {
		t.Errorf("StagedEvents(after 17, 3) = %v, want [evt_p07 evt_p06 evt_p05]", ids)
	}
	if es, err := s.StagedEvents(ctx, r.ID, 25, 10); err != nil || len(es) != 0 {
		t.Errorf("StagedEvents(after the last) = %d events, %v; want none", len(es), err)
	}
}

func testBackfillAdvanceCounts(t *testing.T, s store.BackfillStore) {
	ctx := t.Context()
	r := newRun(t, s, "events")
	var page []store.StagedEvent
	for i := range 6 {
		page = append(page, staged(fmt.Sprintf("evt_c%d", i), 10-i))
	}
	stage(t, s, r.ID, "", true, page...)
	if err := s.AdvanceBackfillRun(ctx, r.ID+1000, 1, nil, false); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AdvanceBackfillRun(unknown run) = %v, want ErrNotFound", err)
	}
	steps := []struct {
		applied int64
		counts  map[string]int64
	}{
		{3, map[string]int64{"applied": 2, "duplicate": 1}},
		{5, map[string]int64{"applied": 1, "parked": 1}},
		{5, nil},
		{4, map[string]int64{"failed": 1}}, // stale: applied stays 5
	}
	for _, st := range steps {
		if err := s.AdvanceBackfillRun(ctx, r.ID, st.applied, st.counts, false); err != nil {
			t.Fatalf("AdvanceBackfillRun(%d, %v): %v", st.applied, st.counts, err)
		}
	}
	got := getRun(t, s, r.ID)
	want := map[string]int64{"applied": 3, "duplicate": 1, "parked": 1, "failed": 1}
	if got.Applied != 5 || !maps.Equal(got.Counts, want) || got.Phase != store.BackfillApplying || !got.FinishedAt.IsZero() {
		t.Fatalf("run = applied %d counts %v phase %s finished %v; want 5, %v, applying, zero",
			got.Applied, got.Counts, got.Phase, got.FinishedAt, want)
	}
	if got.UpdatedAt.Before(r.CreatedAt) {
		t.Errorf("UpdatedAt %v before CreatedAt %v", got.UpdatedAt, r.CreatedAt)
	}
	// Past the staged events, or negative: refused, nothing changed.
	if err := s.AdvanceBackfillRun(ctx, r.ID, 7, map[string]int64{"applied": 1}, false); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("AdvanceBackfillRun(applied 7 of 6) = %v, want ErrInvalidArgument", err)
	}
	if err := s.AdvanceBackfillRun(ctx, r.ID, -1, nil, false); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("AdvanceBackfillRun(applied -1) = %v, want ErrInvalidArgument", err)
	}
	if got := getRun(t, s, r.ID); got.Applied != 5 || !maps.Equal(got.Counts, want) {
		t.Errorf("after refused advances: applied %d counts %v", got.Applied, got.Counts)
	}
	// The staged events are kept until done; resuming after 5 finds the 6th.
	if es, err := s.StagedEvents(ctx, r.ID, got.Applied, 10); err != nil || len(es) != 1 || es[0].EventID != "evt_c0" {
		t.Errorf("StagedEvents(after applied) = %v, %v; want [evt_c0]", stagedIDs(es), err)
	}
}

func testBackfillDoneDropsStaged(t *testing.T, s store.BackfillStore) {
	ctx := t.Context()
	r := newRun(t, s, "events")
	other := newRun(t, s, "events")
	stage(t, s, r.ID, "", true, staged("evt_x1", 2), staged("evt_x2", 1))
	stage(t, s, other.ID, "", true, staged("evt_x1", 2), staged("evt_x3", 1))
	if err := s.AdvanceBackfillRun(ctx, r.ID, 1, map[string]int64{"applied": 1}, false); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Minute)
	if err := s.AdvanceBackfillRun(ctx, r.ID, 2, map[string]int64{"ignored": 1}, true); err != nil {
		t.Fatal(err)
	}
	got := getRun(t, s, r.ID)
	if got.Phase != store.BackfillDone || got.FinishedAt.IsZero() || got.FinishedAt.Before(before) || got.Applied != 2 ||
		!maps.Equal(got.Counts, map[string]int64{"applied": 1, "ignored": 1}) || got.Listed != 2 {
		t.Fatalf("done run = %+v", got)
	}
	// Its staged events are gone (StagedEvents of a done run finds none,
	// from the start); the other run's are kept.
	if es, err := s.StagedEvents(ctx, r.ID, 0, 10); err != nil || len(es) != 0 {
		t.Errorf("StagedEvents(done run) = %v, %v; want none", stagedIDs(es), err)
	}
	if ids := stagedIDs(allStaged(t, s, other.ID)); !slices.Equal(ids, []string{"evt_x3", "evt_x1"}) {
		t.Errorf("other run's staged = %v, want [evt_x3 evt_x1]", ids)
	}
	// A done run is not advanced again.
	if err := s.AdvanceBackfillRun(ctx, r.ID, 2, map[string]int64{"applied": 1}, false); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("AdvanceBackfillRun(done run) = %v, want ErrInvalidArgument", err)
	}
	if again := getRun(t, s, r.ID); again.Counts["applied"] != 1 || !again.FinishedAt.Equal(got.FinishedAt) || again.Phase != store.BackfillDone {
		t.Errorf("done run changed: %+v", again)
	}
}

func testCheckpoints(t *testing.T, s store.BackfillStore) {
	ctx := t.Context()
	if _, err := s.GetCheckpoint(ctx, "reconcile:events"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetCheckpoint(absent) = %v, want ErrNotFound", err)
	}
	t1 := time.Date(2024, 5, 1, 10, 20, 30, 123456000, time.UTC)
	t2 := t1.Add(90 * time.Minute)
	for _, tt := range []time.Time{t1, t2, t1} {
		if err := s.SetCheckpoint(ctx, "reconcile:events", tt); err != nil {
			t.Fatalf("SetCheckpoint(%v): %v", tt, err)
		}
		got, err := s.GetCheckpoint(ctx, "reconcile:events")
		if err != nil || !got.Equal(tt) {
			t.Fatalf("GetCheckpoint = %v, %v; want %v", got, err, tt)
		}
	}
	if err := s.SetCheckpoint(ctx, "other", t2); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetCheckpoint(ctx, "reconcile:events"); err != nil || !got.Equal(t1) {
		t.Errorf("GetCheckpoint after another name was set = %v, %v; want %v", got, err, t1)
	}
	if got, err := s.GetCheckpoint(ctx, "other"); err != nil || !got.Equal(t2) {
		t.Errorf("GetCheckpoint(other) = %v, %v; want %v", got, err, t2)
	}
}

// CheckLeaseExclusive has two owners race for leases from one goroutine
// per store in stores (the same store several times, or stores on one
// database), each trying every lease many times: for each lease exactly
// one owner ever holds it (none expires during the test), and it holds it
// on every try.
func CheckLeaseExclusive(t *testing.T, stores ...store.BackfillStore) {
	const (
		leases = 20
		tries  = 5
	)
	ctx := t.Context()
	var (
		mu    sync.Mutex
		wins  = map[string]map[string]int{} // lease -> owner -> tries held
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for g, s := range stores {
		owner := fmt.Sprintf("member-%d", g%2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for try := range tries {
				for l := range leases {
					name := fmt.Sprintf("job-%d", l)
					ok, err := s.TryLease(ctx, name, owner, time.Minute)
					if err != nil {
						t.Errorf("TryLease(%s, %s) try %d: %v", name, owner, try, err)
						return
					}
					if ok {
						mu.Lock()
						if wins[name] == nil {
							wins[name] = map[string]int{}
						}
						wins[name][owner]++
						mu.Unlock()
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	perOwner := len(stores) / 2 // goroutines per owner
	for l := range leases {
		name := fmt.Sprintf("job-%d", l)
		w := wins[name]
		if len(w) != 1 {
			t.Errorf("%s held by %v, want exactly one owner", name, w)
			continue
		}
		for owner, n := range w {
			if n != perOwner*tries {
				t.Errorf("%s: %s held it on %d tries, want every one of its %d (renewals)", name, owner, n, perOwner*tries)
			}
		}
	}
}

func mustLease(t *testing.T, s store.BackfillStore, name, owner string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := s.TryLease(t.Context(), name, owner, ttl)
	if err != nil {
		t.Fatalf("TryLease(%s, %s, %v): %v", name, owner, ttl, err)
	}
	if got != want {
		t.Fatalf("TryLease(%s, %s, %v) = %v, want %v", name, owner, ttl, got, want)
	}
}

func testBackfillLeaseExpiry(t *testing.T, s store.BackfillStore) {
	const ttl = 300 * time.Millisecond
	mustLease(t, s, "reconcile", "a", ttl, true)
	mustLease(t, s, "reconcile", "b", ttl, false)
	mustLease(t, s, "other", "b", ttl, true) // leases are independent
	time.Sleep(ttl + 150*time.Millisecond)
	mustLease(t, s, "reconcile", "b", time.Minute, true) // expired: taken over
	mustLease(t, s, "reconcile", "a", ttl, false)
	if _, err := s.TryLease(t.Context(), "reconcile", "a", 0); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("TryLease(ttl 0) = %v, want ErrInvalidArgument", err)
	}
}

func testLeaseRenew(t *testing.T, s store.BackfillStore) {
	const ttl = 300 * time.Millisecond
	start := time.Now()
	mustLease(t, s, "reconcile", "a", ttl, true)
	time.Sleep(ttl * 2 / 3)
	// The owner renews for longer, before it expires.
	mustLease(t, s, "reconcile", "a", 2*time.Second, true)
	time.Sleep(ttl - time.Since(start) + 100*time.Millisecond)
	// Past the first expiry: still held.
	mustLease(t, s, "reconcile", "b", ttl, false)
	mustLease(t, s, "reconcile", "a", ttl, true)
}

func testLeaseRelease(t *testing.T, s store.BackfillStore) {
	ctx := t.Context()
	mustLease(t, s, "reconcile", "a", time.Minute, true)
	// Only the owner releases.
	if err := s.ReleaseLease(ctx, "reconcile", "b"); err != nil {
		t.Fatal(err)
	}
	mustLease(t, s, "reconcile", "b", time.Minute, false)
	if err := s.ReleaseLease(ctx, "reconcile", "a"); err != nil {
		t.Fatal(err)
	}
	mustLease(t, s, "reconcile", "b", time.Minute, true)
	mustLease(t, s, "reconcile", "a", time.Minute, false)
	// Releasing what nobody holds, or twice, is fine.
	if err := s.ReleaseLease(ctx, "never-taken", "a"); err != nil {
		t.Errorf("ReleaseLease(never taken) = %v", err)
	}
	if err := s.ReleaseLease(ctx, "reconcile", "a"); err != nil {
		t.Errorf("ReleaseLease(not the owner) = %v", err)
	}
	mustLease(t, s, "reconcile", "a", time.Minute, false)
}

// testBackfillResume interrupts a run while listing and while applying,
// and continues it from a new store on the same database.
func testBackfillResume(t *testing.T, s store.BackfillStore, reopen func() store.BackfillStore) {
	ctx := t.Context()
	r := newRun(t, s, "events")
	stage(t, s, r.ID, "evt_r3", false, staged("evt_r5", 5), staged("evt_r4", 4), staged("evt_r3", 3))

	// The process crashes; a new one finds the run and where listing
	// continues.
	s2 := reopen()
	got, err := s2.UnfinishedBackfillRun(ctx, "events")
	if err != nil {
		t.Fatalf("UnfinishedBackfillRun after reopen: %v", err)
	}
	if got.ID != r.ID || got.Cursor != "evt_r3" || got.Listed != 3 || got.Phase != store.BackfillListing ||
		!got.Since.Equal(r.Since) || !got.Until.Equal(r.Until) || got.Origin != "manual" {
		t.Fatalf("resumed run = %+v, want run %d at cursor evt_r3 with 3 listed", got, r.ID)
	}
	// It lists again from the cursor (the API pages overlap at the
	// cursor's event), then the last page.
	stage(t, s2, r.ID, "evt_r1", false, staged("evt_r3", 3), staged("evt_r2", 2))
	stage(t, s2, r.ID, "", true, staged("evt_r1", 1))
	es, err := s2.StagedEvents(ctx, r.ID, 0, 2)
	if err != nil || len(es) != 2 {
		t.Fatalf("StagedEvents = %d, %v", len(es), err)
	}
	if err := s2.AdvanceBackfillRun(ctx, r.ID, es[1].Ord, map[string]int64{"applied": 1, "duplicate": 1}, false); err != nil {
		t.Fatal(err)
	}

	// Crashes again while applying; the next store continues after the
	// last event recorded.
	s3 := reopen()
	got, err = s3.UnfinishedBackfillRun(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != r.ID || got.Phase != store.BackfillApplying || got.Applied != 2 || got.Listed != 5 ||
		!maps.Equal(got.Counts, map[string]int64{"applied": 1, "duplicate": 1}) {
		t.Fatalf("resumed run = %+v", got)
	}
	rest, err := s3.StagedEvents(ctx, r.ID, got.Applied, 100)
	if err != nil {
		t.Fatal(err)
	}
	if ids := stagedIDs(rest); !slices.Equal(ids, []string{"evt_r3", "evt_r4", "evt_r5"}) {
		t.Fatalf("rest = %v, want [evt_r3 evt_r4 evt_r5]", ids)
	}
	if err := s3.AdvanceBackfillRun(ctx, r.ID, rest[2].Ord, map[string]int64{"applied": 3}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UnfinishedBackfillRun(ctx, "events"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UnfinishedBackfillRun from the first store after done = %v, want ErrNotFound", err)
	}
	if got := getRun(t, s, r.ID); got.Phase != store.BackfillDone ||
		!maps.Equal(got.Counts, map[string]int64{"applied": 4, "duplicate": 1}) {
		t.Errorf("done run read from the first store = %+v", got)
	}
}
