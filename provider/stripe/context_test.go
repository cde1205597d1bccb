package stripe

import (
	"context"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// TestContextWithObjectsOnlyForItsEnvelope: the objects come back for the
// envelope they were decoded with, and for no other, not even an equal
// copy (whose payload another body might have replaced); where the actor
// would decode nothing, nothing is carried.
func TestContextWithObjectsOnlyForItsEnvelope(t *testing.T) {
	t.Parallel()
	env, objs, objErr, err := Decode([]byte(testEvent))
	if err != nil || objErr != nil || objs.Invoice == nil {
		t.Fatalf("Decode: got objects %+v, errors %v, %v; want an invoice", objs, objErr, err)
	}
	ctx := ContextWithObjects(context.Background(), env, objs)
	got, ok := ObjectsFrom(ctx, env)
	if !ok || !reflect.DeepEqual(got, objs) {
		t.Fatalf("ObjectsFrom(its envelope): got %+v, %v; want %+v, true", got, ok, objs)
	}
	// Through contexts derived from it, as the ingest path derives them.
	derived, cancel := context.WithCancel(context.WithValue(ctx, struct{ k int }{1}, "v"))
	defer cancel()
	if _, ok := ObjectsFrom(derived, env); !ok {
		t.Errorf("ObjectsFrom(a derived context): got none, want the objects")
	}
	for name, other := range map[string]*hookdv1.Envelope{
		"an equal copy":      proto.Clone(env).(*hookdv1.Envelope),
		"another envelope":   {EventId: "evt_2"},
		"no envelope at all": nil,
	} {
		if got, ok := ObjectsFrom(ctx, other); ok || !reflect.DeepEqual(got, Objects{}) {
			t.Errorf("ObjectsFrom(%s): got %+v, %v; want none", name, got, ok)
		}
	}
	if _, ok := ObjectsFrom(context.Background(), env); ok {
		t.Errorf("ObjectsFrom(a context without objects): got some, want none")
	}

	// Nothing to carry: a thin event, an object hookd does not project.
	thin, _, _, err := Decode([]byte(`{"id":"evt_t","object":"v2.core.event","type":"x","related_object":{"id":"cus_1","type":"customer"}}`))
	if err != nil {
		t.Fatal(err)
	}
	charge, chargeObjs, _, err := Decode([]byte(eventWithObject(`{"id":"ch_1","object":"charge","customer":"cus_1"}`)))
	if err != nil {
		t.Fatal(err)
	}
	base := context.Background()
	for name, c := range map[string]context.Context{
		"thin":   ContextWithObjects(base, thin, Objects{Notes: []string{"x"}}),
		"charge": ContextWithObjects(base, charge, chargeObjs),
		"nil":    ContextWithObjects(base, nil, objs),
	} {
		if c != base {
			t.Errorf("ContextWithObjects(%s): got a new context, want the one given", name)
		}
	}
}
