package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// CursorStore keeps a subscriber's position in the notification stream.
// Subscribe calls Load once when it starts and Save after the handler has
// accepted each notification, from one goroutine at a time.
type CursorStore interface {
	// Load returns the cursor to resume after; "" when there is none yet
	// (Subscribe then starts from the beginning, or from now when
	// SubscribeOptions.FromNow is set).
	Load(ctx context.Context) (string, error)
	// Save records cursor as processed. When Save returns nil, a later
	// Load must return cursor (or a later one).
	Save(ctx context.Context, cursor string) error
}

// MemoryCursor is a CursorStore in memory, for subscribers that keep no
// position across restarts (and for tests). The zero value starts empty;
// it is safe for concurrent use.
type MemoryCursor struct {
	mu     sync.Mutex // guards cursor
	cursor string
}

// Load returns the last saved cursor.
func (m *MemoryCursor) Load(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursor, nil
}

// Save keeps cursor.
func (m *MemoryCursor) Save(_ context.Context, cursor string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cursor = cursor
	return nil
}

// FileCursor is a CursorStore in a file that holds the cursor on one
// line. Save replaces the file atomically (a temporary file in the same
// directory, fsynced, renamed over it, and the directory fsynced), so that
// after a crash the file holds either the old cursor or the new one, never
// a torn one. It is safe for concurrent use; two processes must not share
// one file.
type FileCursor struct {
	path string
	mu   sync.Mutex // serializes Save
}

// NewFileCursor returns a FileCursor at path. The file need not exist (Load
// then returns ""); its directory must.
func NewFileCursor(path string) *FileCursor { return &FileCursor{path: path} }

// Path is the file's path.
func (f *FileCursor) Path() string { return f.path }

// Load reads the cursor; "" when the file does not exist.
func (f *FileCursor) Load(context.Context) (string, error) {
	raw, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("load cursor: %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}

// Save writes cursor to the file atomically and durably.
func (f *FileCursor) Save(_ context.Context, cursor string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := writeFileAtomic(f.path, []byte(cursor+"\n")); err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename is durable once the directory is.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
