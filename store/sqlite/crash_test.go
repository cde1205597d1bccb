package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/storetest"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/store/sqlite"
)

// envCrashDir tells this test binary, run by TestCrashDurability as its
// child, to be crashWriter with the store in that directory.
const envCrashDir = "HOOKD_SQLITE_CRASH_DIR"

// Crash test parameters: the child writes to crashCustomers customers
// from crashWriters goroutines (so that commits are grouped), the parent
// kills it after crashAcks acknowledged events.
const (
	crashCustomers = 8
	crashWriters   = 4
	crashAcks      = 300
	crashMaxWrites = 100_000 // bounds the child if the parent never kills it
)

// crashWriter is the child process of TestCrashDurability: TestMain runs
// it, instead of the tests, when envCrashDir is set. It commits events
// until it is killed, and prints each event ID after Commit returned nil
// for it, that is, after the store acknowledged it as durable.
func crashWriter(dir string) error {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, dir, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	var (
		mu   sync.Mutex // serializes lines on stdout
		wg   sync.WaitGroup
		errc = make(chan error, crashWriters)
	)
	for g := range crashWriters {
		wg.Go(func() {
			// Each goroutine owns customers g, g+crashWriters, ... and
			// applies events to them in turn, tracking their versions.
			version := make(map[string]int64)
			for i := g; i < crashMaxWrites; i += crashWriters {
				cus := fmt.Sprintf("cus_%d", i%crashCustomers)
				id := fmt.Sprintf("evt_%06d", i)
				w := storetest.StateWrite(id, cus, version[cus])
				if err := s.Commit(ctx, []store.Write{w})[0]; err != nil {
					errc <- fmt.Errorf("Commit(%s): %w", id, err)
					return
				}
				version[cus]++
				mu.Lock()
				_, err := fmt.Fprintln(os.Stdout, id)
				mu.Unlock()
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// TestCrashDurability kills a process that is committing (SIGKILL, no
// chance to close anything) and checks, after reopening the store, that
// every event the process saw acknowledged is stored and that each
// customer's version matches the events stored for it.
func TestCrashDurability(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(stdout)
	for len(acked) < crashAcks && sc.Scan() {
		if id := sc.Text(); strings.HasPrefix(id, "evt_") {
			acked = append(acked, id)
		}
	}
	// Kill while the child is still committing: it has up to
	// crashMaxWrites to go. Killing a process that exited fails; Wait
	// reports how it ended.
	killErr := cmd.Process.Kill()
	waitErr := cmd.Wait()
	if len(acked) < crashAcks {
		t.Fatalf("child acknowledged %d events before it ended (%v), want %d; stderr:\n%s", len(acked), waitErr, crashAcks, stderr.String())
	}
	if killErr != nil {
		t.Fatalf("kill child: %v (wait: %v); stderr:\n%s", killErr, waitErr, stderr.String())
	}
	t.Logf("killed the child after %d acknowledged events: %v", len(acked), waitErr)

	s := open(t, dir)
	for _, id := range acked {
		if _, err := s.GetEvent(ctx, "stripe", id); err != nil {
			t.Errorf("GetEvent(%s), acknowledged before the kill: %v", id, err)
		}
	}

	// Every stored event applied one version: a customer at version V
	// has exactly the events of versions 1..V, and V notifications in
	// version order.
	stored := 0
	for c := range crashCustomers {
		cus := fmt.Sprintf("cus_%d", c)
		cust, err := s.GetCustomer(ctx, cus)
		if errors.Is(err, store.ErrNotFound) {
			cust.Version = 0
		} else if err != nil {
			t.Fatalf("GetCustomer(%s): %v", cus, err)
		}
		var versions []int64
		f := store.ListEventsFilter{CustomerID: cus, PageSize: 1000}
		for {
			es, next, err := s.ListEvents(ctx, f)
			if err != nil {
				t.Fatalf("ListEvents(%s): %v", cus, err)
			}
			for _, e := range es {
				versions = append(versions, e.Version)
			}
			if next == "" {
				break
			}
			f.PageToken = next
		}
		stored += len(versions)
		// Newest first: V, V-1, ..., 1.
		for i, v := range versions {
			if want := cust.Version - int64(i); v != want {
				t.Fatalf("%s at version %d: event %d (newest first) has version %d, want %d", cus, cust.Version, i, v, want)
			}
		}
		if int64(len(versions)) != cust.Version {
			t.Errorf("%s: %d events stored, want %d (its version)", cus, len(versions), cust.Version)
		}
		if cust.Version > 0 && string(cust.State) != fmt.Sprintf("state after %s", newestEvent(t, s, cus)) {
			t.Errorf("%s: state %q is not that of its newest event", cus, cust.State)
		}
		ns := storetest.WaitNotifications(t, s, cus, int(cust.Version))
		for i, n := range ns {
			if n.Version != int64(i)+1 {
				t.Fatalf("%s: notification %d has version %d, want %d", cus, i, n.Version, i+1)
			}
		}
		if int64(len(ns)) != cust.Version {
			t.Errorf("%s: %d notifications, want %d", cus, len(ns), cust.Version)
		}
	}
	if stored < len(acked) {
		t.Errorf("events stored: got %d, want at least the %d acknowledged", stored, len(acked))
	}
}

// newestEvent returns the ID of customerID's newest event.
func newestEvent(t *testing.T, s store.Store, customerID string) string {
	t.Helper()
	es, _, err := s.ListEvents(t.Context(), store.ListEventsFilter{CustomerID: customerID, PageSize: 1})
	if err != nil || len(es) != 1 {
		t.Fatalf("ListEvents(%s): got %d, %v", customerID, len(es), err)
	}
	return es[0].EventID
}
