package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zkcoord/zkcoord/internal/tlsx"
)

// parseFlags sets fs's flags from the environment (--name from
// ZKCOORD_NAME, dashes as underscores), then from args, which win.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "ZKCOORD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %w", env, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	return fs.Parse(args)
}

// health asks a replica for its grpc.health.v1 status and fails unless it
// is SERVING: a container's health check (the image has no shell and no
// other probe). It reads serve's own environment, so in the container it
// needs no flag: the port of ZKCOORD_LISTEN on the loopback, and TLS with
// ZKCOORD_TLS_CERT, ZKCOORD_TLS_KEY and ZKCOORD_TLS_CLIENT_CA (the replica
// presents its certificate as it does to other replicas).
func health(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	var files tlsx.Files
	listen := fs.String("listen", ":7070", "serve's --listen: the port to check on the loopback when --addr is not given")
	addr := fs.String("addr", "", "gRPC address to check (default: 127.0.0.1 and the port of --listen)")
	service := fs.String("service", "", "service whose status to check (default: the whole server)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	serverName := fs.String("tls-server-name", "", "name to verify the server's certificate against (default: the host of --addr)")
	fs.StringVar(&files.Cert, "tls-cert", "", "check over TLS, presenting this certificate (serve's --tls-cert)")
	fs.StringVar(&files.Key, "tls-key", "", "private key of --tls-cert")
	fs.StringVar(&files.ClientCA, "tls-client-ca", "", "CA bundle to verify the server against (serve's --tls-client-ca; default: the system's)")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *addr == "" {
		_, port, err := net.SplitHostPort(*listen)
		if err != nil {
			return fmt.Errorf("--listen %q: %w", *listen, err)
		}
		*addr = net.JoinHostPort("127.0.0.1", port)
	}
	creds := insecure.NewCredentials()
	if files.Enabled() {
		cfgs, err := tlsx.Load(files)
		if err != nil {
			return err
		}
		cfg := cfgs.Peer.Clone()
		cfg.ServerName = *serverName
		creds = credentials.NewTLS(cfg)
	}
	cc, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: *service})
	if err != nil {
		return fmt.Errorf("health of %s: %w", *addr, err)
	}
	if r.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health of %s: %v", *addr, r.Status)
	}
	fmt.Println(r.Status)
	return nil
}
