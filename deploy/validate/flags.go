package main

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// pendingFlags are flags the deployment files may use before cmd/hookd
// defines them (a flag being added in parallel): warnings, not errors.
// Remove an entry once hookd has the flag.
var pendingFlags = map[string]bool{}

// subcommands are hookd's first arguments that are not flags.
var subcommands = map[string]bool{"migrate": true, "send": true, "bench": true}

var flagDef = regexp.MustCompile(`\bfs\.(?:String|Bool|Int|Int64|Uint|Uint64|Float64|Duration|Func|Var|TextVar)(?:Var)?\(\s*(?:&[\w.]+,\s*)?"([a-z0-9][a-z0-9-]*)"`)

// hookdFlags reads the flag names cmd/hookd defines (in any of its flag
// sets) from its non-test sources.
func hookdFlags(dir string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	flags := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range flagDef.FindAllSubmatch(b, -1) {
			flags[string(m[1])] = true
		}
	}
	return flags, nil
}

// flagName maps HOOKD_CLUSTER_HOST to cluster-host.
func flagName(env string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(env, "HOOKD_"), "_", "-"))
}

// checkHookdArgs checks that every --flag in args and every HOOKD_* name in
// env is one hookd defines. where prefixes the findings.
func checkHookdArgs(p *problems, where string, known map[string]bool, args []string, env []string) int {
	n := 0
	check := func(name, as string) {
		n++
		switch {
		case known[name]:
		case pendingFlags[name]:
			p.warnf("%s: %s: --%s is not defined in cmd/hookd yet (listed in pendingFlags)", where, as, name)
		default:
			p.errorf("%s: %s: hookd has no flag --%s", where, as, name)
		}
	}
	for i, a := range args {
		if i == 0 && subcommands[a] {
			continue
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name := strings.TrimLeft(a, "-")
		name, _, _ = strings.Cut(name, "=")
		check(name, a)
	}
	sort.Strings(env)
	for _, e := range env {
		if strings.HasPrefix(e, "HOOKD_") {
			check(flagName(e), e)
		}
	}
	return n
}

// argValue returns the value of --name in args (--name=v or --name v).
func argValue(args []string, name string) (string, bool) {
	for i, a := range args {
		trimmed := strings.TrimLeft(a, "-")
		if trimmed == a {
			continue
		}
		if k, v, ok := strings.Cut(trimmed, "="); ok && k == name {
			return v, true
		}
		if trimmed == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}
