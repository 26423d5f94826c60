// Package server implements zkcoord's gRPC services on top of the recipes
// in internal/: each service is a thin translation from protobuf to a
// recipe call and from the recipe's errors to gRPC status (errors.go).
package server

import (
	"context"
	"errors"
	"fmt"
	"google.golang.org/grpc/credentials"
	"io"
	"log/slog"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	peerpb "github.com/zkcoord/zkcoord/gen/zkcoord/peer/v1"
	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/barrier"
	"github.com/zkcoord/zkcoord/internal/election"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Gateway holds the recipes one zkcoord replica serves over one ZooKeeper
// session.
type Gateway struct {
	sess      *zkx.Session
	lay       lease.Layout // the leases' and replicas' znodes
	log       *slog.Logger
	opts      options
	leases    *lease.Manager
	registry  *registry.Registry
	elections *election.Elections
	barriers  *barrier.Barriers

	peers    *peers
	draining atomic.Bool
	// stopped ends with Shutdown: streams end, blocking queries answer.
	stopped  context.Context
	stop     context.CancelFunc
	stopping <-chan struct{} // stopped.Done()
	polls    atomic.Int64    // blocking queries waiting (pollWindow)

	// ctx ends when the gateway closes: it bounds the gateway's own
	// goroutines (the replica's announcement, revokes of leases that
	// calls and streams granted for themselves).
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Option configures a Gateway.
type Option func(*options)

type options struct {
	root      string
	streamTTL time.Duration
	replicaID string
	advertise string
	version   string
	log       *slog.Logger
	registry  []registry.Option
	peerCreds credentials.TransportCredentials
	peerToken credentials.PerRPCCredentials
	auth      *auth.Config
}

// WithAuth authenticates and authorizes every call by cfg (see package
// auth): NewGRPCServer installs its interceptors. Without it any caller may
// do anything.
func WithAuth(cfg auth.Config) Option { return func(o *options) { o.auth = &cfg } }

// WithPeerToken sets the credentials replicas present to each other's
// PeerService when auth is on, unless their client certificates map to a
// principal: the principal needs the admin right over every name.
func WithPeerToken(c credentials.PerRPCCredentials) Option {
	return func(o *options) { o.peerToken = c }
}

// WithPeerCredentials sets the transport credentials replicas dial each
// other with (default: plaintext). Use TLS when the replicas serve TLS.
func WithPeerCredentials(c credentials.TransportCredentials) Option {
	return func(o *options) { o.peerCreds = c }
}

// WithRoot sets the root znode of zkcoord's namespace (default "/zkcoord"),
// below the connect string's chroot.
func WithRoot(root string) Option { return func(o *options) { o.root = root } }

// WithStreamTTL sets the TTL of the implicit lease of a Campaign or
// AwaitBarrier stream called without a lease (default 10s): how long its
// candidacy or participation outlives a gateway that died.
func WithStreamTTL(d time.Duration) Option { return func(o *options) { o.streamTTL = d } }

// WithReplicaID names this replica in status, logs and lease records
// (default hostname-pid). Replica ids must be unique among live replicas.
func WithReplicaID(id string) Option { return func(o *options) { o.replicaID = id } }

// WithAdvertise sets the address other replicas use to reach this one's
// PeerService (forwarded keepalives, lease handoffs). Without it, replicas
// cannot forward to this one: a keepalive for a lease it owns that reaches
// another replica fails with UNAVAILABLE until the client comes back here.
func WithAdvertise(addr string) Option { return func(o *options) { o.advertise = addr } }

// WithVersion sets the version status reports.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegistryOptions passes options to the registry (cache tuning).
func WithRegistryOptions(opt ...registry.Option) Option {
	return func(o *options) { o.registry = append(o.registry, opt...) }
}

// New builds a Gateway on an established session: it creates the
// namespace, adopts leases left without an owner, and is ready to serve.
func New(ctx context.Context, sess *zkx.Session, opt ...Option) (*Gateway, error) {
	o := options{root: "/zkcoord", streamTTL: 10 * time.Second, version: "dev", replicaID: defaultReplicaID(),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, fn := range opt {
		fn(&o)
	}
	if !path.IsAbs(o.root) || path.Clean(o.root) != o.root || o.root == "/" {
		return nil, fmt.Errorf("server: root %q must be an absolute, clean znode path below /", o.root)
	}
	root := path.Join("/", sess.Chroot(), o.root)
	if err := sess.EnsurePath(ctx, root); err != nil {
		return nil, fmt.Errorf("server: create root %s: %w", root, err)
	}
	if err := checkRootSecured(ctx, sess, root); err != nil {
		return nil, err
	}
	lay := lease.Layout{Root: root}
	g := &Gateway{sess: sess, lay: lay, log: o.log, opts: o, peers: newPeers(sess, lay, o.peerCreds, o.peerToken)}
	g.stopped, g.stop = context.WithCancel(context.Background())
	g.stopping = g.stopped.Done()
	g.leases = lease.NewManager(sess, root, o.log, lease.WithReplicaID(o.replicaID), lease.WithPeers(g.peers))
	reg, err := registry.New(sess, root, g.leases, o.log, o.registry...)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	g.registry = reg
	g.elections = election.New(sess, root, g.leases, o.log)
	g.barriers = barrier.New(sess, root, g.leases, o.log)
	if err := g.leases.Start(ctx); err != nil {
		g.elections.Close()
		g.barriers.Close()
		g.registry.Close()
		g.leases.Close()
		return nil, err
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	if o.advertise != "" {
		g.background(g.ctx, g.announce)
	}
	return g, nil
}

// background runs fn in a goroutine the gateway owns, with a context that
// has ctx's values (the caller) and ends when the gateway closes; Close
// waits for it. It does nothing once the gateway is closed.
func (g *Gateway) background(ctx context.Context, fn func(ctx context.Context)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(g.ctx, cancel)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer cancel()
		defer stop()
		fn(bg)
	}()
}

// revoke revokes a lease that a call or stream granted for itself, when
// it is over. The revoke is done within ctx (the call's) if it can be;
// when ctx ends first, or already has (a stream that ended), it goes on in
// the background, so that the call does not wait for ZooKeeper. (If the
// gateway closes first, a lease left over ends with its TTL.)
func (g *Gateway) revoke(ctx context.Context, id string) {
	err := g.leases.Revoke(ctx, id)
	switch {
	case err == nil, errors.Is(err, lease.ErrNotFound):
	case ctx.Err() != nil:
		g.background(ctx, func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := g.leases.Revoke(ctx, id); err != nil && !errors.Is(err, lease.ErrNotFound) && g.ctx.Err() == nil {
				g.log.Warn("revoke a lease granted for a call", "lease", lease.KeyOf(id), "err", err)
			}
		})
	default:
		g.log.Warn("revoke a lease granted for a call", "lease", lease.KeyOf(id), "err", err)
	}
}

// Register registers every zkcoord service on s.
func (g *Gateway) Register(s grpc.ServiceRegistrar) {
	pb.RegisterLeaseServiceServer(s, &leaseService{g: g})
	pb.RegisterRegistryServiceServer(s, &registryService{g: g})
	pb.RegisterElectionServiceServer(s, &electionService{g: g})
	pb.RegisterBarrierServiceServer(s, &barrierService{g: g})
	pb.RegisterStatusServiceServer(s, &statusService{g: g})
	peerpb.RegisterPeerServiceServer(s, &peerService{g: g})
}

// Drain hands this replica's work to the others before it stops: it takes
// no new leases, hands every lease it owns off (clients' next keepalives
// continue them on any replica, with no gap and no lost registration or
// candidacy), then ends its streams so clients reconnect elsewhere and
// resume. Stream-owned leases are handed off too, not revoked.
func (g *Gateway) Drain(ctx context.Context) error {
	g.draining.Store(true)
	n, err := g.leases.Drain(ctx)
	g.log.Info("drained: leases handed off", "leases", n, "err", err)
	g.Shutdown()
	return err
}

// Shutdown ends every open stream with UNAVAILABLE, and answers every
// blocking query with the current state, so that a gRPC GracefulStop can
// finish; clients reconnect and resume (or poll again) elsewhere.
func (g *Gateway) Shutdown() {
	g.stop()
}

// Close shuts down and stops the recipes' goroutines. Leases stay in
// ZooKeeper for the next gateway to adopt; the session is the caller's.
func (g *Gateway) Close() {
	g.Shutdown()
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cancel()
	g.wg.Wait()
	g.elections.Close()
	g.barriers.Close()
	g.registry.Close()
	g.leases.Close()
	g.peers.close()
}

// streamContext returns a context that is cancelled when the stream ends or
// the gateway shuts down.
func (g *Gateway) streamContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() { // ends with the stream: cancel closes ctx
		select {
		case <-g.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// stopErr reports errStopping for a stream ended by Shutdown.
func (g *Gateway) stopErr(err error) error {
	if err != nil && errors.Is(err, context.Canceled) {
		select {
		case <-g.stopping:
			return errStopping
		default:
		}
	}
	return err
}

// checkRootSecured refuses a root that a session with digest credentials
// cannot keep to itself: every entry of the root's ACL must be the session's
// digest identity. Without credentials there is nothing to check.
func checkRootSecured(ctx context.Context, sess *zkx.Session, root string) error {
	if !sess.Secured() {
		return nil
	}
	acl, _, err := sess.GetACL(ctx, root)
	if err != nil {
		return fmt.Errorf("server: read the ACL of root %s (do the credentials match it?): %w", root, err)
	}
	want := sess.ACL()[0]
	for _, a := range acl {
		if a.Scheme != want.Scheme || a.ID != want.ID {
			return fmt.Errorf("server: root %s is not secured: its ACL grants %s:%s; with ZooKeeper credentials, "+
				"choose a new --root (zkcoord creates it readable and writable by those credentials only) "+
				"or restrict its ACL to them (setAcl %s digest:%s:cdrwa)", root, a.Scheme, a.ID, root, want.ID)
		}
	}
	return nil
}
