package eventstatus

import (
	"testing"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// Every enum value but UNSPECIFIED is a stored status and back, and the
// stored names are what HTTP answers have always said.
func TestEveryStatusRoundTrips(t *testing.T) {
	names := map[hookdv1.EventStatus]string{}
	for v := range hookdv1.EventStatus_name {
		p := hookdv1.EventStatus(v)
		s, ok := FromProto(p)
		if p == hookdv1.EventStatus_EVENT_STATUS_UNSPECIFIED {
			if ok {
				t.Errorf("UNSPECIFIED maps to %q", s)
			}
			continue
		}
		if !ok || Proto(s) != p {
			t.Errorf("%v → %q, %v → %v; want a round trip", p, s, ok, Proto(s))
		}
		names[p] = string(s)
	}
	want := map[hookdv1.EventStatus]string{
		hookdv1.EventStatus_EVENT_STATUS_APPLIED: "applied", hookdv1.EventStatus_EVENT_STATUS_DUPLICATE: "duplicate",
		hookdv1.EventStatus_EVENT_STATUS_PARKED: "parked", hookdv1.EventStatus_EVENT_STATUS_IGNORED: "ignored",
		hookdv1.EventStatus_EVENT_STATUS_SUPERSEDED: "superseded",
	}
	for p, n := range want {
		if names[p] != n {
			t.Errorf("%v is %q, want %q", p, names[p], n)
		}
	}
	if Proto(store.Status("nonsense")) != hookdv1.EventStatus_EVENT_STATUS_UNSPECIFIED {
		t.Error("an unknown stored status maps to a known enum value")
	}
}
