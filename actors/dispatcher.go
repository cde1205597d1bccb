package actors

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/hookd/hookd/internal/startstop"
)

// workerDispatcher runs actor mailboxes on goroutines that live on
// between messages, instead of a new goroutine each time a mailbox wakes
// up (protoactor's default). A customer actor decodes an event's JSON
// and encodes its state, deeper than a new goroutine's first stack: on
// fresh goroutines every event paid for growing and copying the stack,
// about 6% of hookd's CPU under load. A worker keeps its grown stack.
//
// A mailbox is handed to an idle worker if there is one, else to a new
// worker, so an actor never waits for a worker (actors block while their
// commit is in flight, and a fixed pool would hold back the batching
// that many blocked actors make possible). A worker that has had nothing
// to run for workerIdle exits. The workers are the dispatcher's: Start
// before the first Schedule; Stop makes idle workers exit and waits for
// busy ones to finish their mailbox.
type workerDispatcher struct {
	work chan func() // unbuffered: a send succeeds only to an idle worker
	life startstop.Group

	started atomic.Int64 // workers started, for tests
}

var _ actor.Dispatcher = (*workerDispatcher)(nil)

// workerIdle is how long a worker waits for a mailbox before it exits.
const workerIdle = 10 * time.Second

// newWorkerDispatcher returns a dispatcher with no workers; Start it.
func newWorkerDispatcher() *workerDispatcher {
	return &workerDispatcher{work: make(chan func())}
}

// Start lets Schedule start workers. They run until Stop, not until ctx
// ends.
func (d *workerDispatcher) Start(ctx context.Context) error {
	return d.life.Start(context.WithoutCancel(ctx))
}

// Stop makes idle workers exit, and busy ones once they finish their
// mailbox, and waits for them. Safe twice and before Start.
func (d *workerDispatcher) Stop() { d.life.Stop() }

// Schedule runs fn on an idle worker, or on a new one. It panics before
// Start. A mailbox scheduled after Stop (a message that reaches an actor
// as its cluster shuts down) still runs, on a goroutine of its own that
// ends with the mailbox run, as with protoactor's default dispatcher:
// protoactor requires that it run, and Stop has no later work to wait
// for.
func (d *workerDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
		return
	default:
	}
	d.started.Add(1)
	err := d.life.Go(func(ctx context.Context) { d.worker(ctx, fn) })
	switch {
	case err == nil:
	case errors.Is(err, startstop.ErrStopped):
		go fn()
	default:
		panic("actors: workerDispatcher.Schedule before Start")
	}
}

// Throughput is how many messages a mailbox processes before it yields
// its worker, as in protoactor's default dispatcher.
func (d *workerDispatcher) Throughput() int { return 300 }

func (d *workerDispatcher) worker(stop context.Context, fn func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		fn()
		idle.Reset(workerIdle)
		select {
		case fn = <-d.work:
		case <-idle.C:
			return
		case <-stop.Done():
			return
		}
	}
}
