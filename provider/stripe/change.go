package stripe

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
)

// Data returns the raw `data` block of an event payload (data.object and,
// for updates, data.previous_attributes), or nil when there is none (a thin
// event), it is not a JSON object, or the payload is not a JSON object. The
// result aliases payload. It scans the payload's top level without
// decoding or validating it (it runs for every applied event, whose
// payload the gateway validated): a caller that decodes it checks it.
func Data(payload []byte) json.RawMessage {
	raw, ok := topLevelField(payload, "data")
	if !ok || firstNonSpace(raw) != '{' {
		return nil
	}
	return raw
}

// ChangeHash identifies the change a snapshot event describes by its
// content: a SHA-256, hex-encoded, of its data block (data.object and
// data.previous_attributes) as sent. Stripe sometimes sends two Event
// objects for one change; they carry the same data, serialized alike, so
// they hash alike, while two different changes to one object, even within
// one second, do not. The bytes are hashed as they are, not in a canonical
// form: a canonical form costs a full decode and encode per event (some 20
// times the time), and twins serialized differently would only be applied
// twice, to the same state. It returns "" for a payload without a data
// block.
func ChangeHash(payload []byte) string {
	data := Data(payload)
	if data == nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// topLevelField returns the raw value of key in the JSON object b, and
// whether b is an object that has it (the last occurrence, as
// encoding/json reads it). It does not validate what it skips; a payload
// that is not well-formed JSON may yield false or a value that is itself
// not valid JSON, which the caller checks.
func topLevelField(b []byte, key string) (json.RawMessage, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i++
	var found json.RawMessage
	ok := false
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, false
		}
		if b[i] == '}' {
			return found, ok
		}
		if b[i] == ',' {
			i++
			continue
		}
		if b[i] != '"' {
			return nil, false
		}
		end := skipString(b, i)
		if end < 0 {
			return nil, false
		}
		name := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipSpace(b, i+1)
		vend := skipValue(b, i)
		if vend < 0 {
			return nil, false
		}
		// Keys match as encoding/json matches them to a struct field:
		// unescaped, case-insensitively.
		if bytes.IndexByte(name, '\\') >= 0 {
			var unescaped string
			if json.Unmarshal(b[end-len(name)-2:end], &unescaped) != nil {
				return nil, false
			}
			name = []byte(unescaped)
		}
		if bytes.EqualFold(name, []byte(key)) {
			found, ok = b[i:vend], true
		}
		i = vend
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"'),
// or -1 if it does not end.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value starting at b[i], or
// -1 if it does not end.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// Order is how two events on one object, created in the same second, are
// ordered by their data.
type Order int

// Orders returned by SameSecondOrder.
const (
	// Undecided: the data does not say which change came first.
	Undecided Order = iota
	// Before: the first event's change came before the second's.
	Before
	// After: the first event's change came after the second's.
	After
)

// SameSecondOrder orders two events on one object from their data blocks
// (see Data): an event whose data.previous_attributes equal the other's
// new values (its data.object, at the same paths) comes after it. It is
// Undecided when neither or both hold (a change and its revert), when
// either has no previous_attributes, or when a block does not parse.
func SameSecondOrder(a, b json.RawMessage) Order {
	da, oka := decodeData(a)
	db, okb := decodeData(b)
	if !oka || !okb {
		return Undecided
	}
	aAfter := len(da.Previous) > 0 && within(da.Previous, db.Object)
	bAfter := len(db.Previous) > 0 && within(db.Previous, da.Object)
	switch {
	case aAfter && !bAfter:
		return After
	case bAfter && !aAfter:
		return Before
	}
	return Undecided
}

type decodedData struct {
	Object   map[string]any `json:"object"`
	Previous map[string]any `json:"previous_attributes"`
}

func decodeData(raw json.RawMessage) (decodedData, bool) {
	var d decodedData
	if len(raw) == 0 {
		return d, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&d) != nil || d.Object == nil {
		return d, false
	}
	return d, true
}

// within reports whether every value in prev equals the value at the same
// path in obj. Objects compare key by key, recursively (Stripe lists only
// the changed keys of a hash such as metadata); arrays compare element by
// element with the same rule; a key absent from obj reads as null.
func within(prev, obj any) bool {
	switch p := prev.(type) {
	case map[string]any:
		o, _ := obj.(map[string]any)
		for k, v := range p {
			if !within(v, o[k]) {
				return false
			}
		}
		return true
	case []any:
		o, ok := obj.([]any)
		if !ok || len(o) != len(p) {
			return false
		}
		for i := range p {
			if !within(p[i], o[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(prev, obj)
}
