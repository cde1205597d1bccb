package services

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hookd/hookd/internal/grainpb"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAuthParseTokens(t *testing.T) {
	t.Parallel()
	secretHash := sha256.Sum256([]byte("hashed-secret"))
	text := strings.Join([]string{
		"# gateways",
		"ingest gw-token-0123456789",
		"",
		"   # indented comment",
		"read,admin  ops-token",
		"all sha256:" + hex.EncodeToString(secretHash[:]),
		"\tread\tr#not-a-comment\t",
	}, "\n")
	got, err := ParseTokens(text, "")
	if err != nil {
		t.Fatalf("ParseTokens: %v", err)
	}
	want := []Token{
		NewToken("gw-token-0123456789", ScopeIngest),
		NewToken("ops-token", ScopeRead|ScopeAdmin),
		{Hash: secretHash, Scopes: ScopeAll},
		NewToken("r#not-a-comment", ScopeRead),
	}
	if len(got) != len(want) {
		t.Fatalf("got %d tokens, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("token %d: got scopes %v hash %x, want scopes %v hash %x", i, got[i].Scopes, got[i].Hash[:4], want[i].Scopes, want[i].Hash[:4])
		}
	}

	env, err := ParseTokens("read r-token; ingest,read g-token;;", ";")
	if err != nil || len(env) != 2 || env[0] != NewToken("r-token", ScopeRead) || env[1] != NewToken("g-token", ScopeIngest|ScopeRead) {
		t.Errorf("HOOKD_TOKENS form: got %v, %v", env, err)
	}
}

func TestAuthParseTokensErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ text, wantErr string }{
		{"read", "entry 1: want \"<scopes> <token>\", got 1 fields"},
		{"read tok extra-secret", "entry 1: want"},
		{"# ok\nwrite very-secret-token", "entry 2: unknown scope \"write\""},
		{"read, very-secret-token", "unknown scope \"\""},
		{"read sha256:abcd", "entry 1: sha256: wants 64 hex digits"},
		{"read sha256:" + strings.Repeat("zz", 32), "sha256: wants 64 hex digits"},
	} {
		_, err := ParseTokens(tc.text, "")
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseTokens(%q): got %v, want an error containing %q", tc.text, err, tc.wantErr)
		}
		if err != nil && (strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "extra")) {
			t.Errorf("ParseTokens(%q): the error %q shows the token", tc.text, err)
		}
	}
}

func FuzzParseTokens(f *testing.F) {
	f.Add("read tok\n# c\nall sha256:"+strings.Repeat("ab", 32), "")
	f.Add("read a; ingest b", ";")
	f.Fuzz(func(t *testing.T, text, sep string) {
		toks, err := ParseTokens(text, sep)
		for _, tok := range toks {
			if tok.Scopes == 0 || tok.Scopes&^ScopeAll != 0 {
				t.Fatalf("token with scopes %b", tok.Scopes)
			}
		}
		_ = err
	})
}

type nopApplier struct{}

func (nopApplier) Apply(context.Context, string, *grainpb.ApplyRequest) (*grainpb.ApplyResponse, error) {
	return nil, nil
}

// Every method of every service Register installs needs an entry in
// methodScopes: a missing one would be denied to everyone.
func TestAuthEveryRegisteredMethodHasAScope(t *testing.T) {
	t.Parallel()
	srv := grpc.NewServer()
	var st struct{ store.Store }
	var ds struct{ store.DeliveryStore }
	endpoints := &EndpointConfig{Store: ds, CheckURL: func(context.Context, string) error { return nil }}
	var cl struct{ store.CustomerLister }
	admin := &AdminConfig{Reproject: nopReprojector{}, Customers: cl}
	if _, err := Register(srv, Config{Store: st, Actors: nopApplier{}, Wakeup: NewWakeup(), Endpoints: endpoints, Admin: admin}); err != nil {
		t.Fatal(err)
	}
	info := srv.GetServiceInfo()
	if len(info) < 5 {
		t.Fatalf("only %d services registered", len(info))
	}
	seen := map[string]bool{}
	for svc, si := range info {
		for _, m := range si.Methods {
			name := "/" + svc + "/" + m.Name
			seen[name] = true
			if _, ok := MethodScope(name); !ok {
				t.Errorf("%s is registered but not in methodScopes", name)
			}
		}
	}
	for name := range methodScopes {
		if !seen[name] {
			t.Errorf("methodScopes lists %s, which is not registered", name)
		}
	}
}

