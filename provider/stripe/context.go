package stripe

import (
	"context"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// objectsKey is the context key of carriedObjects.
type objectsKey struct{}

// carriedObjects are an envelope's objects as Decode returned them.
type carriedObjects struct {
	env  *hookdv1.Envelope
	objs Objects
}

// ContextWithObjects returns ctx carrying objs as the decoded object of
// env, for the customer actor of this process to take instead of decoding
// env's payload again (see ObjectsFrom). objs must be what Decode
// returned for env without an object error. When there is nothing for the
// actor to decode (a thin event, an object of a kind hookd does not
// project) it returns ctx as it is.
//
// The context goes no further than the process: an envelope sent over
// gRPC reaches its actor without the objects, which then decodes them.
func ContextWithObjects(ctx context.Context, env *hookdv1.Envelope, objs Objects) context.Context {
	if env == nil || env.GetThin() || (objs.Customer == nil && objs.Subscription == nil && objs.Invoice == nil) {
		return ctx
	}
	return context.WithValue(ctx, objectsKey{}, &carriedObjects{env, objs})
}

// ObjectsFrom returns the objects ctx carries for env (ContextWithObjects),
// and whether it carries any: only for that very envelope, never for
// another, even one equal to it.
func ObjectsFrom(ctx context.Context, env *hookdv1.Envelope) (Objects, bool) {
	c, ok := ctx.Value(objectsKey{}).(*carriedObjects)
	if !ok || env == nil || c.env != env {
		return Objects{}, false
	}
	return c.objs, true
}
