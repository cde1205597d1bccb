package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hookd/hookd/internal/certs"
	"github.com/hookd/hookd/internal/cliflag"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
	"github.com/hookd/hookd/services"
)

// `hookd backfill` and `hookd reproject` are clients of a running member's
// AdminService: the work runs there, through the customers' actors, so it
// never races with live webhooks, and its checkpoints are in the member's
// store.

// adminClientFlags are the flags every admin command takes to reach hookd.
type adminClientFlags struct {
	addr, token, ca, cert, key string
}

func (f *adminClientFlags) define(fs *flag.FlagSet) { f.defineScoped(fs, "admin") }

// defineScoped is define for a command whose calls need scope.
func (f *adminClientFlags) defineScoped(fs *flag.FlagSet, scope string) {
	fs.StringVar(&f.addr, "grpc-addr", "127.0.0.1:9090", "a member's gRPC address")
	fs.StringVar(&f.token, "token", "", "bearer token with the "+scope+" scope (default: HOOKD_TOKEN)")
	fs.StringVar(&f.ca, "ca", "", "PEM CA bundle that verifies a member with TLS")
	fs.StringVar(&f.cert, "cert", "", "PEM client certificate, for a member with --grpc-client-ca")
	fs.StringVar(&f.key, "key", "", "PEM private key for --cert")
}

func (f *adminClientFlags) dial(getenv func(string) string) (*grpc.ClientConn, error) {
	if f.token == "" {
		f.token = getenv("HOOKD_TOKEN")
	}
	creds := insecure.NewCredentials()
	if f.ca != "" {
		tc, err := certs.ClientConfigFromFiles(f.ca, f.cert, f.key)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if f.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(services.BearerToken(f.token)))
	}
	return grpc.NewClient(f.addr, opts...)
}

// backfillCmd is `hookd backfill`.
func backfillCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hookd backfill", flag.ContinueOnError)
	var cf adminClientFlags
	cf.define(fs)
	since := fs.Duration("since", 72*time.Hour, "backfill the events created in this window (Stripe keeps 30 days)")
	objects := fs.String("objects", "", "import current objects instead of events: customers,subscriptions")
	restart := fs.Bool("restart", false, "start a new run even if one of the same kind is unfinished (default: resume it)")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	conn, err := cf.dial(getenv)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := &hookdv1.BackfillRequest{Since: durationpb.New(*since), Restart: *restart}
	if *objects != "" {
		req.Objects = splitList(*objects)
	}
	stream, err := hookdv1.NewAdminServiceClient(conn).Backfill(ctx, req)
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	bar := newProgressLine(stdout)
	var last *hookdv1.BackfillProgress
	said := ""
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			bar.end()
			return fmt.Errorf("backfill: %w", err)
		}
		if m := p.GetMessage(); m != "" && m != said {
			bar.note(m)
			said = m
		}
		last = p
		if p.GetPhase() == "listing" {
			bar.show(fmt.Sprintf("run %d: listing: %d events fetched", p.GetRunId(), p.GetCounts().GetFetched()), 0, 0)
		} else {
			bar.show(fmt.Sprintf("run %d: applying", p.GetRunId()), p.GetProcessed(), p.GetTotal())
		}
	}
	bar.end()
	if last == nil || !last.GetDone() {
		return errors.New("backfill: the stream ended before the run finished; run the same command again to resume it")
	}
	c := last.GetCounts()
	fmt.Fprintf(stdout, "backfill run %d done: fetched %d, applied %d, duplicate %d, parked %d, superseded %d, ignored %d, failed %d\n",
		last.GetRunId(), c.GetFetched(), c.GetApplied(), c.GetDuplicate(), c.GetParked(), c.GetSuperseded(), c.GetIgnored(), c.GetFailed())
	if c.GetFailed() > 0 {
		return fmt.Errorf("backfill: %d events failed (see the member's log; run again to retry them: the others are duplicates then)", c.GetFailed())
	}
	return nil
}

// reprojectCmd is `hookd reproject`.
func reprojectCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hookd reproject", flag.ContinueOnError)
	var cf adminClientFlags
	cf.define(fs)
	customer := fs.String("customer", "", "only this customer (default: every customer)")
	dryRun := fs.Bool("dry-run", false, "report what would change; change nothing")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	conn, err := cf.dial(getenv)
	if err != nil {
		return err
	}
	defer conn.Close()
	stream, err := hookdv1.NewAdminServiceClient(conn).Reproject(ctx, &hookdv1.ReprojectRequest{CustomerId: *customer, DryRun: *dryRun})
	if err != nil {
		return fmt.Errorf("reproject: %w", err)
	}
	bar := newProgressLine(stdout)
	var last *hookdv1.ReprojectProgress
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			bar.end()
			return fmt.Errorf("reproject: %w", err)
		}
		last = p
		if ch := p.GetChange(); ch != nil {
			var b strings.Builder
			verb := "repaired at version " + fmt.Sprint(ch.GetNewVersion())
			if p.GetDryRun() {
				verb = "would change"
			}
			fmt.Fprintf(&b, "%s (version %d) %s:", ch.GetCustomerId(), ch.GetVersion(), verb)
			for _, f := range ch.GetChanges() {
				fmt.Fprintf(&b, "\n    %s: %q → %q", f.GetPath(), f.GetLive(), f.GetRecomputed())
			}
			bar.note(b.String())
		}
		bar.show("reproject", p.GetChecked(), p.GetTotal())
	}
	bar.end()
	if last == nil || !last.GetDone() {
		return errors.New("reproject: the stream ended before every customer was checked; run it again (customers already repaired are unchanged the second time)")
	}
	what := "changed"
	if last.GetDryRun() {
		what = "would change (dry run: nothing written)"
	}
	fmt.Fprintf(stdout, "reproject: %d customers checked, %d %s\n", last.GetChecked(), last.GetChanged(), what)
	return nil
}

// progressLine draws a progress bar on a terminal, and plain lines (at
// most one every 2 s) anywhere else.
type progressLine struct {
	w     io.Writer
	tty   bool
	drawn bool
	last  time.Time
	text  string
}

func newProgressLine(w io.Writer) *progressLine {
	f, ok := w.(*os.File)
	return &progressLine{w: w, tty: ok && term.IsTerminal(int(f.Fd()))}
}

// show draws label with done of total (total 0: no bar).
func (p *progressLine) show(label string, done, total int64) {
	line := label
	if total > 0 {
		const width = 30
		n := int(done * width / total)
		line = fmt.Sprintf("%s [%s%s] %d/%d", label, strings.Repeat("=", n), strings.Repeat(" ", width-n), done, total)
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	if line != p.text && time.Since(p.last) >= 2*time.Second {
		fmt.Fprintln(p.w, line)
		p.last = time.Now()
	}
	p.text = line
}

// note prints a line of its own above the bar.
func (p *progressLine) note(s string) {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintln(p.w, s)
	p.drawn = false
}

func (p *progressLine) end() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
	p.drawn = false
}
