package reqid

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for id, want := range map[string]bool{
		"":                       false,
		"abc":                    true,
		"a b~!":                  true,
		strings.Repeat("x", 128): true,
		strings.Repeat("x", 129): false,
		"tab\t":                  false,
		"é":                      false,
		"nl\n":                   false,
	} {
		if got := Valid(id); got != want {
			t.Errorf("Valid(%q) = %v, want %v", id, got, want)
		}
	}
	if id := New(); len(id) != 16 || !Valid(id) || id == New() {
		t.Errorf("New() = %q", id)
	}
}

func TestHandlerAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Handler(slog.NewJSONHandler(&buf, nil))).With("k", "v")
	log.InfoContext(With(context.Background(), "rid-1"), "with")
	log.InfoContext(context.Background(), "without")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	var a, b map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &b); err != nil {
		t.Fatal(err)
	}
	if a["request_id"] != "rid-1" || a["k"] != "v" {
		t.Errorf("with a request ID: %v", a)
	}
	if _, ok := b["request_id"]; ok {
		t.Errorf("without a request ID: %v", b)
	}
}
