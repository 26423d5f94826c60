package semaphore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// feeds is the name-keyed, reference-counted set of shared child watches
// that the acquires of one gateway follow: one per semaphore.
type feeds struct {
	s  *Semaphores
	wg sync.WaitGroup

	mu     sync.Mutex
	byName map[string]*feed
	closed bool
}

func newFeeds(s *Semaphores) *feeds { return &feeds{s: s, byName: map[string]*feed{}} }

// feed is the slots of one semaphore as this gateway sees them, kept
// current by one goroutine holding one child watch on the semaphore's
// znode.
type feed struct {
	name   string
	refs   int // guarded by feeds.mu
	cancel context.CancelFunc

	mu      sync.Mutex
	v       view
	changed chan struct{} // closed and replaced at each listing, and when the feed stops
}

// view is one listing of a feed.
type view struct {
	loaded bool
	slots  []slot // in queue order
	// rev is the listing's pzxid: the last change of the slots it shows.
	// A slot created at or before rev that the listing lacks is gone.
	// math.MaxInt64 once the semaphore's znode is gone (every slot with it).
	rev int64
	err error // the feed stopped
}

// current returns f's view and a channel closed at its next change.
func (f *feed) current() (view, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v, f.changed
}

func (f *feed) set(v view) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.v.loaded && v.err == nil && v.rev == f.v.rev {
		return // the same listing
	}
	f.v = v
	close(f.changed)
	f.changed = make(chan struct{})
}

// join returns the feed of semaphore name, starting it for its first
// acquire.
func (fs *feeds) join(name string) (*feed, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return nil, ErrClosed
	}
	f, ok := fs.byName[name]
	if !ok {
		ctx, cancel := context.WithCancel(fs.s.ctx)
		f = &feed{name: name, cancel: cancel, changed: make(chan struct{})}
		fs.byName[name] = f
		fs.wg.Add(1)
		go fs.run(ctx, f)
	}
	f.refs++
	return f, nil
}

// leave drops an acquire; the last one stops the feed. (Its watch stays on
// the ZooKeeper server until the slots next change: go-zookeeper cannot
// remove a watch.)
func (fs *feeds) leave(f *feed) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f.refs--; f.refs == 0 {
		f.cancel()
		if fs.byName[f.name] == f {
			delete(fs.byName, f.name)
		}
	}
}

// count returns the number of running feeds, for tests.
func (fs *feeds) count() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.byName)
}

// close stops every feed, ending its acquires with ErrClosed.
func (fs *feeds) close() {
	fs.mu.Lock()
	fs.closed = true
	for _, f := range fs.byName {
		f.cancel()
	}
	fs.mu.Unlock()
	fs.wg.Wait()
}

// errRemoved: the semaphore's znode is gone, and every slot with it.
var errRemoved = errors.New("semaphore: removed")

// run keeps f current until ctx is done, then ends its acquires.
func (fs *feeds) run(ctx context.Context, f *feed) {
	defer fs.wg.Done()
	err := fs.follow(ctx, f)
	fs.mu.Lock()
	if fs.byName[f.name] == f {
		delete(fs.byName, f.name) // the next acquire starts afresh
	}
	fs.mu.Unlock()
	switch {
	case ctx.Err() != nil:
		f.set(view{err: ErrClosed}) // the last acquire left, or Close
	case errors.Is(err, errRemoved):
		f.set(view{loaded: true, rev: math.MaxInt64})
	default:
		f.set(view{err: err})
	}
}

// follow lists the semaphore with a child watch and publishes each
// listing, then waits for the watch to fire (a change, or the watch lost
// with the session); transient errors are retried with backoff.
func (fs *feeds) follow(ctx context.Context, f *feed) error {
	s := fs.s
	dir := s.lay.Semaphore(f.name)
	var backoff zkx.Backoff
	for {
		kids, stat, ch, err := s.sess.ChildrenW(ctx, dir)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			backoff.Reset()
			f.set(view{loaded: true, slots: sorted(kids), rev: stat.Pzxid})
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		case errors.Is(err, zk.ErrNoNode):
			s.forget(f.name)
			return errRemoved
		case !zkx.Transient(err):
			s.log.Warn("semaphore: following slots failed", "semaphore", f.name, "err", err)
			return fmt.Errorf("semaphore: follow %s: %w", f.name, err)
		}
		if !backoff.Wait(ctx) {
			return ctx.Err()
		}
	}
}
