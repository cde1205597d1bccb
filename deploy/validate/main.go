// Command validate checks hookd's deployment files offline, without a
// Docker engine or a Kubernetes cluster. .ci/deploy-check.sh drives it:
//
//	validate schemas -spec swagger.json -out DIR   Kubernetes OpenAPI v2 → strict JSON schemas for kubeconform
//	validate k8s -dir deploy/k8s -source cmd/hookd RENDERED.yaml
//	validate compose -source cmd/hookd deploy/compose.yaml
//	validate dockerfile -gomod go.mod deploy/Dockerfile
//	validate static BINARY                         a static ELF (no interpreter, no shared libraries)
//
// It is its own Go module so that hookd's go.mod stays free of the
// Kubernetes and compose libraries.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmds := map[string]func([]string) error{
		"schemas":    cmdSchemas,
		"k8s":        cmdK8s,
		"compose":    cmdCompose,
		"dockerfile": cmdDockerfile,
		"static":     cmdStatic,
	}
	run, ok := cmds[os.Args[1]]
	if !ok {
		usage()
	}
	if err := run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "validate %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: validate schemas|k8s|compose|dockerfile|static ...")
	os.Exit(2)
}

// problems collects findings so one run reports all of them.
type problems struct {
	errs  []string
	warns []string
}

func (p *problems) errorf(format string, a ...any) {
	p.errs = append(p.errs, fmt.Sprintf(format, a...))
}
func (p *problems) warnf(format string, a ...any) {
	p.warns = append(p.warns, fmt.Sprintf(format, a...))
}

// report prints the findings and returns an error when there were errors.
func (p *problems) report(what string, checked int) error {
	for _, w := range p.warns {
		fmt.Printf("  WARN  %s\n", w)
	}
	for _, e := range p.errs {
		fmt.Printf("  FAIL  %s\n", e)
	}
	if len(p.errs) > 0 {
		return fmt.Errorf("%d problem(s) in %s", len(p.errs), what)
	}
	fmt.Printf("  ok    %s: %d checks passed, %d warning(s)\n", what, checked, len(p.warns))
	return nil
}
