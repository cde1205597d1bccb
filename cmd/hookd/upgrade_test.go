package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store/postgres/pgtest"
	"github.com/hookd/hookd/store/sqlite"
)

// previousRelease names the databases in store/*/testdata, written by
// hookd at that commit (stop 9): customer cus_prev1 with subscription
// sub_prev1, invoice in_prev1 and an email change (evt_prev_u1, delivered
// twice), customer cus_prev2 with invoice in_prev2 parked waiting for
// sub_prev2, and cus_example; five notifications.
const previousRelease = "ed4cdf9"

// startOnPreviousRelease starts hookd on a copy of the previous release's
// database for the given store kind.
func startOnPreviousRelease(t *testing.T, kind string) *hookd {
	t.Helper()
	switch kind {
	case storePostgres:
		url := pgtest.NewDatabase(t)
		dump, err := os.ReadFile(filepath.Join("..", "..", "store", "postgres", "testdata", "release-"+previousRelease+".sql"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, string(dump)); err != nil {
			t.Fatalf("load the previous release's dump: %v", err)
		}
		return startHookdOnStore(t, url, "")
	case storeEmbedded:
		db, err := os.ReadFile(filepath.Join("..", "..", "store", "sqlite", "testdata", "release-"+previousRelease+".db"))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, sqlite.FileName), db, 0o600); err != nil {
			t.Fatal(err)
		}
		return startHookdOnStore(t, "", dir)
	}
	t.Fatalf("unknown store kind %q", kind)
	return nil
}

// A database written by the previous release opens with this one, on both
// stores, and keeps working: its customers, events and notifications read
// as they were written; a subscriber resumes after a cursor of the old
// release; a redelivered old event is a duplicate; the invoice it had
// parked is released by its subscription; and distinct changes to an old
// customer in one second both take effect.
func TestDatabaseOfPreviousReleaseKeepsWorking(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{storePostgres, storeEmbedded} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			h := startOnPreviousRelease(t, kind)
			ctx := t.Context()

			c, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_prev1"})
			if err != nil {
				t.Fatal(err)
			}
			if c.GetEmail() != "two@example.com" || c.GetVersion() != 4 || len(c.GetSubscriptions()) != 1 ||
				c.GetSubscriptions()[0].GetSubscriptionId() != "sub_prev1" || len(c.GetInvoices()) != 1 ||
				c.GetInvoices()[0].GetSubscriptionId() != "sub_prev1" || c.GetSubscriptions()[0].GetCurrentPeriodEnd() == nil {
				t.Fatalf("cus_prev1 as the old release left it: got %v", c)
			}
			for id, want := range map[string]hookdv1.EventStatus{
				"evt_prev_u1": hookdv1.EventStatus_EVENT_STATUS_APPLIED,
				"evt_prev_i2": hookdv1.EventStatus_EVENT_STATUS_PARKED,
			} {
				e, err := h.events().GetEvent(ctx, &hookdv1.GetEventRequest{EventId: id})
				if err != nil || e.GetStatus() != want {
					t.Fatalf("GetEvent %s: %v, %v; want %v", id, e.GetStatus(), err, want)
				}
			}

			// The old release's notifications, and resuming after one of
			// its cursors.
			old := collect(t, h, "", "cus_prev1", 4)
			if got, want := kindsOf(old), []string{"customer.created@1", "subscription.created@2", "invoice.paid@3", "customer.updated@4"}; !slices.Equal(got, want) {
				t.Fatalf("old notifications %v, want %v", got, want)
			}
			resumed := collect(t, h, old[1].GetCursor(), "cus_prev1", 2)
			if resumed[0].GetVersion() != 3 || resumed[1].GetVersion() != 4 {
				t.Fatalf("resumed after the old cursor of v2: %v, want v3 and v4", kindsOf(resumed))
			}

			// A redelivery of an old event is answered with its stored status.
			e, err := h.events().GetEvent(ctx, &hookdv1.GetEventRequest{EventId: "evt_prev_u1"})
			if err != nil {
				t.Fatal(err)
			}
			if a := h.post(t, e.GetPayload()); a.Code != 200 || a.Status != "applied" || e.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_APPLIED {
				t.Errorf("old event delivered again: %d %s %s (stored %v), want 200 applied", a.Code, a.Status, a.Error, e.GetStatus())
			}

			// The parked invoice is released by its subscription.
			if a := h.post(t, subscriptionEvent("evt_new_s2", "customer.subscription.created", "cus_prev2", "sub_prev2", time.Now().Unix()-600, "active")); a.Status != "applied" {
				t.Fatalf("subscription for the parked invoice: %+v", a)
			}
			if e, err := h.events().GetEvent(ctx, &hookdv1.GetEventRequest{EventId: "evt_prev_i2"}); err != nil || e.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_APPLIED {
				t.Errorf("old parked invoice after its subscription: %v, %v; want applied", e.GetStatus(), err)
			}
			if kinds := kindsOf(collect(t, h, "", "cus_prev2", 3)); !slices.Equal(kinds, []string{"customer.created@1", "subscription.created@1", "invoice.paid@2"}) {
				t.Errorf("cus_prev2 notifications %v", kinds)
			}

			// Two different changes to an old customer within one second.
			now := time.Now().Unix()
			for _, email := range []string{"three@example.com", "four@example.com"} {
				if a := h.post(t, customerEvent("evt_new_"+email, "customer.updated", "cus_prev1", now, email)); a.Status != "applied" {
					t.Errorf("change to %s: %+v, want applied", email, a)
				}
			}
			c, err = h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_prev1"})
			if err != nil || c.GetVersion() != 6 || c.GetEmail() != "four@example.com" {
				t.Errorf("cus_prev1 after two changes in one second: version %d email %q (%v), want 6 four@example.com", c.GetVersion(), c.GetEmail(), err)
			}
		})
	}
}
