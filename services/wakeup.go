package services

import (
	"sync"
	"time"
)

// Wakeup tells waiting notification streams that something was committed.
// A lost wake-up costs latency, never data: streams also poll.
type Wakeup struct {
	mu  sync.Mutex // guards cur
	cur *wakeupGen // closed and replaced by Notify
}

// wakeupGen is one generation of waiters: ch is closed by the next
// Notify, which sets at (before closing ch) to when it fired.
type wakeupGen struct {
	ch chan struct{}
	at time.Time
}

// NewWakeup returns a ready Wakeup.
func NewWakeup() *Wakeup { return &Wakeup{cur: &wakeupGen{ch: make(chan struct{})}} }

// C returns a channel that is closed at the next Notify.
func (w *Wakeup) C() <-chan struct{} { return w.gen().ch }

// gen returns the current generation; its at may be read once its ch is
// closed.
func (w *Wakeup) gen() *wakeupGen {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

// Notify wakes every current waiter. It never blocks.
func (w *Wakeup) Notify() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cur.at = time.Now()
	close(w.cur.ch)
	w.cur = &wakeupGen{ch: make(chan struct{})}
}
