package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// cmdCompose loads the compose file with compose-go, the library Docker
// Compose v2 itself uses: the compose-spec JSON schema, interpolation,
// YAML anchors and merge keys, and cross-references (depends_on, networks,
// volumes). Then it checks the cluster layout hookd needs.
func cmdCompose(args []string) error {
	fs := flag.NewFlagSet("compose", flag.ContinueOnError)
	source := fs.String("source", "cmd/hookd", "hookd's main package, for its flag names")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want one compose file")
	}
	file, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	known, err := hookdFlags(*source)
	if err != nil {
		return err
	}
	var p problems
	n := 0
	check := func(ok bool, format string, a ...any) {
		n++
		if !ok {
			p.errorf(format, a...)
		}
	}
	ctx := context.Background()
	load := func(env []string) (*types.Project, error) {
		opts, err := cli.NewProjectOptions([]string{file},
			cli.WithWorkingDirectory(filepath.Dir(file)),
			cli.WithEnv(env), // only these: the check must not depend on the caller's environment
			cli.WithResolvedPaths(true),
		)
		if err != nil {
			return nil, err
		}
		return opts.LoadProject(ctx)
	}

	// The webhook secret is required: loading without it must fail.
	_, err = load(nil)
	check(err != nil && strings.Contains(err.Error(), "HOOKD_STRIPE_WEBHOOK_SECRET"),
		"loading without HOOKD_STRIPE_WEBHOOK_SECRET must fail on the ${…:?} guard, got %v", err)

	// So are the gateways' ingest token and the members' tokens file.
	checkEnv := []string{"HOOKD_STRIPE_WEBHOOK_SECRET=whsec_check", "HOOKD_INGEST_TOKEN=ingest_check", "HOOKD_TOKEN_FILE=./tokens.check"}
	for i, e := range checkEnv[1:] {
		name, _, _ := strings.Cut(e, "=")
		without := slices.Delete(slices.Clone(checkEnv), i+1, i+2)
		_, err = load(without)
		check(err != nil && strings.Contains(err.Error(), name), "loading without %s must fail on the ${…:?} guard, got %v", name, err)
	}
	proj, err := load(checkEnv)
	if err != nil {
		p.errorf("%v", err)
		return p.report(fs.Arg(0), n)
	}
	n++ // the spec schema and cross-references

	svc := func(name string) (types.ServiceConfig, bool) {
		s, ok := proj.Services[name]
		check(ok, "no service %s", name)
		return s, ok
	}
	env := func(s types.ServiceConfig, k string) string {
		if v, ok := s.Environment[k]; ok && v != nil {
			return *v
		}
		return ""
	}
	dependsOn := func(s types.ServiceConfig, on, cond string) {
		d, ok := s.DependsOn[on]
		check(ok && d.Condition == cond, "%s: must depend on %s with condition %s (got %q)", s.Name, on, cond, d.Condition)
	}
	healthcheck := func(s types.ServiceConfig, word string) {
		h := s.HealthCheck
		check(h != nil && !h.Disable && slices.Contains(h.Test, word), "%s: needs a healthcheck running %s", s.Name, word)
	}

	if s, ok := svc("postgres"); ok {
		healthcheck(s, "pg_isready")
		check(strings.HasPrefix(s.Image, "postgres:16"), "postgres: image %s, want postgres:16", s.Image)
	}
	if s, ok := svc("etcd"); ok {
		healthcheck(s, "etcdctl")
		check(strings.HasPrefix(s.Image, "quay.io/coreos/etcd:v3.5."), "etcd: image %s, want quay.io/coreos/etcd:v3.5.x", s.Image)
		adv, _ := argValue(s.Command, "advertise-client-urls")
		lis, _ := argValue(s.Command, "listen-client-urls")
		check(adv == "http://etcd:2379" && lis == "http://0.0.0.0:2379", "etcd: client URLs %q / %q", lis, adv)
	}

	// Every hookd container: known flags, the hookd image built from
	// deploy/Dockerfile, hardened like the Kubernetes pods.
	var members, gateways []types.ServiceConfig
	for _, name := range proj.ServiceNames() {
		s := proj.Services[name]
		if s.Image != "hookd:dev" {
			continue
		}
		switch {
		case strings.HasPrefix(name, "hookd-member-"):
			members = append(members, s)
		case strings.HasPrefix(name, "hookd-gateway-"):
			gateways = append(gateways, s)
		}
		var envNames []string
		for k := range s.Environment {
			envNames = append(envNames, k)
		}
		n += checkHookdArgs(&p, "service "+name, known, s.Command, envNames)
		check(s.Build != nil, "%s: no build section", name)
		if s.Build != nil {
			df := s.Build.Dockerfile
			if !filepath.IsAbs(df) {
				df = filepath.Join(s.Build.Context, df)
			}
			_, err := os.Stat(df)
			check(err == nil, "%s: build: %v", name, err)
		}
		check(s.ReadOnly && slices.Contains(s.CapDrop, "ALL"), "%s: must be read_only with cap_drop ALL", name)
		check(env(s, "HOOKD_STRIPE_WEBHOOK_SECRET") == "" || strings.HasPrefix(name, "hookd-gateway-"),
			"%s: only gateways get the webhook secret", name)
		if name == "migrate" {
			continue
		}
		// The admin listener (/metrics, pprof; no authentication): set
		// explicitly, on a port of its own, never published.
		admin, ok := argValue(s.Command, "admin-addr")
		_, port, err := net.SplitHostPort(admin)
		check(ok && err == nil && port != "0", "%s: needs --admin-addr=<host>:<port>, got %q", name, admin)
		for _, pt := range s.Ports {
			check(fmt.Sprint(pt.Target) != port && pt.Published != port,
				"%s: publishes the admin port %s (%s:%s:%d); it has no authentication and must stay unpublished", name, port, pt.HostIP, pt.Published, pt.Target)
		}
		check(!slices.Contains(s.Command, "--insecure"), "%s: --insecure has no place here: configure tokens", name)
	}
	check(len(members) == 3, "want 3 members hookd-member-1..3, got %d", len(members))
	check(len(gateways) == 2, "want 2 gateways hookd-gateway-1..2, got %d", len(gateways))

	if s, ok := svc("migrate"); ok {
		check(len(s.Command) == 1 && s.Command[0] == "migrate", "migrate: command %v, want [migrate]", s.Command)
		check(strings.HasPrefix(env(s, "HOOKD_DATABASE_URL"), "postgres://"), "migrate: HOOKD_DATABASE_URL is not a postgres:// URL")
		check(s.Restart == "" || s.Restart == "no", "migrate: a one-shot service must not restart (got %q)", s.Restart)
		dependsOn(s, "postgres", types.ServiceConditionHealthy)
	}

	// Aliases every member answers to: the gateways' dns:/// target.
	aliases := map[string]int{}
	for _, m := range members {
		want := map[string]string{"roles": "member", "cluster": "etcd", "cluster-port": "7000", "etcd-endpoints": "http://etcd:2379"}
		for f, v := range want {
			got, _ := argValue(m.Command, f)
			check(got == v, "%s: --%s=%q, want %q", m.Name, f, got, v)
		}
		check(env(m, "HOOKD_CLUSTER_HOST") == m.Name, "%s: HOOKD_CLUSTER_HOST=%q, want its own service name", m.Name, env(m, "HOOKD_CLUSTER_HOST"))
		check(strings.HasPrefix(env(m, "HOOKD_DATABASE_URL"), "postgres://"), "%s: HOOKD_DATABASE_URL is not a postgres:// URL", m.Name)
		// A file flag names a compose secret (mounted read-only under
		// /run/secrets) the service lists and the project has a file for.
		secretFile := func(flagName, why string) {
			f, _ := argValue(m.Command, flagName)
			secret, isSecret := strings.CutPrefix(f, "/run/secrets/")
			check(isSecret && slices.ContainsFunc(m.Secrets, func(r types.ServiceSecretConfig) bool {
				return r.Source == secret && (r.Target == "" || r.Target == secret || r.Target == f)
			}),
				"%s: needs --%s=/run/secrets/<a secret the service lists> (%s), got %q", m.Name, flagName, why, f)
			if _, ok := proj.Secrets[secret]; isSecret {
				check(ok && proj.Secrets[secret].File != "", "%s: --%s: secret %q is not a file secret of the project", m.Name, flagName, secret)
			}
		}
		// gRPC on 0.0.0.0 needs authentication: a tokens file.
		secretFile("token-file", "gRPC on 0.0.0.0 authenticates callers by it")
		// The cluster port beyond loopback needs mutual TLS between
		// members: protoactor's remote checks no token.
		host, ok := argValue(m.Command, "cluster-host")
		if !ok {
			host = env(m, "HOOKD_CLUSTER_HOST")
		}
		if host != "" && !loopbackHost(host) {
			for _, f := range clusterTLSFlags {
				secretFile(f, "--cluster-host "+host+" is not loopback: mutual TLS between members, or hookd refuses to start")
			}
		}
		dependsOn(m, "migrate", types.ServiceConditionCompletedSuccessfully)
		dependsOn(m, "etcd", types.ServiceConditionHealthy)
		for _, nw := range m.Networks {
			if nw != nil {
				for _, a := range nw.Aliases {
					aliases[a]++
				}
			}
		}
	}
	hostPorts := map[string]bool{}
	for _, g := range gateways {
		got, _ := argValue(g.Command, "roles")
		check(got == "gateway", "%s: --roles=%q, want gateway", g.Name, got)
		target, _ := argValue(g.Command, "ingest-addr")
		host, _, _ := strings.Cut(strings.TrimPrefix(target, "dns:///"), ":")
		check(strings.HasPrefix(target, "dns:///") && aliases[host] == len(members),
			"%s: --ingest-addr %q must be dns:///<alias every member has>:9090", g.Name, target)
		check(env(g, "HOOKD_STRIPE_WEBHOOK_SECRET") == "whsec_check", "%s: HOOKD_STRIPE_WEBHOOK_SECRET must come from the environment", g.Name)
		check(env(g, "HOOKD_INGEST_TOKEN") == "ingest_check", "%s: HOOKD_INGEST_TOKEN must come from the environment", g.Name)
		check(len(g.Ports) == 1, "%s: want one published port", g.Name)
		for _, pt := range g.Ports {
			check(pt.HostIP == "127.0.0.1" && pt.Target == 8080, "%s: publish 127.0.0.1:<port>:8080, got %s:%s:%d", g.Name, pt.HostIP, pt.Published, pt.Target)
			hostPorts[pt.Published] = true
		}
	}
	check(hostPorts["8080"] && hostPorts["8081"], "gateways must publish 8080 and 8081, got %v", hostPorts)
	for _, s := range proj.Services {
		for _, pt := range s.Ports {
			check(pt.HostIP == "127.0.0.1", "%s: port %s is published on all interfaces; bind 127.0.0.1", s.Name, pt.Published)
		}
	}
	return p.report(fmt.Sprintf("%s (project %s, %d services)", fs.Arg(0), proj.Name, len(proj.Services)), n)
}
