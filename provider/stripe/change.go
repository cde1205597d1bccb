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
// event) or the payload does not parse. The result aliases payload.
func Data(payload []byte) json.RawMessage {
	var ev struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(payload, &ev) != nil || firstNonSpace(ev.Data) != '{' {
		return nil
	}
	return ev.Data
}

// ChangeHash identifies the change a snapshot event describes by its
// content: a SHA-256, hex-encoded, of the canonical JSON (object keys
// sorted, no insignificant whitespace, numbers as written) of its data
// block: data.object and data.previous_attributes. Stripe sometimes sends
// two Event objects for one change; they carry the same data, so they
// hash alike, while two different changes to one object, even within one
// second, do not. It returns "" for a payload without a data block.
func ChangeHash(payload []byte) string {
	data := Data(payload)
	if data == nil {
		return ""
	}
	var v struct {
		Object   any `json:"object"`
		Previous any `json:"previous_attributes"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return ""
	}
	// encoding/json writes map keys sorted: the canonical form.
	canonical, err := json.Marshal([]any{v.Object, v.Previous})
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
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
