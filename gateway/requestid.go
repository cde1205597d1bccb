package gateway

import (
	"net/http"

	"github.com/hookd/hookd/internal/reqid"
)

// withRequestID gives every webhook a request ID: the sender's
// X-Request-Id when it is sane (reqid.Valid), else a new one. It is
// answered in the X-Request-Id header, carried by the request's context
// (so the gateway's log lines about the webhook name it as request_id),
// which an Ingest in this process reads, and which a gateway calling a
// member over gRPC sends as metadata x-request-id (the client interceptor
// services.RequestIDUnaryClient), so that the member's log lines about it
// name it too.
func withRequestID(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(reqid.Header)
		if !reqid.Valid(id) {
			id = reqid.New()
		}
		w.Header().Set(reqid.Header, id)
		next(w, r.WithContext(reqid.With(r.Context(), id)))
	}
}
