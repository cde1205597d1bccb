package store

import (
	"context"
	"errors"
	"time"
)

// Outbound delivery: hookd POSTs notifications to HTTP endpoints that
// users register (EndpointService). Everything the delivery engine knows
// lives in the store, so that a notification that committed is delivered
// at least once across crashes, restarts and the loss of a member, and so
// that members share the work through the database alone.
//
// The model every backend keeps:
//   - An Endpoint has a place in the outbox (Endpoint.Cursor). Enqueue
//     turns the notifications after it that pass the endpoint's filter into
//     Delivery rows, in commit order, and moves the place past them, in one
//     transaction; a notification is enqueued for an endpoint once.
//   - For one (endpoint, customer) at most one delivery is
//     DeliveryPending at a time: the head of that customer's queue. The
//     others wait as DeliveryQueued, in commit order. When the head ends
//     (DeliveryDelivered or DeliveryFailed) the oldest queued one becomes
//     the head, in the same transaction. That is what keeps one customer's
//     deliveries to one endpoint in order while other customers' go on.
//   - A pending delivery is attempted by whoever claims it: Claim leases
//     it to one owner until the lease expires; a result is recorded only
//     by the owner of the lease it was claimed with (Lease), so that a
//     member that lost its lease (stalled, or killed and its lease expired)
//     cannot overwrite the outcome of the member that took over.

// DeliveryStatus is where a delivery stands. The strings are stored.
type DeliveryStatus string

// Delivery statuses.
const (
	// DeliveryQueued: waiting behind an earlier delivery of the same
	// customer to the same endpoint.
	DeliveryQueued DeliveryStatus = "queued"
	// DeliveryPending: the head of its (endpoint, customer) queue; attempted
	// at NextAttemptAt.
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryDelivered: an attempt was answered 2xx.
	DeliveryDelivered DeliveryStatus = "delivered"
	// DeliveryFailed: the retry schedule was exhausted (dead-lettered);
	// Redeliver sends it again.
	DeliveryFailed DeliveryStatus = "failed"
)

// Secret is one of an endpoint's signing secrets, in Standard Webhooks
// form ("whsec_" + base64 of the key).
type Secret struct {
	Value string
	// ExpiresAt is when a rotated-out secret stops signing; zero for the
	// current secret.
	ExpiresAt time.Time
}

