package delivery

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/postgres"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// directPG is a PostgreSQL store (a DirectStore) that counts the direct
// calls and can refuse CommitDirect.
type directPG struct {
	*postgres.Store
	takes, commits atomic.Int64
	// refuse, while above 0, makes CommitDirect fail (counting down).
	refuse atomic.Int64
	// hang makes the store behave as a member that hung after its first
	// batch: later TakeDirects find the lease another's, and CommitDirect
	// waits for its context to end.
	hang atomic.Bool
	took atomic.Bool // a batch with items was taken
}

func (s *directPG) TakeDirect(ctx context.Context, id, owner string, limit int, lease time.Duration) (store.DirectBatch, error) {
	s.takes.Add(1)
	if s.hang.Load() && s.took.Load() {
		return store.DirectBatch{EndpointID: id, Owner: owner}, nil
	}
	b, err := s.Store.TakeDirect(ctx, id, owner, limit, lease)
	if len(b.Items) > 0 {
		s.took.Store(true)
	}
	return b, err
}

func (s *directPG) CommitDirect(ctx context.Context, b store.DirectBatch, rs []store.DirectResult) error {
	s.commits.Add(1)
	if s.hang.Load() {
		<-ctx.Done()
		return fmt.Errorf("commit direct: %w: %w", store.ErrUnavailable, ctx.Err())
	}
	if s.refuse.Load() > 0 {
		s.refuse.Add(-1)
		return fmt.Errorf("commit direct: %w: refused by the test", store.ErrUnavailable)
	}
	return s.Store.CommitDirect(ctx, b, rs)
}

