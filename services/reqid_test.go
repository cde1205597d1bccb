package services

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/hookd/hookd/internal/reqid"
)

func TestRequestIDFromMetadata(t *testing.T) {
	in := func(id string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs(reqid.MetadataKey, id))
	}
	if got := reqid.From(requestIDFromMetadata(in("gw-7"))); got != "gw-7" {
		t.Errorf("x-request-id gw-7: ctx carries %q", got)
	}
	if got := reqid.From(requestIDFromMetadata(in(strings.Repeat("x", 200)))); got != "" {
		t.Errorf("an insane x-request-id was taken: %q", got)
	}
	if got := reqid.From(requestIDFromMetadata(context.Background())); got != "" {
		t.Errorf("no metadata: %q", got)
	}
	local := reqid.With(in("remote"), "local")
	if got := reqid.From(requestIDFromMetadata(local)); got != "local" {
		t.Errorf("in-process call: %q, want local", got)
	}
}
