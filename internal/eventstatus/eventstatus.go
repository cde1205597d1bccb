// Package eventstatus is the one table between the forms an event's status
// takes on its way out: store.Status (stored, carried by the grain's
// answer, and written in HTTP answers as it is: "applied", "duplicate", …)
// and the public enum hookdv1.EventStatus. The ingest service, the event
// service and the gateway all convert through it.
package eventstatus

import (
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

// table pairs every stored status with its enum value.
var table = [...]struct {
	status store.Status
	proto  hookdv1.EventStatus
}{
	{store.StatusApplied, hookdv1.EventStatus_EVENT_STATUS_APPLIED},
	{store.StatusDuplicate, hookdv1.EventStatus_EVENT_STATUS_DUPLICATE},
	{store.StatusParked, hookdv1.EventStatus_EVENT_STATUS_PARKED},
	{store.StatusIgnored, hookdv1.EventStatus_EVENT_STATUS_IGNORED},
	{store.StatusSuperseded, hookdv1.EventStatus_EVENT_STATUS_SUPERSEDED},
}

// Proto maps a stored status to the API enum (UNSPECIFIED for an unknown
// one).
func Proto(s store.Status) hookdv1.EventStatus {
	for _, e := range table {
		if e.status == s {
			return e.proto
		}
	}
	return hookdv1.EventStatus_EVENT_STATUS_UNSPECIFIED
}

// FromProto maps the API enum to a stored status, and reports whether it
// is one (false for UNSPECIFIED and unknown values).
func FromProto(p hookdv1.EventStatus) (store.Status, bool) {
	for _, e := range table {
		if e.proto == p {
			return e.status, true
		}
	}
	return "", false
}
