package batch_test

import (
	"sync/atomic"
	"testing"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/batch"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// TestCommittedOncePerCommit: Config.Committed, which wakes a process's
// notification readers, runs once per backend commit that committed a
// write with notifications, whatever the number of callers in it; before
// any caller has its result; and not for commits whose writes carry no
// notifications or all failed. With MaxBatch 1, once per commit.
func TestCommittedOncePerCommit(t *testing.T) {
	t.Parallel()
	const callers = 64

	t.Run("Batched", func(t *testing.T) {
		t.Parallel()
		inner := &countingStore{Store: pgtest.NewStore(t), gate: make(chan struct{})}
		var calls, answered atomic.Int64
		var seen []int64 // callers answered when each call ran
		s := newBatch(t, inner, batch.Config{Committed: func() {
			calls.Add(1)
			seen = append(seen, answered.Load()) // the committer's goroutine only
		}})
		writes := distinctWrites("w", callers)
		errs := make(chan error, callers)
		commit := func(w []store.Write) {
			err := s.Commit(t.Context(), w)[0]
			answered.Add(1)
			errs <- err
		}
		go commit(writes[:1])
		waitFor(t, "the first commit", func() bool { return inner.commits.Load() == 1 })
		for i := 1; i < callers; i++ {
			go commit(writes[i : i+1])
		}
		waitFor(t, "the other callers to queue", func() bool { return s.Queued() == callers-1 })
		close(inner.gate)
		for range callers {
			if err := <-errs; err != nil {
				t.Fatalf("Commit: %v", err)
			}
		}
		if got, commits := calls.Load(), inner.commits.Load(); got != commits || commits != 2 {
			t.Errorf("Committed ran %d times for %d backend commits of %d callers, want once per commit (2)", got, commits, callers)
		}
		// Each time before the callers of its commit were answered.
		if len(seen) != 2 || seen[0] != 0 || seen[1] != 1 {
			t.Errorf("callers answered when Committed ran: %v, want [0 1]", seen)
		}

		// A write without notifications, and a duplicate that fails.
		quiet := distinctWrites("q", 1)[0]
		quiet.Notifications = nil
		if err := s.Commit(t.Context(), []store.Write{quiet})[0]; err != nil {
			t.Fatal(err)
		}
		dup := storetest.StateWrite(writes[0].Event.EventID, writes[0].Event.CustomerID, 1)
		if err := s.Commit(t.Context(), []store.Write{dup})[0]; err == nil {
			t.Fatal("a repeated event ID committed")
		}
		if got := calls.Load(); got != 2 {
			t.Errorf("Committed ran for a commit with no notifications committed: %d calls, want 2", got)
		}
	})

	t.Run("MaxBatch1", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int64
		s := newBatch(t, pgtest.NewStore(t), batch.Config{MaxBatch: 1, Committed: func() { calls.Add(1) }})
		for i, err := range commitAll(t, s, distinctWrites("d", 8)) {
			if err != nil {
				t.Fatalf("Commit %d: %v", i, err)
			}
		}
		if got := calls.Load(); got != 8 {
			t.Errorf("MaxBatch 1: Committed ran %d times for 8 commits", got)
		}
	})
}
