package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
)

// limitEvent renders an event with the given id, customer (as JSON text,
// placed as is) and created.
func limitEvent(id, customerJSON string, created int64) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":"customer.updated","created":%d,"data":{"object":{"id":%s,"object":"customer"}}}`,
		id, created, customerJSON))
}

// A webhook that breaks an input limit gets 400 naming the field and never
// reaches Ingest; created may lie up to the tolerance past the signature's
// timestamp, not further.
func TestWebhookInputLimits(t *testing.T) {
	t.Parallel()
	now := testNow.Unix()
	tol := int64(stripe.DefaultTolerance / time.Second)
	for _, tc := range []struct {
		name     string
		body     []byte
		signedAt time.Time
		want     string // "" for accepted
	}{
		{"valid", limitEvent("evt_ok", `"cus_1"`, now), testNow, ""},
		{"created at signature time plus tolerance", limitEvent("evt_ok", `"cus_1"`, now+tol), testNow, ""},
		{"created past the signature plus tolerance", limitEvent("evt_ok", `"cus_1"`, now+tol+1), testNow, "created: in the future"},
		{"signed later, created later", limitEvent("evt_ok", `"cus_1"`, now+200+tol), testNow.Add(200 * time.Second), ""},
		{"created far ahead", limitEvent("evt_ok", `"cus_1"`, 1<<40), testNow, "created: after 2100-01-01"},
		{"created before Stripe", limitEvent("evt_ok", `"cus_1"`, 1_000_000_000), testNow, "created: before 2009-01-01"},
		{"no created", []byte(`{"id":"evt_1","object":"event","type":"x","data":{"object":{"id":"cus_1","object":"customer"}}}`), testNow, "created: before"},
		{"event id too long", limitEvent(strings.Repeat("e", 256), `"cus_1"`, now), testNow, "event_id: longer than 255 bytes"},
		{"customer id too long", limitEvent("evt_1", `"`+strings.Repeat("c", 256)+`"`, now), testNow, "customer_id: longer than 255 bytes"},
		{"NUL in customer id", limitEvent("evt_1", `"cus_\u0000"`, now), testNow, "customer_id: control character U+0000"},
		{"invalid UTF-8 in customer id", limitEvent("evt_1", "\"cus_\xff\xfe\"", now), testNow, "customer_id: invalid UTF-8"},
		{"lone surrogate in customer id", limitEvent("evt_1", `"cus_\udc00"`, now), testNow, "customer_id: invalid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := setup(t, nil)
			rec := serve(env.handler, signedRequest(tc.body, testSecret, tc.signedAt))
			body := decodeBody(t, rec)
			if tc.want == "" {
				if rec.Code != http.StatusOK || len(env.fake.received()) != 1 {
					t.Fatalf("got %d %v with %d Ingest calls, want 200 and one call", rec.Code, body, len(env.fake.received()))
				}
				return
			}
			if rec.Code != http.StatusBadRequest || !strings.Contains(body["error"], tc.want) {
				t.Errorf("got %d %q, want 400 naming %q", rec.Code, body["error"], tc.want)
			}
			if n := len(env.fake.received()); n != 0 {
				t.Errorf("%d Ingest calls for a rejected webhook, want 0", n)
			}
		})
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// logLines returns the JSON log records with the given message.
func logLines(t *testing.T, logs string, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// A flood of rejections writes a few log lines per second per reason, says
// how many it suppressed, and counts every one in /metrics. Not parallel:
// the counters are process-wide.
func TestRejectionLogsAreSampledAndCounted(t *testing.T) {
	env := setup(t, nil)
	counter := webhookRejections.WithLabelValues(rejectBadSignature)
	before := counterValue(t, counter)
	const flood = 500
	for range flood {
		rec := serve(env.handler, signedRequest([]byte(testEvent), "whsec_wrong", testNow))
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("bad signature: got %d, want 400", rec.Code)
		}
	}
	if got := counterValue(t, counter) - before; got != flood {
		t.Errorf("hookd_webhook_rejections_total{bad_signature} rose by %v, want %d", got, flood)
	}
	lines := logLines(t, env.logs.String(), "webhook rejected")
	if len(lines) == 0 || len(lines) > 2*rejectLogsPerSecond {
		t.Fatalf("%d log lines for %d rejections within a second or two, want 1 to %d", len(lines), flood, 2*rejectLogsPerSecond)
	}
	// The next window's first line reports the rest.
	time.Sleep(time.Second)
	serve(env.handler, signedRequest([]byte(testEvent), "whsec_wrong", testNow))
	lines = logLines(t, env.logs.String(), "webhook rejected")
	total := 0
	for _, l := range lines {
		if l["reason"] != rejectBadSignature {
			t.Fatalf("log line %v: want reason %q", l, rejectBadSignature)
		}
		total += 1 + int(l["suppressed"].(float64))
	}
	if total != flood+1 {
		t.Errorf("log lines plus the suppressed counts they report: %d, want every rejection (%d)", total, flood+1)
	}
}

// What a sender controls is cut in log lines: an InvalidArgument from
// Ingest that quotes a megabyte writes a short line.
func TestRejectionLogsAreShort(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("A", 1<<20)
	env := setup(t, func(f *fakeIngest, _ *Config) {
		f.respond = func(context.Context, *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
			return nil, status.Error(codes.InvalidArgument, "bad event "+huge)
		}
	})
	rec := serve(env.handler, signedRequest([]byte(testEvent), testSecret, testNow))
	if rec.Code != http.StatusBadRequest || len(rec.Body.String()) > 512 {
		t.Fatalf("got %d with a %d-byte body, want 400 and a short body", rec.Code, len(rec.Body.String()))
	}
	lines := logLines(t, env.logs.String(), "ingest rejected webhook")
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1", len(lines))
	}
	if b, _ := json.Marshal(lines[0]); len(b) > 1024 {
		t.Errorf("log line of %d bytes, want at most 1 KiB", len(b))
	}
}
