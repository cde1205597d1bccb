package tracing

import (
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
)

// grpcOptions are the otelgrpc options of hookd's gRPC server and
// clients: spans only (hookd's metrics are Prometheus', on the admin
// listener), none for health checks (load balancers and /readyz poll them
// continually).
func grpcOptions() []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool {
			return !strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.Health/")
		}),
	}
}

// GRPCServerOptions returns the options that trace a gRPC server's calls
// (a server span each, continuing the caller's traceparent), or none with
// tracing off. Call it after Setup.
func GRPCServerOptions() []grpc.ServerOption {
	if !Enabled() {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(grpcOptions()...))}
}

// GRPCDialOptions returns the options that trace a gRPC client's calls (a
// client span each, its traceparent sent in the metadata), or none with
// tracing off. Call it after Setup.
func GRPCDialOptions() []grpc.DialOption {
	if !Enabled() {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(grpcOptions()...))}
}
