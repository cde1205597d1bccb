// Package gateway is hookd's HTTP front door: the first hop of every
// webhook.
//
// A provider (Stripe first) POSTs an event to /v1/webhooks/stripe. The
// gateway limits the body, checks the content type, has the provider's
// package (provider/stripe) verify the signature against every active
// secret within a timestamp tolerance (in both directions) and decode the
// envelope and its object (one JSON pass, stripe.Decode), and hands the
// envelope with the raw bytes to hookd.v1.IngestService/Ingest, over gRPC
// or in-process. In-process the decoded object goes along in the context
// (stripe.ContextWithObjects), so that the customer's actor need not
// decode the payload again; over gRPC it stays behind. It answers the
// sender from the outcome:
//
//   - 200 once Ingest reports the event durable (applied, duplicate, parked,
//     ignored or superseded);
//   - 4xx for requests that retrying cannot fix (bad signature or
//     timestamp, malformed body, too large, not JSON);
//   - 503 with Retry-After when the event could not be made durable, so
//     that the sender retries.
//
// The gateway is HTTP only: it holds no state of its own and knows nothing
// of a provider's wire format.
package gateway
