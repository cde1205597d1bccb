package delivery

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/store/postgres/pgtest"
)

// countingEnqueue is a real store that counts Enqueue calls.
type countingEnqueue struct {
	backend
	enqueues atomic.Int64
}

func (s *countingEnqueue) Enqueue(ctx context.Context, endpointID string, limit int) (int, int, error) {
	s.enqueues.Add(1)
	return s.backend.Enqueue(ctx, endpointID, limit)
}

// The engine enqueues when woken by a commit (and at its polls), not
// after each Complete: a notification committed with a wake-up is
// delivered promptly though no Complete came before it and the poll is
// a minute away; recording its result makes the loop claim again without
// reading the outbox; and a commit without a wake-up waits for one.
func TestEngineEnqueuesOnWakeUp(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st backend) {
		f := newFixture(t, st)
		cs := &countingEnqueue{backend: st}
		f.ds = cs
		f.rc.answer = func(string, int) string { return "ok" }
		arrived, release := make(chan struct{}, 1), make(chan struct{})
		f.gate = func() {
			select {
			case arrived <- struct{}{}:
			default:
			}
			<-release
		}
		f.start(t, Config{PollInterval: time.Minute})
		waitFor(t, 10*time.Second, "the first pass", func() bool { return cs.enqueues.Load() > 0 && f.eng.settled() })

		f.commit(t, note(t, "cus_1", 1)) // wakes the engine
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("no delivery 5 s after the wake-up")
		}
		time.Sleep(1200 * time.Millisecond) // the wake-up's follow-up passes (50, 200, 800 ms)
		n := cs.enqueues.Load()             // the attempt is in flight: no Complete yet
		close(release)
		waitFor(t, 5*time.Second, "the first delivery to end", func() bool { return ended(t, f.st, f.ep.ID, 1) })
		waitFor(t, 5*time.Second, "its result to be recorded", f.eng.settled)
		time.Sleep(200 * time.Millisecond) // the kick after Complete, and its pass
		if got := cs.enqueues.Load(); got != n {
			t.Errorf("Enqueue called %d times after the Complete of the only delivery, want none", got-n)
		}

		commit(t, f.st, nil, note(t, "cus_1", 2)) // no wake-up
		time.Sleep(300 * time.Millisecond)
		if ds := deliveries(t, f.st, f.ep.ID); len(ds) != 1 {
			t.Errorf("%d deliveries without a wake-up or a poll, want 1", len(ds))
		}
		f.wk.notify()
		waitFor(t, 5*time.Second, "the second delivery, after a wake-up", func() bool { return ended(t, f.st, f.ep.ID, 2) })
		f.eng.Stop()
		f.rc.check(t)
	})
}

// A notification committed while an older transaction is open elsewhere
// on the server (another database's) is not final at the wake-up's pass;
// the wake-up's follow-up passes deliver it once that transaction ended,
// without waiting for the poll (a minute here). On both paths: direct,
// and through Enqueue (a wrapped store).
func TestEngineFollowsUpAWakeUp(t *testing.T) {
	t.Parallel()
	for _, wrapped := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "enqueue"}[wrapped], func(t *testing.T) {
			t.Parallel()
			st := pgtest.NewStore(t)
			f := newFixture(t, st)
			if wrapped {
				f.ds = &countingEnqueue{backend: st}
			}
			f.rc.answer = func(string, int) string { return "ok" }
			f.start(t, Config{PollInterval: time.Minute})
			waitFor(t, 10*time.Second, "the first pass", f.eng.settled)

			other, err := pgx.Connect(t.Context(), pgtest.NewDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close(context.Background())
			tx, err := other.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(t.Context(), `SELECT pg_current_xact_id()`); err != nil { // an xid, older than the commit's
				t.Fatal(err)
			}
			f.commit(t, note(t, "cus_1", 1)) // wakes the engine while tx holds the server's xmin back
			time.Sleep(30 * time.Millisecond)
			if err := tx.Rollback(t.Context()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "the delivery, after the older transaction ended", func() bool { return ended(t, f.st, f.ep.ID, 1) })
		})
	}
}
