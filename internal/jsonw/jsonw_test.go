package jsonw

import (
	"encoding/json"
	"testing"
)

// FuzzAppendStringIsJSONMarshal: AppendString writes what json.Marshal
// writes, for any string, valid UTF-8 or not.
func FuzzAppendStringIsJSONMarshal(f *testing.F) {
	for _, s := range []string{"", "cus_123", `a"b`, `a\b`, "<script>&", "tab\there", "\x00\x1f\x7f", "é中\u2028\u2029", "\xff\xfe", "ok\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got[1:], want)
		}
	})
}
