package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

// Defaults that other commands (send) must agree with.
const (
	defaultDataDir  = "./hookd-data"
	defaultHTTPAddr = "127.0.0.1:8080"
)

// config is everything `hookd` (serve) is configured by. Every field has a
// flag and a HOOKD_* environment twin (flag --grpc-addr ↔ HOOKD_GRPC_ADDR);
// a flag given on the command line wins over the environment.
type config struct {
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
	// AdminToken, when set, guards admin calls (EventService.ReplayEvent).
	AdminToken string
	// MaxBodyBytes is the largest webhook body accepted.
	MaxBodyBytes int64
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
	// DebugAddr, when set, serves Go's pprof profiles there (keep it on
	// loopback).
	DebugAddr string
	// LogLevel is debug, info, warn or error.
	LogLevel string
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
	fs.DurationVar(&c.ParkDeadline, "park-deadline", 30*time.Second, "how long an event may wait for its prerequisite before hookd resolves it")
	fs.StringVar(&c.Cluster, "cluster", "local", "cluster membership: local (one process), etcd, or k8s")
	etcd := fs.String("etcd-endpoints", "", "etcd endpoints, comma-separated (with --cluster etcd)")
	roles := fs.String("roles", "gateway,member", "roles this process runs: gateway, member")
	fs.StringVar(&c.IngestAddr, "ingest-addr", "", "gRPC address a gateway-only process forwards to")
	fs.StringVar(&c.AdminToken, "admin-token", "", "when set, admin calls (EventService/ReplayEvent) need the gRPC header authorization: Bearer <token>")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", 1<<20, "largest webhook body accepted, bytes")
	fs.DurationVar(&c.Tolerance, "tolerance", 300*time.Second, "how far a signature timestamp may be from now, either way")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 5*time.Minute, "passivate a customer actor idle this long")
	fs.IntVar(&c.CommitBatch, "commit-batch", 64, "PostgreSQL group commit: the most events one transaction commits together (1: one transaction per actor commit: customers do not share transactions)")
	fs.DurationVar(&c.CommitLinger, "commit-linger", 500*time.Microsecond, "PostgreSQL group commit: how long to wait for more events while a batch is smaller than the previous one")
	fs.DurationVar(&c.DrainDelay, "drain-delay", time.Second, "with --cluster etcd or k8s: how long a member keeps serving after reporting NOT_SERVING on SIGTERM")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long SIGTERM waits for in-flight work")
	fs.StringVar(&c.DebugAddr, "debug-addr", "", "serve Go's pprof profiles (/debug/pprof/) on this address; keep it on loopback")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.IntVar(&c.ClusterPort, "cluster-port", 0, "port for cluster traffic between members (0: any free port)")
	fs.StringVar(&c.ClusterHost, "cluster-host", "127.0.0.1", "address other members reach this member at (it also listens there); in Kubernetes, the pod IP")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate (chain) for the HTTP and gRPC listeners; with --tls-key turns on TLS; re-read when the file changes")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&c.GRPCClientCA, "grpc-client-ca", "", "PEM CA bundle; when set, gRPC requires client certificates signed by it")
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
	return c, c.validate()
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
	if c.CommitBatch < 1 {
		errs = append(errs, errors.New("--commit-batch must be at least 1"))
	}
	if c.ParkDeadline < time.Second {
		errs = append(errs, errors.New("--park-deadline must be at least 1s"))
	}
	if c.Tolerance <= 0 {
		errs = append(errs, errors.New("--tolerance must be positive"))
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
	if err := fs.Parse(args); err != nil {
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
