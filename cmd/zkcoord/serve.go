package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/dnsview"
	"github.com/zkcoord/zkcoord/internal/metrics"
	"github.com/zkcoord/zkcoord/internal/tlsx"
	"github.com/zkcoord/zkcoord/internal/zkserver"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

type config struct {
	listen, httpListen                                    string
	httpMaxBody                                           int64
	zk, root, replicaID, advertise, logLevel, debugListen string
	metricsListen                                         string
	sessionTimeout, streamTTL, stopTimeout                time.Duration
	tls                                                   tlsx.Files
	plaintext                                             bool
	zkDigestFile                                          string
	authPolicy, authOpen, peerTokenFile                   string
	zkTLSCA, zkTLSCert, zkTLSKey                          string
	noAuth                                                bool
	zkWritePipeline                                       int
	grpcStreamWorkers                                     int
	dnsListen, dnsDomain, dnsGroups                       string
	dnsTTL                                                time.Duration
	dns                                                   []dnsview.Option // from the dns flags, checked
}

// newServeCmd is `zkcoord serve`, or `zkcoord dev` (a private ZooKeeper
// and development defaults) when dev is set.
func newServeCmd(dev bool) *cobra.Command {
	c := &config{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the recipes over gRPC (and HTTP) from a ZooKeeper ensemble",
		Example: `  zkcoord serve --listen :7070 --zk zk1:2181,zk2:2181,zk3:2181/chroot \
      --tls-cert cert.pem --tls-key key.pem --auth-policy policy.json`,
		Args: noArgs,
	}
	if dev {
		cmd.Use, cmd.Short = "dev", "Serve on a private, temporary ZooKeeper (plaintext, no auth): for development"
		cmd.Example = "  zkcoord dev                      # gRPC on 127.0.0.1:7070, HTTP on 127.0.0.1:7071; Ctrl-C stops both"
	}
	serveFlags(cmd.Flags(), c, dev)
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		if err := envFlags(cmd.Flags(), nil); err != nil {
			return err
		}
		if err := checkConfig(c, dev); err != nil {
			return err
		}
		return run(cmd.Context(), *c, dev)
	})
	return cmd
}

