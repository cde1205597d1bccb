package publicdeps_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// forbidden are substrings of import paths that only a member may link.
var forbidden = []string{"protoactor", "etcd", "k8s.io"}

const module = "github.com/hookd/hookd"

func TestPublicPackagesLinkNoActorRuntime(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	for _, tc := range []struct {
		pkg string
		// dir, when set, is the package's directory below the module root:
		// the check is skipped while it does not exist.
		dir string
	}{
		{pkg: module + "/proto/hookd/v1"},
		{pkg: module + "/client", dir: "client"},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			t.Parallel()
			if tc.dir != "" {
				if _, err := os.Stat(filepath.Join(root, tc.dir)); os.IsNotExist(err) {
					t.Skipf("%s does not exist yet", tc.dir)
				}
			}
			imports := deps(t, root, tc.pkg)
			for _, dep := range slices.Sorted(maps.Keys(imports)) {
				for _, bad := range forbidden {
					if strings.Contains(dep, bad) {
						t.Errorf("%s depends on %s (contains %q); want no %v: %s", tc.pkg, dep, bad, forbidden, strings.Join(chain(imports, tc.pkg, dep), " -> "))
					}
				}
			}
		})
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), goBin(t), "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", exitErr(err))
	}
	return strings.TrimSpace(string(out))
}

// deps runs go list -deps on pkg and returns every package it links, each
// with its direct imports.
func deps(t *testing.T, root, pkg string) map[string][]string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), goBin(t), "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, pkg)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, exitErr(err))
	}
	imports := make(map[string][]string)
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		imports[fields[0]] = fields[1:]
	}
	if _, ok := imports[pkg]; !ok {
		t.Fatalf("go list -deps %s: the package itself is not in its output", pkg)
	}
	return imports
}

// chain returns an import path from pkg to dep (breadth first), for the
// failure message.
func chain(imports map[string][]string, pkg, dep string) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == dep {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, next := range imports[p] {
			if _, seen := prev[next]; !seen {
				prev[next] = p
				queue = append(queue, next)
			}
		}
	}
	return []string{pkg, "…", dep}
}

func goBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	return bin
}

// exitErr adds what the go command printed to its error.
func exitErr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
