package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/cliflag"
	"github.com/hookd/hookd/services"
)

// Defaults that other commands (send) must agree with.
const (
	defaultDataDir   = "./hookd-data"
	defaultHTTPAddr  = "127.0.0.1:8080"
	defaultAdminAddr = "127.0.0.1:9091" // hookd bench reads /metrics here
)

// config is everything `hookd` (serve) is configured by. Every field has a
// flag and a HOOKD_* environment twin (flag --grpc-addr ↔ HOOKD_GRPC_ADDR);
// a flag given on the command line wins over the environment.
type config struct {
	// ReconcileInterval is how often a member with an API key lists
	// Stripe's events to find the missed ones (0: never).
	ReconcileInterval time.Duration
	// StripeAPIRate bounds the backfill's Stripe API requests per second.
	StripeAPIRate float64
	// Delivery is push delivery's configuration (--delivery-*).
	Delivery deliveryConfig
	// DatabaseURL selects the store: a postgres:// URL selects PostgreSQL.
	DatabaseURL string
	// DataDir is where the embedded store keeps its data.
	DataDir string
	// HTTPAddr is where the webhook gateway listens.
	HTTPAddr string
	// GRPCAddr is where the gRPC services listen.
	GRPCAddr string
	// StripeSecrets are the accepted webhook signing secrets (rotation).
	// When none is given, hookd generates one and keeps it in DataDir.
	StripeSecrets []string
	// StripeAPIKey and StripeAPIURL reach the Stripe API, to fetch what an
	// event parked past its deadline waits for.
	StripeAPIKey string
	StripeAPIURL string
	// Cluster is the membership provider: local (one process), etcd, or
	// k8s (the Kubernetes pod API, in-cluster).
	Cluster string
	// EtcdEndpoints are used with --cluster etcd.
	EtcdEndpoints []string
	// Roles are the parts this process runs: gateway, member.
	Roles []string
	// IngestAddr is where a gateway-only process sends its gRPC calls.
	IngestAddr string
	// AdminToken, when set, is a bearer token with every scope (ingest,
	// read, admin); setting it turns authentication on for every gRPC
	// method but health.
	AdminToken string
	// TokenFile, when set, is a file of bearer tokens with their scopes
	// (services.ParseTokens' format), re-read when it changes and on
	// SIGHUP. Setting it turns authentication on, even while it is empty.
	TokenFile string
	// Tokens are bearer tokens given in the environment (HOOKD_TOKENS):
	// the token file's format, entries separated by ';' or newlines.
	Tokens []services.Token
	// IngestToken is the bearer token (with the ingest scope) this
	// process's gateway sends with IngestService calls over gRPC.
	IngestToken string
	// Insecure allows serving gRPC on a non-loopback address with no
	// credential configured, and the actor port without cluster TLS:
	// anyone who reaches them can read and write everything.
	Insecure bool
	// MaxBodyBytes is the largest webhook body accepted.
	MaxBodyBytes int64
	// MaxStreams caps the NotificationService/Subscribe streams a member
	// serves at once; the next is answered RESOURCE_EXHAUSTED.
	MaxStreams int
	// MaxHTTPConns caps the connections the HTTP listener holds open at
	// once; further ones wait in the kernel's accept queue.
	MaxHTTPConns int
	// HTTPEngine is the server the webhook listener runs on: "fasthttp"
	// (gateway.Fast) or "net/http".
	HTTPEngine string
	// Tolerance is how far a signature timestamp may be from now, either way.
	Tolerance time.Duration
	// IdleTimeout passivates a customer actor idle this long.
	IdleTimeout time.Duration
	// ParkDeadline is how long an event may wait for its prerequisite
	// before hookd resolves it (from the Stripe API when it has a key).
	ParkDeadline time.Duration
	// CommitBatch is the most writes that one PostgreSQL transaction
	// commits together (group commit); 1 turns batching off.
	CommitBatch int
	// CommitLinger is how long the committer may wait for more writes
	// while a batch is smaller than the previous one.
	CommitLinger time.Duration
	// DrainDelay is how long a clustered member, on SIGTERM, keeps serving
	// after telling its health service it is stopping, so that gateways
	// move away first.
	DrainDelay time.Duration
	// ShutdownTimeout bounds draining on SIGTERM.
	ShutdownTimeout time.Duration
	// AdminAddr is where the admin listener serves /metrics and
	// /debug/pprof/; empty disables it. It has no authentication: keep it
	// on loopback or a private interface.
	AdminAddr string
	// debugAddr is the deprecated --debug-addr (see resolveAdminAddr).
	debugAddr string
	// warnings are said once at start (deprecated flags).
	warnings []string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text or json (one JSON object a line).
	LogFormat string
	// ClusterPort is the member's protoactor remote port (0: any free port).
	ClusterPort int
	// ClusterHost is the address the member listens on for cluster
	// traffic and advertises to the other members.
	ClusterHost string
	// TLSCert and TLSKey (PEM files), when set, turn on TLS for the HTTP
	// listener and the gRPC listener; the pair is re-read when the files
	// change.
	TLSCert string
	TLSKey  string
	// GRPCClientCA is a PEM CA bundle; when set, gRPC requires client
	// certificates signed by it (mutual TLS). It needs TLSCert and TLSKey.
	GRPCClientCA string
	// IngestCA is a PEM CA bundle that verifies the members a gateway
	// dials; when set, the gateway dials them with TLS.
	IngestCA string
	// IngestCert and IngestKey are the gateway's client certificate for
	// members that require one (--grpc-client-ca on them). They need IngestCA.
	IngestCert string
	IngestKey  string
	// ClusterTLSCert, ClusterTLSKey and ClusterTLSCA, all or none, turn on
	// mutual TLS for member-to-member cluster traffic: each member presents
	// the pair and requires (and verifies peers by) the CA.
	ClusterTLSCert string
	ClusterTLSKey  string
	ClusterTLSCA   string
	// ClusterTLSServerName, when set, is the name every member's cluster
	// certificate is verified for, instead of the host it is dialed at (its
	// --cluster-host, in Kubernetes a pod IP no certificate names).
	ClusterTLSServerName string
}