// serveFlags defines serve's (or dev's) flags on fs, into c.
func serveFlags(fs *pflag.FlagSet, c *config, dev bool) {
	defListen := ":7070"
	if dev {
		defListen = "127.0.0.1:7070"
	}
	fs.StringVar(&c.listen, "listen", defListen, "gRPC listen address")
	defHTTP := ""
	if dev {
		defHTTP = "127.0.0.1:7071"
	}
	fs.StringVar(&c.httpListen, "http-listen", defHTTP, "HTTP/JSON and Connect listen address (the same services, auth and TLS as gRPC; empty: none)")
	fs.Int64Var(&c.httpMaxBody, "http-max-body", 1<<20, "largest HTTP request body, and stream message, in bytes")
	if !dev {
		fs.StringVar(&c.zk, "zk", "", "ZooKeeper connect string: host:port[,host:port...][/chroot] (required)")
	}
	fs.StringVar(&c.root, "root", "/zkcoord", "root znode of zkcoord's namespace (below the chroot)")
	fs.DurationVar(&c.sessionTimeout, "session-timeout", 10*time.Second, "ZooKeeper session timeout to request")
	fs.IntVar(&c.zkWritePipeline, "zk-write-pipeline", zkx.DefaultWritePipeline, "registry write batches (ZooKeeper multis of several callers' writes) in flight at once, 1 to 64; more may help where ZooKeeper has CPU to spare, fewer cost it less per write")
	fs.IntVar(&c.grpcStreamWorkers, "grpc-stream-workers", server.DefaultStreamWorkers, fmt.Sprintf("goroutines kept to run gRPC calls on, reused from call to call (0 to %d; 0: a new goroutine per call, as grpc-go does by default)", server.MaxStreamWorkers))
	fs.DurationVar(&c.streamTTL, "stream-ttl", 10*time.Second, "TTL of the implicit lease of a Campaign, AwaitBarrier, AcquireLock or AcquireSemaphore stream without a lease")
	fs.DurationVar(&c.stopTimeout, "shutdown-timeout", 10*time.Second, "how long a graceful stop may take before it is forced")
	fs.StringVar(&c.replicaID, "replica-id", "", "name of this replica in status, logs and lease records; unique among replicas (default hostname-pid)")
	fs.StringVar(&c.advertise, "advertise", "", "address other replicas use to reach this one (default: the listen address, with the hostname for an unspecified IP)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.debugListen, "debug-listen", "", "serve /debug/pprof and /debug/vars (goroutines, memstats) on this address; keep it private")
	fs.StringVar(&c.metricsListen, "metrics-listen", "", "serve Prometheus metrics at /metrics on this address (e.g. 127.0.0.1:9464; empty: none); plain HTTP, keep it private")
	fs.StringVar(&c.tls.Cert, "tls-cert", "", "PEM certificate chain to serve gRPC over TLS with (reloaded when the file changes)")
	fs.StringVar(&c.tls.Key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.tls.ClientCA, "tls-client-ca", "", "PEM CA bundle: require client certificates signed by it (mutual TLS); replicas also verify each other against it")
	fs.BoolVar(&c.plaintext, "plaintext", dev, "serve gRPC without TLS (the default for dev only)")
	fs.StringVar(&c.zkDigestFile, "zk-digest-file", "", "file holding user:password: authenticate to ZooKeeper with the digest scheme and create every znode readable and writable by that identity only")
	fs.StringVar(&c.zkTLSCA, "zk-tls-ca", "", "PEM CA bundle: reach ZooKeeper over TLS (its secureClientPort, named in --zk) and verify its servers against these CAs")
	fs.StringVar(&c.zkTLSCert, "zk-tls-cert", "", "PEM client certificate to present to ZooKeeper over TLS (with --zk-tls-key), for ssl.clientAuth=need")
	fs.StringVar(&c.zkTLSKey, "zk-tls-key", "", "PEM private key of --zk-tls-cert")
	fs.StringVar(&c.authPolicy, "auth-policy", "", "JSON policy file of principals (bearer tokens, client certificate names, a JWT key), their scopes and limits; re-read when it changes")
	fs.BoolVar(&c.noAuth, "no-auth", dev, "serve every caller without authentication or limits (the default for dev only)")
	fs.StringVar(&c.authOpen, "auth-open", auth.HealthService, "comma-separated services served without credentials when auth is on: "+auth.HealthService+", "+auth.ReflectionService+" (empty: none)")
	fs.StringVar(&c.dnsListen, "dns-listen", "", "serve the registry over DNS, UDP and TCP, on this address (e.g. 127.0.0.1:8600; empty: none)")
	fs.StringVar(&c.dnsDomain, "dns-domain", dnsview.DefaultDomain, "domain of the DNS view: group web is web.<domain>, its member w1 w1.web.<domain>")
	fs.DurationVar(&c.dnsTTL, "dns-ttl", dnsview.DefaultTTL, "TTL of DNS answers, negative ones included, in whole seconds (0s to 1h): a member that leaves is gone from resolvers' caches within it")
	defGroups := ""
	if dev {
		defGroups = dnsview.AllGroups
	}
	fs.StringVar(&c.dnsGroups, "dns-groups", defGroups, "comma-separated prefixes of the groups DNS shows, * for all; required with --dns-listen, since DNS has no credentials (names of other groups are REFUSED)")
	fs.StringVar(&c.peerTokenFile, "peer-token-file", "", "file holding the bearer token this replica presents to other replicas when auth is on (its principal needs admin over every name); not needed when the replicas' client certificates map to such a principal")
}

// checkConfig checks the flags of serve (or dev) together.
func checkConfig(c *config, dev bool) error {
	if !dev && c.zk == "" {
		return errors.New("--zk (or ZKCOORD_ZK) is required, e.g. --zk 127.0.0.1:2181")
	}
	switch {
	case c.tls.Enabled() && c.plaintext && !dev:
		return errors.New("--plaintext conflicts with --tls-cert, --tls-key and --tls-client-ca")
	case c.tls.Enabled():
		c.plaintext = false
		if err := c.tls.Check(); err != nil {
			return err
		}
	case !c.plaintext:
		return errors.New("serve needs TLS (--tls-cert and --tls-key, and --tls-client-ca for mutual TLS) or --plaintext to serve without it")
	}
	switch {
	case (c.zkTLSCert != "") != (c.zkTLSKey != ""):
		return errors.New("--zk-tls-cert and --zk-tls-key go together")
	case c.zkTLSCert != "" && c.zkTLSCA == "":
		return errors.New("--zk-tls-cert needs --zk-tls-ca (TLS to ZooKeeper)")
	}
	switch {
	case c.authPolicy != "" && c.noAuth && !dev:
		return errors.New("--no-auth conflicts with --auth-policy")
	case c.authPolicy != "":
		c.noAuth = false
	case !c.noAuth:
		return errors.New("serve needs --auth-policy (who may do what) or --no-auth (anyone who reaches the port may do anything)")
	}
	for _, svc := range strings.Split(c.authOpen, ",") {
		if svc = strings.TrimSpace(svc); svc != "" && svc != auth.HealthService && svc != auth.ReflectionService {
			return fmt.Errorf("--auth-open: unknown service %q (want %s or %s)", svc, auth.HealthService, auth.ReflectionService)
		}
	}
	if err := parseDNS(c); err != nil {
		return err
	}
	if c.zkWritePipeline < 1 || c.zkWritePipeline > 64 {
		return fmt.Errorf("--zk-write-pipeline %d: must be 1 to 64", c.zkWritePipeline)
	}
	if c.grpcStreamWorkers < 0 || c.grpcStreamWorkers > server.MaxStreamWorkers {
		return fmt.Errorf("--grpc-stream-workers %d: must be 0 to %d", c.grpcStreamWorkers, server.MaxStreamWorkers)
	}
	return checkListen("--metrics-listen", c.metricsListen)
}

// run serves until ctx ends (SIGINT or SIGTERM), then drains.
func run(ctx context.Context, c config, dev bool) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if dev {
		if err := zkserver.CheckInstalled(); err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		zks, err := zkserver.Start(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("start private ZooKeeper: %w", err)
		}
		defer func() {
			if err := zks.Stop(); err != nil {
				log.Warn("stop private ZooKeeper", "err", err)
			}
		}()
		c.zk = zks.Addr()
		log.Info("private ZooKeeper started", "addr", zks.Addr(), "dir", zks.Dir())
	}

	zkOpts := []zkx.Option{zkx.WithSessionTimeout(c.sessionTimeout), zkx.WithLogger(log), zkx.WithWritePipeline(c.zkWritePipeline)}
	var mets *metrics.Metrics
	if c.metricsListen != "" {
		mets = metrics.New()
		zkOpts = append(zkOpts, zkx.WithObserver(mets.ObserveZK))
	}
	if c.zkDigestFile != "" {
		b, err := os.ReadFile(c.zkDigestFile)
		if err != nil {
			return fmt.Errorf("--zk-digest-file: %w", err)
		}
		user, pass, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		if !ok || user == "" || pass == "" {
			return fmt.Errorf("--zk-digest-file %s: want one line user:password", c.zkDigestFile)
		}
		zkOpts = append(zkOpts, zkx.WithDigest(user, pass))
	}
	if c.zkTLSCA != "" {
		cfg, err := zkTLSConfig(c)
		if err != nil {
			return err
		}
		zkOpts = append(zkOpts, zkx.WithTLS(cfg))
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	sess, err := zkx.Dial(dctx, c.zk, zkOpts...)
	cancel()
	if err != nil {
		return err
	}
	defer sess.Close()
	if c.debugListen != "" {
		stopDebug, err := serveDebug(c.debugListen, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	metricsAddr := ""
	if mets != nil {
		addr, stopMetrics, err := serveMetrics(c.metricsListen, mets.Handler(), log)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		defer stopMetrics()
		metricsAddr = addr
	}
	lis, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	if c.advertise == "" {
		c.advertise = server.AdvertiseAddr(lis.Addr())
	}
	ls := server.Listeners{GRPC: lis, HTTPMaxBody: c.httpMaxBody, DNS: c.dns}
	if c.httpListen != "" {
		if ls.HTTP, err = net.Listen("tcp", c.httpListen); err != nil {
			lis.Close()
			return fmt.Errorf("--http-listen: %w", err)
		}
		defer ls.HTTP.Close()
	}
	if c.dnsListen != "" {
		if ls.DNSPacket, ls.DNSStream, err = dnsview.Listen(c.dnsListen); err != nil {
			lis.Close()
			return fmt.Errorf("--dns-listen: %w", err)
		}
		defer ls.DNSPacket.Close()
		defer ls.DNSStream.Close()
	}
	opts := []server.Option{server.WithRoot(c.root), server.WithStreamTTL(c.streamTTL),
		server.WithReplicaID(c.replicaID), server.WithAdvertise(c.advertise), server.WithVersion(version),
		server.WithLogger(log), server.WithStreamWorkers(c.grpcStreamWorkers)}
	if mets != nil {
		opts = append(opts, server.WithMetrics(mets))
	}
	var grpcOpts []grpc.ServerOption
	if !c.plaintext {
		cfgs, err := tlsx.Load(c.tls)
		if err != nil {
			lis.Close()
			return err
		}
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(cfgs.Server)))
		ls.HTTPTLS = cfgs.Server.Clone()
		ls.HTTPTLS.NextProtos = []string{"h2", "http/1.1"}
		opts = append(opts, server.WithPeerCredentials(credentials.NewTLS(cfgs.Peer)))
	}
	if !c.noAuth {
		authOpts, err := authOptions(c, log)
		if err != nil {
			lis.Close()
			return err
		}
		opts = append(opts, authOpts...)
	}
	g, err := server.New(ctx, sess, opts...)
	if err != nil {
		lis.Close()
		return err
	}
	defer g.Close()
	httpAddr, dnsAddr := "", ""
	if ls.HTTP != nil {
		httpAddr = ls.HTTP.Addr().String()
	}
	if ls.DNSPacket != nil {
		dnsAddr = ls.DNSPacket.LocalAddr().String()
	}
	log.Info("zkcoord serving", "listen", lis.Addr().String(), "http", httpAddr, "dns", dnsAddr, "metrics", metricsAddr, "advertise", c.advertise, "replica", g.ReplicaID(),
		"zk", c.zk, "root", c.root, "tls", !c.plaintext, "mutual_tls", c.tls.ClientCA != "", "auth", !c.noAuth, "version", version)
	err = server.Serve(ctx, g, ls, c.stopTimeout, grpcOpts...)
	log.Info("zkcoord stopped")
	return err
}

// authOptions loads the auth policy and the peer token.
func authOptions(c config, log *slog.Logger) ([]server.Option, error) {
	src, err := auth.LoadSource(c.authPolicy, func(err error) {
		log.Error("auth policy not reloaded; the last good one stays in force", "err", err)
	})
	if err != nil {
		return nil, fmt.Errorf("--auth-policy: %w", err)
	}
	cfg := auth.Config{Source: src}
	for _, svc := range strings.Split(c.authOpen, ",") {
		if svc = strings.TrimSpace(svc); svc != "" {
			cfg.Open = append(cfg.Open, svc)
		}
	}
	opts := []server.Option{server.WithAuth(cfg)}
	if c.peerTokenFile != "" {
		b, err := os.ReadFile(c.peerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("--peer-token-file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return nil, fmt.Errorf("--peer-token-file %s is empty", c.peerTokenFile)
		}
		opts = append(opts, server.WithPeerToken(auth.Bearer(tok, !c.plaintext)))
	}
	return opts, nil
}

// zkTLSConfig is the TLS configuration for ZooKeeper's secure client port.
func zkTLSConfig(c config) (*tls.Config, error) {
	ca, err := os.ReadFile(c.zkTLSCA)
	if err != nil {
		return nil, fmt.Errorf("--zk-tls-ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("--zk-tls-ca %s: no PEM certificate", c.zkTLSCA)
	}
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if c.zkTLSCert != "" {
		pair, err := tls.LoadX509KeyPair(c.zkTLSCert, c.zkTLSKey)
		if err != nil {
			return nil, fmt.Errorf("--zk-tls-cert/--zk-tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