// openPG opens n migrated PostgreSQL stores on one fresh database, as n
// members share one.
func openPG(t *testing.T, n int) []*directPG {
	t.Helper()
	url := pgtest.NewDatabase(t)
	var ss []*directPG
	for range n {
		s, err := postgres.Open(context.Background(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		ss = append(ss, &directPG{Store: s})
	}
	return ss
}

// member starts another engine, as another member, on st for f's
// endpoint and receiver.
func (f *fixture) member(t *testing.T, st store.DeliveryStore, cfg Config) *Engine {
	t.Helper()
	cfg.Store, cfg.Wake, cfg.AllowPrivate, cfg.Registerer = st, f.wk, true, prometheus.NewRegistry()
	cfg.PollInterval = max(cfg.PollInterval, 20*time.Millisecond)
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	cfg.Jitter = -1
	if cfg.Schedule == nil {
		cfg.Schedule = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	}
	e := New(cfg)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	return e
}

// Two members on one database deliver directly, one at a time per
// endpoint: every notification arrives, each customer's first acceptances
// come in version order, nothing accepted is sent again, and most
// deliveries were stored once, delivered, never claimed.
func TestEngineDirectTwoMembers(t *testing.T) {
	t.Parallel()
	ss := openPG(t, 2)
	f := newFixture(t, ss[0])
	f.ds = ss[0]
	var rnd atomic.Uint64
	f.rc.answer = func(_ string, try int) string {
		if try == 1 && rnd.Add(1)%10 == 0 { // a tenth of first attempts fail, once
			return "500"
		}
		return "ok"
	}
	f.start(t, Config{Owner: "member-a"})
	f.member(t, ss[1], Config{Owner: "member-b"})
	const customers, versions = 100, 5
	for v := range int64(versions) {
		var batch []store.Notification
		for c := range customers {
			batch = append(batch, note(t, fmt.Sprintf("cus_%03d", c), v+1))
		}
		f.commit(t, batch...)
	}
	total := customers * versions
	waitFor(t, 60*time.Second, "every delivery to end", func() bool { return ended(t, ss[0], f.ep.ID, total) })
	f.rc.check(t)
	f.rc.mu.Lock()
	defer f.rc.mu.Unlock()
	want := fmt.Sprint([]int64{1, 2, 3, 4, 5})
	for c := range customers {
		id := fmt.Sprintf("cus_%03d", c)
		if got := fmt.Sprint(f.rc.accepted[id]); got != want {
			t.Errorf("%s: first acceptances in order %v, want %v", id, got, want)
		}
	}
	if len(f.rc.okIDs) != total {
		t.Errorf("receiver accepted %d deliveries, want %d", len(f.rc.okIDs), total)
	}
	once := 0
	for _, d := range deliveries(t, ss[0], f.ep.ID) {
		if d.Status != store.DeliveryDelivered {
			t.Errorf("delivery %s is %s, want delivered", d.ID, d.Status)
		}
		if d.Attempts == 1 && f.rc.tries[d.ID] == 1 {
			once++
		}
	}
	if takes := ss[0].takes.Load() + ss[1].takes.Load(); takes == 0 || once < total/2 {
		t.Errorf("%d batches taken, %d of %d deliveries at one attempt: the direct path was not used", takes, once, total)
	}
}

// While CommitDirect is refused, the batch's results are kept and
// retried: the delivery is stored once, delivered, and not sent twice.
func TestEngineDirectRetriesCommit(t *testing.T) {
	t.Parallel()
	st := openPG(t, 1)[0]
	st.refuse.Store(3)
	f := newFixture(t, st)
	f.ds = st
	f.rc.answer = func(string, int) string { return "ok" }
	f.start(t, Config{})
	f.commit(t, note(t, "cus_1", 1))
	waitFor(t, 10*time.Second, "the delivery", func() bool { return ended(t, st, f.ep.ID, 1) })
	if got := st.commits.Load(); got < 4 {
		t.Errorf("%d CommitDirect calls, want the 3 refused and 1 more", got)
	}
	f.rc.mu.Lock()
	defer f.rc.mu.Unlock()
	if f.rc.requests != 1 {
		t.Errorf("receiver saw %d requests, want 1 (the results kept while CommitDirect failed)", f.rc.requests)
	}
	d := deliveries(t, st, f.ep.ID)[0]
	if d.Status != store.DeliveryDelivered || d.Attempts != 1 || f.rc.idOf["cus_1/1"] != d.ID {
		t.Errorf("delivery %s %s, %d attempts, received as %s; want delivered at the first, with its ID",
			d.ID, d.Status, d.Attempts, f.rc.idOf["cus_1/1"])
	}
	if as := attempts(t, st, d.ID); len(as) != 1 || as[0].StatusCode != 200 {
		t.Errorf("attempts recorded %+v, want one answered 200", as)
	}
}

// A member that hangs after sending a batch loses it when its lease
// expires: the other member takes the batch again and sends it with the
// same webhook-id, which is the delivery's ID once stored.
func TestEngineDirectTakeOver(t *testing.T) {
	t.Parallel()
	ss := openPG(t, 2)
	ss[0].hang.Store(true)
	f := newFixture(t, ss[0])
	f.ds = ss[0]
	f.rc.answer = func(string, int) string { return "ok" }
	f.start(t, Config{Owner: "member-a", Timeout: time.Second, Lease: 2 * time.Second})
	f.commit(t, note(t, "cus_1", 1))
	waitFor(t, 10*time.Second, "member a's attempt", func() bool {
		f.rc.mu.Lock()
		defer f.rc.mu.Unlock()
		return f.rc.requests > 0
	})
	f.member(t, ss[1], Config{Owner: "member-b", Timeout: time.Second, Lease: 2 * time.Second})
	waitFor(t, 20*time.Second, "member b's delivery", func() bool { return ended(t, ss[1], f.ep.ID, 1) })
	if ss[1].takes.Load() == 0 {
		t.Error("member b took no batch")
	}
	f.rc.check(t)
	f.rc.mu.Lock()
	defer f.rc.mu.Unlock()
	d := deliveries(t, ss[1], f.ep.ID)[0]
	if f.rc.tries[d.ID] < 2 || f.rc.idOf["cus_1/1"] != d.ID {
		t.Errorf("delivery %s sent %d times, received as %s: want sent again, with the ID it is stored under",
			d.ID, f.rc.tries[d.ID], f.rc.idOf["cus_1/1"])
	}
}

// A member that stops gives its lease up: another member delivers the
// next notification at once, not after the lease (a minute) expires.
func TestEngineDirectStopReleases(t *testing.T) {
	t.Parallel()
	ss := openPG(t, 2)
	f := newFixture(t, ss[0])
	f.ds = ss[0]
	f.rc.answer = func(string, int) string { return "ok" }
	f.start(t, Config{Owner: "member-a", Lease: time.Minute})
	f.commit(t, note(t, "cus_1", 1))
	waitFor(t, 10*time.Second, "the first delivery", func() bool { return ended(t, ss[0], f.ep.ID, 1) })
	f.eng.Stop()
	f.member(t, ss[1], Config{Owner: "member-b", Lease: time.Minute})
	f.commit(t, note(t, "cus_1", 2))
	waitFor(t, 10*time.Second, "the second delivery, by member b", func() bool { return ended(t, ss[1], f.ep.ID, 2) })
	if ss[1].takes.Load() == 0 {
		t.Error("member b took no batch")
	}
}
