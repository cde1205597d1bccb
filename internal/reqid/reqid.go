// Package reqid carries a webhook's request ID through a context and onto
// every log line written with that context.
//
// The gateway takes the sender's X-Request-Id when it is sane (Valid) or
// makes one (New), answers it in the X-Request-Id header, and puts it in
// the request's context (With); a gateway-only process passes it to the
// member as gRPC metadata (MetadataKey), whose server interceptor puts it
// back in the context. Handler wraps a slog.Handler so that every record
// logged with such a context carries request_id.
package reqid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
)

// Header is the HTTP header a request ID travels in, both ways.
const Header = "X-Request-Id"

// MetadataKey is the gRPC metadata key a request ID travels in.
const MetadataKey = "x-request-id"

// Attr is the log attribute's key.
const Attr = "request_id"

// MaxLen is the longest request ID accepted from a sender.
const MaxLen = 128

type ctxKey struct{}

// With returns a context carrying id. An empty id returns ctx unchanged.
func With(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the request ID ctx carries, or "".
func From(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Valid says whether id, from a sender, may be used as a request ID: 1 to
// MaxLen printable ASCII characters (space through tilde).
func Valid(id string) bool {
	if len(id) == 0 || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// New returns a fresh request ID: 16 random hex digits.
func New() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Handler wraps next so that a record logged with a context carrying a
// request ID gets a request_id attribute.
func Handler(next slog.Handler) slog.Handler {
	if h, ok := next.(*handler); ok {
		return h
	}
	return &handler{next: next}
}

type handler struct{ next slog.Handler }

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String(Attr, id))
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(as)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name)}
}
