// Package lease keeps zkcoord's leases: a TTL that clients renew with cheap
// in-memory keepalives, and a set of znodes the lease owns that the gateway
// deletes, in one ZooKeeper transaction, when the lease is revoked or its TTL
// lapses.
//
// Lease records live in ZooKeeper (see Layout) and each is owned by one
// gateway replica at a time: an ephemeral owner node guards against two
// replicas taking it, and every change of owner bumps the record's version,
// which fences the previous owner's writes (docs/REPLICAS.md). The record
// also holds the lease's horizon: no replica acknowledges a keepalive that
// would make the lease outlive it without first moving it in ZooKeeper, so a
// replica that adopts the lease knows how long it may have been promised
// (docs/DESIGN.md, "The lease contract").
package lease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Errors returned by the Manager.
var (
	// ErrNotFound: the lease never existed, was revoked, or its TTL lapsed.
	ErrNotFound = errors.New("lease: not found or expired")
	// ErrOwnedElsewhere: another gateway replica owns the lease (see
	// OwnedError for which).
	ErrOwnedElsewhere = errors.New("lease: owned by another gateway replica")
	// ErrDraining: this replica is handing its leases over and takes no new
	// ones; retry on another replica.
	ErrDraining = errors.New("lease: gateway draining, retry on another replica")
	// ErrUnreachable: this replica has lost ZooKeeper; retry on another.
	ErrUnreachable = errors.New("lease: gateway lost its ZooKeeper connection, retry on another replica")
	// ErrClosed: the Manager is closed.
	ErrClosed = errors.New("lease: manager closed")
	// ErrNotHolder: the caller is not the principal the lease was granted
	// to (see Caller).
	ErrNotHolder = errors.New("lease: held by another principal")
	// ErrContended: the lease record kept changing under an adoption
	// (replicas taking it in turn); retry.
	ErrContended = errors.New("lease: record kept changing, retry")
)

// ErrTooMany: the holder already holds its limit of leases here (see
// LimitError).
var ErrTooMany = errors.New("lease: holder at its lease limit")

// LimitError names the holder at its limit, and the limit.
type LimitError struct {
	Holder string
	Limit  int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: %q holds %d leases on this replica", ErrTooMany, e.Holder, e.Limit)
}

func (e *LimitError) Is(target error) bool { return target == ErrTooMany }

// OwnedError names the replica that owns a lease.
type OwnedError struct{ Replica string }

func (e *OwnedError) Error() string { return fmt.Sprintf("%v: %s", ErrOwnedElsewhere, e.Replica) }

// Is makes errors.Is(err, ErrOwnedElsewhere) true.
func (e *OwnedError) Is(target error) bool { return target == ErrOwnedElsewhere }

// Lease describes a live lease.
type Lease struct {
	// ID is the secret the client holds. It never reaches ZooKeeper.
	ID string
	// Key is the public name of the lease: hex of the first 16 bytes of
	// SHA-256(ID). Znodes and records name leases by Key.
	Key       string
	TTL       time.Duration
	ExpiresAt time.Time
}

// ReleaseFunc returns the ZooKeeper ops that remove what a ref names (the
// ref's parts after the kind), for the lease with the given key. It may read
// ZooKeeper, bounded by ctx (the release's: it ends when the caller of
// Revoke gives up, or when the Manager closes); it returns no ops when the
// thing is already gone.
type ReleaseFunc func(ctx context.Context, leaseKey string, parts []string) ([]any, error)

// Peers reaches the replica that owns a lease, for the Manager of another
// replica: KeepAlive forwards a keepalive (no ZooKeeper write), Handoff asks
// the owner to give the lease up so that this replica can adopt it. Each
// carries the Caller of ctx (CallerFrom) to the owner, which authorizes it.
type Peers interface {
	KeepAlive(ctx context.Context, replica, id string) (Lease, error)
	Handoff(ctx context.Context, replica, id string) error
	Get(ctx context.Context, replica, id string) (Lease, error)
}

// Manager grants, renews and ends leases.
type Manager struct {
	sess *zkx.Session
	lay  Layout
	log  *slog.Logger
	opts options

	// Locks, in the order they are taken: gate, then an entry's op, then
	// mu. Each is taken and released by the same function in the same
	// goroutine (an entry's op by withLease around the call's work).
	//
	// gate orders Drain after the grants and adoptions in flight: they
	// hold it shared from their accepting check until the lease is
	// tracked, so Drain hands off every lease this replica ends up owning.
	gate sync.RWMutex

	counters counters // for Stats

	mu       sync.Mutex
	leases   map[string]*entry // by key
	held     map[string]int    // leases tracked, by holder
	reserved map[string]int    // grants in flight, by holder
	kinds    map[string]ReleaseFunc
	draining bool
	closed   bool
	wg       sync.WaitGroup
	// ctx ends when the Manager closes: it bounds releases, sweeps and the
	// Manager's goroutines.
	ctx    context.Context
	cancel context.CancelFunc
}

// entry is a lease this replica owns.
type entry struct {
	id     string
	key    string
	ttl    time.Duration
	holder string // the principal the lease was granted to (rec.Holder)

	// op serializes this lease's ZooKeeper writes (attach, detach, extend,
	// hand-off, release). It guards rec and recVer.
	op     opLock
	rec    record // the record as this replica last wrote it
	recVer int32  // its version: our fence

	// Guarded by Manager.mu.
	expires time.Time // when the lease ends unless renewed
	horizon time.Time // rec.Expires: renewals beyond it need a write first
	frozen  bool      // a hand-off is recording expires: renewals wait for op
	ended   bool      // released, handed off or lost
	timer   *time.Timer
	// refs are the refs this lease owns, known only for a lease granted
	// here (an adopted one's are in ZooKeeper, not here). A hint:
	// ZooKeeper checks every write anyway.
	refs map[string]struct{}
}