// parseServe fills a config from args and the environment, applies
// defaults and validates it.
func parseServe(args []string, getenv func(string) string) (config, error) {
	var c config
	fs := flag.NewFlagSet("hookd", flag.ContinueOnError)
	fs.StringVar(&c.DatabaseURL, "database-url", "", "store: a postgres:// URL selects PostgreSQL; empty selects the embedded store in --data-dir")
	fs.StringVar(&c.DataDir, "data-dir", defaultDataDir, "where the embedded store keeps its data")
	fs.StringVar(&c.HTTPAddr, "http-addr", defaultHTTPAddr, "HTTP gateway listen address")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:9090", "gRPC listen address")
	secrets := fs.String("stripe-webhook-secret", "", "Stripe webhook signing secrets, comma-separated; any of them is accepted")
	fs.StringVar(&c.StripeAPIKey, "stripe-api-key", "", "Stripe API key, to fetch what an event parked past its deadline waits for (optional)")
	fs.StringVar(&c.StripeAPIURL, "stripe-api-url", "", "Stripe API base URL (default https://api.stripe.com; for tests and stripe-mock)")
	fs.DurationVar(&c.ReconcileInterval, "reconcile-interval", 10*time.Minute, "with --stripe-api-key: list Stripe's events since the last reconciliation at start and this often, and apply those hookd does not have (one member at a time; 0: off)")
	fs.Float64Var(&c.StripeAPIRate, "stripe-api-rate", 20, "most Stripe API list requests per second a backfill or reconciliation makes (Stripe allows 25/s in test mode, 100/s live)")
	fs.DurationVar(&c.ParkDeadline, "park-deadline", 30*time.Second, "how long an event may wait for its prerequisite before hookd resolves it")
	fs.StringVar(&c.Cluster, "cluster", "local", "cluster membership: local (one process), etcd, or k8s")
	etcd := fs.String("etcd-endpoints", "", "etcd endpoints, comma-separated (with --cluster etcd)")
	roles := fs.String("roles", "gateway,member", "roles this process runs: gateway, member")
	fs.StringVar(&c.IngestAddr, "ingest-addr", "", "gRPC address a gateway-only process forwards to")
	fs.StringVar(&c.AdminToken, "admin-token", "", "a gRPC bearer token with every scope (ingest, read, admin); once any token is set, every gRPC call but health needs authorization: Bearer <token>")
	fs.StringVar(&c.TokenFile, "token-file", "", "file of gRPC bearer tokens, one \"<scopes> <token>\" or \"<scopes> sha256:<hex>\" a line (scopes: ingest,read,admin or all; # comments); re-read when it changes and on SIGHUP")
	tokens := fs.String("tokens", "", "gRPC bearer tokens in the --token-file format, entries separated by ';' (prefer the environment twin HOOKD_TOKENS: command lines are visible to other users)")
	fs.StringVar(&c.GRPCClientCA, "grpc-client-ca", "", "PEM CA bundle; when set, gRPC requires client certificates signed by it")
	fs.StringVar(&c.IngestToken, "ingest-token", "", "bearer token (ingest scope) the gateway sends to --ingest-addr; sent in plaintext until gRPC runs over TLS: keep it on loopback or a private network")
	fs.BoolVar(&c.Insecure, "insecure", false, "allow gRPC on a non-loopback address with no credential (no token, no --grpc-client-ca), and the actor port (--cluster-host) without --cluster-tls-*: anyone who reaches them can read and forge everything")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", 1<<20, "largest webhook body accepted, bytes")
	fs.IntVar(&c.MaxStreams, "max-streams", 10000, "most NotificationService/Subscribe streams served at once; the next is answered RESOURCE_EXHAUSTED")
	fs.IntVar(&c.MaxHTTPConns, "max-http-conns", 4096, "most connections the HTTP listener holds open at once (idle keep-alive ones count); more wait to be accepted")
	fs.StringVar(&c.HTTPEngine, "http-engine", engineFast, `the webhook listener's HTTP server: "fasthttp" (less CPU per webhook) or "net/http" (HTTP/2 over TLS)`)
	fs.DurationVar(&c.Tolerance, "tolerance", 300*time.Second, "how far a signature timestamp may be from now, either way")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 5*time.Minute, "passivate a customer actor idle this long")
	fs.IntVar(&c.CommitBatch, "commit-batch", 64, "PostgreSQL group commit: the most events one transaction commits together (1: one transaction per actor commit: customers do not share transactions)")
	fs.DurationVar(&c.CommitLinger, "commit-linger", 500*time.Microsecond, "PostgreSQL group commit: how long to wait for more events while a batch is smaller than the previous one")
	fs.DurationVar(&c.DrainDelay, "drain-delay", time.Second, "with --cluster etcd or k8s: how long a member keeps serving after reporting NOT_SERVING on SIGTERM")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long SIGTERM waits for in-flight work")
	adminFlags(fs, &c)
	deliveryFlags(fs, &c.Delivery)
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text (key=value) or json (one JSON object a line)")
	fs.IntVar(&c.ClusterPort, "cluster-port", 0, "port for cluster traffic between members (0: any free port)")
	fs.StringVar(&c.ClusterHost, "cluster-host", "127.0.0.1", "address other members reach this member at (it also listens there); in Kubernetes, the pod IP")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate (chain) for the HTTP and gRPC listeners; with --tls-key turns on TLS; re-read when the file changes")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&c.IngestCA, "ingest-ca", "", "PEM CA bundle that verifies the members' certificates; when set, a gateway dials --ingest-addr with TLS")
	fs.StringVar(&c.IngestCert, "ingest-cert", "", "PEM client certificate a gateway presents to members (with --ingest-ca; for members with --grpc-client-ca)")
	fs.StringVar(&c.IngestKey, "ingest-key", "", "PEM private key for --ingest-cert")
	fs.StringVar(&c.ClusterTLSCert, "cluster-tls-cert", "", "PEM certificate a member presents to other members on the cluster port (mutual TLS; with --cluster-tls-key and --cluster-tls-ca)")
	fs.StringVar(&c.ClusterTLSKey, "cluster-tls-key", "", "PEM private key for --cluster-tls-cert")
	fs.StringVar(&c.ClusterTLSCA, "cluster-tls-ca", "", "PEM CA bundle that signs every member's --cluster-tls-cert; members verify each other by it")
	fs.StringVar(&c.ClusterTLSServerName, "cluster-tls-server-name", "", "name other members' --cluster-tls-cert must carry (default: the host each is dialed at, its --cluster-host)")
	if err := parseWithEnv(fs, args, getenv); err != nil {
		return c, err
	}
	c.StripeSecrets = splitList(*secrets)
	c.EtcdEndpoints = splitList(*etcd)
	c.Roles = splitList(*roles)
	if err := c.resolveAdminAddr(fs); err != nil {
		return c, err
	}
	var err error
	if c.Tokens, err = services.ParseTokens(*tokens, ";"); err != nil {
		return c, fmt.Errorf("--tokens / HOOKD_TOKENS: %w", err)
	}
	return c, c.validate()
}

