// Package gateway is one zkcoord replica: the recipes (leases, registry,
// elections, barriers, locks, semaphores) on one ZooKeeper session, under one
// root, and the replica's place among the others: its announcement, and
// the peer client through which its lease manager forwards keepalives and
// takes leases over (package peer). It serves no client itself: package
// server turns gRPC calls into calls of these recipes.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"sync"

	"google.golang.org/grpc/credentials"

	"github.com/zkcoord/zkcoord/internal/barrier"
	"github.com/zkcoord/zkcoord/internal/election"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/lease/peer"
	"github.com/zkcoord/zkcoord/internal/lock"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/semaphore"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Config says how to build a Replica. A zero field takes its default.
type Config struct {
	// Root is the root znode of zkcoord's namespace, below the connect
	// string's chroot (default "/zkcoord").
	Root string
	// ReplicaID names the replica in lease records, status and logs
	// (default hostname-pid); unique among live replicas.
	ReplicaID string
	// Advertise is where the other replicas reach this one's PeerService;
	// without it the replica is not announced, and keepalives for its
	// leases that reach another replica fail until the client comes back.
	Advertise string
	// PeerCreds are the transport credentials replicas dial each other
	// with (nil: plaintext); PeerToken the per-call credentials they
	// present (nil: none).
	PeerCreds credentials.TransportCredentials
	PeerToken credentials.PerRPCCredentials
	// Registry tunes the registry's caches.
	Registry []registry.Option
	// Log receives the replica's logs (nil: discard).
	Log *slog.Logger
}

// Replica is the recipes one zkcoord replica serves over one session.
type Replica struct {
	Session    *zkx.Session
	Leases     *lease.Manager
	Registry   *registry.Registry
	Elections  *election.Elections
	Barriers   *barrier.Barriers
	Locks      *lock.Locks
	Semaphores *semaphore.Semaphores

	cfg   Config
	peers *peer.Client
	// ctx ends with Close: it bounds the announcement.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// check fills cfg's defaults in and refuses a value the replica cannot
// work with.
func (cfg *Config) check() error {
	if cfg.Root == "" {
		cfg.Root = "/zkcoord"
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = lease.DefaultReplicaID()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := zkx.CheckPath(cfg.Root); err != nil {
		return fmt.Errorf("gateway: root: %w", err)
	}
	if err := zkx.CheckName(cfg.ReplicaID); err != nil {
		return fmt.Errorf("gateway: replica id: %w", err)
	}
	if cfg.Advertise != "" {
		if _, port, err := net.SplitHostPort(cfg.Advertise); err != nil || port == "" {
			return fmt.Errorf("gateway: advertise address %q: want host:port", cfg.Advertise)
		}
	}
	return nil
}

// New builds a Replica on an established session: it creates the
// namespace (refusing a root that is not secured when the session has
// credentials), adopts the leases left without an owner, and announces
// the replica. A Config value it cannot work with is an error before
// anything is written. Cancelling ctx abandons the start.
func New(ctx context.Context, sess *zkx.Session, cfg Config) (*Replica, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	root := path.Join("/", sess.Chroot(), cfg.Root)
	r := &Replica{Session: sess, cfg: cfg, peers: peer.New(sess, lease.Layout{Root: root}, cfg.PeerCreds, cfg.PeerToken)}
	if err := r.build(root); err != nil {
		r.Close()
		return nil, err
	}
	if err := sess.EnsurePath(ctx, root); err != nil {
		r.Close()
		return nil, fmt.Errorf("gateway: create root %s: %w", root, err)
	}
	if err := sess.CheckSecured(ctx, root); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.Leases.Start(ctx); err != nil {
		r.Close()
		return nil, err
	}
	if cfg.Advertise != "" {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			peer.Announce(r.ctx, sess, lease.Layout{Root: root}, cfg.ReplicaID, cfg.Advertise, cfg.Log)
		}()
	}
	return r, nil
}

// build makes the recipes, each of which checks its own options.
func (r *Replica) build(root string) error {
	r.ctx, r.cancel = context.WithCancel(context.Background())
	var err error
	cfg := r.cfg
	if r.Leases, err = lease.NewManager(r.Session, root, cfg.Log, lease.WithReplicaID(cfg.ReplicaID), lease.WithPeers(r.peers)); err != nil {
		return err
	}
	if r.Registry, err = registry.New(r.Session, root, r.Leases, cfg.Log, cfg.Registry...); err != nil {
		return err
	}
	if r.Elections, err = election.New(r.Session, root, r.Leases, cfg.Log); err != nil {
		return err
	}
	if r.Barriers, err = barrier.New(r.Session, root, r.Leases, cfg.Log); err != nil {
		return err
	}
	if r.Locks, err = lock.New(r.Session, root, r.Leases, cfg.Log); err != nil {
		return err
	}
	r.Semaphores, err = semaphore.New(r.Session, root, r.Leases, cfg.Log)
	return err
}

// ID is the replica's id.
func (r *Replica) ID() string { return r.cfg.ReplicaID }

// Root is zkcoord's root as configured (below the chroot).
func (r *Replica) Root() string { return r.cfg.Root }

// Log is the replica's logger.
func (r *Replica) Log() *slog.Logger { return r.cfg.Log }

// Drain hands every lease this replica owns over to the others and takes
// no new ones (lease.Manager.Drain), returning how many it handed off.
func (r *Replica) Drain(ctx context.Context) (int, error) { return r.Leases.Drain(ctx) }

// Close stops the announcement and the recipes' goroutines. Leases stay in
// ZooKeeper for the next replica to adopt; the session is the caller's.
func (r *Replica) Close() {
	r.cancel()
	r.wg.Wait()
	r.closeRecipes()
	r.peers.Close()
}

// closeRecipes closes the recipes, the lease manager last (the others
// release through it).
func (r *Replica) closeRecipes() {
	if r.Elections != nil {
		r.Elections.Close()
	}
	if r.Barriers != nil {
		r.Barriers.Close()
	}
	if r.Locks != nil {
		r.Locks.Close()
	}
	if r.Semaphores != nil {
		r.Semaphores.Close()
	}
	if r.Registry != nil {
		r.Registry.Close()
	}
	if r.Leases != nil {
		r.Leases.Close()
	}
}

// AdvertiseAddr turns a listener's address into one peers can dial: an
// unspecified IP (":7070", "0.0.0.0:7070") becomes the hostname.
func AdvertiseAddr(listen net.Addr) string {
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return listen.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}
