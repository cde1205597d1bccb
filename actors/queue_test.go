package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookd/hookd/internal/grainpb"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// protoactor-go leaves throttle and TTL goroutines running after
		// Shutdown; they belong to the library, not to hookd.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/cluster.(*Gossiper).StartGossiping.NewThrottle.func3.1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/cluster/clusterproviders/test.(*Provider).startTtlReport.func1"),
	)
}

// fakeGrain records the requests it gets and holds each until released.
type fakeGrain struct {
	mu       sync.Mutex
	requests [][]string // event IDs per request
	inFlight int
	maxIn    int
	release  chan struct{}
}

func (f *fakeGrain) send(_ context.Context, _ time.Time, customerID string, reqs []*grainpb.ApplyRequest) ([]*grainpb.ApplyResponse, error) {
	var ids []string
	for _, r := range reqs {
		ids = append(ids, r.GetEnvelope().GetEventId())
	}
	f.mu.Lock()
	f.requests = append(f.requests, ids)
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	f.mu.Unlock()
	<-f.release
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
	resps := make([]*grainpb.ApplyResponse, len(reqs))
	for i, id := range ids {
		resps[i] = &grainpb.ApplyResponse{Status: "applied", Reason: customerID + "/" + id}
	}
	return resps, nil
}

func req(id string) *grainpb.ApplyRequest {
	return &grainpb.ApplyRequest{Envelope: &hookdv1.Envelope{EventId: id}}
}

// Events for one customer that arrive while a request is in flight go
// together in the next request, in arrival order; each caller gets its own
// answer; never more than one request per customer is in flight.
func TestApplyQueueBatchesWhileBusy(t *testing.T) {
	q := startedQueues(t)
	g := &fakeGrain{release: make(chan struct{})}
	ctx := context.Background()
	answers := make(chan string, 10)
	call := func(id string) {
		resp, err := q.apply(ctx, "cus_1", req(id), g.send)
		if err != nil {
			answers <- "error " + err.Error()
			return
		}
		answers <- resp.GetReason()
	}
	go call("e0")
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.requests) == 1 })
	for i := 1; i <= 3; i++ { // queue behind e0, in order
		go call(fmt.Sprintf("e%d", i))
		waitFor(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.byCust["cus_1"]) == i })
	}
	g.release <- struct{}{} // e0 answered; e1..e3 go in one request
	g.release <- struct{}{}
	var got []string
	for range 4 {
		got = append(got, <-answers)
	}
	slices.Sort(got)
	if want := []string{"cus_1/e0", "cus_1/e1", "cus_1/e2", "cus_1/e3"}; !slices.Equal(got, want) {
		t.Fatalf("answers %v, want %v", got, want)
	}
	if want := [][]string{{"e0"}, {"e1", "e2", "e3"}}; !equalRequests(g.requests, want) {
		t.Fatalf("requests %v, want %v", g.requests, want)
	}
	if g.maxIn != 1 {
		t.Fatalf("%d requests in flight at once, want 1", g.maxIn)
	}
	waitFor(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.byCust) == 0 })
}

// A caller that gives up while its event waits gets its context's error at
// once, and its event is not sent.
func TestApplyQueueDropsCanceledCallers(t *testing.T) {
	q := startedQueues(t)
	g := &fakeGrain{release: make(chan struct{})}
	first := make(chan error, 1)
	go func() { _, err := q.apply(context.Background(), "cus_1", req("e0"), g.send); first <- err }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.requests) == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { _, err := q.apply(ctx, "cus_1", req("e1"), g.send); gaveUp <- err }()
	waitFor(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.byCust["cus_1"]) == 1 })
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller got %v", err)
	}
	g.release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.byCust) == 0 })
	if len(g.requests) != 1 {
		t.Fatalf("requests %v: the canceled event was sent", g.requests)
	}
}

// Different customers do not wait for each other, and many concurrent
// callers for one customer are each answered once, in batches no larger
// than maxApplyBatch.
func TestApplyQueueManyCallers(t *testing.T) {
	q := startedQueues(t)
	g := &fakeGrain{release: make(chan struct{})}
	close(g.release) // answer at once
	var wg sync.WaitGroup
	const n = 500
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cus := fmt.Sprintf("cus_%d", i%3)
			id := fmt.Sprintf("e%d", i)
			resp, err := q.apply(context.Background(), cus, req(id), g.send)
			if err == nil && resp.GetReason() != cus+"/"+id {
				err = fmt.Errorf("%s got the answer for %s", id, resp.GetReason())
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for _, r := range g.requests {
		total += len(r)
		if len(r) > maxApplyBatch {
			t.Fatalf("request of %d events, over %d", len(r), maxApplyBatch)
		}
	}
	if total != n {
		t.Fatalf("%d events sent, want %d", total, n)
	}
}

func equalRequests(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}

// startedQueues returns started applyQueues, stopped when the test ends.
func startedQueues(t *testing.T) *applyQueues {
	t.Helper()
	q := &applyQueues{}
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Stop)
	return q
}

