package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookd/hookd/client"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/provider/stripe"
)

// limitEvent renders a customer event with customerJSON placed in the
// body as is (a JSON string literal, escapes and raw bytes included).
func limitEvent(eventID, typ, customerJSON string, created int64) []byte {
	return []byte(`{"id":"` + eventID + `","object":"event","api_version":"2024-06-20","created":` + strconv.FormatInt(created, 10) +
		`,"type":"` + typ + `","data":{"object":{"id":` + customerJSON + `,"object":"customer","email":"p@example.com"}}}`)
}

// A poison event is answered 400 (HTTP) or INVALID_ARGUMENT (Ingest)
// naming the field, and nothing of it is stored, while a steady stream of
// legitimate events from several senders, over both entry points, is
// acknowledged and stored exactly once each, none of it answered 5xx.
func TestPoisonEventsHurtNoOther(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *hookd) {
		ctx := context.Background()
		now := time.Now().Unix()
		const senders, perSender = 4, 12
		long := strings.Repeat("x", 256)

		type httpPoison struct {
			body  func(id string) []byte
			field string
		}
		httpPoisons := []httpPoison{
			{func(id string) []byte { return limitEvent(long, "customer.created", `"cus_p"`, now) }, "event_id: longer than 255 bytes"},
			{func(id string) []byte { return limitEvent(id, "customer.created", `"cus_\u0000`+id+`"`, now) }, "customer_id: control character U+0000"},
			{func(id string) []byte { return limitEvent(id, "customer.created", "\"cus_\xff\xfe"+id+"\"", now) }, "customer_id: invalid UTF-8"},
			{func(id string) []byte { return limitEvent(id, "customer.created", "\"cus_\xc0\xc1"+id+"\"", now) }, "customer_id: invalid UTF-8"},
			{func(id string) []byte { return limitEvent(id+`\ud800`, "customer.created", `"cus_`+id+`"`, now) }, "event_id: invalid UTF-8"},
			{func(id string) []byte { return limitEvent(id, "customer.created", `"cus_`+id+`"`, 1_000_000_000) }, "created: before 2009-01-01"},
			{func(id string) []byte { return limitEvent(id, "customer.updated", `"cus_`+id+`"`, now+24*3600) }, "created: in the future"},
			{func(id string) []byte { return limitEvent(id, long, `"cus_`+id+`"`, now) }, "type: longer than 255 bytes"},
			{func(id string) []byte {
				return []byte(`{"id":"` + id + `","object":"event","type":"invoice.paid","created":` + strconv.FormatInt(now, 10) +
					`,"data":{"object":{"id":"in_` + id + `","object":"invoice","customer":"cus_p","charge":"` + long + `"}}}`)
			}, "related_object_ids[0]: longer than 255 bytes"},
		}
		type grpcPoison struct {
			change func(e *hookdv1.Envelope)
			field  string
		}
		grpcPoisons := []grpcPoison{
			{func(e *hookdv1.Envelope) { e.EventId = long }, "event_id: longer than 255 bytes"},
			{func(e *hookdv1.Envelope) { e.CustomerId += "\x00" }, "customer_id: control character U+0000"},
			{func(e *hookdv1.Envelope) { e.CustomerId += "\ufffd" }, "customer_id: invalid UTF-8"},
			{func(e *hookdv1.Envelope) { e.ObjectId += "\n" }, "object_id: control character U+000A"},
			{func(e *hookdv1.Envelope) { e.Created = 1_000_000_000 }, "created: before 2009-01-01"},
			{func(e *hookdv1.Envelope) { e.Created = now + 3600 }, "created: in the future"},
			{func(e *hookdv1.Envelope) { e.Payload = make([]byte, 1<<20+1) }, "payload: larger than 1048576 bytes"},
			{func(e *hookdv1.Envelope) { e.Account = long }, "account: longer than 255 bytes"},
			{func(e *hookdv1.Envelope) { e.RelatedObjectIds = make([]string, 17) }, "related_object_ids: more than 16 entries"},
		}

		var (
			mu       sync.Mutex // guards the fields below
			legit    []string   // event IDs acknowledged
			poisoned []string   // valid event IDs of poison events
		)
		var wg sync.WaitGroup
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cus := fmt.Sprintf("cus_lim_%d", s)
				for i := range perSender {
					id := fmt.Sprintf("evt_lim_%d_%d", s, i)
					typ := "customer.updated"
					if i == 0 {
						typ = "customer.created"
					}
					body := customerEvent(id, typ, cus, now-1000+int64(i), fmt.Sprintf("v%d@example.com", i))
					if i%2 == 0 {
						if a := h.post(t, body); a.Code != 200 || a.Status != "applied" {
							t.Errorf("legit %s over HTTP: %d %q %q, want 200 applied", id, a.Code, a.Status, a.Error)
						}
					} else {
						env, err := stripe.DecodeEnvelope(body)
						if err != nil {
							t.Error(err)
							return
						}
						resp, err := h.ingest().Ingest(ctx, &hookdv1.IngestRequest{Envelope: env})
						if err != nil || resp.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_APPLIED {
							t.Errorf("legit %s over Ingest: %v %v, want applied", id, resp.GetStatus(), err)
						}
					}
					mu.Lock()
					legit = append(legit, id)
					mu.Unlock()

					// A poison event of each entry point after each legit one.
					pid := fmt.Sprintf("evt_poison_%d_%d", s, i)
					hp := httpPoisons[(s+i)%len(httpPoisons)]
					if a := h.post(t, hp.body(pid)); a.Code != 400 || !strings.Contains(a.Error, hp.field) {
						t.Errorf("poison over HTTP (%s): %d %q, want 400 naming %q", hp.field, a.Code, a.Error, hp.field)
					}
					gp := grpcPoisons[(s+i)%len(grpcPoisons)]
					env, _ := stripe.DecodeEnvelope(customerEvent(pid+"_g", "customer.created", "cus_"+pid, now, "p@example.com"))
					gp.change(env)
					_, err := h.ingest().Ingest(ctx, &hookdv1.IngestRequest{Envelope: env})
					if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), gp.field) {
						t.Errorf("poison over Ingest (%s): %v, want InvalidArgument naming %q", gp.field, err, gp.field)
					}
					mu.Lock()
					poisoned = append(poisoned, pid, pid+"_g")
					mu.Unlock()
				}
			}()
		}
		wg.Wait()

		// A message past the body limit and its margin is refused by gRPC.
		env, _ := stripe.DecodeEnvelope(customerEvent("evt_huge", "customer.created", "cus_huge", now, "h@example.com"))
		env.Payload = make([]byte, 3<<20)
		if _, err := h.ingest().Ingest(ctx, &hookdv1.IngestRequest{Envelope: env}); status.Code(err) != codes.ResourceExhausted || client.ReasonOf(err) != client.ReasonMessageTooLarge {
			t.Errorf("3 MiB Ingest: %v (reason %q), want ResourceExhausted, %s (the limit is --max-body-bytes, not gRPC's 4 MiB)", err, client.ReasonOf(err), client.ReasonMessageTooLarge)
		}
		poisoned = append(poisoned, "evt_huge")

		// Every legitimate event stored once, nothing else.
		stored := map[string]int{}
		token := ""
		for {
			page, err := h.events().ListEvents(ctx, &hookdv1.ListEventsRequest{PageSize: 500, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range page.GetEvents() {
				stored[ev.GetEventId()]++
			}
			if token = page.GetNextPageToken(); token == "" {
				break
			}
		}
		for _, id := range legit {
			if stored[id] != 1 {
				t.Errorf("legit %s stored %d times, want once", id, stored[id])
			}
		}
		if len(stored) != senders*perSender || len(legit) != senders*perSender {
			t.Errorf("%d events stored, %d legit acknowledged; want %d of each and no poison", len(stored), len(legit), senders*perSender)
		}
		for _, id := range poisoned {
			if _, err := h.events().GetEvent(ctx, &hookdv1.GetEventRequest{EventId: id}); status.Code(err) != codes.NotFound {
				t.Errorf("poison %s: GetEvent %v, want NotFound", id, err)
			}
		}
		for s := range senders {
			c, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: fmt.Sprintf("cus_lim_%d", s)})
			if err != nil || c.GetVersion() != perSender {
				t.Errorf("cus_lim_%d: version %d (%v), want %d", s, c.GetVersion(), err, perSender)
			}
		}

		// The rejections are counted by reason.
		poison := senders * perSender
		if got := metric(t, h, `hookd_webhook_rejections_total{reason="invalid_field"}`); got != poison {
			t.Errorf("hookd_webhook_rejections_total{invalid_field} = %d, want %d", got, poison)
		}
		if got := metric(t, h, `hookd_ingest_rejections_total{reason="invalid_field"}`); got != poison {
			t.Errorf("hookd_ingest_rejections_total{invalid_field} = %d, want %d", got, poison)
		}
	})
}

