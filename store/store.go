// Package store defines the storage that hookd's actors and services use:
// the inbox of events, each customer's projected state, and the outbox of
// notifications. Backends live in their own packages (store/postgres).
//
// The contract every backend keeps:
//   - Commit writes an event row, the customer's new state and its outbox
//     rows in one transaction, or nothing.
//   - (Source, EventID) is unique, and so is Event.DedupKey when set, so an
//     event takes effect at most once however it is delivered.
//   - A state write succeeds only if the stored version still equals the
//     version the writer read (fencing against a second activation).
//   - Notifications are read in an order that is final at commit, so a
//     reader resuming from a cursor misses nothing and repeats nothing.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned by the Get* methods when no such row exists.
var ErrNotFound = errors.New("not found")

// ErrDuplicate is returned in a Commit result when the event's (source, ID)
// or its DedupKey is already stored. Nothing of that write took effect,
// except that a DedupKey duplicate with a new event ID is recorded as an
// event with status duplicate.
var ErrDuplicate = errors.New("duplicate event")

// ErrFenced is returned in a Commit result when the customer's stored
// version is no longer the ReadVersion of the write: another activation
// committed first. Nothing of that write took effect; reload and retry.
var ErrFenced = errors.New("customer version changed since it was read")

// ErrSkipped is returned in a Commit result for a write with
// Write.AfterPrevious whose previous write in the same call did not
// succeed: it was not attempted, and nothing of it took effect. The
// previous write's result says why; the caller decides from it whether to
// send the write again.
var ErrSkipped = errors.New("skipped: the previous write of its chain did not succeed")

// ErrUnavailable wraps errors that mean the store could not be reached or
// the transaction could not commit; the caller may retry.
var ErrUnavailable = errors.New("store unavailable")

// ErrInvalidArgument is returned (wrapped) when the caller passes something
// no retry can fix: a malformed cursor or page token, a non-positive page
// size or limit, or a write the backend can never store (a Commit result).
var ErrInvalidArgument = errors.New("invalid argument")

// Status is what hookd did with an event. The strings are stored.
type Status string

// Event statuses.
const (
	StatusApplied    Status = "applied"
	StatusDuplicate  Status = "duplicate"
	StatusParked     Status = "parked"
	StatusIgnored    Status = "ignored"
	StatusSuperseded Status = "superseded"
)

// Event is one stored (inbox) event.
type Event struct {
	Source     string
	EventID    string
	Type       string
	CustomerID string // empty when the event could not be routed
	Status     Status
	Reason     string // why ignored, superseded or duplicate
	Routing    string // "object.customer", "object.id", "mapping:<id>", "none"
	Created    time.Time
	ReceivedAt time.Time // set by the store on insert
	APIVersion string
	ObjectID   string
	// Account is the Stripe Connect account (acct_...) the event came
	// from; empty for the platform's own events and for rows stored by
	// releases before migration 0002.
	Account string
	// DedupKey identifies the change the event describes (type, object ID,
	// created), so that two Event objects for one change take effect once.
	// Empty for events that have no effect (ignored, duplicate).
	DedupKey string
	Version  int64 // the customer version this event produced; 0 unless applied
	Payload  []byte
}

// Notification is one outbox row.
type Notification struct {
	// Cursor is set by the store when reading; opaque to callers.
	Cursor     string
	CustomerID string
	Version    int64
	Kind       string
	EventID    string
	OccurredAt time.Time
	// Customer is the customer's state at Version, serialized by the caller
	// (hookd.v1.Customer in protobuf wire format).
	Customer []byte
}

// Customer is a customer's stored state.
type Customer struct {
	CustomerID string
	// Version counts the customer's state writes; writers fence on it. (The
	// public, per-applied-event version lives in the state.)
	Version int64
	// State is the actor's serialized state, opaque to the store.
	State     []byte
	UpdatedAt time.Time
}

// Release settles a parked event: its row's status becomes applied, its
// version Version, and its reason Reason. Version 0 marks it superseded
// instead (a newer event for its object was applied while it waited).
type Release struct {
	Source  string
	EventID string
	Version int64
	Reason  string
}

