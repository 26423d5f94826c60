package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/auth"
)

// globals are the flags every client command shares: where the gateway
// is, how to reach it, and how to print.
type globals struct {
	sigs          *signals
	endpoints     string
	cacert        string
	cert, key     string
	token         string
	insecureToken bool
	output        string
	timeout       time.Duration
}

// envNames are the client flags read from ZKCOORD_<NAME> when not given.
var envNames = []string{"endpoints", "token", "cacert", "cert", "key"}

// addFlags defines the shared flags on fs (a command's persistent flags).
func (g *globals) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&g.endpoints, "endpoints", "127.0.0.1:7070", "comma-separated gateway addresses (env ZKCOORD_ENDPOINTS)")
	fs.StringVar(&g.cacert, "cacert", "", "PEM CA bundle: reach the gateway over TLS and verify it against these CAs (env ZKCOORD_CACERT)")
	fs.StringVar(&g.cert, "cert", "", "PEM client certificate for mutual TLS, with --key (env ZKCOORD_CERT)")
	fs.StringVar(&g.key, "key", "", "PEM private key of --cert (env ZKCOORD_KEY)")
	fs.StringVar(&g.token, "token", "", "bearer token to present to a gateway with auth on (env ZKCOORD_TOKEN); needs TLS unless --insecure-token")
	fs.BoolVar(&g.insecureToken, "insecure-token", false, "send --token over a plaintext connection too (loopback and tests only)")
	fs.StringVarP(&g.output, "output", "o", "table", "output format: table (for people) or json (protojson, one document per line)")
	fs.DurationVar(&g.timeout, "timeout", 10*time.Second, "how long a call may take; waits (lock, elect, leader --wait, barrier await, watch) are not bounded by it")
}

// clientCommands are the commands that talk to a gateway.
func clientCommands(g *globals) []*cobra.Command {
	cmds := []*cobra.Command{
		newGetCmd(g), newWatchCmd(g), newRegisterCmd(g), newDeregisterCmd(g),
		newLeaseCmd(g), newLeaderCmd(g), newObserveCmd(g), newResignCmd(g), newElectCmd(g),
		newBarrierCmd(g), newLockCmd(g), newSemaphoreCmd(g), newCheckSequencerCmd(g), newStatusCmd(g), newLsCmd(g),
	}
	for _, c := range cmds {
		g.addFlags(c.PersistentFlags())
		c.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return g.check(cmd) }
	}
	return cmds
}

// check reads the environment into flags not given, and checks them.
func (g *globals) check(cmd *cobra.Command) error {
	if err := envFlags(cmd.Flags(), envNames); err != nil {
		return err
	}
	switch {
	case g.output != "table" && g.output != "json":
		return usageErr("--output %q: want table or json", g.output)
	case (g.cert != "") != (g.key != ""):
		return usageErr("--cert and --key go together")
	case g.token != "" && !g.tls() && !g.insecureToken:
		return usageErr("--token needs TLS (--cacert) so that it is not sent in clear; --insecure-token sends it anyway")
	case g.endpoints == "":
		return usageErr("--endpoints is empty")
	}
	return nil
}

func (g *globals) tls() bool { return g.cacert != "" || g.cert != "" }

// dialOptions are the transport credentials and token of the flags.
func (g *globals) dialOptions() ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	if g.tls() {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if g.cacert != "" {
			pem, err := os.ReadFile(g.cacert)
			if err != nil {
				return nil, fmt.Errorf("--cacert: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--cacert %s: no PEM certificate", g.cacert)
			}
		}
		if g.cert != "" {
			pair, err := tls.LoadX509KeyPair(g.cert, g.key)
			if err != nil {
				return nil, fmt.Errorf("--cert/--key: %w", err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	}
	if g.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.Bearer(g.token, g.tls())))
	}
	return opts, nil
}

// conn dials the gateway for the generated stubs; close it after use.
func (g *globals) conn() (*grpc.ClientConn, error) {
	opts, err := g.dialOptions()
	if err != nil {
		return nil, err
	}
	return client.Dial(g.endpoints, opts...)
}

// client connects a Go client to the gateway, for the commands that hold a
// session (lock, elect, semaphore acquire).
func (g *globals) client(ctx context.Context) (*client.Client, error) {
	opts, err := g.dialOptions()
	if err != nil {
		return nil, err
	}
	return client.New(ctx, g.endpoints, client.WithDialOptions(opts...))
}

// call bounds a unary call by --timeout.
func (g *globals) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, g.timeout)
}

// withConn runs fn with a connection to the gateway.
func (g *globals) withConn(fn func(*grpc.ClientConn) error) error {
	cc, err := g.conn()
	if err != nil {
		return err
	}
	defer cc.Close()
	return fn(cc)
}
