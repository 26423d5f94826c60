// Package lock is the distributed lock recipe: exclusive and read/write
// locks owned by leases. Acquirers queue as sequential znodes under the
// lock (ZooKeeper's recipe, and Curator's InterProcessReadWriteLock): an
// exclusive node holds the lock when it is first, a shared node when no
// exclusive node is ahead of it. Each waiter watches only the node that
// blocks it (an exclusive node its predecessor, a shared node the nearest
// exclusive node ahead), so a release wakes only the waiters it lets in:
// one in the exclusive case. A hold's fencing token is the zxid that
// created its node, which strictly increases over the successive holders.
//
// A lease has at most one node per lock, holding a list of holds: a
// reentrant acquire adds a hold, each release removes one, and the last
// removes the node. The list is in ZooKeeper, so it survives a replica's
// failover. Nodes are persistent znodes owned by a lease (see package
// lease): they end with their last hold's release or with their lease,
// never because the gateway's ZooKeeper session flapped.
//
// Watches: one per waiter (a data watch on the node that blocks it), one
// per holder followed by an Acquire (on its own node, to learn that its
// hold ended). Nothing watches a lock's children.
package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/memo"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Errors returned by Locks.
var (
	// ErrNotHeld: the lease has no such hold on the lock.
	ErrNotHeld = errors.New("lock: not held by this lease")
	// ErrAlreadyHeld: the lease already holds (or waits for) the lock and
	// the acquire was not reentrant.
	ErrAlreadyHeld = errors.New("lock: already held by this lease")
	// ErrModeMismatch: the lease holds (or waits for) the lock in the
	// other mode; a lease holds a lock in one mode at a time.
	ErrModeMismatch = errors.New("lock: held by this lease in the other mode")
	// ErrTooManyHolds: the lease has MaxHolds holds on the lock already.
	ErrTooManyHolds = errors.New("lock: too many reentrant holds")
	// ErrClosed: the Locks is closed (the gateway is stopping).
	ErrClosed = errors.New("lock: closed")
	// ErrConflict: the lease's node kept changing while a call worked on
	// it (created, ended or rewritten concurrently); try again.
	ErrConflict = errors.New("lock: the lease's node kept changing, try again")
)

// RefKind is the kind of lease refs that name a lease's node in a lock.
const RefKind = "lock"

// MaxHolds is the most holds one lease may have on one lock.
const MaxHolds = 1000

// Holder is one holder of a lock, or one waiter (Token and Holds unset).
type Holder struct {
	// Node is the znode's name, <m>_<lease key>_<sequence>.
	Node string
	Mode Mode
	// Token is the zxid that created the node: its holds' fencing token.
	Token int64
	// Holds is how many holds the node's lease has on the lock.
	Holds int
	// Position, for a waiter, is how many nodes ahead block it.
	Position int
}

// Locks runs the acquires, releases and checks of locks.
type Locks struct {
	counters memo.QueueCounters // for Stats
	sess     *zkx.Session
	lay      Layout
	leases   *lease.Manager
	log      *slog.Logger
	released *memo.Removed // holds Release removed (path#hold): their acquires report Released
	wakers   memo.Wakers   // running acquires, by lock and lease key
	barrier  *zkx.Barrier  // orders sequencer checks after committed writes
	// ctx ends when Locks closes: it ends the acquires and bounds the
	// background removals and the barrier's writes.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // background removals

	// queuedWakes counts the watch notifications that woke a waiter (for
	// the herd tests).
	queuedWakes atomic.Int64
	// beforeCreate, set by tests, runs before TryAcquire creates a node.
	beforeCreate func()
}

// New returns Locks under root, zkcoord's namespace (chroot included), and
// registers the release handler of lock nodes with leases, so a lease that
// ends takes its holds with it; or the error of a root or option it cannot
// work with. Close stops its acquires.
func New(sess *zkx.Session, root string, leases *lease.Manager, log *slog.Logger, opt ...Option) (*Locks, error) {
	if err := zkx.CheckPath(root); err != nil {
		return nil, fmt.Errorf("lock: root: %w", err)
	}
	o := defaultOptions()
	for _, fn := range opt {
		if err := fn(&o); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Locks{sess: sess, lay: Layout{Root: root}, leases: leases, log: log, released: memo.NewRemoved(o.releaseMemory),
		ctx: ctx, cancel: cancel}
	l.barrier = zkx.NewBarrier(ctx, sess, l.lay.Locks())
	leases.Handle(RefKind, l.releaseOps)
	return l, nil
}

// Close ends every Acquire running on l with ErrClosed and waits for the
// removals it runs in the background. Holds stay: their leases own them.
func (l *Locks) Close() {
	l.cancel()
	l.barrier.Close()
	l.wg.Wait()
}

// background runs fn in a goroutine l owns, with ctx's values (the lease
// caller) and a context that ends when l closes.
func (l *Locks) background(ctx context.Context, fn func(ctx context.Context)) {
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(l.ctx, cancel)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer cancel()
		defer stop()
		fn(bg)
	}()
}

