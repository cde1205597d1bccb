// Package startstop is hookd's one start/stop pattern for long-lived
// components that own goroutines (STYLE.md, "Lifecycles"; after river's
// rivershared/startstop).
//
// A component embeds or holds a [Group]. Its Start(ctx) error calls
// [Group.Start] once everything that can fail has succeeded, and starts
// its goroutines with [Group.Go]; its Stop calls [Group.Stop], which
// cancels the context the goroutines were given and waits for them.
//
//   - Start is start-once: a second Start, or a Start after Stop, is an
//     error.
//   - Stop is stop-once: it is safe before Start, safe twice and
//     concurrently, and every call returns only after the goroutines have
//     returned.
//   - Go refuses (returns an error) before Start and once Stop has begun,
//     so no goroutine is started that Stop does not wait for.
//
// Nothing starts a goroutine in a constructor: constructors return a
// component at rest, and Start starts it.
package startstop

import (
	"context"
	"errors"
	"sync"
)

var (
	// ErrStarted is returned by a second Start.
	ErrStarted = errors.New("startstop: already started")
	// ErrStopped is returned by Start and Go once Stop has been called.
	ErrStopped = errors.New("startstop: stopped")
	// ErrNotStarted is returned by Go before Start.
	ErrNotStarted = errors.New("startstop: not started")
	// ErrStop is the cause of the Group's context once Stop cancels it
	// (context.Cause), telling a controlled stop from the parent context
	// ending.
	ErrStop = errors.New("startstop: stop requested")
)

type state int

const (
	idle state = iota
	running
	stopped
)

// Group owns a set of goroutines: it starts them, gives them a context
// that Stop cancels, and lets Stop wait for them. The zero value is ready
// to use; a Group must not be copied after first use.
type Group struct {
	mu     sync.Mutex // guards state, ctx, cancel; wg.Add happens under it
	state  state
	ctx    context.Context
	cancel context.CancelCauseFunc

	wg   sync.WaitGroup // the goroutines started by Go
	once sync.Once      // the one Stop that cancels and waits
}

// Start marks the group running and derives from ctx the context that
// its goroutines receive; that context ends when ctx does or when Stop is
// called, whichever is first. (A component whose goroutines must outlive
// the caller's ctx, and end only on Stop, passes
// context.WithoutCancel(ctx).) Start returns ErrStarted if called before,
// and ErrStopped after Stop.
func (g *Group) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case running:
		return ErrStarted
	case stopped:
		return ErrStopped
	}
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	g.state = running
	return nil
}

// Go runs f on a goroutine that Stop waits for, with the group's context.
// It returns ErrNotStarted before Start and ErrStopped once Stop has
// begun, and then does not run f.
func (g *Group) Go(f func(ctx context.Context)) error {
	ctx, err := g.enter()
	if err != nil {
		return err
	}
	go func() {
		defer g.wg.Done()
		f(ctx)
	}()
	return nil
}

// Do runs f on the calling goroutine, with the group's context, as one
// of the group's goroutines: Stop waits for it to return. It returns
// ErrNotStarted before Start and ErrStopped once Stop has begun, and then
// does not run f. Like a goroutine of the group, f must not call Stop.
// It is Go for work the caller waits for anyway, without the hand-off to
// another goroutine and back.
func (g *Group) Do(f func(ctx context.Context)) error {
	ctx, err := g.enter()
	if err != nil {
		return err
	}
	defer g.wg.Done()
	f(ctx)
	return nil
}

// enter counts one more goroutine of the group, which must call
// g.wg.Done when it ends, and returns the group's context; or it returns
// ErrNotStarted or ErrStopped and counts nothing.
func (g *Group) enter() (context.Context, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case idle:
		return nil, ErrNotStarted
	case stopped:
		return nil, ErrStopped
	}
	// Added under mu while running: Stop flips the state under mu before
	// it waits, so no Add can race with the Wait.
	g.wg.Add(1)
	return g.ctx, nil
}

// Context returns the group's context, and false before Start. After Stop
// the context is done.
func (g *Group) Context() (context.Context, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ctx, g.ctx != nil
}

// Running reports whether Start has been called and Stop has not.
func (g *Group) Running() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state == running
}

// Stop cancels the group's context (with cause ErrStop), refuses further
// Go calls, and waits for the goroutines already started. It is safe
// before Start (the group then can no longer be started), twice, and
// concurrently: every call returns once the goroutines have returned. No
// lock is held while waiting, so the goroutines may call the group (or
// their component) while Stop waits; but a goroutine the group owns must
// not call Stop, which would wait for itself.
func (g *Group) Stop() {
	g.once.Do(func() {
		g.mu.Lock()
		g.state = stopped
		cancel := g.cancel
		g.mu.Unlock()
		if cancel != nil {
			cancel(ErrStop)
		}
		g.wg.Wait()
	})
	// once.Do returns to every caller only after the first call's
	// function has returned, so the wait is over here.
}
