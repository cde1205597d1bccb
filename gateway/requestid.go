package gateway

import (
	"net/http"

	"google.golang.org/grpc/metadata"

	"github.com/hookd/hookd/internal/reqid"
)

// withRequestID gives every webhook a request ID: the sender's
// X-Request-Id when it is sane (reqid.Valid), else a new one. It is
// answered in the X-Request-Id header, carried by the request's context
// (so the gateway's log lines about the webhook name it as request_id),
// and sent with the Ingest call as gRPC metadata x-request-id, so that a
// member's log lines about it name it too.
func withRequestID(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(reqid.Header)
		if !reqid.Valid(id) {
			id = reqid.New()
		}
		w.Header().Set(reqid.Header, id)
		ctx := reqid.With(r.Context(), id)
		ctx = metadata.AppendToOutgoingContext(ctx, reqid.MetadataKey, id)
		next(w, r.WithContext(ctx))
	}
}
