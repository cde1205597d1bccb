package store

import (
	"context"
	"time"
)

// Backfill: hookd lists what it may have missed from the provider's API
// (Stripe's Events API, or its current objects for an import) and feeds
// each event through the same path as a webhook, so deduplication makes
// any overlap harmless. A run is resumable: it first stages what it lists,
// page by page, with the cursor of the next page in the same transaction
// (an interrupted listing continues from that page, never refetching one
// it finished); then it applies the staged events oldest first, recording
// how far it got with the counts of what each did (an interrupted apply
// continues after the last event it recorded).

// Backfill phases.
const (
	BackfillListing  = "listing"
	BackfillApplying = "applying"
	BackfillDone     = "done"
)

// BackfillRun is one backfill or import.
type BackfillRun struct {
	ID int64
	// Kind is "events" (the Events API) or "objects:<types>" (an import of
	// current objects, e.g. "objects:customers,subscriptions").
	Kind string
	// Origin is "manual" (AdminService.Backfill) or "reconcile".
	Origin string
	// Since and Until bound the events listed by their created time.
	Since, Until time.Time
	Phase        string
	// Cursor is where listing continues: the provider's cursor of the next
	// page ("" before the first), and for an import also which object type
	// (the caller's encoding).
	Cursor string
	// Listed counts staged events; Applied counts those applied so far
	// (their place in the apply order).
	Listed  int64
	Applied int64
	// Counts holds how many applied events took each outcome ("applied",
	// "duplicate", "parked", "superseded", "ignored", "failed").
	Counts     map[string]int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time // zero until done
}

// StagedEvent is one listed event waiting to be applied.
type StagedEvent struct {
	// Ord is its place in the apply order (from 1), set when listing ends:
	// oldest created first, and within one second the reverse of listing
	// order (the Events API lists newest first).
	Ord     int64
	EventID string
	Created time.Time
	Payload []byte // the event as the API returned it
}

// BackfillStore is implemented by every backend that can run backfills.
// All methods are safe for concurrent use.
type BackfillStore interface {
	// CreateBackfillRun stores a new run in the listing phase and returns
	// it with ID, times and an empty Counts map set.
	CreateBackfillRun(ctx context.Context, r BackfillRun) (BackfillRun, error)
	// GetBackfillRun returns a run, or ErrNotFound.
	GetBackfillRun(ctx context.Context, id int64) (BackfillRun, error)
	// UnfinishedBackfillRun returns the newest run of the kind that is not
	// done, or ErrNotFound.
	UnfinishedBackfillRun(ctx context.Context, kind string) (BackfillRun, error)
	// StageBackfillPage adds one listed page to a run in the listing phase
	// and sets its Cursor to next, in one transaction. An event already
	// staged in the run (same EventID) is not staged twice. With last set,
	// it also fixes the apply order of every staged event (StagedEvent.Ord)
	// and moves the run to the applying phase.
	StageBackfillPage(ctx context.Context, runID int64, events []StagedEvent, next string, last bool) error
	// StagedEvents returns up to limit staged events of a run in the
	// applying phase whose Ord is above afterOrd, in Ord order.
	StagedEvents(ctx context.Context, runID, afterOrd int64, limit int) ([]StagedEvent, error)
	// AdvanceBackfillRun records that the run applied every staged event up
	// to Ord applied, adding counts to its Counts; with done it also ends
	// the run (phase done, FinishedAt set) and drops its staged events.
	AdvanceBackfillRun(ctx context.Context, runID, applied int64, counts map[string]int64, done bool) error

	// GetCheckpoint returns the time stored under name, or ErrNotFound.
	GetCheckpoint(ctx context.Context, name string) (time.Time, error)
	// SetCheckpoint stores t under name.
	SetCheckpoint(ctx context.Context, name string, t time.Time) error
	// TryLease takes (or renews) the lease called name for owner until
	// now+ttl, if nobody else holds it unexpired; it reports whether owner
	// holds it. Members use it to run a job one at a time.
	TryLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if owner holds it.
	ReleaseLease(ctx context.Context, name, owner string) error
}

// Backfills returns the BackfillStore of s: s itself, or the store a
// wrapper (such as store/batch, which has an Inner method) wraps.
func Backfills(s Store) (BackfillStore, bool) {
	for s != nil {
		if bs, ok := s.(BackfillStore); ok {
			return bs, true
		}
		w, ok := s.(interface{ Inner() Store })
		if !ok {
			break
		}
		s = w.Inner()
	}
	return nil, false
}
