package services

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/hookd/hookd/internal/reqid"
)

// requestIDFromMetadata puts the request ID a call carries as gRPC
// metadata x-request-id (a gateway's webhook: see gateway/requestid.go)
// in ctx, when it is sane, so that log lines about the call name it.
func requestIDFromMetadata(ctx context.Context) context.Context {
	if reqid.From(ctx) != "" {
		return ctx // an in-process call already carries it
	}
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	vs := md.Get(reqid.MetadataKey)
	if len(vs) == 0 || !reqid.Valid(vs[0]) {
		return ctx
	}
	return reqid.With(ctx, vs[0])
}

// requestIDUnary and requestIDStream are the server interceptors that
// apply requestIDFromMetadata; ServerOptions installs them first.
func requestIDUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(requestIDFromMetadata(ctx), req)
}

func requestIDStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx := requestIDFromMetadata(ss.Context())
	if ctx == ss.Context() {
		return h(srv, ss)
	}
	return h(srv, &ctxStream{ServerStream: ss, ctx: ctx})
}

// ctxStream is a ServerStream with another context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// RequestIDUnaryClient is the client interceptor that carries a call's
// request ID (reqid.From) to the server as x-request-id metadata, where
// requestIDUnary takes it. A gateway that calls a member's IngestService
// over gRPC (--roles gateway) installs it; a gateway in a member calls
// it in-process, where the context already carries the ID, and pays
// nothing for metadata.
func RequestIDUnaryClient(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if id := reqid.From(ctx); id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, reqid.MetadataKey, id)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}
