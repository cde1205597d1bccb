package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/hookd/hookd/client"
	"github.com/hookd/hookd/internal/certs"
	"github.com/hookd/hookd/internal/cliflag"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// tailCmd is `hookd tail`: it follows NotificationService with the Go
// client (client.Subscribe: reconnects with back-off, never delivers a
// notification twice within a run), printing one line per notification.
// With --cursor-file it saves each printed notification's cursor, so that
// the next run continues after the last one printed: nothing repeated,
// nothing missed. It runs until Ctrl-C or SIGTERM (main's
// signal.NotifyContext), and then ends without an error.
func tailCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hookd tail", flag.ContinueOnError)
	var cf adminClientFlags
	cf.defineScoped(fs, "read")
	customer := fs.String("customer", "", "only this customer's notifications")
	fromNow := fs.Bool("from-now", false, "start after the newest notification instead of from the beginning (when --cursor-file holds no cursor yet)")
	cursorFile := fs.String("cursor-file", "", "file that keeps the cursor of the last notification printed; a later run resumes after it")
	asJSON := fs.Bool("json", false, "print each notification as protojson, one a line")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q (--customer ID selects a customer)", fs.Arg(0))}
	}
	if cf.token == "" {
		cf.token = getenv("HOOKD_TOKEN")
	}
	var opts []client.Option
	if cf.token != "" {
		opts = append(opts, client.WithToken(cf.token))
	}
	if cf.ca != "" {
		tc, err := certs.ClientConfigFromFiles(cf.ca, cf.cert, cf.key)
		if err != nil {
			return fmt.Errorf("tail: %w", err)
		}
		opts = append(opts, client.WithTLS(tc))
	} else {
		opts = append(opts, client.WithInsecure())
	}
	c, err := client.New(cf.addr, opts...)
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	defer c.Close()
	var cursors client.CursorStore = &client.MemoryCursor{}
	if *cursorFile != "" {
		cursors = client.NewFileCursor(*cursorFile)
	}
	print := func(_ context.Context, n *hookdv1.Notification) error {
		if *asJSON {
			return writeJSONLine(stdout, n)
		}
		_, err := fmt.Fprintf(stdout, "%s  %s  v%d  %s  %s\n", formatTime(n.GetOccurredAt()), n.GetCustomerId(), n.GetVersion(), n.GetKind(), n.GetEventId())
		return err
	}
	err = c.Subscribe(ctx, client.SubscribeOptions{CustomerID: *customer, FromNow: *fromNow}, print, cursors)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil // Ctrl-C: the cursor of everything printed is saved
	}
	return fmt.Errorf("tail: %w", err)
}
