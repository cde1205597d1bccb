package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd/hookd/actors"
	"github.com/hookd/hookd/internal/console"
	"github.com/hookd/hookd/internal/eventstatus"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/services"
	"github.com/hookd/hookd/store"
)

// adminRoute is one more handler the admin listener serves (the console).
type adminRoute struct {
	pattern string
	handler http.Handler
}

// rejectedWebhooks is how many of the latest rejected webhooks the console
// shows.
const rejectedWebhooks = 200

// consoleRoutes is the web console on the admin listener, for a member: it
// logs in with an admin-scope token from auth, replays through the
// registered EventService and resolves parked events now through sys.
func consoleRoutes(st store.Store, sys *actors.System, reg *services.Registered, auth *services.Auth, rejects *console.Rejections, log *slog.Logger, metrics prometheus.Gatherer) []adminRoute {
	c := console.New(console.Config{
		Store: st,
		Replay: func(ctx context.Context, eventID string) (string, error) {
			resp, err := reg.ReplayEvent(ctx, eventID)
			if err != nil {
				return "", err
			}
			return eventStatusName(resp), nil
		},
		ResolveNow:      sys.ResolveNow,
		Subscribers:     reg.Subscribers,
		Metrics:         metrics,
		CheckAdminToken: func(token string) bool { return auth.TokenHasScope(token, services.ScopeAdmin) },
		HasAdminToken:   func() bool { return auth.AnyTokenHasScope(services.ScopeAdmin) },
		Rejections:      rejects,
		Logger:          log,
	})
	return []adminRoute{{console.Prefix, c}}
}

// eventStatusName is the stored status name of a replay's outcome
// ("applied", "duplicate", ...).
func eventStatusName(resp *hookdv1.ReplayEventResponse) string {
	if s, ok := eventstatus.FromProto(resp.GetStatus()); ok {
		return string(s)
	}
	return strings.ToLower(resp.GetStatus().String())
}
