package store

import (
	"errors"
	"fmt"
)

// The rules in this file decide Commit results the same way in every
// backend; backends call them rather than keep copies.

// ValidateWrites returns the results writes have before a backend sends
// anything: an error wrapping ErrInvalidArgument for each write that
// cannot be stored, ErrSkipped for each valid one chained by
// AfterPrevious (transitively) to one of those, and nil for the others.
// The first write's AfterPrevious is ignored: it has no previous write.
func ValidateWrites(writes []Write) []error {
	errs := make([]error, len(writes))
	for i, w := range writes {
		if errs[i] = validateWrite(w); errs[i] == nil && ChainBroken(writes, errs, i) {
			errs[i] = ErrSkipped
		}
	}
	return errs
}

// validateWrite rejects a write that cannot be stored.
func validateWrite(w Write) error {
	switch {
	case w.Event.Source == "" || w.Event.EventID == "":
		return fmt.Errorf("commit event %q: %w: source and event ID are required", w.Event.EventID, ErrInvalidArgument)
	case w.State != nil && w.Event.CustomerID == "":
		return fmt.Errorf("commit event %s: %w: a state write needs a customer ID", w.Event.EventID, ErrInvalidArgument)
	case w.ReadVersion < 0:
		return fmt.Errorf("commit event %s: %w: negative read version", w.Event.EventID, ErrInvalidArgument)
	}
	return nil
}

// ChainBroken reports whether writes[i] has AfterPrevious and the write
// before it did not succeed (errs holds its result), so that writes[i]
// must be skipped.
func ChainBroken(writes []Write, errs []error, i int) bool {
	return i > 0 && writes[i].AfterPrevious && errs[i-1] != nil
}

// FailWrites sets the results of a call whose transaction failed as a
// whole: every write gets an error wrapping ErrUnavailable and cause,
// except that an invalid write stays invalid and a write skipped after
// one stays skipped, since no retry changes either. A write that met a
// duplicate or a fence inside the failed transaction, or was skipped after
// one, becomes unavailable too: its answer may have depended on a write
// that did not commit either, and retrying gives the true one.
func FailWrites(writes []Write, errs []error, cause error) {
	for i, w := range writes {
		// In order, so that errs[i-1] is final.
		keep := errors.Is(errs[i], ErrInvalidArgument) ||
			(i > 0 && errors.Is(errs[i], ErrSkipped) &&
				(errors.Is(errs[i-1], ErrInvalidArgument) || errors.Is(errs[i-1], ErrSkipped)))
		if !keep {
			errs[i] = fmt.Errorf("commit event %s: %w: %w", w.Event.EventID, ErrUnavailable, cause)
		}
	}
}
