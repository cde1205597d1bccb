package actors

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestWorkerDispatcher checks what customer actors rely on: every
// scheduled mailbox runs, mailboxes that block do not hold up others
// (each gets a worker of its own), a worker runs mailbox after mailbox
// instead of a goroutine being started for each, and Stop lets idle
// workers go and waits for them.
func TestWorkerDispatcher(t *testing.T) {
	base := runtime.NumGoroutine()
	d := newWorkerDispatcher()
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	// 100 mailboxes that all block until every one of them is running:
	// this only finishes if none waits for a worker.
	const blocked = 100
	var running, done sync.WaitGroup
	running.Add(blocked)
	done.Add(blocked)
	release := make(chan struct{})
	for range blocked {
		d.Schedule(func() { running.Done(); <-release; done.Done() })
	}
	waitOrFail(t, &running, "blocked mailboxes to run side by side")
	close(release)
	waitOrFail(t, &done, "blocked mailboxes to finish")

	// One at a time, many mailboxes reuse the idle workers.
	workers := d.started.Load()
	for range 1000 {
		var wg sync.WaitGroup
		wg.Add(1)
		d.Schedule(wg.Done)
		waitOrFail(t, &wg, "a mailbox to run")
	}
	// A worker that has just run a mailbox may not be back waiting when
	// the next comes, so a few more may start; one per mailbox may not.
	if now := d.started.Load(); now > workers+50 {
		t.Errorf("1,000 mailboxes one after another started %d workers (%d before)", now-workers, workers)
	}

	d.Stop()
	d.Stop()
	// Stop waited for the workers; the runtime may take a moment to
	// count them gone.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Errorf("%d goroutines after Stop, want %d", n, base)
	}
	// After Stop, a mailbox still runs.
	var late sync.WaitGroup
	late.Add(1)
	d.Schedule(late.Done)
	waitOrFail(t, &late, "a mailbox scheduled after Stop to run")
}

func waitOrFail(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