// credentialed says whether gRPC callers must prove who they are: a
// bearer token or a client certificate is configured.
func (c config) credentialed() bool {
	return c.AdminToken != "" || c.TokenFile != "" || len(c.Tokens) > 0 || c.GRPCClientCA != ""
}

// clusterTLS says whether members authenticate each other on the actor
// port: all three --cluster-tls-* files are configured.
func (c config) clusterTLS() bool {
	return c.ClusterTLSCert != "" && c.ClusterTLSKey != "" && c.ClusterTLSCA != ""
}

// authTokens are the tokens that do not change while hookd runs.
func (c config) authTokens() []services.Token {
	toks := append([]services.Token(nil), c.Tokens...)
	if c.AdminToken != "" {
		toks = append(toks, services.NewToken(c.AdminToken, services.ScopeAll))
	}
	return toks
}

// isLoopbackHost says whether host (a name or an IP, without a port)
// is reachable only from this machine. "" and unspecified addresses
// (0.0.0.0, ::) listen on every interface: not loopback.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // IPv6 zone
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isLoopbackAddr says whether a host:port listen or dial address is on
// loopback. A gRPC target (dns:///name:port) is reduced to its address.
func isLoopbackAddr(addr string) bool {
	if i := strings.Index(addr, ":///"); i >= 0 {
		addr = addr[i+4:]
	}
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopbackHost(host)
}

