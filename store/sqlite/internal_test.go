package sqlite

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hookd/hookd/store"
)

// TestPragmas checks the settings durability depends on: a kill -9 test
// cannot tell synchronous=FULL from OFF (the kernel keeps the page cache),
// a power cut can.
func TestPragmas(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tt := range []struct {
		db     string
		pragma string
		want   string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "synchronous", "2"}, // FULL
		{"writer", "foreign_keys", "1"},
		{"writer", "busy_timeout", "5000"},
		{"reader", "query_only", "1"},
		{"reader", "busy_timeout", "5000"},
	} {
		db := s.wdb
		if tt.db == "reader" {
			db = s.rdb
		}
		var got string
		if err := db.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatalf("%s: PRAGMA %s: %v", tt.db, tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("%s: PRAGMA %s: got %q, want %q", tt.db, tt.pragma, got, tt.want)
		}
	}
}

// TestFailWrites checks which results survive a transaction that failed as
// a whole: an invalid write and the writes skipped after it keep theirs,
// since no retry changes them; everything else, a write skipped after a
// duplicate or a fence included, becomes unavailable.
func TestFailWrites(t *testing.T) {
	t.Parallel()
	invalid := fmt.Errorf("commit event x: %w: bad", store.ErrInvalidArgument)
	chained := store.Write{AfterPrevious: true}
	writes := []store.Write{{}, chained, {}, chained, chained, {}, chained, {}}
	errs := []error{store.ErrDuplicate, store.ErrSkipped, invalid, store.ErrSkipped, store.ErrSkipped, store.ErrFenced, store.ErrSkipped, nil}
	failWrites(writes, errs, errors.New("connection lost"))
	want := []error{store.ErrUnavailable, store.ErrUnavailable, store.ErrInvalidArgument, store.ErrSkipped, store.ErrSkipped,
		store.ErrUnavailable, store.ErrUnavailable, store.ErrUnavailable}
	for i := range want {
		if !errors.Is(errs[i], want[i]) || (want[i] != store.ErrUnavailable && errors.Is(errs[i], store.ErrUnavailable)) {
			t.Errorf("result %d: got %v, want %v", i, errs[i], want[i])
		}
	}
}
