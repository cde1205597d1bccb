package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hookd/hookd/gateway"
)

// send signs a Stripe event file exactly as Stripe does and POSTs it, so
// that hookd can be tried without a Stripe account. It fails on a non-2xx
// answer.
func send(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hookd send", flag.ContinueOnError)
	secret := fs.String("secret", "", "webhook signing secret (default: the first of HOOKD_STRIPE_WEBHOOK_SECRET)")
	url := fs.String("url", "http://127.0.0.1:8080/v1/webhooks/stripe", "webhook URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" {
		if list := splitList(getenv("HOOKD_STRIPE_WEBHOOK_SECRET")); len(list) > 0 {
			*secret = list[0]
		}
	}
	if *secret == "" {
		return errors.New("send: --secret (or HOOKD_STRIPE_WEBHOOK_SECRET) is required")
	}
	if fs.NArg() != 1 {
		return errors.New("send: want exactly one event file (use - for standard input)")
	}
	var body []byte
	var err error
	if name := fs.Arg(0); name == "-" {
		body, err = io.ReadAll(os.Stdin)
	} else {
		body, err = os.ReadFile(name)
	}
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", gateway.SignStripe(body, *secret, time.Now()))
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%d %s\n", resp.StatusCode, strings.TrimSpace(string(out)))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("send: %s answered %s", *url, resp.Status)
	}
	return nil
}
