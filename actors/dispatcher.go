package actors

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
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
// to run for workerIdle exits, and all idle workers exit on Close.
type workerDispatcher struct {
	work chan func() // unbuffered: a send succeeds only to an idle worker
	quit chan struct{}
	once sync.Once

	started atomic.Int64 // workers started, for tests
}

var _ actor.Dispatcher = (*workerDispatcher)(nil)

// workerIdle is how long a worker waits for a mailbox before it exits.
const workerIdle = 10 * time.Second

func newWorkerDispatcher() *workerDispatcher {
	return &workerDispatcher{work: make(chan func()), quit: make(chan struct{})}
}

// Schedule runs fn on an idle worker, or on a new one.
func (d *workerDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		d.started.Add(1)
		go d.worker(fn)
	}
}

// Throughput is how many messages a mailbox processes before it yields
// its worker, as in protoactor's default dispatcher.
func (d *workerDispatcher) Throughput() int { return 300 }

func (d *workerDispatcher) worker(fn func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		fn()
		idle.Reset(workerIdle)
		select {
		case fn = <-d.work:
		case <-idle.C:
			return
		case <-d.quit:
			return
		}
	}
}

// Close makes idle workers exit, and busy ones once they finish. Mailboxes
// scheduled after Close still run, each on a worker that exits after it.
func (d *workerDispatcher) Close() {
	d.once.Do(func() { close(d.quit) })
}
