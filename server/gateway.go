// Package server serves a zkcoord replica (package gateway) over gRPC:
// each service turns a request into a call of the recipe it serves and the
// recipe's errors into gRPC status (errors.go); grpc.go chains the
// interceptors (recovery, metrics, logging, auth, the lease caller, validation) and
// serves gRPC and the HTTP face (package httpgw) until a drain. Nothing
// here talks to ZooKeeper.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	peerpb "github.com/zkcoord/zkcoord/gen/zkcoord/peer/v1"
	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/gateway"
	"github.com/zkcoord/zkcoord/internal/metrics"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/validate"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Gateway is one replica served over gRPC: the replica's recipes, and what
// the services share (calls).
type Gateway struct {
	replica *gateway.Replica
	c       *calls
	opts    options
	log     *slog.Logger
	unwatch func() // stops the metrics' reading of the replica (nil: none)
}

// Option configures a Gateway. An option refuses a value it cannot work
// with, and New returns that error; the replica's settings (root, replica
// id, advertise address) are checked by package gateway, before anything
// is written to ZooKeeper.
type Option func(*options) error

type options struct {
	replica   gateway.Config
	streamTTL time.Duration
	version   string
	auth      *auth.Config
	metrics   *metrics.Metrics
	workers   int // NewGRPCServer's stream workers
}

// WithAuth authenticates and authorizes every call by cfg (see package
// auth): NewGRPCServer installs its interceptors. Without it any caller may
// do anything.
func WithAuth(cfg auth.Config) Option {
	return func(o *options) error {
		if cfg.Limiter == nil { // made here, so that the metrics can read its refusals
			cfg.Limiter = auth.NewLimiter()
		}
		o.auth = &cfg
		return nil
	}
}

// WithMetrics keeps m (one per gateway): NewGRPCServer counts and times
// every call (gRPC and HTTP alike) through its interceptors, and m reads
// the replica's state at each scrape. For ZooKeeper request latency, dial
// the session with zkx.WithObserver(m.ObserveZK). Serve m.Handler() where
// Prometheus scrapes (zkcoord's --metrics-listen).
func WithMetrics(m *metrics.Metrics) Option {
	return func(o *options) error {
		if m == nil {
			return errors.New("server: metrics: nil")
		}
		o.metrics = m
		return nil
	}
}

// WithPeerToken sets the credentials replicas present to each other's
// PeerService when auth is on, unless their client certificates map to a
// principal: the principal needs the admin right over every name.
func WithPeerToken(c credentials.PerRPCCredentials) Option {
	return func(o *options) error { o.replica.PeerToken = c; return nil }
}

// WithPeerCredentials sets the transport credentials replicas dial each
// other with (default: plaintext). Use TLS when the replicas serve TLS.
func WithPeerCredentials(c credentials.TransportCredentials) Option {
	return func(o *options) error { o.replica.PeerCreds = c; return nil }
}

// WithRoot sets the root znode of zkcoord's namespace (default "/zkcoord"),
// below the connect string's chroot.
func WithRoot(root string) Option {
	return func(o *options) error { o.replica.Root = root; return nil }
}

// WithStreamTTL sets the TTL of the implicit lease of a Campaign or
// AwaitBarrier stream called without a lease (default 10s): how long its
// candidacy or participation outlives a gateway that died.
func WithStreamTTL(d time.Duration) Option {
	return func(o *options) error {
		if d < validate.MinTTL || d > validate.MaxTTL {
			return fmt.Errorf("server: stream TTL %v: want a lease TTL, between %v and %v", d, validate.MinTTL, validate.MaxTTL)
		}
		o.streamTTL = d
		return nil
	}
}

// WithReplicaID names this replica in status, logs and lease records
// (default hostname-pid). Replica ids must be unique among live replicas.
func WithReplicaID(id string) Option {
	return func(o *options) error { o.replica.ReplicaID = id; return nil }
}

// WithAdvertise sets the address other replicas use to reach this one's
// PeerService (forwarded keepalives, lease handoffs). Without it, replicas
// cannot forward to this one: a keepalive for a lease it owns that reaches
// another replica fails with UNAVAILABLE until the client comes back here.
func WithAdvertise(addr string) Option {
	return func(o *options) error { o.replica.Advertise = addr; return nil }
}

// WithVersion sets the version status reports.
func WithVersion(v string) Option { return func(o *options) error { o.version = v; return nil } }

// DefaultStreamWorkers is how many goroutines NewGRPCServer keeps to run
// calls on (WithStreamWorkers).
const DefaultStreamWorkers = 64

// MaxStreamWorkers bounds WithStreamWorkers.
const MaxStreamWorkers = 4096

