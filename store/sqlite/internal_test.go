package sqlite

import (
	"testing"
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
