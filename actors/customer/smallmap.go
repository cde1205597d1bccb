package customer

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"

	"github.com/hookd/hookd/internal/jsonw"
)

// smallMap is a map from strings kept as a slice sorted by key. A
// customer's state holds a few of them (its metadata, the marks of its
// objects) for as long as its actor is resident, and tens of thousands of
// actors are: a Go map costs two objects and about 300 bytes even with one
// entry, all scanned by every garbage collection, where the slice is one
// object of 32 bytes an entry. Lookups are binary searches; an insert
// copies the tail, which the state's copy per applied event does anyway.
//
// It encodes to JSON as an object with its keys in order, byte for byte
// what encoding/json writes for the map it replaces, so stored states
// read the same either way.
type smallMap[V any] []smallEntry[V]

type smallEntry[V any] struct {
	Key   string
	Value V
}

func compareKey[V any](e smallEntry[V], key string) int { return cmp.Compare(e.Key, key) }

// get returns the value for key.
func (m smallMap[V]) get(key string) (V, bool) {
	if i, ok := slices.BinarySearchFunc(m, key, compareKey[V]); ok {
		return m[i].Value, true
	}
	var zero V
	return zero, false
}

// set adds or replaces key's value. Like a map's, m's backing array is
// written in place: a state that shares it with another must clone first.
func (m *smallMap[V]) set(key string, v V) {
	i, ok := slices.BinarySearchFunc(*m, key, compareKey[V])
	if ok {
		(*m)[i].Value = v
		return
	}
	*m = slices.Insert(*m, i, smallEntry[V]{key, v})
}

// smallMapOf returns the entries of a Go map (nil for an empty one).
func smallMapOf[V any](src map[string]V) smallMap[V] {
	if len(src) == 0 {
		return nil
	}
	m := make(smallMap[V], 0, len(src))
	for _, k := range slices.Sorted(maps.Keys(src)) {
		m = append(m, smallEntry[V]{k, src[k]})
	}
	return m
}

// goMap returns the entries as a Go map (nil when there are none).
func (m smallMap[V]) goMap() map[string]V {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]V, len(m))
	for _, e := range m {
		out[e.Key] = e.Value
	}
	return out
}

// MarshalJSON writes a JSON object, keys in order (see appendJSON).
func (m smallMap[V]) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("null"), nil
	}
	return m.appendJSON(make([]byte, 0, 2+len(m)*32))
}

// appendJSON appends m as a JSON object, keys in order. Strings and marks
// are written directly (a state is encoded for every applied event);
// values of other types go through encoding/json.
func (m smallMap[V]) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	for i, e := range m {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, e.Key)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, e.Value); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendValue appends v's JSON encoding, as encoding/json writes it. It is
// generic rather than taking an any so that a string or a mark is not
// copied to the heap to be passed: only the fallback converts v.
func appendValue[V any](b []byte, v V) ([]byte, error) {
	switch x := any(v).(type) {
	case string:
		return appendString(b, x), nil
	case Mark:
		return x.appendJSON(b), nil
	}
	enc, err := json.Marshal(v)
	return append(b, enc...), err
}

// appendString appends s as json.Marshal writes it.
func appendString(b []byte, s string) []byte { return jsonw.AppendString(b, s) }

// UnmarshalJSON reads a JSON object (or null); a key given twice keeps its
// last value, as with a map.
func (m *smallMap[V]) UnmarshalJSON(data []byte) error {
	var src map[string]V
	if err := json.Unmarshal(data, &src); err != nil {
		return err
	}
	*m = smallMapOf(src)
	return nil
}