// Option configures a Manager. An option refuses a value it cannot work
// with, and NewManager returns that error.
type Option func(*options) error

type options struct {
	replica string
	sweep   time.Duration
	peers   Peers
	horizon time.Duration
}

// DefaultReplicaID is hostname-pid: unique per process, so a restarted
// replica never mistakes a predecessor's owner nodes for its own.
func DefaultReplicaID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// WithReplicaID names this replica in the lease records it owns (default
// DefaultReplicaID). It becomes a znode name: not empty, no "/", not "."
// or "..".
func WithReplicaID(id string) Option {
	return func(o *options) error {
		if err := zkx.CheckName(id); err != nil {
			return fmt.Errorf("lease: replica id: %w", err)
		}
		o.replica = id
		return nil
	}
}

// WithSweepInterval sets how often the Manager looks for leases whose owner
// vanished, besides when a replica leaves (default 30s); it must be
// positive.
func WithSweepInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("lease: sweep interval %v: must be positive", d)
		}
		o.sweep = d
		return nil
	}
}

// WithPeers lets the Manager forward keepalives to, and request handoffs
// from, the replica that owns a lease.
func WithPeers(p Peers) Option {
	return func(o *options) error {
		if p == nil {
			return errors.New("lease: peers: nil")
		}
		o.peers = p
		return nil
	}
}

// WithHorizon sets how far beyond a renewal's expiry the record's horizon
// is moved when a renewal needs it moved (default, and at most: the
// session timeout). A longer one costs fewer ZooKeeper writes for leases
// that are kept alive (one per horizon at most); a lease whose owner fails
// ends at most a horizon after its TTL. It must be positive; a horizon
// longer than the session timeout the server granted is cut to it.
func WithHorizon(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("lease: horizon %v: must be positive", d)
		}
		o.horizon = d
		return nil
	}
}

// NewManager returns a Manager keeping leases under root, zkcoord's
// namespace (chroot included), or the error of the first option that
// refuses its value.
func NewManager(sess *zkx.Session, root string, log *slog.Logger, opt ...Option) (*Manager, error) {
	if err := zkx.CheckPath(root); err != nil {
		return nil, fmt.Errorf("lease: root: %w", err)
	}
	o := options{replica: DefaultReplicaID(), sweep: 30 * time.Second}
	for _, fn := range opt {
		if err := fn(&o); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{sess: sess, lay: Layout{Root: root}, log: log, opts: o, leases: map[string]*entry{}, held: map[string]int{}, reserved: map[string]int{},
		kinds: map[string]ReleaseFunc{}, ctx: ctx, cancel: cancel}, nil
}

// horizon is how far past a renewal's expiry a moved horizon goes.
func (m *Manager) horizon() time.Duration {
	st := m.sess.Timeout()
	if h := m.opts.horizon; h > 0 && h <= st {
		return h
	}
	return st
}

// Handle registers how to release refs of a kind ("member", "candidate",
// "participant"). Call before Start.
func (m *Manager) Handle(kind string, fn ReleaseFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kinds[kind] = fn
}

// KeyOf returns the public key of a lease id.
func KeyOf(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

// Ref builds a ref name from a kind and its parts.
func Ref(kind string, parts ...string) string {
	return strings.Join(append([]string{kind}, parts...), "~")
}

// Replica returns this replica's id.
func (m *Manager) Replica() string { return m.opts.replica }

// Start creates the leases directory, adopts the leases found without an
// owner, and starts the goroutines that keep ownership: re-taking owner
// nodes after a session expiry, and adopting leases whose owner vanished.
// Cancelling ctx abandons the start (the Manager must then be closed).
func (m *Manager) Start(ctx context.Context) error {
	for _, p := range []string{m.lay.Leases(), m.lay.Replicas()} {
		if err := m.sess.EnsurePath(ctx, p); err != nil {
			return fmt.Errorf("lease: create %s: %w", p, err)
		}
	}
	// Watch the replicas before sweeping, so a replica that leaves after
	// the sweep is noticed.
	_, _, ch, err := m.sess.ChildrenW(ctx, m.lay.Replicas())
	if err != nil {
		return fmt.Errorf("lease: watch replicas: %w", err)
	}
	if err := m.sweepOrphans(ctx); err != nil {
		return fmt.Errorf("lease: adopt orphans: %w", err)
	}
	m.wg.Add(2)
	go m.guardOwners()
	go m.sweeper(ch)
	return nil
}

// Count returns the number of live leases this replica holds.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.leases)
}

// background runs fn in a goroutine the Manager owns, with a context that
// ends when the Manager closes. It reports false when the Manager is closed.
func (m *Manager) background(fn func(ctx context.Context)) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn(m.ctx)
	}()
	return true
}

// Close stops the expiry timers and the Manager's goroutines, and waits for
// releases in progress. Leases stay in ZooKeeper; their owner nodes vanish
// with the session, and another replica adopts them (see Drain for a
// handover without that wait).
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	for _, e := range m.leases {
		e.timer.Stop()
	}
	m.cancel()
	m.mu.Unlock()
	m.wg.Wait()
}
