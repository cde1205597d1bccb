package postgres_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres"
	"github.com/hookd/hookd/store/postgres/pgtest"
	"github.com/hookd/hookd/store/storetest"
)

// A batch of many customers' writes with a duplicate, a dedup-key
// duplicate and a fence conflict among them is committed by the set-based
// path, without falling back, and each write gets its own outcome.
func TestSetCommitOutcomes(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	ctx := t.Context()
	// Existing rows: cus_dup's event, cus_key's dedup key, cus_fenced at version 1.
	old := storetest.StateWrite("evt_old", "cus_dup", 0)
	keyed := storetest.StateWrite("evt_keyed", "cus_key", 0)
	keyed.Event.DedupKey = "customer.updated|cus_key|1"
	for i, err := range s.Commit(ctx, []store.Write{old, keyed, storetest.StateWrite("evt_f0", "cus_fenced", 0)}) {
		if err != nil {
			t.Fatalf("setup write %d: %v", i, err)
		}
	}

	var batch []store.Write
	for i := range 10 {
		batch = append(batch, storetest.StateWrite(fmt.Sprintf("evt_new_%d", i), fmt.Sprintf("cus_new_%d", i), 0))
	}
	again := storetest.StateWrite("evt_old", "cus_dup", 1)                 // event ID stored
	twin := storetest.StateWrite("evt_twin", "cus_key", 1)                 // dedup key held by evt_keyed
	twin.Event.DedupKey = keyed.Event.DedupKey                             //
	stale := storetest.StateWrite("evt_stale", "cus_fenced", 0)            // read version 0, store has 1
	chain := storetest.Chain("cus_chain", 0, "evt_c0", "evt_c1", "evt_c2") // three versions in one update
	batch = append(batch, again, twin, stale)
	batch = append(batch, chain...)
	errs := s.Commit(ctx, batch)
	for i := range 10 {
		if errs[i] != nil {
			t.Errorf("new customer %d: %v", i, errs[i])
		}
	}
	want := []error{store.ErrDuplicate, store.ErrDuplicate, store.ErrFenced, nil, nil, nil}
	for k, w := range want {
		if got := errs[10+k]; (w == nil) != (got == nil) || !errors.Is(got, w) {
			t.Errorf("write %s: %v, want %v", batch[10+k].Event.EventID, got, w)
		}
	}
	if set, fell := postgres.SetCommits(s); set != 2 || fell != 0 {
		t.Errorf("set-based commits %d, fallbacks %d; want 2 (setup and batch) and 0", set, fell)
	}
	if c, err := s.GetCustomer(ctx, "cus_chain"); err != nil || c.Version != 3 || string(c.State) != "state after evt_c2" {
		t.Errorf("cus_chain: version %d state %q (%v), want 3 and the last write's state", c.Version, c.State, err)
	}
	if c, err := s.GetCustomer(ctx, "cus_fenced"); err != nil || c.Version != 1 {
		t.Errorf("cus_fenced: version %d (%v), want 1", c.Version, err)
	}
	if _, err := s.GetEvent(ctx, "stripe", "evt_stale"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("fenced write's event stored (%v)", err)
	}
	ev, err := s.GetEvent(ctx, "stripe", "evt_twin")
	if err != nil || ev.Status != store.StatusDuplicate || ev.Reason != "duplicate of evt_keyed" {
		t.Errorf("dedup-key duplicate recorded as %+v (%v), want status duplicate naming evt_keyed", ev, err)
	}
	if notes := storetest.WaitNotifications(t, s, "cus_chain", 3); len(notes) != 3 || notes[2].Version != 3 {
		t.Errorf("cus_chain notifications %+v, want versions 1..3", notes)
	}
}

// Two writes of one batch with the same event ID: the batch falls back to
// the savepoint path, which stores the event once.
func TestSetCommitFallsBack(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	ctx := t.Context()
	a := storetest.StateWrite("evt_same", "cus_a", 0)
	b := storetest.StateWrite("evt_same", "cus_a", 0)
	other := storetest.StateWrite("evt_other", "cus_b", 0)
	errs := s.Commit(ctx, []store.Write{a, other, b})
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], store.ErrDuplicate) {
		t.Fatalf("results %v, want nil, nil, ErrDuplicate", errs)
	}
	if set, fell := postgres.SetCommits(s); set != 0 {
		t.Errorf("set-based commits %d (fallbacks %d), want the savepoint path", set, fell)
	}
}
