package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/hookd/hookd/internal/certs"
)

// tlsSetup is the TLS material cfg names, loaded at start. A nil config
// means plaintext there (the quickstart: loopback, no flags).
type tlsSetup struct {
	http          *tls.Config // the HTTP listener (--tls-cert/--tls-key)
	grpc          *tls.Config // the gRPC listener, with --grpc-client-ca: mutual TLS
	ingest        *tls.Config // a gateway dialing members (--ingest-ca, --ingest-cert/--ingest-key)
	clusterServer *tls.Config // the cluster port (--cluster-tls-*)
	clusterClient *tls.Config // dialing other members' cluster ports
}

func loadTLS(cfg config, log *slog.Logger) (tlsSetup, error) {
	var s tlsSetup
	if cfg.TLSCert != "" {
		r, err := certs.NewReloader(cfg.TLSCert, cfg.TLSKey, log)
		if err != nil {
			return s, fmt.Errorf("--tls-cert: %w", err)
		}
		s.http = certs.ServerConfig(r, nil)
		s.grpc = certs.ServerConfig(r, nil)
		if cfg.GRPCClientCA != "" {
			pool, err := certs.LoadPool(cfg.GRPCClientCA)
			if err != nil {
				return s, fmt.Errorf("--grpc-client-ca: %w", err)
			}
			s.grpc = certs.ServerConfig(r, pool)
		}
	}
	if cfg.IngestCA != "" {
		pool, err := certs.LoadPool(cfg.IngestCA)
		if err != nil {
			return s, fmt.Errorf("--ingest-ca: %w", err)
		}
		var r *certs.Reloader
		if cfg.IngestCert != "" {
			if r, err = certs.NewReloader(cfg.IngestCert, cfg.IngestKey, log); err != nil {
				return s, fmt.Errorf("--ingest-cert: %w", err)
			}
		}
		s.ingest = certs.ClientConfig(pool, r)
	}
	if cfg.ClusterTLSCert != "" {
		r, err := certs.NewReloader(cfg.ClusterTLSCert, cfg.ClusterTLSKey, log)
		if err != nil {
			return s, fmt.Errorf("--cluster-tls-cert: %w", err)
		}
		pool, err := certs.LoadPool(cfg.ClusterTLSCA)
		if err != nil {
			return s, fmt.Errorf("--cluster-tls-ca: %w", err)
		}
		s.clusterServer = certs.ServerConfig(r, pool)
		s.clusterClient = certs.ClientConfig(pool, r)
		// gRPC verifies the host it dials unless a name is set here.
		s.clusterClient.ServerName = cfg.ClusterTLSServerName
	}
	return s, nil
}

// grpcServerOptions are the gRPC listener's credentials, if any.
func (s tlsSetup) grpcServerOptions() []grpc.ServerOption {
	if s.grpc == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(s.grpc))}
}

// clusterOptions are the cluster port's server and dial options, if any.
func (s tlsSetup) clusterOptions() ([]grpc.ServerOption, []grpc.DialOption) {
	if s.clusterServer == nil {
		return nil, nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(s.clusterServer))},
		[]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(s.clusterClient))}
}
