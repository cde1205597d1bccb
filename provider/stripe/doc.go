// Package stripe owns Stripe's wire format, and nothing else in hookd reads
// Stripe's bytes: the Stripe-Signature scheme (Verify, Sign), the event
// envelope of every kind Stripe sends (snapshot events of every API
// version, thin v2.core.event notifications, Connect events) with the
// routing key it yields (DecodeEnvelope), the shapes of the objects hookd
// projects, normalized across API versions (DecodeObject), and the API
// client that fetches objects (Client).
//
// The gateway calls Verify and Decode on each webhook: Decode returns, in
// one JSON pass, what DecodeEnvelope and DecodeObject would return, and
// ContextWithObjects carries the objects to the customer actor when it
// runs in the gateway's process. The actor calls DecodeObject on each
// other event it applies, and the Client to resolve what an event waits
// for. A second provider would be a sibling package with the same parts,
// and a route in the gateway.
package stripe