// Stop ends the drains: an event in flight (its send sees the context
// canceled) and one waiting behind it are answered with ErrNotStarted,
// Stop waits for the drain, and apply after Stop fails at once.
func TestApplyQueueStop(t *testing.T) {
	q := startedQueues(t)
	sent := make(chan struct{})
	send := func(ctx context.Context, _ time.Time, _ string, _ []*grainpb.ApplyRequest) ([]*grainpb.ApplyResponse, error) {
		close(sent)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	inFlight := make(chan error, 1)
	go func() { _, err := q.apply(context.Background(), "cus_1", req("e0"), send); inFlight <- err }()
	<-sent
	waiting := make(chan error, 1)
	go func() { _, err := q.apply(context.Background(), "cus_1", req("e1"), send); waiting <- err }()
	waitFor(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.byCust["cus_1"]) == 1 })
	q.Stop()
	for name, ch := range map[string]chan error{"in flight": inFlight, "waiting": waiting} {
		if err := <-ch; !errors.Is(err, ErrNotStarted) {
			t.Errorf("event %s at Stop: got %v, want ErrNotStarted", name, err)
		}
	}
	if n := len(q.byCust); n != 0 {
		t.Errorf("%d customers still queued after Stop", n)
	}
	if _, err := q.apply(context.Background(), "cus_2", req("e2"), send); !errors.Is(err, ErrNotStarted) {
		t.Errorf("apply after Stop: got %v, want ErrNotStarted", err)
	}
	q.Stop()
}

// A batch's request lasts as long as its most patient caller: until the
// latest of their deadlines, or with none when one caller has none.
func TestApplyQueueBatchDeadlineIsTheMostPatientCallers(t *testing.T) {
	q := startedQueues(t)
	g := &fakeGrain{release: make(chan struct{})}
	var mu sync.Mutex
	var deadlines []time.Time
	send := func(ctx context.Context, deadline time.Time, customerID string, reqs []*grainpb.ApplyRequest) ([]*grainpb.ApplyResponse, error) {
		mu.Lock()
		deadlines = append(deadlines, deadline)
		mu.Unlock()
		return g.send(ctx, deadline, customerID, reqs)
	}
	base := time.Now().Add(time.Hour)
	// e0 holds the grain; each later group waits behind it, then goes as
	// one batch.
	for i, group := range [][]time.Duration{{time.Minute, 3 * time.Minute, 2 * time.Minute}, {time.Minute, -1}} {
		done := make(chan error, 4)
		go func() {
			_, err := q.apply(context.Background(), "cus_1", req(fmt.Sprint("hold", i)), send)
			done <- err
		}()
		waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.requests) == 2*i+1 })
		for j, d := range group {
			ctx := context.Background()
			if d >= 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, base.Add(d))
				defer cancel()
			}
			go func() { _, err := q.apply(ctx, "cus_1", req(fmt.Sprint("e", i, j)), send); done <- err }()
		}
		waitFor(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.byCust["cus_1"]) == len(group) })
		g.release <- struct{}{}
		waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.requests) == 2*i+2 })
		g.release <- struct{}{}
		for range len(group) + 1 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	want := []time.Time{{}, base.Add(3 * time.Minute), {}, {}}
	if len(deadlines) != len(want) {
		t.Fatalf("%d requests, want %d", len(deadlines), len(want))
	}
	for i := range want {
		if !deadlines[i].Equal(want[i]) {
			t.Errorf("request %d had deadline %v, want %v", i, deadlines[i], want[i])
		}
	}
}

// A caller whose event is in flight (it found the customer idle and sent
// it itself) waits for the answer even when its context ends meanwhile:
// the event was sent, and its answer says what became of it.
func TestApplyQueueSenderWaitsForItsAnswer(t *testing.T) {
	q := startedQueues(t)
	g := &fakeGrain{release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		resp, err := q.apply(ctx, "cus_1", req("e0"), g.send)
		if err == nil && resp.GetReason() != "cus_1/e0" {
			err = fmt.Errorf("answer %q", resp.GetReason())
		}
		got <- err
	}()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.requests) == 1 })
	cancel()
	select {
	case err := <-got:
		t.Fatalf("the sender returned %v before its answer came", err)
	case <-time.After(50 * time.Millisecond):
	}
	g.release <- struct{}{}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.byCust) == 0 })
}