// WithStreamWorkers sets how many goroutines the gRPC server keeps to run
// calls on, reused from call to call (grpc.NumStreamWorkers; default
// DefaultStreamWorkers, 0 to MaxStreamWorkers). A call that finds none
// idle gets a goroutine of its own, as every call does with 0. A call on a
// fresh goroutine grows its stack as it goes, copying it each time: 9% of
// the gateway's CPU under Register and Deregister (docs/BENCHMARKS.md,
// "gRPC calls on kept goroutines"). A stream holds its goroutine while it
// is open, so on a gateway with more open streams than workers, most
// calls get fresh goroutines anyway.
func WithStreamWorkers(n int) Option {
	return func(o *options) error {
		if n < 0 || n > MaxStreamWorkers {
			return fmt.Errorf("server: stream workers %d: want 0 to %d", n, MaxStreamWorkers)
		}
		o.workers = n
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("server: logger: nil")
		}
		o.replica.Log = l
		return nil
	}
}

// WithRegistryOptions passes options to the registry (cache tuning).
func WithRegistryOptions(opt ...registry.Option) Option {
	return func(o *options) error { o.replica.Registry = append(o.replica.Registry, opt...); return nil }
}

// New builds a Gateway on an established session: the replica's recipes
// (package gateway: the namespace is created, leases left without an owner
// adopted), ready to serve.
func New(ctx context.Context, sess *zkx.Session, opt ...Option) (*Gateway, error) {
	o := options{streamTTL: 10 * time.Second, version: "dev", workers: DefaultStreamWorkers}
	for _, fn := range opt {
		if err := fn(&o); err != nil {
			return nil, err
		}
	}
	if o.replica.Log == nil {
		o.replica.Log = slog.New(slog.DiscardHandler)
	}
	release := func() {}
	if o.metrics != nil { // refused before anything is written to ZooKeeper
		var err error
		if release, err = o.metrics.Claim(); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	r, err := gateway.New(ctx, sess, o.replica)
	if err != nil {
		release()
		return nil, err
	}
	g := &Gateway{replica: r, c: newCalls(r.Leases, o.streamTTL, o.replica.Log), opts: o, log: o.replica.Log}
	if o.metrics != nil {
		src := metrics.Source{Replica: r, Version: o.version, Polls: g.c.polls.Load}
		if o.auth != nil {
			src.Limiter = o.auth.Limiter
		}
		if g.unwatch, err = o.metrics.Watch(src); err != nil {
			release()
			g.Close()
			return nil, err
		}
	}
	return g, nil
}

// ReplicaID is the replica's id (WithReplicaID, or its default).
func (g *Gateway) ReplicaID() string { return g.replica.ID() }

// Register registers every zkcoord service on s, each with the recipe it
// serves.
func (g *Gateway) Register(s grpc.ServiceRegistrar) {
	r, c := g.replica, g.c
	pb.RegisterLeaseServiceServer(s, &leaseService{leases: r.Leases, c: c})
	pb.RegisterRegistryServiceServer(s, &registryService{registry: r.Registry, c: c, tokens: newPageTokens()})
	pb.RegisterElectionServiceServer(s, &electionService{elections: r.Elections, c: c})
	pb.RegisterBarrierServiceServer(s, &barrierService{barriers: r.Barriers, registry: r.Registry, c: c})
	pb.RegisterLockServiceServer(s, &lockService{locks: r.Locks, elections: r.Elections, c: c})
	pb.RegisterSemaphoreServiceServer(s, &semaphoreService{sems: r.Semaphores, c: c})
	pb.RegisterStatusServiceServer(s, &statusService{r: r, c: c, version: g.opts.version})
	pb.RegisterInspectServiceServer(s, &inspectService{r: r})
	peerpb.RegisterPeerServiceServer(s, &peerService{leases: r.Leases})
}

// Drain hands this replica's work to the others before it stops: it takes
// no new leases, hands every lease it owns off (clients' next keepalives
// continue them on any replica, with no gap and no lost registration or
// candidacy), then ends its streams so clients reconnect elsewhere and
// resume. Stream-owned leases are handed off too, not revoked.
func (g *Gateway) Drain(ctx context.Context) error {
	g.c.draining.Store(true)
	n, err := g.replica.Drain(ctx)
	g.log.Info("drained: leases handed off", "leases", n, "err", err)
	g.Shutdown()
	return err
}

// Shutdown ends every open stream with UNAVAILABLE, and answers every
// blocking query with the current state, so that a gRPC GracefulStop can
// finish; clients reconnect and resume (or poll again) elsewhere.
func (g *Gateway) Shutdown() { g.c.stop() }

// Close shuts down and stops the recipes' goroutines. Leases stay in
// ZooKeeper for the next gateway to adopt; the session is the caller's.
func (g *Gateway) Close() {
	if g.unwatch != nil {
		g.unwatch()
	}
	g.c.close()
	g.replica.Close()
}

// serving reports whether the gateway takes work: its ZooKeeper session is
// connected and it is not draining.
func (g *Gateway) serving() bool {
	return g.replica.Session.Status().State == zkx.StateConnected && !g.c.draining.Load()
}

// AdvertiseAddr turns a listener's address into one peers can dial (see
// gateway.AdvertiseAddr).
var AdvertiseAddr = gateway.AdvertiseAddr
