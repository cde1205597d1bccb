package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// cmdDockerfile checks what deploy/Dockerfile promises without building it:
// the Go toolchain image matches go.mod, the build is static, the final
// image is distroless/static and runs as a numeric non-root user.
func cmdDockerfile(args []string) error {
	fs := flag.NewFlagSet("dockerfile", flag.ContinueOnError)
	gomod := fs.String("gomod", "go.mod", "hookd's go.mod")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want one Dockerfile")
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	mod, err := os.ReadFile(*gomod)
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
	// Instructions, with continuation lines joined and comments dropped.
	var instrs []string
	cur := ""
	for _, line := range strings.Split(string(raw), "\n") {
		t := strings.TrimSpace(line)
		if cur == "" && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur += strings.TrimSuffix(t, "\\") + " "
			continue
		}
		instrs = append(instrs, cur+t)
		cur = ""
	}
	goDirective := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	check(goDirective != nil, "%s: no go directive", *gomod)
	args0 := map[string]string{}
	var froms, users []string
	var build, entrypoint string
	for _, in := range instrs {
		word, rest, _ := strings.Cut(in, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(word) {
		case "ARG":
			if k, v, ok := strings.Cut(rest, "="); ok {
				args0[k] = v
			}
		case "FROM":
			img := strings.Fields(rest)[0]
			for k, v := range args0 {
				img = strings.ReplaceAll(img, "${"+k+"}", v)
			}
			froms = append(froms, img)
		case "USER":
			users = append(users, rest)
		case "RUN":
			if strings.Contains(rest, "go build") {
				build = rest
			}
		case "ENTRYPOINT":
			entrypoint = rest
		}
	}
	check(len(froms) >= 2, "want a multi-stage build, got %d FROM", len(froms))
	if len(froms) >= 2 && goDirective != nil {
		want := "golang:" + string(goDirective[1])
		check(strings.HasPrefix(froms[0], want), "build stage %s does not match go.mod's go %s (want %s…)", froms[0], goDirective[1], want)
		last := froms[len(froms)-1]
		check(strings.HasPrefix(last, "gcr.io/distroless/static"), "final stage %s is not distroless/static", last)
	}
	check(strings.Contains(build, "CGO_ENABLED=0"), "the go build must set CGO_ENABLED=0 (static binary)")
	check(strings.Contains(build, "./cmd/hookd"), "the go build must build ./cmd/hookd")
	check(len(users) > 0 && regexp.MustCompile(`^[1-9][0-9]*(:[0-9]+)?$`).MatchString(users[len(users)-1]),
		"the last USER must be a numeric non-root UID (Kubernetes runAsNonRoot cannot check a user name), got %v", users)
	check(strings.Contains(entrypoint, "hookd"), "ENTRYPOINT must run hookd")
	if len(froms) == 0 {
		froms = []string{"?"}
	}
	return p.report(fmt.Sprintf("%s (%s → %s)", fs.Arg(0), froms[0], froms[len(froms)-1]), n)
}
