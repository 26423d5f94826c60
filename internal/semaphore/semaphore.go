// Package semaphore is the counting-semaphore recipe: N permits per
// semaphore, owned by leases, handed out first come, first served.
//
// Each acquirer queues as a sequential znode (a slot) under the
// semaphore's znode, created through the lease manager in one transaction
// with the lease's fence and its ref; the first N slots in sequence order
// hold a permit, the others wait. A slot only moves up while it exists
// (later slots have higher sequences), so once ZooKeeper's state shows it
// among the first N it keeps its permit until its znode is deleted: by
// Release, or by the end of its lease. A permit's token is the zxid that
// created its slot.
//
// N is written into the semaphore's znode by its first acquirer and never
// changes; an acquire with another N is refused (ErrPermitsMismatch).
//
// Watches: waiting is not watching a predecessor (a holder ahead can leave
// while the predecessor stays), and one watch per waiter on the directory
// would be a herd. Each gateway holds one child watch per semaphore that
// it runs acquires of, kept by one goroutine (a feed, feed.go) and shared
// by all those acquires, holders and waiters alike: ZooKeeper carries one
// watch per semaphore per gateway, whatever the number of waiters.
package semaphore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/memo"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Errors returned by Semaphores.
var (
	// ErrPermitsMismatch: the semaphore exists with another number of
	// permits.
	ErrPermitsMismatch = errors.New("semaphore: exists with a different number of permits")
	// ErrNotAcquired: the lease holds no slot (held or waiting) in the
	// semaphore.
	ErrNotAcquired = errors.New("semaphore: no permit or place of this lease")
	// ErrConflict: the semaphore kept changing while the call looked at it;
	// try again.
	ErrConflict = errors.New("semaphore: kept changing, try again")
	// ErrClosed: the Semaphores is closed (the gateway is stopping).
	ErrClosed = errors.New("semaphore: closed")
)

// RefKind is the kind of lease refs that name slots: permit~<semaphore>.
const RefKind = "permit"

// Semaphores acquires, releases and reads semaphores.
type Semaphores struct {
	counters memo.QueueCounters // for Stats
	sess     *zkx.Session
	lay      Layout
	leases   *lease.Manager
	log      *slog.Logger

	released *memo.Removed // slot znodes Release deleted: their acquires report Released, not Lost
	feeds    *feeds        // one shared child watch per semaphore
	// ctx ends when Semaphores closes: it bounds the feeds, the acquires
	// and the releases that go on in the background.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	leaving map[string]chan struct{} // semaphore/key → closed when its release in the background is over
	permits map[string]int           // the N of semaphores seen; N never changes
	holders map[string]*holder       // semaphore/key → the slot an Acquire here follows, once it holds a permit

	beforeRelease func() // set by tests: called by Release just before its delete
}

// New returns Semaphores under root, zkcoord's namespace (chroot
// included), and registers the slot release handler with leases, so that
// a lease that ends takes its slots with it; or the error of a root it
// cannot work with. Close stops what runs in the background.
func New(sess *zkx.Session, root string, leases *lease.Manager, log *slog.Logger) (*Semaphores, error) {
	if err := zkx.CheckPath(root); err != nil {
		return nil, fmt.Errorf("semaphore: root: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Semaphores{sess: sess, lay: Layout{Root: root}, leases: leases, log: log, released: memo.NewRemoved(10 * time.Minute),
		ctx: ctx, cancel: cancel, leaving: map[string]chan struct{}{}, permits: map[string]int{}, holders: map[string]*holder{}}
	s.feeds = newFeeds(s)
	leases.Handle(RefKind, s.releaseOps)
	return s, nil
}

// Close ends every Acquire running on s with ErrClosed, stops the
// releases still going on in the background, and waits for its
// goroutines. Slots stay: their leases own them.
func (s *Semaphores) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.feeds.close()
	s.wg.Wait()
}

// record is a slot znode's data.
type record struct {
	Value      string    `json:"value"`
	AcquiredAt time.Time `json:"acquired_at"`
}

// slot is one slot in a listing of a semaphore.
type slot struct {
	name string
	seq  int64
}

// Slot describes one slot of a semaphore, as Get reads it.
type Slot struct {
	// Name is the slot's znode name, s_<lease key>_<sequence>.
	Name string
	// Value is what the acquirer published with it.
	Value string
	// Token is the zxid that created the slot: the permit's token.
	Token      int64
	AcquiredAt time.Time
}

// State is a semaphore as ZooKeeper had it at revision Rev: its permits
// (0 when it was never acquired), the slots holding them (at most
// Permits, in queue order) and the slots waiting.
type State struct {
	Permits int
	Holders []Slot
	Waiters []Slot
	Rev     int64
}

