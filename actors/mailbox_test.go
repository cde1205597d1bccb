package actors

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// recorder is a MessageInvoker that records what it is given. A user
// message "panic" makes it panic.
type recorder struct {
	mu        sync.Mutex
	sys, user []any
	failures  []string
	n         int // user and system messages invoked
	wake      chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) InvokeSystemMessage(m any) {
	r.mu.Lock()
	r.sys = append(r.sys, m)
	r.n++
	r.mu.Unlock()
	r.notify()
}

func (r *recorder) InvokeUserMessage(m any) {
	if m == "panic" {
		panic("handler failed")
	}
	r.mu.Lock()
	r.user = append(r.user, m)
	r.n++
	r.mu.Unlock()
	r.notify()
}

func (r *recorder) EscalateFailure(reason, m any) {
	r.mu.Lock()
	r.failures = append(r.failures, fmt.Sprintf("%v: %v", reason, m))
	r.mu.Unlock()
	r.notify()
}

func (r *recorder) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// waitFor waits until the recorder has invoked n messages.
func (r *recorder) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		got := r.n
		r.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-r.wake:
		case <-deadline:
			t.Fatalf("%d of %d messages invoked after 10 s", got, n)
		}
	}
}

// manualDispatcher holds scheduled functions until the test runs them.
type manualDispatcher struct {
	mu        sync.Mutex
	scheduled []func()
}

func (d *manualDispatcher) Schedule(fn func()) {
	d.mu.Lock()
	d.scheduled = append(d.scheduled, fn)
	d.mu.Unlock()
}

func (d *manualDispatcher) Throughput() int { return 300 }

// runAll runs what was scheduled and returns how many there were.
func (d *manualDispatcher) runAll() int {
	d.mu.Lock()
	fns := d.scheduled
	d.scheduled = nil
	d.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	return len(fns)
}

func newTestMailbox(inv actor.MessageInvoker, d actor.Dispatcher) *compactMailbox {
	m := newCompactMailbox().(*compactMailbox)
	m.RegisterHandlers(inv, d)
	m.Start()
	return m
}

// newManualMailbox returns a mailbox that records what it invokes and
// runs only when the test calls d.runAll.
func newManualMailbox() (*recorder, *manualDispatcher, *compactMailbox) {
	rec, d := newRecorder(), &manualDispatcher{}
	return rec, d, newTestMailbox(rec, d)
}

// idle reports whether the mailbox is at rest and holds no queue arrays.
func (m *compactMailbox) idle() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.scheduled && m.sys.items == nil && m.user.items == nil
}

// TestCompactMailboxConcurrentPosters: many goroutines post at once, user
// and system messages mixed, on the workers customer actors use. Every
// message is invoked exactly once, each poster's in the order it posted
// them, and once drained the mailbox is idle and holds no arrays (what
// it is for). Run with -race.
func TestCompactMailboxConcurrentPosters(t *testing.T) {
	d := newStartedDispatcher(t)
	for round := range 20 {
		rec := newRecorder()
		m := newTestMailbox(rec, d)
		const posters, each = 8, 500
		var wg sync.WaitGroup
		for p := range posters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if p == 0 && i%10 == 0 {
						m.PostSystemMessage([2]int{p, i})
					} else {
						m.PostUserMessage([2]int{p, i})
					}
				}
			}()
		}
		wg.Wait()
		rec.waitFor(t, posters*each)

		rec.mu.Lock()
		next := make([]int, posters)
		check := func(kind string, msgs []any, sys bool) {
			seen := make([]int, posters)
			for i := range seen {
				seen[i] = -1
			}
			for _, msg := range msgs {
				pi := msg.([2]int)
				if pi[1] <= seen[pi[0]] {
					t.Fatalf("round %d: %s message %v after %d of the same poster", round, kind, pi, seen[pi[0]])
				}
				if isSys := pi[0] == 0 && pi[1]%10 == 0; isSys != sys {
					t.Fatalf("round %d: %v invoked as a %s message", round, pi, kind)
				}
				seen[pi[0]] = pi[1]
				next[pi[0]]++
			}
		}
		check("user", rec.user, false)
		check("system", rec.sys, true)
		rec.mu.Unlock()
		for p, n := range next {
			if n != each {
				t.Fatalf("round %d: poster %d: %d of %d messages invoked", round, p, n, each)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for !m.idle() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: mailbox not idle after draining", round)
			}
			time.Sleep(time.Millisecond)
		}
		if n := m.UserMessageCount(); n != 0 {
			t.Fatalf("round %d: UserMessageCount %d after draining", round, n)
		}
	}
}

