package client

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The package imports only hookd's public API, gRPC (with the google.rpc
// error details), the well-known Timestamp of the API's messages and the
// standard library, so that importing it pulls in
// no actor runtime, etcd or Kubernetes client. (That hookdv1 itself pulls in none is checked where
// the grain protocol leaves it, with go list -deps.)
func TestImportsOnlyTheAPIgRPCAndTheStandardLibrary(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			switch {
			case path == "github.com/hookd/hookd/proto/hookd/v1":
			case path == "google.golang.org/grpc" || strings.HasPrefix(path, "google.golang.org/grpc/"):
			case path == "google.golang.org/genproto/googleapis/rpc/errdetails": // google.rpc error details
			case path == "google.golang.org/protobuf/types/known/timestamppb": // in hookdv1's messages already
			case !strings.Contains(first, "."): // the standard library
			default:
				t.Errorf("%s imports %s: the client may import only hookdv1, gRPC, errdetails, timestamppb and the standard library", name, path)
			}
		}
	}
}
