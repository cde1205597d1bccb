// Package publicdeps holds no code: its test keeps the packages other
// programs import (hookd.v1's generated code, the Go client) free of the
// member's runtime. A service that only calls hookd must not link
// protoactor-go, etcd's client or Kubernetes' client-go; the grain protocol
// that needs them lives in internal/grainpb.
package publicdeps
