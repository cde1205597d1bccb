package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/bench"
	"github.com/hookd/hookd/internal/certs"
	"github.com/hookd/hookd/provider/stripe"
)

// send signs a Stripe event file exactly as Stripe does and POSTs it, so
// that hookd can be tried without a Stripe account. It fails on a non-2xx
// answer.
//
// It reads the server's environment (sendEnv): beside a hookd configured
// by HOOKD_* variables it signs with that hookd's secret and posts to its
// address. A flag wins over the environment, which wins over the default.
func send(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hookd send", flag.ContinueOnError)
	secret := fs.String("secret", "", "webhook signing secret (default: the first of HOOKD_STRIPE_WEBHOOK_SECRET, else the one a hookd generated in --data-dir)")
	url := fs.String("url", "http://"+defaultHTTPAddr+"/v1/webhooks/stripe", "webhook URL (default: HOOKD_URL, else the one of HOOKD_HTTP_ADDR)")
	dataDir := fs.String("data-dir", defaultDataDir, "where a local hookd keeps the secret it generated (default: HOOKD_DATA_DIR)")
	var spec bench.EventSpec
	fs.StringVar(&spec.Type, "type", "", "generate an event of this type instead of reading a file: "+strings.Join(bench.GeneratedTypes(), ", "))
	fs.StringVar(&spec.Customer, "customer", "", "with --type: the customer ID (cus_...)")
	fs.StringVar(&spec.Subscription, "subscription", "", "with --type: the subscription ID (default sub_<customer>)")
	fs.StringVar(&spec.Invoice, "invoice", "", "with --type: the invoice ID (default random)")
	fs.StringVar(&spec.EventID, "id", "", "with --type: the event ID (default random)")
	fs.StringVar(&spec.Email, "email", "", "with --type: the customer's email")
	fs.StringVar(&spec.Status, "status", "", "with --type: the subscription status")
	ago := fs.Duration("ago", 0, "with --type: make the event this much older than now (to try out-of-order delivery)")
	print := fs.Bool("print", false, "print the event instead of sending it")
	caFile := fs.String("ca", "", "PEM CA bundle that verifies an https:// --url (default: the system's roots)")
	if err := parseWithEnv(fs, args, sendEnv(getenv)); err != nil {
		return err
	}
	var body []byte
	var err error
	switch {
	case spec.Type != "" && fs.NArg() == 0:
		spec.Created = time.Now().Add(-*ago)
		body, err = bench.GenerateEvent(spec)
	case spec.Type == "" && fs.NArg() == 1 && fs.Arg(0) == "-":
		body, err = io.ReadAll(os.Stdin)
	case spec.Type == "" && fs.NArg() == 1:
		body, err = os.ReadFile(fs.Arg(0))
	default:
		return errors.New("send: want one event file (- for standard input), or --type and --customer")
	}
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if *print {
		_, err := stdout.Write(append(body, '\n'))
		return err
	}
	if *secret == "" {
		// A hookd started without a secret generated one in its data dir.
		if s, err := readSecretFile(*dataDir); err == nil {
			*secret = s
		}
	}
	if *secret == "" {
		return errors.New("send: --secret (or HOOKD_STRIPE_WEBHOOK_SECRET) is required, or run it beside a hookd that generated one in --data-dir")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripe.Sign(body, *secret, time.Now()))
	tlsCfg, err := certs.ClientConfigFromFiles(*caFile, "", "")
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if tlsCfg != nil {
		client.Transport = &http.Transport{TLSClientConfig: tlsCfg}
	}
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

// sendEnv is send's view of the environment: the server's HOOKD_* twins of
// send's flags. --secret is the first of HOOKD_STRIPE_WEBHOOK_SECRET
// (the one a rotation added last goes first), --url is the webhook URL of
// HOOKD_HTTP_ADDR (https with HOOKD_TLS_CERT; a listen address on every
// interface is reached on loopback) unless HOOKD_URL says otherwise, and
// --data-dir is HOOKD_DATA_DIR. Send's other flags have no twin: HOOKD_TYPE
// or HOOKD_STATUS would be too easy to leave set by accident.
func sendEnv(getenv func(string) string) func(string) string {
	return func(name string) string {
		switch name {
		case "HOOKD_SECRET":
			if list := splitList(getenv("HOOKD_STRIPE_WEBHOOK_SECRET")); len(list) > 0 {
				return list[0]
			}
		case "HOOKD_URL":
			if u := getenv("HOOKD_URL"); u != "" {
				return u
			}
			if addr := getenv("HOOKD_HTTP_ADDR"); addr != "" {
				scheme := "http"
				if getenv("HOOKD_TLS_CERT") != "" {
					scheme = "https"
				}
				return scheme + "://" + dialAddr(addr) + "/v1/webhooks/stripe"
			}
		case "HOOKD_DATA_DIR":
			return getenv(name)
		}
		return ""
	}
}

// dialAddr is where a client on this machine reaches a listen address:
// one on every interface (":8080", "0.0.0.0:8080", "[::]:8080") is
// reached on loopback.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
