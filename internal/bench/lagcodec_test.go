package bench

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

func TestNotificationEventID(t *testing.T) {
	full := &hookdv1.Notification{
		Cursor: "c1", CustomerId: "cus_1", Version: 3, Kind: "invoice.paid", EventId: "evt_bench_r_1_9",
		OccurredAt: timestamppb.Now(), Account: "acct_1",
		Customer: &hookdv1.Customer{CustomerId: "cus_1", Email: "a@example.com", Metadata: map[string]string{"eventId": "evt_wrong"}},
	}
	b, err := proto.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := notificationEventID(b); err != nil || id != "evt_bench_r_1_9" {
		t.Fatalf("notificationEventID = %q, %v; want evt_bench_r_1_9", id, err)
	}
	if id, err := notificationEventID(nil); err != nil || id != "" {
		t.Fatalf("empty notification: %q, %v", id, err)
	}
	for cut := 1; cut < len(b); cut++ {
		// A truncated message is an error, never a wrong ID.
		if id, err := notificationEventID(b[:cut]); err == nil && id != "" && id != full.EventId {
			t.Fatalf("cut at %d: id %q", cut, id)
		}
	}
	if _, err := notificationEventID([]byte{0x2a, 0x05, 'e'}); err == nil {
		t.Fatal("a short event_id decoded")
	}
}

// FuzzNotificationEventID: whatever proto.Unmarshal reads as a
// Notification, notificationEventID reads the same event ID from.
func FuzzNotificationEventID(f *testing.F) {
	for _, n := range []*hookdv1.Notification{
		{EventId: "evt_1"},
		{Cursor: "c", CustomerId: "cus_1", Version: 9, Kind: "invoice.paid", EventId: "evt_2", Account: "acct_1",
			OccurredAt: timestamppb.Now(), Customer: &hookdv1.Customer{CustomerId: "cus_1", Metadata: map[string]string{"k": "v"}}},
	} {
		b, _ := proto.Marshal(n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := notificationEventID(b)
		var want hookdv1.Notification
		if proto.Unmarshal(b, &want) != nil {
			return
		}
		if err != nil || id != want.GetEventId() {
			t.Fatalf("notificationEventID = %q, %v; proto.Unmarshal read %q", id, err, want.GetEventId())
		}
	})
}
