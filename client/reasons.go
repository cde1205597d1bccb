package client

// ErrorDomain is the domain of the google.rpc.ErrorInfo that every gRPC
// error hookd answers carries.
const ErrorDomain = "hookd"

// Reasons hookd puts in the google.rpc.ErrorInfo of its gRPC errors (read
// one with ReasonOf, or errors.As an *Error). The code says what kind of
// failure it is; the reason says which, stably, for a program to branch
// on. The server uses these same constants: this is their one definition.
const (
	// ReasonNotFound: the customer or event asked for is not stored
	// (NOT_FOUND).
	ReasonNotFound = "NOT_FOUND"
	// ReasonInvalidArgument: the request is wrong in a way no more
	// specific reason names (INVALID_ARGUMENT).
	ReasonInvalidArgument = "INVALID_ARGUMENT"
	// ReasonInvalidField: one field of an ingested envelope breaks an
	// input limit; the metadata key "field" names it, e.g. "event_id"
	// (INVALID_ARGUMENT).
	ReasonInvalidField = "INVALID_FIELD"
	// ReasonInvalidCursor: a Subscribe after_cursor (or a page token)
	// hookd cannot read (INVALID_ARGUMENT).
	ReasonInvalidCursor = "INVALID_CURSOR"
	// ReasonEventRejected: the customer's actor refused the event for
	// good; sending it again fails the same way (INVALID_ARGUMENT).
	ReasonEventRejected = "EVENT_REJECTED"
	// ReasonNotReplayable: the stored event cannot be replayed, e.g. it
	// is from a source hookd cannot decode again (FAILED_PRECONDITION).
	ReasonNotReplayable = "NOT_REPLAYABLE"
	// ReasonStoreUnavailable: the store or a customer's actor could not
	// serve the call for now; retry after the RetryInfo delay
	// (UNAVAILABLE).
	ReasonStoreUnavailable = "STORE_UNAVAILABLE"
	// ReasonUnavailable: hookd could not serve the call for now, for a
	// reason no more specific one names; retry later (UNAVAILABLE).
	ReasonUnavailable = "UNAVAILABLE"
	// ReasonDeadlineExceeded: the call ran out of time inside hookd;
	// retrying may succeed (UNAVAILABLE).
	ReasonDeadlineExceeded = "DEADLINE_EXCEEDED"
	// ReasonShuttingDown: the process is stopping; resume from the last
	// cursor, here or at another member (UNAVAILABLE).
	ReasonShuttingDown = "SHUTTING_DOWN"
	// ReasonStreamLimit: the process serves its limit of Subscribe
	// streams (--max-streams); retry later or elsewhere
	// (RESOURCE_EXHAUSTED).
	ReasonStreamLimit = "STREAM_LIMIT"
	// ReasonUnauthenticated: no bearer token, a malformed one, or one
	// hookd does not know (UNAUTHENTICATED).
	ReasonUnauthenticated = "UNAUTHENTICATED"
	// ReasonPermissionDenied: the token lacks the scope the method needs
	// (PERMISSION_DENIED).
	ReasonPermissionDenied = "PERMISSION_DENIED"
	// ReasonCanceled: the call was cancelled before hookd answered
	// (CANCELLED).
	ReasonCanceled = "CANCELED"
	// ReasonUnimplemented: no such method on this server (UNIMPLEMENTED).
	ReasonUnimplemented = "UNIMPLEMENTED"
	// ReasonEndpointRefused: an endpoint URL hookd will not deliver to: not
	// http or https, or an address in a loopback, private, link-local or
	// other non-public range without --allow-private-endpoints
	// (INVALID_ARGUMENT).
	ReasonEndpointRefused = "ENDPOINT_REFUSED"
	// ReasonNotRedeliverable: Redeliver of a delivery that has not failed
	// (FAILED_PRECONDITION).
	ReasonNotRedeliverable = "NOT_REDELIVERABLE"
	// ReasonNotConfigured: the member lacks what the call needs, e.g.
	// Backfill without --stripe-api-key (FAILED_PRECONDITION).
	ReasonNotConfigured = "NOT_CONFIGURED"
	// ReasonAlreadyExists: the ID asked for is taken (ALREADY_EXISTS).
	ReasonAlreadyExists = "ALREADY_EXISTS"
	// ReasonMessageTooLarge: a request (or answer) over gRPC's message
	// size limit: hookd accepts requests up to --max-body-bytes plus 64
	// KiB (RESOURCE_EXHAUSTED). gRPC's transport refuses such a message
	// before hookd sees it, so the status carries no ErrorInfo: this
	// package derives the reason from the code and gRPC's message.
	ReasonMessageTooLarge = "MESSAGE_TOO_LARGE"
	// ReasonInternal: hookd failed in a way the caller cannot fix; the
	// message says only "internal error", the server logs the cause
	// (INTERNAL).
	ReasonInternal = "INTERNAL"
)

// MetadataField is the ErrorInfo metadata key that names the invalid
// field of a ReasonInvalidField error.
const MetadataField = "field"

// StartCursorHeader is the response header of NotificationService.Subscribe
// that holds the cursor the stream starts after ("" for the beginning).
const StartCursorHeader = "hookd-start-cursor"
