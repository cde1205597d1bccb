package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookd/hookd/internal/cliflag"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

func noEnvCLI(string) string { return "" }

// runCLI runs hookd's command line in-process, as main would.
func runCLI(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = dispatch(t.Context(), args, noEnvCLI, &out, &errOut)
	return out.String(), err
}

// Every command in the dispatch table has a line in `hookd help`, and
// its -h (and `hookd help CMD`) prints its usage once: a command added
// without help fails here.
func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, c := range commands {
			if c.summary == "" || c.args == "" && c.name != "version" {
				t.Errorf("command %s has no summary or synopsis", c.name)
			}
			if !strings.Contains(out, "hookd "+c.name+" ") || !strings.Contains(out, c.summary) {
				t.Errorf("%v does not list %s with its summary:\n%s", args, c.name, out)
			}
		}
	}
	var check func(path []string, table []command)
	check = func(path []string, table []command) {
		for _, c := range table {
			p := append(append([]string(nil), path...), c.name)
			if c.subcommands != nil {
				out, err := runCLI(t, append([]string{"help"}, p...)...)
				if err != nil {
					t.Errorf("help %v: %v", p, err)
				}
				for _, s := range c.subcommands {
					if s.summary == "" || !strings.Contains(out, s.summary) {
						t.Errorf("help %v does not list %s:\n%s", p, s.name, out)
					}
				}
				check(p, c.subcommands)
				continue
			}
			for _, args := range [][]string{append([]string{"help"}, p...), append(p, "-h")} {
				out, err := runCLI(t, args...)
				if err != nil {
					t.Errorf("%v: %v", args, err)
				}
				if n := strings.Count(out, "usage: hookd "+strings.Join(p, " ")); n != 1 {
					t.Errorf("%v prints its usage %d times, want once:\n%s", args, n, out)
				}
			}
		}
	}
	check(nil, commands)
	if _, err := runCLI(t, "help", "nosuch"); err == nil {
		t.Error("help nosuch succeeded")
	}
}

func TestVersion(t *testing.T) {
	out, err := runCLI(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hookd ", "revision: ", "time: ", "modified: ", "go: go1."} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
	if first := strings.SplitN(out, "\n", 2)[0]; first == "hookd " {
		t.Errorf("no version on %q", first)
	}
}

func TestMigrateWithoutDatabaseURLFails(t *testing.T) {
	_, err := runCLI(t, "migrate", "--data-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "embedded store") || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("migrate without --database-url: %v, want an error that says the embedded store migrates itself", err)
	}
}

func TestUnknownFlagNamesTheNearest(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "--databse-url", "x"}, "migrate: unknown flag --databse-url; did you mean --database-url?"},
		{[]string{"--grpc-adr", "x"}, "serve: unknown flag --grpc-adr; did you mean --grpc-addr?"},
		{[]string{"send", "-secrte", "x"}, "send: unknown flag --secrte; did you mean --secret?"},
		{[]string{"bench", "--customer", "1"}, "bench: unknown flag --customer; did you mean --customers?"},
		{[]string{"backfill", "--sinc", "1h"}, "backfill: unknown flag --sinc; did you mean --since?"},
		{[]string{"reproject", "--dryrun"}, "reproject: unknown flag --dryrun; did you mean --dry-run?"},
		{[]string{"events", "list", "--limt", "3"}, "events list: unknown flag --limt; did you mean --limit?"},
		{[]string{"events", "get", "evt_1", "--jsno"}, "events get: unknown flag --jsno; did you mean --json?"},
		{[]string{"tail", "--cursor", "f"}, "tail: unknown flag --cursor; did you mean --cursor-file?"},
		{[]string{"version", "--zzzzzz"}, "version: unknown flag --zzzzzz (-h lists the flags)"},
	} {
		out, err := runCLI(t, tc.args...)
		var fe *cliflag.Error
		if !errors.As(err, &fe) || err.Error() != tc.want {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
		if out != "" {
			t.Errorf("%v printed %q, want nothing (no usage)", tc.args, out)
		}
	}

	// The binary: one line on stderr, nothing on stdout, exit status 2.
	cmd := exec.Command(os.Args[0], "migrate", "--databse-url", "postgres://x")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("exit: %v, want status 2", err)
	}
	if got, want := stderr.String(), "hookd: migrate: unknown flag --databse-url; did you mean --database-url?\n"; got != want || stdout.Len() != 0 {
		t.Errorf("stderr %q, stdout %q; want stderr %q alone", got, stdout.String(), want)
	}
	// -h: the usage once, on stdout, exit status 0.
	cmd = exec.Command(os.Args[0], "migrate", "-h")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Count(string(out), "usage: hookd migrate") != 1 || !strings.Contains(string(out), "--database-url") {
		t.Errorf("migrate -h: %v\n%s", err, out)
	}
}