// metric reads one counter from hookd's /metrics (on the admin listener) (0 when absent).
func metric(t *testing.T, h *hookd, series string) int {
	t.Helper()
	resp, err := h.http.Get(h.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	raw, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(raw)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return int(v)
}

// A retry of a request that took effect is answered for what the event
// did, over HTTP and Ingest, on both stores; a twin (a new event ID for
// the same change) is answered duplicate, and its retry too.
func TestRetryIsAnsweredWithWhatTheEventDid(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *hookd) {
		ctx := context.Background()
		now := time.Now().Unix() - 100
		created := customerEvent("evt_rt_0", "customer.created", "cus_rt", now, "a@example.com")
		updated := customerEvent("evt_rt_1", "customer.updated", "cus_rt", now+1, "b@example.com")
		twin := customerEvent("evt_rt_1_twin", "customer.updated", "cus_rt", now+1, "b@example.com")
		stale := customerEvent("evt_rt_old", "customer.updated", "cus_rt", now-50, "old@example.com")
		want := map[string]string{"evt_rt_0": "applied", "evt_rt_1": "applied", "evt_rt_1_twin": "duplicate", "evt_rt_old": "superseded"}
		bodies := [][]byte{created, updated, twin, stale}
		for round := range 3 {
			for _, body := range bodies {
				a := h.post(t, body)
				if a.Code != 200 || a.Status != want[a.EventID] {
					t.Errorf("round %d: %s answered %d %q, want %q", round, a.EventID, a.Code, a.Status, want[a.EventID])
				}
				if round > 0 && a.Status == "applied" && !strings.Contains(a.Reason, "already received") {
					t.Errorf("round %d: %s redelivered, reason %q, want it to say it was already received", round, a.EventID, a.Reason)
				}
			}
		}
		env, _ := stripe.DecodeEnvelope(updated)
		resp, err := h.ingest().Ingest(ctx, &hookdv1.IngestRequest{Envelope: env})
		if err != nil || resp.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_APPLIED || resp.GetVersion() != 2 ||
			!strings.Contains(resp.GetReason(), "already received") {
			t.Errorf("Ingest retry of evt_rt_1: %v v%d %q (%v), want applied v2, already received", resp.GetStatus(), resp.GetVersion(), resp.GetReason(), err)
		}
		env, _ = stripe.DecodeEnvelope(twin)
		if resp, err := h.ingest().Ingest(ctx, &hookdv1.IngestRequest{Envelope: env}); err != nil || resp.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_DUPLICATE {
			t.Errorf("Ingest retry of the twin: %v (%v), want duplicate", resp.GetStatus(), err)
		}
		// An event no customer is found for: stored ignored, and answered so again.
		orphan := []byte(fmt.Sprintf(`{"id":"evt_rt_orphan","object":"event","type":"charge.succeeded","created":%d,"data":{"object":{"id":"ch_rt","object":"charge"}}}`, now))
		for round := range 2 {
			if a := h.post(t, orphan); a.Code != 200 || a.Status != "ignored" {
				t.Errorf("orphan, delivery %d: %d %q, want ignored", round, a.Code, a.Status)
			}
		}
		c, err := h.customers().GetCustomer(ctx, &hookdv1.GetCustomerRequest{CustomerId: "cus_rt"})
		if err != nil || c.GetVersion() != 2 || c.GetEmail() != "b@example.com" {
			t.Fatalf("cus_rt: version %d email %q (%v), want 2 b@example.com: no retry took effect", c.GetVersion(), c.GetEmail(), err)
		}
	})
}
