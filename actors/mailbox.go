package actors

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// compactMailbox is a protoactor mailbox that costs one small object while
// its actor is idle. Protoactor's default (actor.Unbounded) keeps, for
// every actor, a ring buffer and a lock-free queue with their nodes: seven
// objects and about 340 bytes that every garbage collection scans, for
// each of tens of thousands of resident customer actors. Here the queues
// are slices, allocated when messages arrive and dropped when drained.
//
// It behaves as the default mailbox does: system messages before user
// messages, each queue in posting order; SuspendMailbox holds back user
// messages (not system ones) until ResumeMailbox; a panic in a handler is
// escalated with the message that caused it, and the next messages are
// still processed; the mailbox yields its worker after the dispatcher's
// throughput. A mutex suits it: one actor's mailbox has few posters, and
// the actor takes one message at a time.
type compactMailbox struct {
	mu        sync.Mutex
	sys, user msgQueue
	scheduled bool // process is running or handed to the dispatcher
	suspended bool

	invoker    actor.MessageInvoker
	dispatcher actor.Dispatcher
}

// afterRunHook, set by tests, is called between a run and the decision to
// stop (a global, so that mailboxes carry no field for it).
var afterRunHook atomic.Pointer[func(*compactMailbox)]

var _ actor.Mailbox = (*compactMailbox)(nil)

// newCompactMailbox is an actor.MailboxProducer.
func newCompactMailbox() actor.Mailbox { return &compactMailbox{} }

// msgQueue is a FIFO of messages whose backing array is released once it is
// drained, so that an idle mailbox holds none.
type msgQueue struct {
	items []any
	head  int
}

func (q *msgQueue) push(m any) { q.items = append(q.items, m) }

func (q *msgQueue) len() int { return len(q.items) - q.head }

// pop returns the oldest message, or false when there is none.
func (q *msgQueue) pop() (any, bool) {
	if q.head == len(q.items) {
		return nil, false
	}
	m := q.items[q.head]
	q.items[q.head] = nil // the actor may hold on; the queue must not
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = nil, 0
	}
	return m, true
}

// PostUserMessage queues a user message. A MessageBatch (bare or in an
// envelope) also has its messages posted one by one first, as protoactor's
// default mailbox does.
func (m *compactMailbox) PostUserMessage(message any) {
	if batch, ok := message.(actor.MessageBatch); ok {
		for _, msg := range batch.GetMessages() {
			m.PostUserMessage(msg)
		}
	}
	if env, ok := message.(*actor.MessageEnvelope); ok {
		if batch, ok := env.Message.(actor.MessageBatch); ok {
			for _, msg := range batch.GetMessages() {
				m.PostUserMessage(msg)
			}
		}
	}
	m.post(&m.user, message)
}

// PostSystemMessage queues a system message.
func (m *compactMailbox) PostSystemMessage(message any) { m.post(&m.sys, message) }

func (m *compactMailbox) post(q *msgQueue, message any) {
	m.mu.Lock()
	q.push(message)
	schedule := !m.scheduled
	m.scheduled = true
	m.mu.Unlock()
	if schedule {
		m.dispatcher.Schedule(m.process)
	}
}

// RegisterHandlers is called once, before any message is posted.
func (m *compactMailbox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.invoker = invoker
	m.dispatcher = dispatcher
}

// Start is called when the actor is spawned; there is nothing to start.
func (m *compactMailbox) Start() {}

// UserMessageCount returns the number of queued user messages.
func (m *compactMailbox) UserMessageCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.user.len()
}

// process runs on a dispatcher worker until nothing runnable is queued.
// The decision to stop and the clearing of scheduled happen under the
// lock that post takes, so a message posted meanwhile is never left
// without a run.
func (m *compactMailbox) process() {
	for {
		m.run()
		if hook := afterRunHook.Load(); hook != nil {
			(*hook)(m)
		}
		m.mu.Lock()
		if m.sys.len() == 0 && (m.suspended || m.user.len() == 0) {
			m.scheduled = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
	}
}

// run invokes queued messages, system ones first, until none is runnable
// or a handler panics (the panic is escalated to the supervisor, which
// suspends or restarts the actor by system messages).
func (m *compactMailbox) run() {
	var msg any
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
		}
	}()
	throughput := m.dispatcher.Throughput()
	for i := 0; ; i++ {
		if i > throughput {
			i = 0
			runtime.Gosched()
		}
		m.mu.Lock()
		if sys, ok := m.sys.pop(); ok {
			switch sys.(type) {
			case *actor.SuspendMailbox:
				m.suspended = true
				m.mu.Unlock()
			case *actor.ResumeMailbox:
				m.suspended = false
				m.mu.Unlock()
			default:
				m.mu.Unlock()
				msg = sys
				m.invoker.InvokeSystemMessage(sys)
			}
			continue
		}
		if m.suspended {
			m.mu.Unlock()
			return
		}
		user, ok := m.user.pop()
		m.mu.Unlock()
		if !ok {
			return
		}
		msg = user
		m.invoker.InvokeUserMessage(user)
	}
}
