package services

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/hookd/hookd/internal/reqid"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

func TestRequestIDFromMetadata(t *testing.T) {
	in := func(id string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs(reqid.MetadataKey, id))
	}
	if got := reqid.From(requestIDFromMetadata(in("gw-7"))); got != "gw-7" {
		t.Errorf("x-request-id gw-7: ctx carries %q", got)
	}
	if got := reqid.From(requestIDFromMetadata(in(strings.Repeat("x", 200)))); got != "" {
		t.Errorf("an insane x-request-id was taken: %q", got)
	}
	if got := reqid.From(requestIDFromMetadata(context.Background())); got != "" {
		t.Errorf("no metadata: %q", got)
	}
	local := reqid.With(in("remote"), "local")
	if got := reqid.From(requestIDFromMetadata(local)); got != "local" {
		t.Errorf("in-process call: %q, want local", got)
	}
}

// recordingIngest answers every Ingest and records the request ID the
// call's context carries.
type recordingIngest struct {
	hookdv1.UnimplementedIngestServiceServer
	got chan string
}

func (r *recordingIngest) Ingest(ctx context.Context, _ *hookdv1.IngestRequest) (*hookdv1.IngestResponse, error) {
	r.got <- reqid.From(ctx)
	return &hookdv1.IngestResponse{}, nil
}

// Over a real gRPC connection, the ID a gateway put in its context
// reaches the member's handler through RequestIDUnaryClient and the
// server's interceptor; without the client interceptor it does not (the
// context alone crosses no process).
func TestRequestIDCrossesGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(ServerOptions(slog.New(slog.DiscardHandler), nil)...)
	rec := &recordingIngest{got: make(chan string, 1)}
	hookdv1.RegisterIngestServiceServer(srv, rec)
	go srv.Serve(ln)
	defer srv.Stop()
	for _, c := range []struct {
		name string
		opts []grpc.DialOption
		want string
	}{
		{"with the interceptor", []grpc.DialOption{grpc.WithUnaryInterceptor(RequestIDUnaryClient)}, "gw-req-1"},
		{"without it", nil, ""},
	} {
		conn, err := grpc.NewClient(ln.Addr().String(), append(c.opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(reqid.With(context.Background(), "gw-req-1"), 10*time.Second)
		if _, err := hookdv1.NewIngestServiceClient(conn).Ingest(ctx, &hookdv1.IngestRequest{}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := <-rec.got; got != c.want {
			t.Errorf("%s: the member's handler saw request ID %q, want %q", c.name, got, c.want)
		}
		cancel()
		conn.Close()
	}
}
