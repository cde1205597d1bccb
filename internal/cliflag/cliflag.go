// Package cliflag parses a command's flags the way every hookd command
// does: flags and arguments in any order, a mistyped flag reported in one
// line with the nearest known flag, and -h answered with the usage once.
//
// The flag package, with flag.ContinueOnError, prints an error and the
// whole usage itself before returning the error, which the command then
// prints again. Parse silences it and returns errors that say it all.
package cliflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Error is a mistake on the command line (an unknown flag, a bad value):
// the command did nothing. Its message is one line.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

// Help is returned (wrapping flag.ErrHelp) for -h, -help and --help. Flags
// is the flag set's flags, formatted for a usage message.
type Help struct {
	Name  string // the flag set's name
	Flags string
}

func (h *Help) Error() string { return "help requested" }
func (h *Help) Unwrap() error { return flag.ErrHelp }

// Parse parses args into fs, which must have been made with
// flag.ContinueOnError; fs's output and Usage are replaced, so nothing is
// printed. Flags may follow arguments (`get evt_1 --json`); after "--"
// everything is an argument. fs.Args() are the arguments afterwards.
// Errors are an *Error or a *Help.
func Parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return convert(fs, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Leave fs.Args() as every argument: a "--" ends the flags at once
	// and changes none of their values.
	return fs.Parse(append([]string{"--"}, positional...))
}

func convert(fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return &Help{Name: fs.Name(), Flags: Flags(fs)}
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return &Error{msg: UnknownFlag(fs, name)}
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return &Error{msg: fmt.Sprintf("flag --%s needs a value", name)}
	}
	msg = strings.Replace(msg, " for flag -", " for --", 1)
	return &Error{msg: strings.Replace(msg, " for -", " for --", 1)}
}

// UnknownFlag says that --name is not one of fs's flags, naming the
// nearest that is when one is near.
func UnknownFlag(fs *flag.FlagSet, name string) string {
	if near := Nearest(fs, name); near != "" {
		return fmt.Sprintf("unknown flag --%s; did you mean --%s?", name, near)
	}
	return fmt.Sprintf("unknown flag --%s (-h lists the flags)", name)
}

// Nearest is the name of fs's flag nearest to name by edit distance, or ""
// when none is near enough to be what was meant: at most a third of the
// name's letters (and at least 2) differ, or name begins exactly one flag.
func Nearest(fs *flag.FlagSet, name string) string {
	best, bestD := "", -1
	var prefixed []string
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, name) {
			prefixed = append(prefixed, f.Name)
		}
		if d := distance(name, f.Name); bestD < 0 || d < bestD {
			best, bestD = f.Name, d
		}
	})
	if bestD >= 0 && bestD <= max(2, len(name)/3) {
		return best
	}
	if len(prefixed) == 1 {
		return prefixed[0]
	}
	return ""
}

// distance is the Levenshtein distance between a and b (bytes: flag
// names are ASCII).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Flags formats fs's flags for a usage message, with two dashes, the
// value's kind and the default.
func Flags(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%s", f.Name)
		if kind != "" {
			fmt.Fprintf(&b, " %s", kind)
		}
		fmt.Fprintf(&b, "\n      %s", strings.ReplaceAll(usage, "\n", "\n      "))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteByte('\n')
	})
	return b.String()
}

// NearestName is the candidate nearest to name by the same measure as
// Nearest, or "" when none is near.
func NearestName(name string, candidates []string) string {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	for _, c := range candidates {
		fs.Bool(c, false, "")
	}
	return Nearest(fs, name)
}