// TestCompactMailboxSystemFirstAndSuspend: queued system messages run
// before queued user messages; after SuspendMailbox user messages wait,
// system messages do not, and ResumeMailbox lets the waiting ones run in
// order. One run is scheduled at a time, however many messages arrive.
func TestCompactMailboxSystemFirstAndSuspend(t *testing.T) {
	rec, d, m := newManualMailbox()

	m.PostUserMessage("u1")
	m.PostUserMessage("u2")
	m.PostSystemMessage("s1")
	if n := d.runAll(); n != 1 {
		t.Fatalf("%d runs scheduled for three messages, want 1", n)
	}
	if !slices.Equal(rec.sys, []any{"s1"}) || !slices.Equal(rec.user, []any{"u1", "u2"}) {
		t.Fatalf("invoked system %v, user %v", rec.sys, rec.user)
	}

	m.PostSystemMessage(&actor.SuspendMailbox{})
	m.PostUserMessage("u3")
	m.PostSystemMessage("s2")
	d.runAll()
	if !slices.Equal(rec.user, []any{"u1", "u2"}) || !slices.Equal(rec.sys, []any{"s1", "s2"}) {
		t.Fatalf("while suspended: invoked system %v, user %v", rec.sys, rec.user)
	}
	if n := m.UserMessageCount(); n != 1 {
		t.Fatalf("UserMessageCount while suspended = %d, want 1", n)
	}
	m.PostUserMessage("u4")
	if n := d.runAll(); n != 1 {
		t.Fatalf("a user message posted while suspended scheduled %d runs, want 1", n)
	}
	if len(rec.user) != 2 {
		t.Fatalf("user messages invoked while suspended: %v", rec.user)
	}

	m.PostSystemMessage(&actor.ResumeMailbox{})
	d.runAll()
	if !slices.Equal(rec.user, []any{"u1", "u2", "u3", "u4"}) {
		t.Fatalf("after resume: user %v", rec.user)
	}
	if len(rec.sys) != 2 {
		t.Fatalf("suspend and resume reached the invoker: %v", rec.sys)
	}
	if !m.idle() {
		t.Fatal("mailbox not idle after draining")
	}
}

// TestCompactMailboxPanicIsEscalated: a handler's panic is escalated with
// the message that caused it, and the messages behind it still run.
func TestCompactMailboxPanicIsEscalated(t *testing.T) {
	rec, d, m := newManualMailbox()
	m.PostUserMessage("before")
	m.PostUserMessage("panic")
	m.PostUserMessage("after")
	d.runAll()
	if !slices.Equal(rec.failures, []string{"handler failed: panic"}) {
		t.Fatalf("failures %q", rec.failures)
	}
	if !slices.Equal(rec.user, []any{"before", "after"}) {
		t.Fatalf("user messages %v", rec.user)
	}
	if !m.idle() {
		t.Fatal("mailbox not idle after draining")
	}
}

// flaky answers requests with their own text, and panics on "fail" (its
// supervisor restarts it).
type flaky struct{ started *int }

func (a *flaky) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		*a.started++
	case string:
		if msg == "fail" {
			panic("asked to fail")
		}
		ctx.Respond(msg)
	}
}

// TestCompactMailboxInActorSystem runs a real protoactor actor on the
// mailbox and the worker dispatcher: requests are answered in order, a
// panic makes the default supervisor restart the actor (which suspends
// and resumes the mailbox by system messages) and the requests after it
// are answered, and the actor stops when poisoned.
func TestCompactMailboxInActorSystem(t *testing.T) {
	system := actor.NewActorSystem()
	defer system.Shutdown()
	d := newStartedDispatcher(t)
	started := 0 // touched only by the actor, read after it stopped
	props := actor.PropsFromProducer(func() actor.Actor { return &flaky{started: &started} },
		actor.WithMailbox(newCompactMailbox), actor.WithDispatcher(d))
	pid := system.Root.Spawn(props)

	ask := func(msg string) (any, error) {
		return system.Root.RequestFuture(pid, msg, 5*time.Second).Result()
	}
	for i := range 100 {
		want := fmt.Sprint(i)
		if got, err := ask(want); err != nil || got != want {
			t.Fatalf("request %s: got %v, %v", want, got, err)
		}
	}
	system.Root.Send(pid, "fail")
	for i := range 10 {
		want := fmt.Sprint("after ", i)
		if got, err := ask(want); err != nil || got != want {
			t.Fatalf("request %q after a restart: got %v, %v", want, got, err)
		}
	}
	if err := system.Root.PoisonFuture(pid).Wait(); err != nil {
		t.Fatalf("poison: %v", err)
	}
	if started != 2 {
		t.Fatalf("actor started %d times, want 2 (once, and once after its restart)", started)
	}
}

// TestCompactMailboxNoLostWakeups: a message posted after a run found
// the queues empty, but before the mailbox gave up its worker, is still
// invoked: the mailbox is already scheduled, so that post schedules
// nothing, and the run must see it.
func TestCompactMailboxNoLostWakeups(t *testing.T) {
	rec, d, m := newManualMailbox()
	late := 0
	hook := func(run *compactMailbox) {
		if run == m && late < 3 {
			late++
			m.PostUserMessage(fmt.Sprint("late ", late))
		}
	}
	afterRunHook.Store(&hook)
	defer afterRunHook.Store(nil)
	m.PostUserMessage("first")
	if n := d.runAll(); n != 1 {
		t.Fatalf("%d runs scheduled, want 1", n)
	}
	if n := d.runAll(); n != 0 {
		t.Fatalf("posts during a run scheduled %d more runs, want none", n)
	}
	if want := []any{"first", "late 1", "late 2", "late 3"}; !slices.Equal(rec.user, want) {
		t.Fatalf("invoked %v, want %v", rec.user, want)
	}
	if !m.idle() {
		t.Fatal("mailbox not idle after draining")
	}
}

// newStartedDispatcher returns a started dispatcher, stopped when the
// test ends.
func newStartedDispatcher(t *testing.T) *workerDispatcher {
	t.Helper()
	d := newWorkerDispatcher()
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}
