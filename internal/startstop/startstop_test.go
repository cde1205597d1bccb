package startstop_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookd/hookd/internal/startstop"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestStopBeforeStart(t *testing.T) {
	var g startstop.Group
	g.Stop() // returns, starts nothing
	if err := g.Start(context.Background()); !errors.Is(err, startstop.ErrStopped) {
		t.Fatalf("Start after Stop = %v, want ErrStopped", err)
	}
	if err := g.Go(func(context.Context) { t.Error("ran after Stop") }); !errors.Is(err, startstop.ErrStopped) {
		t.Fatalf("Go after Stop = %v, want ErrStopped", err)
	}
	g.Stop()
}

func TestGoBeforeStart(t *testing.T) {
	var g startstop.Group
	if err := g.Go(func(context.Context) { t.Error("ran before Start") }); !errors.Is(err, startstop.ErrNotStarted) {
		t.Fatalf("Go before Start = %v, want ErrNotStarted", err)
	}
	if _, ok := g.Context(); ok {
		t.Fatal("Context before Start reported ok")
	}
}

func TestStartTwice(t *testing.T) {
	var g startstop.Group
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	if err := g.Start(context.Background()); !errors.Is(err, startstop.ErrStarted) {
		t.Fatalf("second Start = %v, want ErrStarted", err)
	}
	if !g.Running() {
		t.Fatal("not running after Start")
	}
}

func TestStopTwice(t *testing.T) {
	var g startstop.Group
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.Stop()
	g.Stop()
	if g.Running() {
		t.Fatal("running after Stop")
	}
}

// Stop cancels the goroutines' context (with cause ErrStop) and returns
// only after they have returned; concurrent Stops all wait.
func TestStopWaitsAndCancels(t *testing.T) {
	var g startstop.Group
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var finished atomic.Int32
	started := make(chan struct{}, 3)
	for range 3 {
		if err := g.Go(func(ctx context.Context) {
			started <- struct{}{}
			<-ctx.Done()
			if cause := context.Cause(ctx); !errors.Is(cause, startstop.ErrStop) {
				t.Errorf("cause = %v, want ErrStop", cause)
			}
			time.Sleep(20 * time.Millisecond) // Stop must wait for this
			finished.Add(1)
		}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		<-started
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.Stop()
			if n := finished.Load(); n != 3 {
				t.Errorf("Stop returned with %d of 3 goroutines finished", n)
			}
		}()
	}
	wg.Wait()
	if ctx, ok := g.Context(); !ok || ctx.Err() == nil {
		t.Fatal("context not done after Stop")
	}
}

// The group's context also ends with the parent's.
func TestParentCancel(t *testing.T) {
	var g startstop.Group
	parent, cancel := context.WithCancel(context.Background())
	if err := g.Start(parent); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	if err := g.Go(func(ctx context.Context) { <-ctx.Done(); close(done) }); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	g.Stop()
}

// A goroutine that tries to start another one while Stop waits is
// refused, and Stop still returns.
func TestGoDuringStop(t *testing.T) {
	var g startstop.Group
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	if err := g.Go(func(ctx context.Context) {
		<-ctx.Done()
		errc <- g.Go(func(context.Context) { t.Error("ran during Stop") })
	}); err != nil {
		t.Fatal(err)
	}
	g.Stop()
	if err := <-errc; !errors.Is(err, startstop.ErrStopped) {
		t.Fatalf("Go during Stop = %v, want ErrStopped", err)
	}
}

// Do runs f on the caller's goroutine with the group's context; Stop
// cancels that context and waits for f; Do before Start or after Stop
// does not run f.
func TestDo(t *testing.T) {
	var g startstop.Group
	if err := g.Do(func(context.Context) { t.Error("ran before Start") }); !errors.Is(err, startstop.ErrNotStarted) {
		t.Fatalf("Do before Start = %v, want ErrNotStarted", err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var finished atomic.Bool
	doErr := make(chan error, 1)
	go func() {
		doErr <- g.Do(func(ctx context.Context) {
			close(started)
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // Stop must wait for this
			finished.Store(true)
		})
	}()
	<-started
	g.Stop()
	if !finished.Load() {
		t.Error("Stop returned before Do's function did")
	}
	if err := <-doErr; err != nil {
		t.Errorf("Do = %v", err)
	}
	if err := g.Do(func(context.Context) { t.Error("ran after Stop") }); !errors.Is(err, startstop.ErrStopped) {
		t.Fatalf("Do after Stop = %v, want ErrStopped", err)
	}
}
