package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/hookd/hookd/internal/cliflag"
)

// The command line for people: one table of commands (main.go's
// commands) that dispatch, help and the tests all read; flags parsed by
// cliflag everywhere, so that a mistyped flag is one line naming the
// nearest flag, and -h prints the usage once.

// cliEnv is what a command reads and writes besides its arguments.
type cliEnv struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// command is one subcommand: run, or a group of subcommands (hookd events).
type command struct {
	name        string
	args        string // the synopsis after the name
	summary     string // help's one line
	run         func(ctx context.Context, args []string, e cliEnv) error
	subcommands []command
}

func init() {
	// help reads the table it is in: added here to break the
	// initialization cycle.
	commands = append(commands, command{name: "help", args: "[COMMAND [SUBCOMMAND]]", summary: "list the commands, or show one's usage and flags", run: helpCmd})
}

func findIn(table []command, name string) (command, bool) {
	for _, c := range table {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func findCommand(name string) (command, bool) { return findIn(commands, name) }

func names(table []command) []string {
	var out []string
	for _, c := range table {
		out = append(out, c.name)
	}
	return out
}

// unknownCommand says name is no command in table (of the group prefix:
// "hookd" or "hookd events"), with the nearest when one is near.
func unknownCommand(prefix, name string, table []command) error {
	if near := cliflag.NearestName(name, names(table)); near != "" {
		return fmt.Errorf("unknown command %q; did you mean %s %s?", name, prefix, near)
	}
	return fmt.Errorf("unknown command %q (want %s; hookd help lists them)", name, strings.Join(names(table), ", "))
}

func isHelpFlag(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "--h"
}

// runCommand runs cmd (named path, e.g. "hookd events") with args: a group
// runs the subcommand args[0] names. A flag mistake comes back as one
// line prefixed with the command; -h prints the usage on stdout and
// succeeds.
func runCommand(ctx context.Context, path string, cmd command, args []string, e cliEnv) error {
	path += " " + cmd.name
	if cmd.subcommands != nil {
		if len(args) == 0 {
			return fmt.Errorf("%s: want a subcommand: %s (hookd help %s)", strings.TrimPrefix(path, "hookd "), strings.Join(names(cmd.subcommands), ", "), cmd.name)
		}
		if isHelpFlag(args[0]) {
			printGroup(e.stdout, path, cmd)
			return nil
		}
		sub, ok := findIn(cmd.subcommands, args[0])
		if !ok {
			return fmt.Errorf("%s: %w", strings.TrimPrefix(path, "hookd "), unknownCommand(path, args[0], cmd.subcommands))
		}
		return runCommand(ctx, path, sub, args[1:], e)
	}
	err := cmd.run(ctx, args, e)
	var help *cliflag.Help
	if errors.As(err, &help) {
		fmt.Fprintf(e.stdout, "usage: %s %s\n\n%s.\n", path, cmd.args, upperFirst(cmd.summary))
		if help.Flags != "" {
			fmt.Fprintf(e.stdout, "\nflags:\n%s", help.Flags)
		}
		return nil
	}
	var flagErr *cliflag.Error
	var argErr *usageError
	if errors.As(err, &flagErr) || errors.As(err, &argErr) {
		return fmt.Errorf("%s: %w", strings.TrimPrefix(path, "hookd "), err)
	}
	return err
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func printTable(w io.Writer, path string, table []command) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range table {
		fmt.Fprintf(tw, "  %s %s\t%s\n", path, c.name, c.summary)
	}
	tw.Flush()
}

func printGroup(w io.Writer, path string, cmd command) {
	fmt.Fprintf(w, "usage: %s %s\n\n%s.\n\n", path, cmd.args, upperFirst(cmd.summary))
	printTable(w, path, cmd.subcommands)
	fmt.Fprintf(w, "\nhookd help %s SUBCOMMAND shows one's flags.\n", cmd.name)
}

// helpCmd is `hookd help [COMMAND [SUBCOMMAND]]`.
func helpCmd(ctx context.Context, args []string, e cliEnv) error {
	fs := flag.NewFlagSet("hookd help", flag.ContinueOnError)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprint(e.stdout, "hookd receives Stripe webhooks and turns them into ordered, deduplicated, durable per-customer state and notifications.\n\nusage: hookd COMMAND [flags]   (no command: serve)\n\n")
		printTable(e.stdout, "hookd", commands)
		fmt.Fprint(e.stdout, "\nhookd help COMMAND (or hookd COMMAND -h) shows a command's flags. Flags may also be given as HOOKD_* environment variables (--grpc-addr: HOOKD_GRPC_ADDR) where the command says so; a flag wins.\n")
		return nil
	}
	path, table := "hookd", commands
	var cmd command
	for i, name := range fs.Args() {
		c, ok := findIn(table, name)
		if !ok {
			return unknownCommand(path, name, table)
		}
		cmd = c
		if c.subcommands == nil || i == fs.NArg()-1 {
			break
		}
		path, table = path+" "+c.name, c.subcommands
	}
	return runCommand(ctx, path, cmd, []string{"-h"}, e)
}

// versionCmd is `hookd version`: the module version ("(devel)" for a
// build from a work tree) and the VCS stamp Go records in the binary.
func versionCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hookd version", flag.ContinueOnError)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	version, settings, goVersion := "(devel)", map[string]string{}, "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" {
			version = v
		}
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
	}
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	fmt.Fprintf(stdout, "hookd %s\nrevision: %s\ntime:     %s\nmodified: %s\ngo:       %s\n", version,
		or(settings["vcs.revision"], "unknown"), or(settings["vcs.time"], "unknown"), or(settings["vcs.modified"], "unknown"), goVersion)
	return nil
}
