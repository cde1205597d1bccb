package services

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// What the web console (internal/console) needs from the services: the
// admin-scope token check and ReplayEvent, called in-process.

// TokenHasScope says whether secret is a configured token (static or from
// the token file, as last loaded) holding the scope need. Unlike the gRPC
// check it never lets a caller through because no token is configured:
// with none, it is false. The comparison is constant-time over every
// token, as in the gRPC check.
func (a *Auth) TokenHasScope(secret string, need Scopes) bool {
	if a == nil || secret == "" || need == 0 {
		return false
	}
	sum := sha256.Sum256([]byte(secret))
	var scopes Scopes
	for _, t := range *a.tokens.Load() {
		eq := subtle.ConstantTimeCompare(sum[:], t.Hash[:])
		scopes |= t.Scopes & Scopes(-eq)
	}
	return scopes&need == need
}

// AnyTokenHasScope says whether some configured token holds the scope
// need (the console refuses every login when no admin token exists).
func (a *Auth) AnyTokenHasScope(need Scopes) bool {
	if a == nil {
		return false
	}
	for _, t := range *a.tokens.Load() {
		if t.Scopes&need == need {
			return true
		}
	}
	return false
}

// ReplayEvent calls EventService.ReplayEvent in-process, with the same
// code and answers as over gRPC (without the gRPC auth check: the caller
// authorizes), and returns the replay's resulting status name (applied,
// duplicate, ...).
func (r *Registered) ReplayEvent(ctx context.Context, eventID string) (*hookdv1.ReplayEventResponse, error) {
	s := &EventServer{store: r.deliverer.store, deliverer: r.deliverer}
	return s.ReplayEvent(ctx, &hookdv1.ReplayEventRequest{EventId: eventID})
}