type nopReprojector struct{}

func (nopReprojector) Reproject(context.Context, string, bool) (*grainpb.ReprojectResponse, error) {
	return nil, nil
}

func callCtx(token string) context.Context {
	ctx := context.Background()
	if token == "" {
		return ctx
	}
	return metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+token))
}

func TestAuthCheck(t *testing.T) {
	t.Parallel()
	a := NewAuth(AuthConfig{Static: []Token{
		NewToken("reader", ScopeRead),
		NewToken("gateway", ScopeIngest),
		NewToken("root", ScopeAll),
	}})
	ingest := hookdv1.IngestService_Ingest_FullMethodName
	replay := hookdv1.EventService_ReplayEvent_FullMethodName
	get := hookdv1.CustomerService_GetCustomer_FullMethodName
	for _, tc := range []struct {
		ctx    context.Context
		method string
		want   codes.Code
	}{
		{callCtx(""), ingest, codes.Unauthenticated},
		{callCtx("nope"), ingest, codes.Unauthenticated},
		{callCtx("reader"), ingest, codes.PermissionDenied},
		{callCtx("gateway"), ingest, codes.OK},
		{callCtx("root"), ingest, codes.OK},
		{callCtx("reader"), get, codes.OK},
		{callCtx("gateway"), get, codes.PermissionDenied},
		{callCtx("reader"), replay, codes.PermissionDenied},
		{callCtx("root"), replay, codes.OK},
		{callCtx(""), "/grpc.health.v1.Health/Check", codes.OK},
		{callCtx("root"), "/hookd.v1.Unknown/Method", codes.PermissionDenied},
		{metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Basic root")), get, codes.Unauthenticated},
		{metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "bearer reader")), get, codes.OK},
		{metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer reader", "authorization", "Bearer root")), replay, codes.Unauthenticated},
	} {
		if got := status.Code(a.check(tc.ctx, tc.method)); got != tc.want {
			md, _ := metadata.FromIncomingContext(tc.ctx)
			t.Errorf("%s with %v: got %v, want %v", tc.method, md.Get("authorization"), got, tc.want)
		}
	}

	var open *Auth
	if err := open.check(callCtx(""), ingest); err != nil {
		t.Errorf("no tokens configured: Ingest got %v, want allowed", err)
	}
	if got := status.Code(open.check(callCtx(""), "/x.Y/Z")); got != codes.PermissionDenied {
		t.Errorf("no tokens configured: unknown method got %v, want PermissionDenied", got)
	}
}

func TestAuthTokenFileReload(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tokens")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("read first-token\n")
	hup := make(chan os.Signal, 1)
	a := NewAuth(AuthConfig{File: file, Reload: hup, PollInterval: 10 * time.Millisecond, Static: []Token{NewToken("static", ScopeRead)}})
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	defer a.Stop() // twice is fine
	get := hookdv1.CustomerService_GetCustomer_FullMethodName
	eventually := func(token string, want codes.Code) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := status.Code(a.check(callCtx(token), get))
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("token %s: got %v, want %v", token, got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	eventually("first-token", codes.OK)
	write("read second-token\n")
	eventually("second-token", codes.OK)
	eventually("first-token", codes.Unauthenticated)

	// A broken file keeps the tokens in force.
	write("read second-token\nbogus\n")
	time.Sleep(100 * time.Millisecond)
	eventually("second-token", codes.OK)
	os.Remove(file)
	time.Sleep(100 * time.Millisecond)
	eventually("second-token", codes.OK)
	eventually("static", codes.OK)

	// SIGHUP re-reads even what the poll would skip.
	write("ingest third-token\n")
	hup <- nil
	eventually("third-token", codes.PermissionDenied)
	eventually("second-token", codes.Unauthenticated)
}

func TestAuthStartFailsOnABadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := NewAuth(AuthConfig{File: filepath.Join(dir, "missing")}).Start(); err == nil {
		t.Error("Start with a missing token file: got nil, want an error")
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("root my-secret-token extra\n"), 0o600)
	err := NewAuth(AuthConfig{File: bad}).Start()
	if err == nil || strings.Contains(err.Error(), "my-secret-token") {
		t.Errorf("Start with a malformed token file: got %v, want an error that does not show the token", err)
	}
	a := NewAuth(AuthConfig{})
	a.Stop() // before Start
}