// Write is everything one applied (or recorded) event changes, committed
// all together or not at all.
type Write struct {
	// Event is inserted as a new row; its Version is stored as given.
	Event Event
	// ReadVersion is the customer's store version the writer read (0: no
	// row yet).
	ReadVersion int64
	// State, when non-nil, replaces the customer's state and sets its
	// store version to ReadVersion+1 — only if it is still ReadVersion.
	// When nil only the event row (and any outbox rows) is written.
	State []byte
	// Notifications are appended to the outbox in order, each with the
	// Version it carries.
	Notifications []Notification
	// Released are parked events of the same customer that this write
	// applies; their rows are updated in the same transaction.
	Released []Release
	// Replace, for a replayed event, first removes the event's existing
	// row if its status is ignored, so that the replay can take effect.
	// A row with any other status stays, and the write is a duplicate.
	Replace bool
	// Routes maps object IDs named by the event (subscription, invoice,
	// charge, payment intent) to Event.CustomerID, so later events that
	// carry only such an ID can be routed.
	Routes []string
	// AfterPrevious makes the write conditional on the write before it in the
	// same Commit call: it is attempted only if that write succeeded (nil
	// result); otherwise it is not attempted and its result is ErrSkipped.
	// Chains are transitive. It lets one customer commit several of its
	// events, each fenced on the version the previous one produces, in one
	// call. Ignored on the first write of a call.
	AfterPrevious bool
}

// ListEventsFilter selects events for ListEvents.
type ListEventsFilter struct {
	CustomerID string // empty: all customers
	Status     Status // empty: all statuses
	Type       string // the event's type, exactly; empty: all types
	// ReceivedFrom and ReceivedBefore bound the time hookd received the
	// event (ReceivedFrom <= ReceivedAt < ReceivedBefore); zero: unbounded.
	// Neither has an index of its own: the listing walks the newest events
	// (of the customer or status, when those are set) and keeps those in
	// range, so a narrow window far in the past reads many rows.
	ReceivedFrom, ReceivedBefore time.Time
	PageSize                     int    // > 0
	PageToken                    string // from a previous page; empty for the first
	// MaxBytes, when positive, bounds a page by its events' payloads as
	// well: the page ends before the event that would take their total
	// past MaxBytes (see PageLength); a page holds at least one event
	// however large. 0: pages are bounded by PageSize alone.
	MaxBytes int64
}

// MaxFilterLen bounds ListEventsFilter's CustomerID and Type (Stripe's
// IDs and event types are far shorter): a longer one is refused rather
// than looked up.
const MaxFilterLen = 200

// Validate checks the parts of f every backend treats alike: an error
// wrapping ErrInvalidArgument names the first bad one. (The page token is
// the backend's own.)
func (f ListEventsFilter) Validate() error {
	switch {
	case f.PageSize <= 0:
		return fmt.Errorf("%w: page size %d, want > 0", ErrInvalidArgument, f.PageSize)
	case len(f.CustomerID) > MaxFilterLen:
		return fmt.Errorf("%w: customer ID of %d bytes, at most %d", ErrInvalidArgument, len(f.CustomerID), MaxFilterLen)
	case len(f.Type) > MaxFilterLen:
		return fmt.Errorf("%w: type of %d bytes, at most %d", ErrInvalidArgument, len(f.Type), MaxFilterLen)
	}
	return nil
}

// EventCounter is implemented by the backends that can count their events
// by status; both of hookd's do.
type EventCounter interface {
	// CountEvents returns how many events are stored with each status
	// (statuses without events are absent), counted over the whole table
	// in one snapshot.
	CountEvents(ctx context.Context) (map[Status]int64, error)
}

// Counter returns the EventCounter of s: s itself, or the store a wrapper
// (such as store/batch) wraps.
func Counter(s Store) (EventCounter, bool) {
	for s != nil {
		if c, ok := s.(EventCounter); ok {
			return c, true
		}
		w, ok := s.(interface{ Inner() Store })
		if !ok {
			break
		}
		s = w.Inner()
	}
	return nil, false
}