// Endpoint is an HTTP endpoint that notifications are delivered to.
type Endpoint struct {
	ID          string // "ep_…", chosen by the caller of CreateEndpoint
	URL         string
	Description string
	// Kinds selects notifications by kind; empty: every kind.
	Kinds []string
	// CustomerIDs selects notifications by customer; empty: every customer.
	CustomerIDs []string
	// Secrets sign each delivery, current first. Every unexpired one signs
	// (Standard Webhooks allows several signatures), so that a receiver
	// keeps verifying while it moves to a rotated secret.
	Secrets []Secret
	// Paused: set by the user; nothing is enqueued or attempted until
	// Resume, and nothing is lost (the endpoint keeps its Cursor).
	Paused bool
	// DisabledReason is set when hookd disabled the endpoint (its receiver
	// answered 410 Gone, or it failed every attempt for the configured
	// period); it then behaves as paused until Resume clears it.
	DisabledReason string
	DisabledAt     time.Time
	// FailingSince is the first failed attempt since the last success;
	// zero while the endpoint is healthy.
	FailingSince time.Time
	// Cursor is the outbox position up to which notifications were
	// enqueued; set at create (the newest final notification when "").
	Cursor string
	// Origin is "api" for endpoints made through EndpointService and
	// "config" for those from a configuration file.
	Origin    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Active reports whether deliveries to e are enqueued and attempted.
func (e Endpoint) Active() bool { return !e.Paused && e.DisabledReason == "" }

// Delivery is one notification to one endpoint.
type Delivery struct {
	// ID is the Standard Webhooks message ID (webhook-id): unique across
	// every delivery of every store, and the same on every attempt and
	// redelivery, so that receivers can deduplicate.
	ID         string
	EndpointID string
	CustomerID string
	// Notification is the notification delivered, as ReadNotifications
	// returns it (Cursor set).
	Notification Notification
	Status       DeliveryStatus
	// Attempts counts every attempt ever made; Step counts those since the
	// delivery was enqueued or last redelivered (the place in the retry
	// schedule).
	Attempts int
	Step     int
	// NextAttemptAt is when a pending delivery is due.
	NextAttemptAt time.Time
	// LastStatus and LastError describe the last attempt (0 and "" before
	// the first).
	LastStatus int
	LastError  string
	CreatedAt  time.Time
	// EndedAt is when the delivery was delivered or failed.
	EndedAt time.Time
}

// Lease identifies one claim of a delivery: results are recorded only with
// the lease they were claimed under.
type Lease struct {
	DeliveryID string
	Owner      string
	// Attempt is the delivery's Attempts after the claim.
	Attempt int
}

// Claimed is a delivery leased to its caller.
type Claimed struct {
	Delivery
	Lease Lease
}

// Outcome says what an attempt's result does to its delivery.
type Outcome int

// Outcomes.
const (
	// OutcomeDelivered: answered 2xx; the delivery ends, the next queued
	// one of its customer becomes pending.
	OutcomeDelivered Outcome = iota + 1
	// OutcomeRetry: stays pending, due at Result.NextAttemptAt.
	OutcomeRetry
	// OutcomeFailed: dead-lettered; the delivery ends as DeliveryFailed
	// and the next queued one becomes pending.
	OutcomeFailed
	// OutcomeReleased: the attempt did not happen (the endpoint was paused
	// or disabled meanwhile, or the member is stopping): the lease is
	// given back, the delivery stays pending at its place in the schedule,
	// due at NextAttemptAt, and no attempt is recorded.
	OutcomeReleased
)

// Attempt is one HTTP attempt, as recorded.
type Attempt struct {
	DeliveryID string
	Attempt    int // the delivery's attempt number, from 1
	StartedAt  time.Time
	Latency    time.Duration
	StatusCode int    // 0 when no response came
	Error      string // "" for a 2xx; the transport error or "HTTP 503" otherwise
	// Body is the start of the response body (at most 1 KiB; the caller
	// truncates).
	Body []byte
}

// Result is the outcome of one claimed attempt.
type Result struct {
	Lease   Lease
	Outcome Outcome
	// Attempt is recorded (except for OutcomeReleased) even when the lease
	// was lost, since the request was sent.
	Attempt Attempt
	// NextAttemptAt, for OutcomeRetry and OutcomeReleased.
	NextAttemptAt time.Time
}

// DeliveryFilter selects deliveries for ListDeliveries; empty fields select
// all.
type DeliveryFilter struct {
	EndpointID string
	CustomerID string
	Status     DeliveryStatus
	PageSize   int    // > 0 (at most 1000 is honoured)
	PageToken  string // from a previous page
}

// EndpointBacklog is one endpoint's undelivered work, for metrics.
type EndpointBacklog struct {
	EndpointID string
	// Undelivered counts its queued and pending deliveries.
	Undelivered int64
	// OldestCreatedAt is when its oldest undelivered delivery was
	// enqueued; zero when there is none.
	OldestCreatedAt time.Time
}

// EndpointUpdate lists the fields UpdateEndpoint changes; nil fields stay.
type EndpointUpdate struct {
	URL         *string
	Description *string
	Kinds       *[]string
	CustomerIDs *[]string
	// Secrets replaces the whole list (RotateSecret builds it).
	Secrets *[]Secret
	Paused  *bool
	// ClearDisabled clears DisabledReason and FailingSince (Resume).
	ClearDisabled bool
}

// DeliveryStore is implemented by every backend that stores outbound
// delivery. All methods are safe for concurrent use, from one process or
// several sharing the database.
type DeliveryStore interface {
	// CreateEndpoint stores a new endpoint. e.ID must be new (else
	// ErrDuplicate). An empty e.Cursor means the newest final notification
	// (LatestCursor), so that only later notifications are delivered.
	// CreatedAt, UpdatedAt and an empty Origin ("api") are set by the
	// store. It returns the endpoint as stored.
	CreateEndpoint(ctx context.Context, e Endpoint) (Endpoint, error)
	// UpsertEndpoint creates e or, when its ID exists, updates its URL,
	// description, filter, secrets and origin, keeping its cursor, pause and
	// disabled state and health (for endpoints from a configuration file,
	// applied at every start).
	UpsertEndpoint(ctx context.Context, e Endpoint) (Endpoint, error)
	GetEndpoint(ctx context.Context, id string) (Endpoint, error) // ErrNotFound
	// ListEndpoints returns every endpoint, ordered by ID.
	ListEndpoints(ctx context.Context) ([]Endpoint, error)
	// UpdateEndpoint changes the fields u sets and returns the endpoint as
	// stored, or ErrNotFound.
	UpdateEndpoint(ctx context.Context, id string, u EndpointUpdate) (Endpoint, error)
	// DeleteEndpoint removes the endpoint with its deliveries and
	// attempts, or returns ErrNotFound.
	DeleteEndpoint(ctx context.Context, id string) error
	// DisableEndpoint sets DisabledReason (and DisabledAt) unless already
	// disabled; ErrNotFound.
	DisableEndpoint(ctx context.Context, id, reason string) error

	// Enqueue turns up to limit notifications after the endpoint's cursor
	// into deliveries (those its filter selects; the others are passed
	// over), in commit order, and moves the cursor past every notification
	// it read, in one transaction. Only final positions are read (as
	// ReadNotifications). It returns how many notifications it read and
	// how many deliveries it created; read < limit means it caught up.
	// Concurrent calls for one endpoint, from any process, never enqueue a
	// notification twice. It does nothing for an endpoint that is not
	// Active.
	Enqueue(ctx context.Context, endpointID string, limit int) (read, created int, err error)

	// Claim leases up to limit pending deliveries of the endpoint that are
	// due (NextAttemptAt <= now) and not leased (or whose lease expired),
	// oldest due first, to owner until now+lease, incrementing their
	// Attempts. Two claims, from any processes, never hold one delivery at
	// once. It claims nothing for an endpoint that is not Active.
	Claim(ctx context.Context, endpointID, owner string, limit int, lease time.Duration) ([]Claimed, error)

	// Complete records results in one transaction: each attempt row, then
	// (if the lease is still held) the delivery's new status, the promotion
	// of the next queued delivery of the same (endpoint, customer) when one
	// ended, and the endpoint's health (FailingSince cleared by a
	// delivered attempt and set, when empty, by another recorded attempt).
	// A result whose lease was lost, or whose delivery or endpoint was
	// deleted, changes no delivery; it is not an error.
	Complete(ctx context.Context, results []Result) error

	// GetDelivery returns a delivery or ErrNotFound.
	GetDelivery(ctx context.Context, id string) (Delivery, error)
	// ListDeliveries lists deliveries newest first, with the next page's
	// token ("" after the last).
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, string, error)
	// ListAttempts lists a delivery's attempts, newest first, paged as
	// ListDeliveries; ErrNotFound when the delivery does not exist.
	ListAttempts(ctx context.Context, deliveryID string, pageSize int, pageToken string) ([]Attempt, string, error)

	// Redeliver puts a failed delivery back in its customer's queue at its
	// place in commit order, with Step 0, due now: pending if nothing else
	// of its (endpoint, customer) is pending, else queued. A delivery that
	// is not failed is left as it is and reported (false, nil); ErrNotFound.
	Redeliver(ctx context.Context, id string) (bool, error)
	// RedeliverFailed does Redeliver for every failed delivery of the
	// endpoint that ended at or after since, and returns how many.
	RedeliverFailed(ctx context.Context, endpointID string, since time.Time) (int64, error)

	// Backlog returns every endpoint's undelivered work, ordered by
	// endpoint ID; an endpoint with none has Undelivered 0.
	Backlog(ctx context.Context) ([]EndpointBacklog, error)
}

