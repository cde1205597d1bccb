package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hookd/hookd/store"
)

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
