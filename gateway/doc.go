// Package gateway is hookd's HTTP front door: the first hop of every
// webhook.
//
// A provider (Stripe first) POSTs an event to /v1/webhooks/stripe. The
// gateway limits the body, checks the content type, verifies the
// Stripe-Signature header against every active secret within a timestamp
// tolerance (in both directions), decodes only the envelope fields hookd
// needs (event ID, type, object, and the routing key: the customer the
// event belongs to), and hands the envelope with the raw bytes to
// hookd.v1.IngestService/Ingest over gRPC. It answers the sender from the
// outcome:
//
//   - 200 once Ingest reports the event durable (applied, duplicate, parked,
//     ignored or superseded);
//   - 4xx for requests that retrying cannot fix (bad signature or
//     timestamp, malformed body, too large, not JSON);
//   - 503 with Retry-After when the event could not be made durable, so
//     that the sender retries.
//
// The gateway holds no state of its own. It never decodes the full Stripe
// object model and never rejects an event for its API version: versions
// and event types hookd does not project are stored as "ignored" further
// down the flow, not refused here.
//
// New builds the http.Handler; the signature scheme (ParseSignatureHeader,
// VerifyStripe, SignStripe) and envelope decoding (DecodeStripeEnvelope)
// are exported for `hookd send` and for tests.
package gateway