// Deliveries returns the DeliveryStore of s: s itself, or the store a
// wrapper (such as store/batch, which has an Inner method) wraps.
func Deliveries(s Store) (DeliveryStore, bool) {
	for s != nil {
		if ds, ok := s.(DeliveryStore); ok {
			return ds, true
		}
		w, ok := s.(interface{ Inner() Store })
		if !ok {
			break
		}
		s = w.Inner()
	}
	return nil, false
}

// DirectStore is a DeliveryStore that also delivers straight from the
// outbox: a notification whose (endpoint, customer) has nothing queued or
// pending is attempted before it has a delivery row, and stored once,
// with its outcome, instead of being inserted, claimed and completed.
// The model above still holds for everything it stores: a delivery
// delivered at its first attempt is stored delivered; one that failed is
// stored pending (the head of its customer's queue, due at its retry)
// with its attempt, and the notifications behind it queued.
//
// One owner at a time delivers an endpoint directly (a lease on the
// endpoint, renewed by each TakeDirect), so that members do not send the
// same notifications; while another owner holds it, the endpoint's
// deliveries are only claimed. A batch is sent at least once: when its
// owner dies before CommitDirect, the next owner takes it again from the
// same cursor and sends it with the same delivery IDs.
type DirectStore interface {
	DeliveryStore
	// TakeDirect leases the endpoint's direct delivery to owner until
	// now+lease (unless another owner's lease holds) and returns up to
	// limit notifications after the endpoint's cursor, in commit order,
	// those its filter selects, each marked Busy when its (endpoint,
	// customer) has a queued or pending delivery. A batch that is not
	// Taken (another owner's lease, or the endpoint is not Active) has no
	// items. Batch.Read < limit means it caught up.
	TakeDirect(ctx context.Context, endpointID, owner string, limit int, lease time.Duration) (DirectBatch, error)
	// CommitDirect stores a taken batch's deliveries, in commit order, with
	// results[i] the outcome of b.Items[i], moves the endpoint's cursor
	// past the batch and records the endpoint's health, in one
	// transaction. It returns ErrLeaseLost, storing nothing, when the
	// endpoint's cursor moved since the batch was taken or b.Owner no
	// longer holds the lease (released, or taken by another owner once it
	// expired; an expired lease nobody took still commits). The caller
	// keeps the order: no Busy item attempted, and no item attempted after
	// one of its customer that did not end delivered.
	CommitDirect(ctx context.Context, b DirectBatch, results []DirectResult) error
	// ReleaseDirect gives up owner's lease of the endpoint's direct
	// delivery (at stop), so that another owner need not wait for it to
	// expire.
	ReleaseDirect(ctx context.Context, endpointID, owner string) error
}