// sorted returns the slots among kids in queue order (by sequence, not by
// name: names start with the lease key).
func sorted(kids []string) []slot {
	out := make([]slot, 0, len(kids))
	for _, k := range kids {
		if seq, ok := seqOf(k); ok {
			out = append(out, slot{name: k, seq: seq})
		}
	}
	slices.SortFunc(out, func(a, b slot) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// seqOf parses the sequence suffix (the last 10 digits) of a slot name.
func seqOf(name string) (int64, bool) {
	if len(name) < 13 || !strings.HasPrefix(name, "s_") || name[len(name)-11] != '_' {
		return 0, false
	}
	n, err := strconv.ParseInt(name[len(name)-10:], 10, 64)
	return n, err == nil
}

// ownedBy reports whether slot name belongs to the lease with key.
func ownedBy(name, key string) bool { return strings.HasPrefix(name, "s_"+key+"_") }

// find returns the index of the lease's slot in slots, or -1.
func find(slots []slot, key string) int {
	return slices.IndexFunc(slots, func(x slot) bool { return ownedBy(x.name, key) })
}

// list returns the semaphore's slots in queue order and its znode's Stat
// (Version moves with every slot created: see create).
func (s *Semaphores) list(ctx context.Context, name string) ([]slot, *zk.Stat, error) {
	kids, stat, err := s.sess.Children(ctx, s.lay.Semaphore(name))
	if err != nil {
		return nil, nil, err
	}
	return sorted(kids), stat, nil
}

// ensure creates semaphore name with permits, or checks that it has them:
// ErrPermitsMismatch when it has others. A semaphore's N never changes
// (zkcoord never rewrites it nor removes the znode), so once seen it is
// remembered.
func (s *Semaphores) ensure(ctx context.Context, name string, permits int) error {
	s.mu.Lock()
	n, ok := s.permits[name]
	s.mu.Unlock()
	if !ok {
		var err error
		if n, err = s.create(ctx, name, permits); err != nil {
			return err
		}
		s.mu.Lock()
		if len(s.permits) >= 4096 { // bounded: forget them all, read again
			clear(s.permits)
		}
		s.permits[name] = n
		s.mu.Unlock()
	}
	if n != permits {
		return fmt.Errorf("%w: %s has %d, not %d", ErrPermitsMismatch, name, n, permits)
	}
	return nil
}

// create creates the semaphore's znode with permits, or reads the permits
// of the one that exists.
func (s *Semaphores) create(ctx context.Context, name string, permits int) (int, error) {
	if err := s.sess.EnsurePath(ctx, s.lay.Semaphores()); err != nil {
		return 0, err
	}
	for attempt := 0; ; attempt++ {
		_, err := s.sess.Create(ctx, s.lay.Semaphore(name), []byte(strconv.Itoa(permits)), 0)
		if err == nil {
			return permits, nil
		} else if !errors.Is(err, zk.ErrNodeExists) {
			return 0, err
		}
		n, _, err := s.permitsOf(ctx, name)
		if errors.Is(err, zk.ErrNoNode) && attempt < 3 {
			continue // removed meanwhile (by hand): create it
		}
		return n, err
	}
}

// permitsOf reads the semaphore's N.
func (s *Semaphores) permitsOf(ctx context.Context, name string) (int, *zk.Stat, error) {
	data, stat, err := s.sess.Get(ctx, s.lay.Semaphore(name))
	if err != nil {
		return 0, nil, err
	}
	n, err := strconv.Atoi(string(data))
	if err != nil || n < 1 {
		return 0, nil, fmt.Errorf("semaphore: %s: permits %q: not a count", name, data)
	}
	return n, stat, nil
}

// forget drops the remembered N of a semaphore whose znode was found
// missing (removed by hand).
func (s *Semaphores) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.permits, name)
}

// Get reads semaphore name: its permits, holders and waiters, and the
// revision the answer reflects (the last change of its slots). A
// semaphore never acquired has 0 permits and a revision at which it did
// not exist; reading it creates nothing. When ctx ends first, Get returns
// ctx's error at once.
func (s *Semaphores) Get(ctx context.Context, name string) (State, error) {
	for {
		if err := ctx.Err(); err != nil {
			return State{}, err
		}
		n, _, err := s.permitsOf(ctx, name)
		if errors.Is(err, zk.ErrNoNode) {
			rev, err := zkx.AbsentRev(ctx, s.sess, s.lay.Semaphore(name))
			if errors.Is(err, zkx.ErrAppeared) {
				continue
			}
			return State{Rev: rev}, err
		} else if err != nil {
			return State{}, fmt.Errorf("semaphore: read %s: %w", name, err)
		}
		slots, stat, err := s.list(ctx, name)
		if err != nil {
			return State{}, fmt.Errorf("semaphore: list %s: %w", name, err)
		}
		st := State{Permits: n, Rev: stat.Pzxid}
		again := false
		for i, x := range slots {
			data, stat, err := s.sess.Get(ctx, s.lay.Slot(name, x.name))
			if errors.Is(err, zk.ErrNoNode) {
				again = true // it left meanwhile: the positions moved
				break
			} else if err != nil {
				return State{}, fmt.Errorf("semaphore: read %s: %w", name, err)
			}
			var rec record
			_ = json.Unmarshal(data, &rec) // a corrupt record still counts, with no value
			sl := Slot{Name: x.name, Value: rec.Value, Token: stat.Czxid, AcquiredAt: rec.AcquiredAt}
			if i < n {
				st.Holders = append(st.Holders, sl)
			} else {
				st.Waiters = append(st.Waiters, sl)
			}
		}
		if !again {
			return st, nil
		}
	}
}
