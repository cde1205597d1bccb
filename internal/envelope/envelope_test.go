package envelope_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/internal/envelope"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

var latest = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// valid returns an envelope every limit accepts.
func valid() *hookdv1.Envelope {
	return &hookdv1.Envelope{
		Source: "stripe", EventId: "evt_1", Type: "customer.updated", Created: latest.Unix() - 60,
		ApiVersion: "2025-03-31.basil", Account: "acct_1", ObjectId: "cus_1", ObjectType: "customer",
		CustomerId: "cus_1", Routing: "object.id", RelatedObjectIds: []string{"sub_1", "in_1"},
		Payload: []byte(`{"id":"evt_1"}`),
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 128) // 256 bytes
	max := strings.Repeat("x", 253) + "é"
	for _, tc := range []struct {
		name   string
		change func(e *hookdv1.Envelope)
		limits envelope.Limits
		field  string // "" for accepted
		want   string // in the message
	}{
		{name: "valid"},
		{name: "255 bytes of UTF-8", change: func(e *hookdv1.Envelope) { e.EventId, e.CustomerId, e.ObjectId = max, max, max }},
		{name: "U+FFFE and emoji are text", change: func(e *hookdv1.Envelope) { e.CustomerId = "cus_\ufffe😀\u2028" }},
		{name: "event_id too long", change: func(e *hookdv1.Envelope) { e.EventId = long }, field: "event_id", want: "event_id: longer than 255 bytes"},
		{name: "customer_id too long", change: func(e *hookdv1.Envelope) { e.CustomerId = long }, field: "customer_id", want: "longer than 255 bytes"},
		{name: "object_id too long", change: func(e *hookdv1.Envelope) { e.ObjectId = long }, field: "object_id"},
		{name: "object_type too long", change: func(e *hookdv1.Envelope) { e.ObjectType = long }, field: "object_type"},
		{name: "type too long", change: func(e *hookdv1.Envelope) { e.Type = long }, field: "type"},
		{name: "source too long", change: func(e *hookdv1.Envelope) { e.Source = long }, field: "source"},
		{name: "account too long", change: func(e *hookdv1.Envelope) { e.Account = long }, field: "account"},
		{name: "api_version too long", change: func(e *hookdv1.Envelope) { e.ApiVersion = long }, field: "api_version"},
		{name: "routing too long", change: func(e *hookdv1.Envelope) { e.Routing = long }, field: "routing"},
		{name: "related id too long", change: func(e *hookdv1.Envelope) { e.RelatedObjectIds[1] = long }, field: "related_object_ids[1]"},
		{name: "related id empty", change: func(e *hookdv1.Envelope) { e.RelatedObjectIds[0] = "" }, field: "related_object_ids[0]", want: "empty"},
		{name: "too many related ids", change: func(e *hookdv1.Envelope) { e.RelatedObjectIds = make([]string, 17) }, field: "related_object_ids", want: "more than 16"},
		{name: "NUL", change: func(e *hookdv1.Envelope) { e.EventId = "evt_\x00" }, field: "event_id", want: "control character U+0000 at byte 4"},
		{name: "newline", change: func(e *hookdv1.Envelope) { e.CustomerId = "cus_1\nfake log line" }, field: "customer_id", want: "U+000A"},
		{name: "DEL", change: func(e *hookdv1.Envelope) { e.Type = "x\x7f" }, field: "type"},
		{name: "C1 control", change: func(e *hookdv1.Envelope) { e.ObjectId = "sub_\u0085" }, field: "object_id", want: "U+0085"},
		{name: "invalid UTF-8", change: func(e *hookdv1.Envelope) { e.CustomerId = "cus_\xff\xfe" }, field: "customer_id", want: "invalid UTF-8"},
		{name: "overlong encoding", change: func(e *hookdv1.Envelope) { e.CustomerId = "cus_\xc0\xc1" }, field: "customer_id", want: "invalid UTF-8"},
		{name: "truncated rune", change: func(e *hookdv1.Envelope) { e.Account = "acct_\xe2\x82" }, field: "account"},
		{name: "replacement character", change: func(e *hookdv1.Envelope) { e.CustomerId = "cus_\ufffd" }, field: "customer_id", want: "U+FFFD"},
		{name: "missing source", change: func(e *hookdv1.Envelope) { e.Source = "" }, field: "source", want: "required"},
		{name: "missing event_id", change: func(e *hookdv1.Envelope) { e.EventId = "" }, field: "event_id", want: "required"},
		{name: "missing type", change: func(e *hookdv1.Envelope) { e.Type = "" }, field: "type", want: "required"},
		{name: "missing payload", change: func(e *hookdv1.Envelope) { e.Payload = nil }, field: "payload", want: "required"},
		{name: "payload at the limit", change: func(e *hookdv1.Envelope) { e.Payload = make([]byte, 100) }, limits: envelope.Limits{MaxPayloadBytes: 100, Latest: latest}},
		{name: "payload over the limit", change: func(e *hookdv1.Envelope) { e.Payload = make([]byte, 101) },
			limits: envelope.Limits{MaxPayloadBytes: 100, Latest: latest}, field: "payload", want: "larger than 100 bytes"},
		{name: "payload over the default limit", change: func(e *hookdv1.Envelope) { e.Payload = make([]byte, 1<<20+1) },
			limits: envelope.Limits{Latest: latest}, field: "payload", want: "larger than 1048576 bytes"},
		{name: "created missing", change: func(e *hookdv1.Envelope) { e.Created = 0 }, field: "created", want: "before 2009-01-01"},
		{name: "created missing on a thin event", change: func(e *hookdv1.Envelope) { e.Created, e.Thin = 0, true }},
		{name: "created before 2009 on a thin event", change: func(e *hookdv1.Envelope) { e.Created, e.Thin = 1, true }, field: "created"},
		{name: "created negative", change: func(e *hookdv1.Envelope) { e.Created = -1 << 62 }, field: "created"},
		{name: "created just before 2009", change: func(e *hookdv1.Envelope) { e.Created = envelope.MinCreated.Unix() - 1 }, field: "created"},
		{name: "created at 2009", change: func(e *hookdv1.Envelope) { e.Created = envelope.MinCreated.Unix() }},
		{name: "created at the latest", change: func(e *hookdv1.Envelope) { e.Created = latest.Unix() }},
		{name: "created past the latest", change: func(e *hookdv1.Envelope) { e.Created = latest.Unix() + 1 }, field: "created", want: "in the future (1 s past"},
		{name: "created in 2100 without a latest", change: func(e *hookdv1.Envelope) { e.Created = envelope.MaxCreated.Unix() },
			limits: envelope.Limits{}, field: "created", want: "after 2100-01-01"},
		{name: "created far ahead", change: func(e *hookdv1.Envelope) { e.Created = 1 << 62 }, field: "created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := valid()
			if tc.change != nil {
				tc.change(env)
			}
			limits := tc.limits
			if limits == (envelope.Limits{}) && tc.name != "created in 2100 without a latest" {
				limits.Latest = latest
			}
			before := proto.Clone(env)
			err := envelope.Check(env, limits)
			if !proto.Equal(before, env) {
				t.Errorf("Check modified the envelope")
			}
			if tc.field == "" {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				return
			}
			var fe *envelope.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, envelope.ErrInvalid) {
				t.Fatalf("got %v, want a *FieldError wrapping ErrInvalid", err)
			}
			if fe.Field != tc.field || !strings.HasPrefix(err.Error(), tc.field+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got field %q, message %q; want field %q and a message containing %q", fe.Field, err, tc.field, tc.want)
			}
			if len(err.Error()) > 200 {
				t.Errorf("message of %d bytes, want a short one that quotes no value", len(err.Error()))
			}
		})
	}
	if err := envelope.Check(nil, envelope.Limits{}); !errors.Is(err, envelope.ErrInvalid) || !strings.HasPrefix(err.Error(), "envelope: ") {
		t.Errorf("nil envelope: got %v, want envelope: required", err)
	}
}