// send reads the server's environment: flag > HOOKD_* > default.
func TestCLISendReadsTheServersEnvironment(t *testing.T) {
	env := map[string]string{"HOOKD_STRIPE_WEBHOOK_SECRET": "whsec_new,whsec_old", "HOOKD_HTTP_ADDR": "0.0.0.0:18080", "HOOKD_TLS_CERT": "c.pem", "HOOKD_DATA_DIR": "/d", "HOOKD_TYPE": "x"}
	get := sendEnv(func(k string) string { return env[k] })
	for k, want := range map[string]string{
		"HOOKD_SECRET": "whsec_new", "HOOKD_URL": "https://127.0.0.1:18080/v1/webhooks/stripe", "HOOKD_DATA_DIR": "/d", "HOOKD_TYPE": "",
	} {
		if got := get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	// Flag > environment > default, through parseWithEnv and cliflag.Parse
	// (flags after arguments count as given).
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	url := fs.String("url", "default", "")
	dir := fs.String("data-dir", "default", "")
	secret := fs.String("secret", "default", "")
	if err := parseWithEnv(fs, []string{"file.json", "--url", "http://flag"}, get); err != nil {
		t.Fatal(err)
	}
	if *url != "http://flag" || *dir != "/d" || *secret != "whsec_new" || fs.Arg(0) != "file.json" {
		t.Errorf("url %q data-dir %q secret %q args %v: want the flag, then the environment", *url, *dir, *secret, fs.Args())
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	dir = fs.String("data-dir", "default", "")
	if err := parseWithEnv(fs, nil, noEnvCLI); err != nil || *dir != "default" {
		t.Errorf("no flag, no environment: %q %v, want the default", *dir, err)
	}
	// --print shows the event without sending: the environment reaches
	// no further; a bad flag value from the environment is named.
	var out bytes.Buffer
	if err := send(t.Context(), []string{"--print", "--type", "customer.created", "--customer", "cus_env"}, func(k string) string { return env[k] }, &out); err != nil || !strings.Contains(out.String(), "cus_env") {
		t.Errorf("send --print: %v %q", err, out.String())
	}
}

// syncLines is a writer a command prints to while the test reads it; it
// cancels when it holds want lines.
type syncLines struct {
	mu     sync.Mutex
	b      strings.Builder
	want   int
	cancel context.CancelFunc
}

func (s *syncLines) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	if strings.Count(s.b.String(), "\n") >= s.want {
		s.cancel()
	}
	return len(p), nil
}

func (s *syncLines) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSuffix(s.b.String(), "\n"), "\n")
}

// runUntilLines runs args until they printed want lines (then cancels
// them), failing after 30s.
func runUntilLines(t *testing.T, want int, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out := &syncLines{want: want, cancel: cancel}
	err := dispatch(ctx, args, noEnvCLI, out, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("%v: %d lines within 30s, want %d:\n%s", args, len(out.lines()), want, strings.Join(out.lines(), "\n"))
	}
	return out.lines()
}

