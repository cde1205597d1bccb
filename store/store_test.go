package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/fstest"
)

func TestReadMigrations(t *testing.T) {
	t.Parallel()
	good := fstest.MapFS{
		"m/0002_b.sql": {Data: []byte("B")},
		"m/0001_a.sql": {Data: []byte("A")},
	}
	ms, err := ReadMigrations(good, "m")
	if err != nil || len(ms) != 2 || ms[0].Version != 1 || ms[0].SQL != "A" || ms[1].Name != "0002_b.sql" {
		t.Fatalf("ReadMigrations = %+v, %v; want 0001_a then 0002_b", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"misnamed":  {"m/first.sql": {Data: []byte("x")}},
		"zero":      {"m/0000_a.sql": {Data: []byte("x")}},
		"not sql":   {"m/0001_a.txt": {Data: []byte("x")}},
		"duplicate": {"m/0001_a.sql": {Data: []byte("x")}, "m/001_b.sql": {Data: []byte("y")}},
	} {
		if _, err := ReadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: got no error, want one", name)
		}
	}
}

func TestPageToken(t *testing.T) {
	t.Parallel()
	for _, seq := range []int64{1, 42, 1 << 40} {
		got, err := ParsePageToken(PageToken(seq))
		if err != nil || got != seq {
			t.Errorf("round trip of %d: got %d, %v", seq, got, err)
		}
	}
	for _, tok := range []string{"", "!!", PageToken(0), "c2VxOi0x" /* seq:-1 */, "c2VxOjAx" /* seq:01 */, "eHl6OjE" /* xyz:1 */, "c2VxOjX" /* seq:5 with non-zero padding bits */, "c2V\rxOjY" /* seq:6 with a CR inside */} {
		if _, err := ParsePageToken(tok); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParsePageToken(%q): %v, want ErrInvalidArgument", tok, err)
		}
	}
}

// FuzzParsePageToken: any token either fails cleanly or round-trips.
func FuzzParsePageToken(f *testing.F) {
	f.Add(PageToken(7))
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, tok string) {
		seq, err := ParsePageToken(tok)
		if err == nil && PageToken(seq) != tok {
			t.Fatalf("token %q parsed to %d, which encodes as %q", tok, seq, PageToken(seq))
		}
	})
}

// TestFailWrites checks which results survive a transaction that failed as
// a whole: an invalid write and the writes skipped after it keep theirs,
// since no retry changes them; everything else, a write skipped after a
// duplicate or a fence included, becomes unavailable.
func TestFailWrites(t *testing.T) {
	t.Parallel()
	invalid := fmt.Errorf("commit event x: %w: bad", ErrInvalidArgument)
	chained := Write{AfterPrevious: true}
	writes := []Write{{}, chained, {}, chained, chained, {}, chained, {}}
	errs := []error{ErrDuplicate, ErrSkipped, invalid, ErrSkipped, ErrSkipped, ErrFenced, ErrSkipped, nil}
	FailWrites(writes, errs, errors.New("connection lost"))
	want := []error{ErrUnavailable, ErrUnavailable, ErrInvalidArgument, ErrSkipped, ErrSkipped,
		ErrUnavailable, ErrUnavailable, ErrUnavailable}
	for i := range want {
		if !errors.Is(errs[i], want[i]) || (want[i] != ErrUnavailable && errors.Is(errs[i], ErrUnavailable)) {
			t.Errorf("result %d: got %v, want %v", i, errs[i], want[i])
		}
	}
}

// TestValidateWrites: an invalid write, the valid writes chained after it
// skipped (transitively), the others untouched; the first write's
// AfterPrevious ignored.
func TestValidateWrites(t *testing.T) {
	t.Parallel()
	ok := Write{Event: Event{Source: "stripe", EventID: "evt_1"}}
	chained := ok
	chained.AfterPrevious = true
	bad := Write{Event: Event{Source: "stripe"}, AfterPrevious: true}
	errs := ValidateWrites([]Write{chained, bad, chained, chained, ok, chained})
	want := []error{nil, ErrInvalidArgument, ErrSkipped, ErrSkipped, nil, nil}
	for i := range want {
		if (want[i] == nil) != (errs[i] == nil) || !errors.Is(errs[i], want[i]) {
			t.Errorf("result %d: got %v, want %v", i, errs[i], want[i])
		}
	}
}

func TestPageLength(t *testing.T) {
	tests := []struct {
		sizes    []int64
		pageSize int
		maxBytes int64
		want     int
	}{
		{nil, 10, 100, 0},
		{[]int64{10, 20, 30}, 10, 0, 3},
		{[]int64{10, 20, 30}, 2, 0, 2},
		{[]int64{10, 20, 30}, 10, 60, 3},
		{[]int64{10, 20, 30}, 10, 59, 2},
		{[]int64{10, 20, 30}, 10, 30, 2},
		{[]int64{10, 20, 30}, 10, 29, 1},
		{[]int64{500, 1, 1}, 10, 100, 1}, // one event however large
		{[]int64{1, 500, 1}, 10, 100, 1},
		{[]int64{1, 1, 1}, 2, 100, 2},
	}
	for _, tt := range tests {
		if got := PageLength(tt.sizes, tt.pageSize, tt.maxBytes); got != tt.want {
			t.Errorf("PageLength(%v, %d, %d): got %d, want %d", tt.sizes, tt.pageSize, tt.maxBytes, got, tt.want)
		}
	}
}

func TestKeepMeasured(t *testing.T) {
	items := []string{"e9", "e8", "e7", "e5", "e4"}
	seqs := []int64{9, 8, 7, 5, 4}
	got := KeepMeasured(items, seqs, []int64{9, 7, 5, 4})
	if want := []string{"e9", "e7", "e5", "e4"}; !slices.Equal(got, want) {
		t.Errorf("KeepMeasured: got %v, want %v", got, want)
	}
}

// backfillBackend is a Store that runs backfills; wrapper wraps a Store as
// store/batch does.
type (
	backfillBackend struct {
		Store
		BackfillStore
	}
	wrapper struct{ Store }
)

func (w wrapper) Inner() Store { return w.Store }

func TestBackfills(t *testing.T) {
	t.Parallel()
	b := backfillBackend{}
	if got, ok := Backfills(b); !ok || got != BackfillStore(b) {
		t.Errorf("Backfills(backend) = %v, %v; want the backend", got, ok)
	}
	if got, ok := Backfills(wrapper{wrapper{b}}); !ok || got != BackfillStore(b) {
		t.Errorf("Backfills(wrapped twice) = %v, %v; want the backend", got, ok)
	}
	if got, ok := Backfills(wrapper{}); ok || got != nil {
		t.Errorf("Backfills(wrapper of nil) = %v, %v; want nil, false", got, ok)
	}
	if got, ok := Backfills(nil); ok || got != nil {
		t.Errorf("Backfills(nil) = %v, %v; want nil, false", got, ok)
	}
}
