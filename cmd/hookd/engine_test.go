package main

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/gateway"
)

// Both HTTP engines serve the same webhook contract end to end: a signed
// event is applied, a redelivery is answered as already received, a
// wrongly signed one is 400, and headers over the shared limit are
// refused. The default engine is fasthttp; every other test of this
// package runs on it.
func TestHTTPEngines(t *testing.T) {
	for _, engine := range []string{engineFast, engineNet} {
		t.Run(strings.ReplaceAll(engine, "/", "_"), func(t *testing.T) {
			h := startHookd(t, "--http-engine", engine)
			body := customerEvent("evt_engine_1", "customer.created", "cus_engine", 1700000000, "e@example.com")
			if a := h.post(t, body); a.Code != http.StatusOK || a.Status != "applied" {
				t.Fatalf("signed event: %+v, want 200 applied", a)
			}
			if a := h.post(t, body); a.Code != http.StatusOK || a.Status != "applied" || a.Reason != "already received" {
				t.Fatalf("redelivery: %+v, want 200 applied, already received", a)
			}
			if a := h.postWith(t, body, "application/json", "t=1,v1="+strings.Repeat("ab", 32)); a.Code != http.StatusBadRequest || a.Error == "" {
				t.Fatalf("bad signature: %+v, want 400 with an error", a)
			}
			req, _ := http.NewRequest(http.MethodPost, h.webhookURL, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Filler", strings.Repeat("y", gateway.MaxHeaderBytes+4096))
			resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}).Do(req)
			if err != nil {
				t.Fatalf("oversized headers: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("headers over %d bytes: %d, want 431", gateway.MaxHeaderBytes, resp.StatusCode)
			}
			// The listener still serves after refusing them.
			conn, err := net.DialTimeout("tcp", strings.TrimPrefix(h.baseURL, "http://"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			conn.Close()
		})
	}
}

func TestHTTPEngineFlag(t *testing.T) {
	if _, err := parseServe([]string{"--http-engine", "nginx"}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "--http-engine") {
		t.Fatalf("--http-engine nginx: %v, want an error naming the flag", err)
	}
	c, err := parseServe(nil, func(k string) string {
		if k == "HOOKD_HTTP_ENGINE" {
			return engineNet
		}
		return ""
	})
	if err != nil || c.HTTPEngine != engineNet {
		t.Fatalf("HOOKD_HTTP_ENGINE=net/http: %q, %v", c.HTTPEngine, err)
	}
}