func TestEventsCLIListGetReplay(t *testing.T) {
	h := startHookdOn(t, storeEmbedded)
	h.post(t, customerEvent("evt_cli_1", "customer.created", "cus_cli_a", 1700000000, "a@example.com"))
	h.post(t, customerEvent("evt_cli_2", "customer.updated", "cus_cli_a", 1700000100, "a2@example.com"))
	h.post(t, customerEvent("evt_cli_3", "customer.created", "cus_cli_b", 1700000200, "b@example.com"))
	h.post(t, customerEvent("evt_cli_old", "customer.updated", "cus_cli_a", 1700000050, "old@example.com")) // superseded
	addr := []string{"--grpc-addr", h.grpcAddr}

	out, err := runCLI(t, append([]string{"events", "list"}, addr...)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "RECEIVED") || !strings.Contains(lines[0], "STATUS") {
		t.Fatalf("events list: want a header and 4 rows:\n%s", out)
	}
	for _, want := range []string{"evt_cli_1", "evt_cli_2", "evt_cli_3", "superseded"} {
		if !strings.Contains(out, want) {
			t.Errorf("events list lacks %s:\n%s", want, out)
		}
	}

	out, err = runCLI(t, append([]string{"events", "list", "--customer", "cus_cli_a", "--status", "applied", "--json"}, addr...)...)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev hookdv1.Event
		if err := protojson.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("--json line %q: %v", l, err)
		}
		if ev.GetCustomerId() != "cus_cli_a" || ev.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_APPLIED {
			t.Errorf("--customer cus_cli_a --status applied listed %s (%s, %s)", ev.GetEventId(), ev.GetCustomerId(), ev.GetStatus())
		}
		ids = append(ids, ev.GetEventId())
	}
	if fmt.Sprint(ids) != "[evt_cli_2 evt_cli_1]" {
		t.Errorf("--customer --status applied --json: %v, want [evt_cli_2 evt_cli_1] (newest first)", ids)
	}
	out, err = runCLI(t, append([]string{"events", "list", "--limit", "2"}, addr...)...)
	if err != nil || strings.Count(out, "evt_cli_") != 2 {
		t.Errorf("--limit 2: %v\n%s", err, out)
	}

	// By type and received time (the gRPC filter under the flags).
	out, err = runCLI(t, append([]string{"events", "list", "--type", "customer.created", "--json"}, addr...)...)
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "evt_cli_1") || !strings.Contains(out, "evt_cli_3") {
		t.Errorf("--type customer.created: %v, want evt_cli_1 and evt_cli_3 only:\n%s", err, out)
	}
	if out, err = runCLI(t, append([]string{"events", "list", "--since", "1h"}, addr...)...); err != nil || strings.Count(out, "evt_cli_") != 4 {
		t.Errorf("--since 1h: %v, want all 4:\n%s", err, out)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if out, err = runCLI(t, append([]string{"events", "list", "--from", future}, addr...)...); err != nil || strings.Contains(out, "evt_cli_") {
		t.Errorf("--from an hour ahead: %v, want none:\n%s", err, out)
	}
	if out, err = runCLI(t, append([]string{"events", "list", "--until", future, "--type", "customer.updated", "--customer", "cus_cli_a"}, addr...)...); err != nil ||
		strings.Count(out, "evt_cli_") != 2 || !strings.Contains(out, "evt_cli_old") {
		t.Errorf("--until --type --customer: %v, want evt_cli_2 and evt_cli_old:\n%s", err, out)
	}
	for _, bad := range [][]string{{"--from", "yesterday"}, {"--since", "-1h"}, {"--since", "1h", "--from", future}} {
		if _, err := runCLI(t, append(append([]string{"events", "list"}, bad...), addr...)...); err == nil {
			t.Errorf("events list %v: no error", bad)
		}
	}
	_, err = h.events().ListEvents(t.Context(), &hookdv1.ListEventsRequest{ReceivedFrom: &timestamppb.Timestamp{Seconds: 1, Nanos: -1}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("ListEvents with an invalid received_from: %v, want INVALID_ARGUMENT", err)
	}
	_, err = h.events().ListEvents(t.Context(), &hookdv1.ListEventsRequest{Type: strings.Repeat("t", 300)})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("ListEvents with a 300-byte type: %v, want INVALID_ARGUMENT", err)
	}

	// get: flags after the ID; the payload indented.
	out, err = runCLI(t, append([]string{"events", "get", "evt_cli_2"}, addr...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"event:", "evt_cli_2", "type:", "customer.updated", "status:", "applied", "version:", "2", "payload:\n{\n", `  "id": "evt_cli_2"`, `"email": "a2@example.com"`} {
		if !strings.Contains(out, want) {
			t.Errorf("events get lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, append([]string{"events", "get", "evt_cli_2", "--json"}, addr...)...)
	var ev hookdv1.Event
	if err != nil || protojson.Unmarshal([]byte(out), &ev) != nil || ev.GetEventId() != "evt_cli_2" || !bytes.Contains(ev.GetPayload(), []byte("a2@example.com")) {
		t.Errorf("events get --json: %v %q", err, out)
	}
	if _, err := runCLI(t, append([]string{"events", "get", "evt_nosuch"}, addr...)...); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("events get evt_nosuch: %v, want not found", err)
	}

	// replay: idempotent.
	out, err = runCLI(t, append([]string{"events", "replay", "evt_cli_1"}, addr...)...)
	if err != nil || !strings.Contains(out, "evt_cli_1") || !strings.Contains(out, "duplicate (nothing changed)") || !strings.Contains(out, "applied at version 1") {
		t.Errorf("events replay: %v\n%s", err, out)
	}
	out, err = runCLI(t, append([]string{"events", "replay", "evt_cli_1", "--json"}, addr...)...)
	var rr hookdv1.ReplayEventResponse
	if err != nil || protojson.Unmarshal([]byte(out), &rr) != nil || rr.GetStatus() != hookdv1.EventStatus_EVENT_STATUS_DUPLICATE {
		t.Errorf("events replay --json: %v %q", err, out)
	}
}

// The scopes: list and get with a read token, replay only with admin.
func TestEventsCLIScopes(t *testing.T) {
	h := startHookdOn(t, storeEmbedded, "--tokens", "read cli-read-token-0123456789; admin cli-admin-token-0123456789")
	h.post(t, customerEvent("evt_scope_1", "customer.created", "cus_scope", 1700000000, "s@example.com"))
	read := []string{"--grpc-addr", h.grpcAddr, "--token", "cli-read-token-0123456789"}
	if _, err := runCLI(t, "events", "list", "--grpc-addr", h.grpcAddr); err == nil {
		t.Error("events list without a token succeeded")
	}
	if out, err := runCLI(t, append([]string{"events", "list"}, read...)...); err != nil || !strings.Contains(out, "evt_scope_1") {
		t.Errorf("events list with a read token: %v\n%s", err, out)
	}
	if _, err := runCLI(t, append([]string{"events", "replay", "evt_scope_1"}, read...)...); err == nil || !strings.Contains(err.Error(), "scope") {
		t.Errorf("events replay with a read token: %v, want a scope error", err)
	}
	var out bytes.Buffer
	env := func(k string) string {
		if k == "HOOKD_TOKEN" {
			return "cli-admin-token-0123456789"
		}
		return ""
	}
	if err := dispatch(t.Context(), []string{"events", "replay", "evt_scope_1", "--grpc-addr", h.grpcAddr}, env, &out, &out); err != nil {
		t.Errorf("events replay with HOOKD_TOKEN (admin): %v\n%s", err, out.String())
	}
}

// tail prints each notification once, and a second run with the same
// cursor file continues after the last one printed: nothing repeated,
// nothing missed.
func TestTailCLIResumesFromItsCursorFile(t *testing.T) {
	h := startHookdOn(t, storeEmbedded)
	cursor := filepath.Join(t.TempDir(), "tail.cursor")
	h.post(t, customerEvent("evt_tail_1", "customer.created", "cus_tail", 1700000000, "t1@example.com"))
	h.post(t, customerEvent("evt_tail_2", "customer.updated", "cus_tail", 1700000100, "t2@example.com"))
	args := []string{"tail", "--grpc-addr", h.grpcAddr, "--cursor-file", cursor}
	first := runUntilLines(t, 2, args...)
	if len(first) != 2 || !strings.Contains(first[0], "cus_tail  v1  customer.created  evt_tail_1") || !strings.Contains(first[1], "cus_tail  v2  customer.updated  evt_tail_2") {
		t.Fatalf("first run:\n%s", strings.Join(first, "\n"))
	}
	if b, err := os.ReadFile(cursor); err != nil || len(b) == 0 {
		t.Fatalf("cursor file after the first run: %v %q", err, b)
	}
	// While no tail runs, more notifications are committed.
	h.post(t, customerEvent("evt_tail_3", "customer.updated", "cus_tail", 1700000200, "t3@example.com"))
	h.post(t, customerEvent("evt_tail_4", "customer.created", "cus_tail_other", 1700000300, "o@example.com"))
	second := runUntilLines(t, 2, append(args, "--json")...)
	var got []string
	for _, l := range second {
		var n hookdv1.Notification
		if err := protojson.Unmarshal([]byte(l), &n); err != nil {
			t.Fatalf("--json line %q: %v", l, err)
		}
		got = append(got, fmt.Sprintf("%s v%d %s", n.GetCustomerId(), n.GetVersion(), n.GetEventId()))
	}
	if fmt.Sprint(got) != "[cus_tail v3 evt_tail_3 cus_tail_other v1 evt_tail_4]" {
		t.Errorf("second run: %v, want the two notifications after the first run's, once each", got)
	}
	// --customer and --from-now: only what follows, for that customer.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out := &syncLines{want: 1, cancel: cancel}
	done := make(chan error, 1)
	go func() {
		done <- dispatch(ctx, []string{"tail", "--grpc-addr", h.grpcAddr, "--from-now", "--customer", "cus_tail"}, noEnvCLI, out, &bytes.Buffer{})
	}()
	time.Sleep(2 * time.Second) // the stream is established: it starts from now
	h.post(t, customerEvent("evt_tail_5", "customer.created", "cus_tail_x", 1700000400, "x@example.com"))
	h.post(t, customerEvent("evt_tail_6", "customer.updated", "cus_tail", 1700000500, "t6@example.com"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l := out.lines(); len(l) != 1 || !strings.Contains(l[0], "cus_tail  v4  customer.updated  evt_tail_6") {
		t.Errorf("--from-now --customer cus_tail: %q", l)
	}
}