// ErrLeaseLost is returned by CommitDirect for a batch whose lease was
// lost: another owner takes (or took) the batch again.
var ErrLeaseLost = errors.New("direct delivery lease lost")

// DirectBatch is what TakeDirect read, for CommitDirect.
type DirectBatch struct {
	EndpointID, Owner string
	// Taken reports whether owner holds the lease.
	Taken bool
	// From is the endpoint's cursor when taken, To the cursor after the
	// last notification read (From when none was).
	From, To string
	// Read counts the notifications read, those the filter passed over
	// included.
	Read  int
	Items []DirectItem
}

// DirectItem is one notification of a batch.
type DirectItem struct {
	// ID is the delivery ID (webhook-id) the notification has when
	// stored: derived from the endpoint (its ID and creation) and the
	// notification, so that a batch taken again is sent with the same IDs.
	ID           string
	Notification Notification
	// Busy: its (endpoint, customer) had a queued or pending delivery;
	// it is stored behind it, unattempted.
	Busy bool
}

// DirectResult is what became of one DirectItem.
type DirectResult struct {
	// Attempted reports whether an attempt was made; an item that was not
	// (Busy, behind a failed attempt of its customer, or left over when
	// the batch ran out of time) is stored queued, or pending when it is
	// its customer's head.
	Attempted bool
	// Outcome is OutcomeDelivered, OutcomeRetry (stored pending, due at
	// NextAttemptAt) or OutcomeFailed, for an attempted item.
	Outcome       Outcome
	Attempt       Attempt
	NextAttemptAt time.Time
}