// Store is implemented by every backend. All methods are safe for
// concurrent use.
type Store interface {
	// Commit applies the writes, each independently unless chained by
	// Write.AfterPrevious: the result has one error per write, in order:
	//   - nil: the write took effect;
	//   - ErrDuplicate or ErrFenced;
	//   - an error wrapping ErrInvalidArgument: never retry;
	//   - ErrSkipped: the write has AfterPrevious and the write before it
	//     did not succeed (whatever its result), so it was not attempted
	//     (a write that is invalid itself gets ErrInvalidArgument still);
	//   - an error wrapping ErrUnavailable: the write could not be
	//     committed now; retry it. When the call as a whole failed (the
	//     database unreachable, a lock timeout) every write gets it
	//     except those with ErrInvalidArgument and the ErrSkipped
	//     followers of those; a single write may also get it alone, for
	//     an unexpected error of its own. Either way a chain whose head
	//     gets ErrUnavailable gets it all along, so that the caller
	//     retries the chain.
	// A batch may share one transaction, but whatever one write does —
	// a duplicate, a fence conflict, data the backend can never store,
	// an unexpected error — never fails the others, except its own
	// AfterPrevious followers. A backend that cannot tell which write
	// failed its transaction (the COMMIT itself refused, say) splits the
	// call into transactions of fewer writes and tries again, so that
	// the others commit; it never does so for a transient failure. A
	// chain is never split across transactions: it commits in one.
	Commit(ctx context.Context, writes []Write) []error

	// RecordEvent stores an event that goes through no actor (for
	// example, one with no customer). It returns ErrDuplicate if (source,
	// event ID) is already stored.
	RecordEvent(ctx context.Context, e Event) error

	// GetCustomer returns ErrNotFound for a customer never written.
	GetCustomer(ctx context.Context, customerID string) (Customer, error)

	// GetEvent returns ErrNotFound when no such event is stored.
	GetEvent(ctx context.Context, source, eventID string) (Event, error)

	// ListEvents lists events, newest first, and the token of the next page
	// ("" when there is none). A page holds at most PageSize events, and
	// with MaxBytes set it ends where PageLength says; paging through a
	// listing returns each of its events once.
	ListEvents(ctx context.Context, f ListEventsFilter) ([]Event, string, error)

	// LookupRoute returns the customer an object ID was routed to, or
	// ErrNotFound.
	LookupRoute(ctx context.Context, objectID string) (string, error)

	// ReadNotifications returns up to limit notifications after the cursor
	// ("" for the start), in commit order, optionally for one customer. It
	// returns only notifications whose position is final: none can later
	// appear before them.
	ReadNotifications(ctx context.Context, afterCursor, customerID string, limit int) ([]Notification, error)

	// LatestCursor returns the cursor of the newest notification whose
	// position is final ("" when there is none): reading after it gives
	// every notification committed later, and those committed earlier
	// whose position was not final yet (an older transaction was open).
	LatestCursor(ctx context.Context) (string, error)

	// ValidateCursor reports whether a cursor is well formed.
	ValidateCursor(cursor string) error

	// Close releases the store's resources.
	Close()
}

// Notifier is implemented by stores that other processes commit to (a
// PostgreSQL shared by several members): Listen calls wake after commits
// that wrote notifications, from any process, until ctx is done. Wake-ups
// may be lost or merged (readers also poll); Listen reconnects by itself.
type Notifier interface {
	Listen(ctx context.Context, wake func()) error
}

// CustomersGetter is implemented by a backend that can read many customers
// in one query. GetCustomers returns the stored ones by ID; an ID with no
// row is absent from the map (not an error). Its error wraps
// ErrInvalidArgument when some ID can never be read (the caller, who
// cannot tell which, reads them apart), ErrUnavailable when the query
// failed for a transient reason, and neither for any other failure.
type CustomersGetter interface {
	GetCustomers(ctx context.Context, customerIDs []string) (map[string]Customer, error)
}