func (c config) hasRole(r string) bool {
	for _, x := range c.Roles {
		if x == r {
			return true
		}
	}
	return false
}

func (c config) validate() error {
	var errs []error
	for _, r := range c.Roles {
		if r != "gateway" && r != "member" {
			errs = append(errs, fmt.Errorf("unknown role %q (want gateway, member)", r))
		}
	}
	if len(c.Roles) == 0 {
		errs = append(errs, errors.New("--roles names no role"))
	}
	if c.hasRole("gateway") && !c.hasRole("member") && c.IngestAddr == "" {
		errs = append(errs, errors.New("--ingest-addr is required when the gateway runs without the member role"))
	}
	switch c.Cluster {
	case "local", "k8s":
	case "etcd":
		if len(c.EtcdEndpoints) == 0 {
			errs = append(errs, errors.New("--cluster etcd needs --etcd-endpoints"))
		}
	default:
		errs = append(errs, fmt.Errorf("--cluster %q: want local, etcd or k8s", c.Cluster))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("--max-body-bytes must be positive"))
	}
	if c.MaxStreams < 1 {
		errs = append(errs, errors.New("--max-streams must be at least 1"))
	}
	if c.MaxHTTPConns < 1 {
		errs = append(errs, errors.New("--max-http-conns must be at least 1"))
	}
	if c.HTTPEngine != engineFast && c.HTTPEngine != engineNet {
		errs = append(errs, fmt.Errorf("--http-engine %q: want %q or %q", c.HTTPEngine, engineFast, engineNet))
	}
	if c.CommitBatch < 1 {
		errs = append(errs, errors.New("--commit-batch must be at least 1"))
	}
	if c.ParkDeadline < time.Second {
		errs = append(errs, errors.New("--park-deadline must be at least 1s"))
	}
	if c.Tolerance <= 0 {
		errs = append(errs, errors.New("--tolerance must be positive"))
	}
	if c.LogFormat != "" && c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	errs = append(errs, c.validateAdmin())
	// Secure by default: with nothing to authenticate callers by, the
	// gRPC API stays on loopback unless --insecure.
	if c.hasRole("member") && !c.credentialed() && !c.Insecure && !isLoopbackAddr(c.GRPCAddr) {
		errs = append(errs, fmt.Errorf("--grpc-addr %s is not a loopback address and no gRPC credential is configured, so anyone who reaches it could read every customer and forge events: "+
			"add bearer tokens (--token-file, HOOKD_TOKENS or --admin-token), or client certificates (--grpc-client-ca), "+
			"or pass --insecure to serve without authentication on purpose", c.GRPCAddr))
	}
	// The actor port checks no token: gRPC credentials do not protect it,
	// only mutual TLS between members does.
	if c.hasRole("member") && !c.clusterTLS() && !c.Insecure && !isLoopbackHost(c.ClusterHost) {
		errs = append(errs, fmt.Errorf("--cluster-host %s is not a loopback address and cluster traffic is not mutually authenticated, so anyone who reaches the actor port could send grain messages and forge events: "+
			"add mutual TLS between members (--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca, and --cluster-tls-server-name where members are dialed at addresses their certificates do not name), "+
			"or pass --insecure to serve it without authentication on purpose", c.ClusterHost))
	}
	// A gateway that forwards over the network needs a token the members
	// accept; fail at start rather than answer every webhook 503.
	if c.hasRole("gateway") && c.IngestAddr != "" && c.IngestToken == "" && c.IngestCert == "" && !c.Insecure {
		for _, a := range splitList(c.IngestAddr) {
			if !isLoopbackAddr(a) {
				errs = append(errs, fmt.Errorf("--ingest-addr %s is not a loopback address: pass --ingest-token (HOOKD_INGEST_TOKEN), a token with the ingest scope, so that members accept this gateway's calls, or --insecure if the members run without authentication", a))
				break
			}
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if c.GRPCClientCA != "" && c.TLSCert == "" {
		errs = append(errs, errors.New("--grpc-client-ca needs --tls-cert and --tls-key (client certificates are checked over TLS)"))
	}
	if (c.IngestCert == "") != (c.IngestKey == "") {
		errs = append(errs, errors.New("--ingest-cert and --ingest-key go together"))
	}
	if c.IngestCert != "" && c.IngestCA == "" {
		errs = append(errs, errors.New("--ingest-cert needs --ingest-ca (a client certificate is presented over TLS)"))
	}
	if n := countSet(c.ClusterTLSCert, c.ClusterTLSKey, c.ClusterTLSCA); n != 0 && n != 3 {
		errs = append(errs, errors.New("--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca go together"))
	}
	if c.ClusterTLSServerName != "" && c.ClusterTLSCA == "" {
		errs = append(errs, errors.New("--cluster-tls-server-name needs --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca"))
	}
	return errors.Join(errs...)
}

func countSet(values ...string) int {
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	return n
}

// parseWithEnv parses args, then fills every flag not given on the command
// line from its HOOKD_* environment twin.
func parseWithEnv(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := envName(f.Name)
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	return errors.Join(errs...)
}

// envName maps a flag name to its environment twin: grpc-addr → HOOKD_GRPC_ADDR.
func envName(flagName string) string {
	return "HOOKD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// The values of --http-engine.
const (
	engineFast = "fasthttp"
	engineNet  = "net/http"
)
