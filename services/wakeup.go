package services

import "sync"

// Wakeup tells waiting notification streams that something was committed.
// A lost wake-up costs latency, never data: streams also poll.
type Wakeup struct {
	mu sync.Mutex    // guards ch
	ch chan struct{} // closed and replaced by Notify
}

// NewWakeup returns a ready Wakeup.
func NewWakeup() *Wakeup { return &Wakeup{ch: make(chan struct{})} }

// C returns a channel that is closed at the next Notify.
func (w *Wakeup) C() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

// Notify wakes every current waiter. It never blocks.
func (w *Wakeup) Notify() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.ch)
	w.ch = make(chan struct{})
}
