// Package jsonw appends JSON values to byte slices exactly as encoding/json
// writes them, for the few hot encoders hookd writes by hand (a customer's
// state, the webhook answer) instead of through reflection.
package jsonw

import (
	"encoding/json"
	"unicode/utf8"
)

// AppendString appends s as a JSON string, byte for byte as json.Marshal
// writes it (HTML-escaped, invalid UTF-8 replaced): strings that need no
// escaping, nearly all of them, are copied as they are.
func AppendString(b []byte, s string) []byte {
	if Plain(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	enc, _ := json.Marshal(s) // a string always encodes
	return append(b, enc...)
}

// Plain reports whether encoding/json writes s as it is, between quotes:
// printable ASCII with no quote, backslash or HTML-escaped byte.
func Plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

// plainByte says which bytes Plain lets through: one load a byte instead
// of seven comparisons.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
