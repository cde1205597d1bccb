package services

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	"github.com/hookd/hookd/internal/startstop"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// Scopes is a set of the permissions a bearer token grants.
type Scopes uint8

// The scopes a token may hold. A method needs exactly one (methodScopes).
const (
	// ScopeIngest allows IngestService: forwarding verified webhooks.
	ScopeIngest Scopes = 1 << iota
	// ScopeRead allows reading state: CustomerService, EventService's
	// reads, NotificationService and server reflection.
	ScopeRead
	// ScopeAdmin allows calls that change stored data on request
	// (EventService.ReplayEvent), every EndpointService call (they
	// manage where notifications go, and reveal signing secrets) and
	// AdminService (backfill and re-projection).
	ScopeAdmin

	// ScopeAll is every scope (what --admin-token grants).
	ScopeAll = ScopeIngest | ScopeRead | ScopeAdmin
	// scopeOpen marks a method that needs no token (health).
	scopeOpen Scopes = 0
)

var scopeNames = []struct {
	s    Scopes
	name string
}{{ScopeIngest, "ingest"}, {ScopeRead, "read"}, {ScopeAdmin, "admin"}}

// String lists the scopes comma-separated, as the token file spells them.
func (s Scopes) String() string {
	var names []string
	for _, n := range scopeNames {
		if s&n.s != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// parseScopes reads "ingest,read" (or "all").
func parseScopes(field string) (Scopes, error) {
	var s Scopes
	for _, name := range strings.Split(field, ",") {
		if name == "all" || name == "*" {
			s |= ScopeAll
			continue
		}
		found := false
		for _, n := range scopeNames {
			if n.name == name {
				s |= n.s
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown scope %q (want ingest, read, admin or all)", name)
		}
	}
	return s, nil
}

// methodScopes maps every gRPC method hookd serves to the scope it needs.
// A method that is not here is denied to everyone, with or without a
// token, so that a new RPC cannot be served unguarded by mistake (a test
// checks that every registered method is listed).
var methodScopes = map[string]Scopes{
	hookdv1.IngestService_Ingest_FullMethodName:                            ScopeIngest,
	hookdv1.CustomerService_GetCustomer_FullMethodName:                     ScopeRead,
	hookdv1.EventService_ListEvents_FullMethodName:                         ScopeRead,
	hookdv1.EventService_GetEvent_FullMethodName:                           ScopeRead,
	hookdv1.EventService_ReplayEvent_FullMethodName:                        ScopeAdmin,
	hookdv1.NotificationService_Subscribe_FullMethodName:                   ScopeRead,
	hookdv1.AdminService_Backfill_FullMethodName:                           ScopeAdmin,
	hookdv1.AdminService_Reproject_FullMethodName:                          ScopeAdmin,
	hookdv1.EndpointService_CreateEndpoint_FullMethodName:                  ScopeAdmin,
	hookdv1.EndpointService_GetEndpoint_FullMethodName:                     ScopeAdmin,
	hookdv1.EndpointService_ListEndpoints_FullMethodName:                   ScopeAdmin,
	hookdv1.EndpointService_UpdateEndpoint_FullMethodName:                  ScopeAdmin,
	hookdv1.EndpointService_DeleteEndpoint_FullMethodName:                  ScopeAdmin,
	hookdv1.EndpointService_PauseEndpoint_FullMethodName:                   ScopeAdmin,
	hookdv1.EndpointService_ResumeEndpoint_FullMethodName:                  ScopeAdmin,
	hookdv1.EndpointService_RotateSecret_FullMethodName:                    ScopeAdmin,
	hookdv1.EndpointService_ListDeliveries_FullMethodName:                  ScopeAdmin,
	hookdv1.EndpointService_GetDelivery_FullMethodName:                     ScopeAdmin,
	hookdv1.EndpointService_ListAttempts_FullMethodName:                    ScopeAdmin,
	hookdv1.EndpointService_Redeliver_FullMethodName:                       ScopeAdmin,
	hookdv1.EndpointService_RedeliverFailed_FullMethodName:                 ScopeAdmin,
	healthpb.Health_Check_FullMethodName:                                   scopeOpen,
	healthpb.Health_List_FullMethodName:                                    scopeOpen,
	healthpb.Health_Watch_FullMethodName:                                   scopeOpen,
	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      ScopeRead,
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: ScopeRead,
}

// MethodScope says which scope the gRPC method fullMethod
// ("/package.Service/Method") needs; ok is false for a method hookd does
// not know, which is denied.
func MethodScope(fullMethod string) (s Scopes, ok bool) {
	s, ok = methodScopes[fullMethod]
	return s, ok
}

// Token is one accepted bearer token: only its SHA-256 is kept.
type Token struct {
	Hash   [sha256.Size]byte
	Scopes Scopes
}

// NewToken returns the Token for secret with the given scopes.
func NewToken(secret string, s Scopes) Token {
	return Token{Hash: sha256.Sum256([]byte(secret)), Scopes: s}
}

// ParseTokens reads tokens in hookd's token format, one per line (a line
// of a --token-file, or an entry of HOOKD_TOKENS, where ';' also ends an
// entry):
//
//	# a comment: a line whose first non-blank character is '#'
//	<scopes> <token>
//	<scopes> sha256:<64 hex digits>
//
// <scopes> is a comma-separated list of ingest, read and admin (or all);
// <token> is any run of non-blank characters (at least 16 are advised),
// and sha256:<hex> names a token by its SHA-256 instead, so that the file
// need not hold the secret (`printf %s "$TOKEN" | sha256sum`). Blank lines
// are ignored. Errors name the line, never the token.
func ParseTokens(text string, sep string) ([]Token, error) {
	var out []Token
	var errs []error
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		entries := []string{sc.Text()}
		if sep != "" {
			entries = strings.Split(sc.Text(), sep)
		}
		for _, line := range entries {
			n++
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			fields := strings.Fields(line)
			if len(fields) != 2 {
				errs = append(errs, fmt.Errorf("entry %d: want \"<scopes> <token>\", got %d fields", n, len(fields)))
				continue
			}
			s, err := parseScopes(fields[0])
			if err != nil {
				errs = append(errs, fmt.Errorf("entry %d: %w", n, err))
				continue
			}
			t := Token{Scopes: s}
			if hexHash, ok := strings.CutPrefix(fields[1], "sha256:"); ok {
				b, err := hex.DecodeString(hexHash)
				if err != nil || len(b) != sha256.Size {
					errs = append(errs, fmt.Errorf("entry %d: sha256: wants 64 hex digits", n))
					continue
				}
				copy(t.Hash[:], b)
			} else {
				t.Hash = sha256.Sum256([]byte(fields[1]))
			}
			out = append(out, t)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// AuthConfig says which bearer tokens a hookd gRPC server accepts.
type AuthConfig struct {
	// Static are the tokens that never change while the process runs
	// (HOOKD_TOKENS, --admin-token).
	Static []Token
	// File, when set, is a token file (ParseTokens' format) read at Start,
	// again on every value received from Reload, and when its content
	// changes (checked every PollInterval). A file that cannot be read or
	// parsed at Start fails Start; later, the tokens it held stay in force
	// and the error is logged.
	File string
	// Reload triggers a re-read of File (wire SIGHUP to it). May be nil.
	Reload <-chan os.Signal
	// PollInterval is how often File is looked at. Default 1 s.
	PollInterval time.Duration
	Logger       *slog.Logger
}

// Auth checks bearer tokens on every gRPC call. With no token configured
// (no Static token and no File) every call is let through, as hookd was
// before tokens; once any is configured, every method but health needs a
// token with the method's scope. Methods missing from methodScopes are
// always denied.
//
// The zero Auth, and a nil *Auth, let every known method through.
type Auth struct {
	cfg     AuthConfig
	enabled bool
	tokens  atomic.Pointer[[]Token] // Static and the file's, as last loaded

	// Owned by Start, then by the watcher goroutine.
	lastFile []byte // the file's content last seen
	parsedOK bool   // whether lastFile parsed
	lastErr  string // the last reload error logged, so that a broken file logs once

	group startstop.Group // runs the token file watcher
}

// NewAuth returns an Auth for cfg; call Start before serving.
func NewAuth(cfg AuthConfig) *Auth {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	a := &Auth{cfg: cfg, enabled: len(cfg.Static) > 0 || cfg.File != ""}
	a.set(nil)
	return a
}

// Enabled says whether calls need a token.
func (a *Auth) Enabled() bool { return a != nil && a.enabled }

// Start loads the token file, if any, and starts watching it.
func (a *Auth) Start() error {
	if a.cfg.File == "" {
		return nil
	}
	if err := a.load(); err != nil {
		return err
	}
	if err := a.group.Start(context.Background()); err != nil {
		return fmt.Errorf("token file watcher: %w", err)
	}
	return a.group.Go(a.watch)
}

// Stop stops watching the token file. It is safe to call twice, and
// before Start.
func (a *Auth) Stop() {
	a.group.Stop()
}

func (a *Auth) watch(ctx context.Context) {
	tick := time.NewTicker(a.cfg.PollInterval)
	defer tick.Stop()
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-a.cfg.Reload:
			forced = true
		}
		raw, err := os.ReadFile(a.cfg.File)
		if err == nil && !forced && bytes.Equal(raw, a.lastFile) {
			if a.lastErr != "" && a.parsedOK {
				a.lastErr = "" // the file is back as it was when it loaded
			}
			continue
		}
		if err == nil {
			err = a.apply(raw)
		}
		if err != nil {
			if msg := err.Error(); forced || msg != a.lastErr {
				a.lastErr = msg
				a.cfg.Logger.Error("token file reload failed; the tokens loaded before stay in force", "file", a.cfg.File, "err", err)
			}
			continue
		}
		a.lastErr = ""
		a.cfg.Logger.Info("token file reloaded", "file", a.cfg.File, "tokens", len(*a.tokens.Load())-len(a.cfg.Static))
	}
}

// load reads the token file at Start.
func (a *Auth) load() error {
	raw, err := os.ReadFile(a.cfg.File)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	if err := a.apply(raw); err != nil {
		return err
	}
	if n := len(*a.tokens.Load()) - len(a.cfg.Static); n == 0 {
		a.cfg.Logger.Warn("token file holds no token: only health calls are allowed until one is added", "file", a.cfg.File)
	}
	return nil
}

// apply parses a token file's content and makes it the tokens in force.
// On error nothing changes, except that raw is remembered so that the
// same broken content is not parsed again every poll.
func (a *Auth) apply(raw []byte) error {
	a.lastFile = raw
	file, err := ParseTokens(string(raw), "")
	a.parsedOK = err == nil
	if err != nil {
		return fmt.Errorf("token file %s: %w", a.cfg.File, err)
	}
	a.set(file)
	return nil
}

func (a *Auth) set(file []Token) {
	all := append(append([]Token(nil), a.cfg.Static...), file...)
	a.tokens.Store(&all)
}

// check authorizes a call to fullMethod with the incoming metadata in ctx.
func (a *Auth) check(ctx context.Context, fullMethod string) error {
	need, known := methodScopes[fullMethod]
	if !known {
		return toStatus(errorf(errPermissionDenied, "%s is not in hookd's method scope table", fullMethod))
	}
	if need == scopeOpen || !a.Enabled() {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return toStatus(errorf(errUnauthenticated, "this call needs a bearer token: send the metadata authorization: Bearer <token>"))
	}
	scheme, secret, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return toStatus(errorf(errUnauthenticated, "the authorization metadata must be Bearer <token>"))
	}
	sum := sha256.Sum256([]byte(secret))
	var (
		found  int
		scopes Scopes
	)
	// Compare with every token, in constant time, without stopping early.
	for _, t := range *a.tokens.Load() {
		eq := subtle.ConstantTimeCompare(sum[:], t.Hash[:])
		found |= eq
		scopes |= t.Scopes & Scopes(-eq) // -1 is all ones: keep this token's scopes when it matched
	}
	if found != 1 {
		return toStatus(errorf(errUnauthenticated, "unknown bearer token"))
	}
	if scopes&need == 0 {
		return toStatus(errorf(errPermissionDenied, "this token lacks the %q scope that %s needs", need.String(), fullMethod))
	}
	return nil
}

// UnaryInterceptor authorizes unary calls.
func (a *Auth) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := a.check(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// StreamInterceptor authorizes streaming calls.
func (a *Auth) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if err := a.check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return h(srv, ss)
	}
}

// BearerToken returns call credentials that send "authorization: Bearer
// <token>" with every call. They do not require transport security: over
// a plaintext connection the token crosses the network in the clear, so
// use that only on loopback or a private network until gRPC runs over
// TLS.
func BearerToken(token string) credentials.PerRPCCredentials {
	return bearerToken{"Bearer " + token}
}

type bearerToken struct{ header string }

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": b.header}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return false }
