package customer

import (
	"bytes"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestSmallMapBehavesAsAMap: random sets and gets on a smallMap and on a
// Go map agree, the slice stays sorted, and its Go map is the model.
func TestSmallMapBehavesAsAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var m smallMap[int]
		model := map[string]int{}
		for op := range 50 {
			k := string(rune('a' + r.IntN(12)))
			if r.IntN(3) == 0 {
				got, ok := m.get(k)
				want, wantOK := model[k]
				if got != want || ok != wantOK {
					t.Fatalf("round %d op %d: get(%q) = %d, %v; the map has %d, %v", round, op, k, got, ok, want, wantOK)
				}
				continue
			}
			m.set(k, op)
			model[k] = op
		}
		for i := 1; i < len(m); i++ {
			if m[i-1].Key >= m[i].Key {
				t.Fatalf("round %d: keys out of order: %q before %q", round, m[i-1].Key, m[i].Key)
			}
		}
		if !maps.Equal(m.goMap(), model) {
			t.Fatalf("round %d: %v, the map has %v", round, m.goMap(), model)
		}
		if !reflect.DeepEqual(smallMapOf(model), m) {
			t.Fatalf("round %d: smallMapOf(model) = %v, built %v", round, smallMapOf(model), m)
		}
	}
	if smallMapOf(map[string]int{}) != nil || smallMap[int](nil).goMap() != nil {
		t.Fatal("an empty map must give nil both ways (the state omits it)")
	}
}

// TestStateJSONUnchangedBySmallMaps: a state's JSON is what it was when
// metadata and marks were Go maps, so states stored before read the same.
func TestStateJSONUnchangedBySmallMaps(t *testing.T) {
	metadata := map[string]string{"plan": "pro", "<b>": "a & b", "ünï": "\"q\"", "": "empty key"}
	marks := map[string]Mark{"cus_1": {Created: 10, Rank: 1}, "sub_1": {Created: 12, Rank: 2}, "in_1": {Created: 12, Rank: 1, IDs: []string{"evt_a", "evt_<\"b\">"}}}
	st := State{CustomerID: "cus_1", Version: 3, Metadata: smallMapOf(metadata), Marks: smallMapOf(marks)}
	old := struct {
		CustomerID string            `json:"customer_id"`
		Version    int64             `json:"version"`
		Known      bool              `json:"known"`
		Metadata   map[string]string `json:"metadata,omitempty"`
		Marks      map[string]Mark   `json:"marks,omitempty"`
	}{CustomerID: "cus_1", Version: 3, Metadata: metadata, Marks: marks}
	got, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("state JSON\n got %s\nwant %s", got, want)
	}
	var back State
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, st) {
		t.Fatalf("decoded %+v, want %+v", back, st)
	}
	// Empty ones are left out, as empty maps were.
	got, _ = json.Marshal(State{CustomerID: "cus_2"})
	if want := `{"customer_id":"cus_2","version":0,"known":false}`; string(got) != want {
		t.Fatalf("empty state JSON %s, want %s", got, want)
	}
}

// FuzzSmallMapJSON: any input a map[string]string decodes, a smallMap
// decodes to the same entries and encodes back byte for byte as the map
// does; any input the map rejects, the smallMap rejects.
func FuzzSmallMapJSON(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `{"a":"1","b":"2"}`, `{"b":"x","a":"y","b":"z"}`,
		`{"\u003c":"\u0026"}`, `{"a":1}`, `[]`, `{"a":"\ud800"}`, `{"é":"\t"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var model map[string]string
		modelErr := json.Unmarshal(data, &model)
		var m smallMap[string]
		err := json.Unmarshal(data, &m)
		if (err == nil) != (modelErr == nil) {
			t.Fatalf("%q: smallMap error %v, map error %v", data, err, modelErr)
		}
		if err != nil {
			return
		}
		if !maps.Equal(m.goMap(), model) {
			t.Fatalf("%q: smallMap %v, map %v", data, m.goMap(), model)
		}
		got, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(model)
		if len(model) == 0 && model != nil {
			want = []byte("null") // an empty smallMap is nil (and omitted in a state)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%q: smallMap encodes %s, map %s", data, got, want)
		}
	})
}
