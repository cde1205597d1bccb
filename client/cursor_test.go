package client

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestFileCursorSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "cursor")
	f := NewFileCursor(path)
	if got, err := f.Load(ctx); err != nil || got != "" {
		t.Fatalf("Load of a missing file: %q, %v; want \"\", nil", got, err)
	}
	for _, c := range []string{"c1", "c2", "c3"} {
		if err := f.Save(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := NewFileCursor(path).Load(ctx); err != nil || got != "c3" {
		t.Fatalf("Load after reopen: %q, %v; want \"c3\"", got, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d files, want only the cursor (no temporary files left)", len(entries))
	}
	if err := NewFileCursor(filepath.Join(dir, "missing", "cursor")).Save(ctx, "x"); err == nil {
		t.Fatal("Save into a missing directory succeeded, want an error")
	}
}

// A reader never sees a torn or empty file while Save replaces it.
func TestFileCursorSaveIsAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cursor")
	f := NewFileCursor(path)
	cursor := func(i int) string { return fmt.Sprintf("%0200d", i) } // long, so that a torn write would show
	if err := f.Save(ctx, cursor(0)); err != nil {
		t.Fatal(err)
	}
	const saves = 200
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := NewFileCursor(path)
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := r.Load(ctx)
			if err != nil {
				t.Errorf("Load: %v", err)
				return
			}
			if len(got) != 200 {
				t.Errorf("Load read %d bytes %q, want a whole 200-digit cursor", len(got), got)
				return
			}
		}
	}()
	for i := 1; i <= saves; i++ {
		if err := f.Save(ctx, cursor(i)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if got, _ := f.Load(ctx); got != cursor(saves) {
		t.Fatalf("Load = %q, want the last saved", got)
	}
}

func TestMemoryCursor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var m MemoryCursor
	if got, _ := m.Load(ctx); got != "" {
		t.Fatalf("zero MemoryCursor Load = %q, want \"\"", got)
	}
	m.Save(ctx, "c9")
	if got, _ := m.Load(ctx); got != "c9" {
		t.Fatalf("Load = %q, want c9", got)
	}
}
