// Package delivery is hookd's push delivery engine: it POSTs every
// notification of the outbox to the HTTP endpoints users registered, signed
// the Standard Webhooks way, retried on a schedule, at least once across
// crashes and the loss of a member.
//
// Everything the engine knows lives in a [store.DeliveryStore]: the engine
// moves each active endpoint's place in the outbox forward (Enqueue),
// leases the deliveries that are due (Claim), makes one HTTP attempt per
// leased delivery, and records the results in batches (Complete). Members
// share the work through the store alone; a result is recorded only under
// the lease it was claimed with, so a member that stalled cannot overwrite
// the member that took over.
//
// The pieces stand alone too: [Sign] and [NewSecret] for the signature,
// [CheckURL] and [NewDialer] for the guard that keeps deliveries away from
// loopback, private, link-local and metadata addresses.
package delivery
