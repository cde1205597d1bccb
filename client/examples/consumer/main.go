// Command consumer follows hookd's notifications with the Go client and
// prints each as one JSON line on standard output, keeping its position in
// a cursor file so that a restart continues where it stopped.
//
//	go run ./client/examples/consumer -addr 127.0.0.1:9090 -insecure -token "$TOKEN" -cursor-file ./consumer.cursor
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hookd/hookd/client"
	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

type config struct {
	addr       string
	token      string
	cursorFile string
	customer   string
	insecure   bool
	caFile     string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:9090", "hookd's gRPC address")
	flag.StringVar(&cfg.token, "token", os.Getenv("HOOKD_TOKEN"), "bearer token with the read scope (default $HOOKD_TOKEN)")
	flag.StringVar(&cfg.cursorFile, "cursor-file", "consumer.cursor", "file that keeps the cursor of the last notification printed")
	flag.StringVar(&cfg.customer, "customer", "", "follow only this customer's notifications")
	flag.BoolVar(&cfg.insecure, "insecure", false, "plaintext gRPC (hookd without --tls-cert); the token then crosses the network in the clear")
	flag.StringVar(&cfg.caFile, "ca-file", "", "PEM CA certificates to verify hookd's certificate with (default: the system's)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts := []client.Option{client.WithLogger(log)}
	if cfg.token != "" {
		opts = append(opts, client.WithToken(cfg.token))
	}
	switch {
	case cfg.insecure:
		opts = append(opts, client.WithInsecure())
	case cfg.caFile != "":
		pem, err := os.ReadFile(cfg.caFile)
		if err != nil {
			return err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no PEM certificate", cfg.caFile)
		}
		opts = append(opts, client.WithTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))
	}
	c, err := client.New(cfg.addr, opts...)
	if err != nil {
		return err
	}
	defer c.Close()

	out := protojson.MarshalOptions{}
	print := func(_ context.Context, n *hookdv1.Notification) error {
		line, err := out.Marshal(n)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(os.Stdout, "%s\n", line)
		return err
	}
	return c.Subscribe(ctx, client.SubscribeOptions{CustomerID: cfg.customer}, print, client.NewFileCursor(cfg.cursorFile))
}