// newHold returns a new hold ID: 16 random hex characters.
func newHold() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// list returns the lock's queue and its directory's Stat.
func (l *Locks) list(ctx context.Context, name string) (queue, *zk.Stat, error) {
	kids, stat, err := l.sess.Children(ctx, l.lay.Lock(name))
	if err != nil {
		return nil, nil, err
	}
	return newQueue(kids), stat, nil
}

// Get reads lock name's holders (with their tokens and holds) and waiters
// (with their positions), in queue order, and the revision the answer
// reflects: the last change of the queue; for a lock never acquired, a
// revision at which it did not exist (reading it creates nothing). When
// ctx ends first, it returns ctx's error at once.
func (l *Locks) Get(ctx context.Context, name string) (holders, waiters []Holder, rev int64, err error) {
	for attempt := 0; ; attempt++ {
		q, stat, err := l.list(ctx, name)
		if errors.Is(err, zk.ErrNoNode) {
			rev, err := zkx.AbsentRev(ctx, l.sess, l.lay.Lock(name))
			if errors.Is(err, zkx.ErrAppeared) && attempt < 3 {
				continue
			}
			return nil, nil, rev, err
		} else if err != nil {
			return nil, nil, 0, fmt.Errorf("lock: list %s: %w", name, err)
		}
		holders, err := l.holders(ctx, name, q)
		if err != nil {
			return nil, nil, 0, err
		}
		for i := q.holders(); i < len(q); i++ {
			waiters = append(waiters, Holder{Node: q[i].name, Mode: q[i].mode, Position: q.blocker(i) + 1})
		}
		return holders, waiters, stat.Pzxid, nil
	}
}

// holders reads the holders at the head of q: their tokens and holds.
// Holders that left since q was listed are left out.
func (l *Locks) holders(ctx context.Context, name string, q queue) ([]Holder, error) {
	var out []Holder
	for _, n := range q[:q.holders()] {
		data, stat, err := l.sess.Get(ctx, l.lay.Lock(name)+"/"+n.name)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("lock: read %s of %s: %w", n.name, name, err)
		}
		out = append(out, Holder{Node: n.name, Mode: n.mode, Token: stat.Czxid, Holds: len(decode(data).Holds)})
	}
	return out, nil
}

// releaseOps removes the nodes of a lease that ends (lease.ReleaseFunc;
// parts are [lock]). It wakes their acquires, which then watch their own
// node to see the delete that follows.
func (l *Locks) releaseOps(ctx context.Context, leaseKey string, parts []string) ([]any, error) {
	if len(parts) != 1 {
		return nil, nil
	}
	dir := l.lay.Lock(parts[0])
	kids, _, err := l.sess.Children(ctx, dir)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var ops []any
	for _, k := range kids {
		if ownedBy(k, leaseKey) {
			ops = append(ops, &zk.DeleteRequest{Path: dir + "/" + k, Version: -1})
		}
	}
	if len(ops) > 0 {
		l.wakers.Wake(parts[0] + "/" + leaseKey)
	}
	return ops, nil
}

// options.

// Option configures Locks. An option refuses a value it cannot work with,
// and New returns that error.
type Option func(*options) error

type options struct {
	releaseMemory time.Duration
}

func defaultOptions() options { return options{releaseMemory: 10 * time.Minute} }

// WithReleaseMemory sets how long the gateway remembers that Release
// removed a hold, so that an Acquire following it reports Released rather
// than Lost (default 10m). It must be at least a second.
func WithReleaseMemory(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Second {
			return fmt.Errorf("lock: release memory %v: want at least 1s", d)
		}
		o.releaseMemory = d
		return nil
	}
}
