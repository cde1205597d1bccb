package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/provider/stripe"
)

// postWithID posts body, signed with secret, with an X-Request-Id header
// (none when id is empty), and returns the status and the answer's
// X-Request-Id.
func postWithID(t *testing.T, h *hookd, body []byte, secret, id string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.webhookURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripe.Sign(body, secret, time.Now()))
	if id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Request-Id")
}

// jsonLogLines returns hookd's output lines that are JSON objects, and
// fails the test on any line that looks like a log record but is not JSON.
func jsonLogLines(t *testing.T, h *hookd) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(h.proc.out.String(), "\n") {
		if !strings.HasPrefix(line, "{") {
			if strings.HasPrefix(line, "time=") {
				t.Errorf("a text log line with --log-format json: %q", line)
			}
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %q: %v", line, err)
			continue
		}
		out = append(out, m)
	}
	return out
}

// waitLog waits for a JSON log line with msg and request_id id.
func waitLog(t *testing.T, h *hookd, msg, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, m := range jsonLogLines(t, h) {
			if m["msg"] == msg && m["request_id"] == id {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q with request_id %q in:\n%s", msg, id, h.proc.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A webhook's log lines carry the request ID answered in X-Request-Id:
// the sender's when sane, else a new one; with --log-format json every
// log line is a JSON object.
func TestRequestIDInLogs(t *testing.T) {
	h := startHookd(t, "--log-format", "json")
	body := customerEvent("evt_reqid_1", "customer.created", "cus_reqid", 1700000000, "r@example.com")

	// Rejected (bad signature): the sender's ID is kept.
	code, got := postWithID(t, h, body, "whsec_wrong", "sender-id-42")
	if code != http.StatusBadRequest || got != "sender-id-42" {
		t.Fatalf("answer %d X-Request-Id %q, want 400 sender-id-42", code, got)
	}
	waitLog(t, h, "webhook rejected", "sender-id-42")

	// An insane one (too long, or not printable) is replaced.
	for _, bad := range []string{strings.Repeat("x", 129), "tab\there"} {
		code, got = postWithID(t, h, body, "whsec_wrong", bad)
		if code != http.StatusBadRequest || len(got) != 16 || got == bad {
			t.Fatalf("X-Request-Id %q answered %q, want a fresh 16 hex digits", bad, got)
		}
		waitLog(t, h, "webhook rejected", got)
	}

	// A store write that fails: the gateway's and the member's lines
	// name the same ID.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, h.databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, `
CREATE FUNCTION hookd_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'test: store write fails'; END $$;
CREATE TRIGGER hookd_test_fail BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION hookd_test_fail();`); err != nil {
		t.Fatal(err)
	}
	code, got = postWithID(t, h, body, testSecret, "")
	if code != http.StatusServiceUnavailable || len(got) != 16 {
		t.Fatalf("failed write: answer %d X-Request-Id %q, want 503 and 16 hex digits", code, got)
	}
	line := waitLog(t, h, "ingest failed", got)
	t.Logf("gateway: %v", line)
	jsonLogLines(t, h) // every line so far parses
}
