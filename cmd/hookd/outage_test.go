package main

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store/postgres/pgtest"
)

// When the database goes away, a webhook is answered 503 (retry) and
// leaves nothing behind; once it is back, the retried delivery applies once.
func TestDatabaseOutageAnswers503AndRetryAppliesOnce(t *testing.T) {
	h := startHookd(t)
	ctx := context.Background()
	u, err := url.Parse(h.databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	admin := os.Getenv(pgtest.EnvURL)
	if admin == "" {
		admin = pgtest.DefaultURL
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) }) // after the cleanup below
	setAllowed := func(allowed bool) {
		t.Helper()
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{dbName}.Sanitize()+" WITH ALLOW_CONNECTIONS "+map[bool]string{true: "true", false: "false"}[allowed]); err != nil {
			t.Fatal(err)
		}
		if !allowed {
			if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", dbName); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { setAllowed(true) })

	// Warm the actor up so the outage hits a live activation mid-stream.
	if a := h.post(t, customerEvent("evt_out_0", "customer.created", "cus_out", 1700000000, "a@example.com")); a.Status != "applied" {
		t.Fatalf("before outage: %+v, want applied", a)
	}
	setAllowed(false)
	body := customerEvent("evt_out_1", "customer.updated", "cus_out", 1700000001, "b@example.com")
	for i := range 3 {
		if a := h.post(t, body); a.Code != 503 || a.Error == "" {
			t.Fatalf("delivery %d during outage: %d %+v, want 503 with an error", i, a.Code, a)
		}
	}
	setAllowed(true)
	// The sender retries until the database is reachable again.
	deadline := time.Now().Add(20 * time.Second)
	var a webhookAnswer
	for {
		if a = h.post(t, body); a.Code != 503 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a.Code != 200 || a.Status != "applied" {
		t.Fatalf("after outage: %d %+v, want 200 applied", a.Code, a)
	}
	if a := h.post(t, body); a.Status != "applied" {
		t.Fatalf("redelivery: %+v, want applied (what the event did)", a)
	}
	c, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_out"})
	if err != nil || c.GetVersion() != 2 || c.GetEmail() != "b@example.com" {
		t.Fatalf("customer %v (%v), want version 2 with b@example.com", c, err)
	}
	notes := collect(t, h, "", "cus_out", 2)
	if notes[1].GetVersion() != 2 || notes[1].GetEventId() != "evt_out_1" {
		t.Fatalf("notifications %v, want v1 then v2 from evt_out_1", summarize(notes))
	}
}
