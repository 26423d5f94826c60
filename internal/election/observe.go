package election

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Observe reports the leader of election to fn: the current one first (nil
// when there is none), then every change of leader, including to none, with
// the revision of the change (see Leader). A slow fn does not
// miss the latest leader: changes that happen while it runs coalesce into
// the next call. A new value of the same leader (a Campaign with its lease
// and a new value) is reported too. Observers of an election share one
// ZooKeeper child watch per gateway, and one data watch on the leader's
// znode. Observe creates the election's directory if missing. It runs
// until ctx is cancelled (returning ctx's error), fn returns an error
// (returned as is), or e is closed (ErrClosed).
func (e *Elections) Observe(ctx context.Context, election string, fn func(leader *LeaderInfo, rev int64) error) error {
	f, err := e.feeds.join(election)
	if err != nil {
		return err
	}
	defer e.feeds.leave(f)
	var last *LeaderInfo
	first := true
	for {
		v, ch := f.current()
		if v.err != nil {
			return v.err
		}
		if v.loaded && (first || !sameLeader(last, v.leader)) {
			if err := fn(v.leader, v.rev); err != nil {
				return err
			}
			last, first = v.leader, false
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// feeds is the path-keyed, reference-counted set of leader watches that
// Observe shares.
type feeds struct {
	e  *Elections
	wg sync.WaitGroup

	mu     sync.Mutex
	byName map[string]*feed
	closed bool
}

func newFeeds(e *Elections) *feeds { return &feeds{e: e, byName: map[string]*feed{}} }

// feed is the leader of one election as this gateway sees it, kept current
// by one goroutine holding one child watch on the election and one data
// watch on its leader's znode.
type feed struct {
	election string
	refs     int // guarded by feeds.mu
	cancel   context.CancelFunc

	mu      sync.Mutex
	v       view
	changed chan struct{} // closed and replaced when v's leader changes, or the feed stops
	moved   chan struct{} // closed and replaced when v changes at all (its rev moved)
}

// view is a feed's state.
type view struct {
	loaded bool
	leader *LeaderInfo
	// rev is the revision of the latest listing, since the revision of
	// the listing that first showed this leader (candidate and value), or
	// for the feed's first listing, when it can tell, the revision at
	// which the leader took office. Candidates queueing or leaving behind
	// the leader move rev, not since.
	rev, since int64
	err        error // the feed stopped
}

// current returns f's view and a channel closed when its leader changes.
func (f *feed) current() (view, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v, f.changed
}

// latest returns f's view and a channel closed when its revision moves.
func (f *feed) latest() (view, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v, f.moved
}

func (f *feed) set(v view) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.v.loaded && v.err == nil && sameLeader(f.v.leader, v.leader) {
		// Same leader: observers have nothing to report.
		if v.rev > f.v.rev {
			f.v.rev = v.rev
			close(f.moved)
			f.moved = make(chan struct{})
		}
		return
	}
	if f.v.loaded || v.since > v.rev {
		v.since = v.rev // a change seen in this listing
	}
	f.v = v
	close(f.changed)
	f.changed = make(chan struct{})
	close(f.moved)
	f.moved = make(chan struct{})
}

// join returns the feed of election, starting it for its first observer.
func (fs *feeds) join(election string) (*feed, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return nil, ErrClosed
	}
	f, ok := fs.byName[election]
	if !ok {
		ctx, cancel := context.WithCancel(fs.e.ctx)
		f = &feed{election: election, cancel: cancel, changed: make(chan struct{}), moved: make(chan struct{})}
		fs.byName[election] = f
		fs.wg.Add(1)
		go fs.run(ctx, f)
	}
	f.refs++
	return f, nil
}

// leave drops an observer; the last one stops the feed.
func (fs *feeds) leave(f *feed) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f.refs--; f.refs == 0 {
		f.cancel()
		if fs.byName[f.election] == f {
			delete(fs.byName, f.election)
		}
	}
}

// close stops every feed, ending its observers with ErrClosed.
func (fs *feeds) close() {
	fs.mu.Lock()
	fs.closed = true
	for _, f := range fs.byName {
		f.cancel()
	}
	fs.mu.Unlock()
	fs.wg.Wait()
}

// run keeps f current until ctx is done, then ends its observers.
func (fs *feeds) run(ctx context.Context, f *feed) {
	defer fs.wg.Done()
	err := fs.follow(ctx, f)
	if ctx.Err() != nil {
		err = ErrClosed // the last observer left, or Close
	}
	fs.mu.Lock()
	if fs.byName[f.election] == f {
		delete(fs.byName, f.election) // the next observer starts afresh
	}
	fs.mu.Unlock()
	f.set(view{err: err})
}

// follow lists the election with a child watch, reads the lowest candidate
// with a data watch when it changed, and waits for a watch to fire (a
// change, or the watch lost with the session); transient errors are retried
// with backoff.
func (fs *feeds) follow(ctx context.Context, f *feed) error {
	e := fs.e
	dir := e.lay.Election(f.election)
	var leader *LeaderInfo
	var leaderCh <-chan zk.Event // the data watch on the leader's znode
	ensured := false
	var backoff zkx.Backoff
	for {
		var ch <-chan zk.Event
		var err error
		if !ensured {
			err = e.sess.EnsurePath(ctx, dir)
			ensured = err == nil
		}
		if ensured {
			ch, err = fs.refresh(ctx, f, dir, &leader, &leaderCh)
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			backoff.Reset()
			if !fs.await(ctx, ch, &leader, &leaderCh) {
				return nil
			}
			continue
		case errors.Is(err, zk.ErrNoNode): // the directory was removed
			ensured = false
		case !zkx.Transient(err):
			e.log.Warn("election: observe failed", "election", f.election, "err", err)
			return fmt.Errorf("election: observe %s: %w", f.election, err)
		}
		if !backoff.Wait(ctx) {
			return nil
		}
	}
}

// await waits for the child watch ch or the leader's data watch to fire. A
// change of the leader's data (its value) makes the next refresh read it
// again; its deletion changes the children too. It returns false when ctx
// is done.
func (fs *feeds) await(ctx context.Context, ch <-chan zk.Event, leader **LeaderInfo, leaderCh *<-chan zk.Event) bool {
	for {
		select {
		case <-ch:
			return true
		case ev := <-*leaderCh:
			*leaderCh = nil
			if ev.Type != zk.EventNodeDeleted {
				*leader = nil // read it again (its value changed, or the watch was lost)
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}

// refresh does one listing of follow and publishes the leader it finds. It
// reads the leader with a data watch (into leaderCh) when the leader is new
// or *leader was cleared.
func (fs *feeds) refresh(ctx context.Context, f *feed, dir string, leader **LeaderInfo, leaderCh *<-chan zk.Event) (<-chan zk.Event, error) {
	e := fs.e
	kids, stat, ch, err := e.sess.ChildrenW(ctx, dir)
	if err != nil {
		return nil, err
	}
	low := entry{seq: -1}
	for _, k := range kids {
		if seq, ok := seqOf(k); ok && (low.seq < 0 || seq < low.seq) {
			low = entry{name: k, seq: seq}
		}
	}
	switch {
	case low.seq < 0:
		*leader, *leaderCh = nil, nil
	case *leader == nil || (*leader).Candidate != low.name:
		data, st, lch, err := e.sess.GetW(ctx, dir+"/"+low.name)
		if errors.Is(err, zk.ErrNoNode) {
			return ch, nil // it left already: the watch has fired
		} else if err != nil {
			return nil, err
		}
		*leader, *leaderCh = decode(f.election, low.name, data, st), lch
	}
	v := view{loaded: true, leader: *leader, rev: revision(stat.Pzxid, *leader)}
	v.since = v.rev
	switch { // what the first listing can tell of when its leader took office
	case low.seq == 0 && *leader != nil: // the first candidate ever: it leads since its value was written
		v.since = (*leader).mod
	case low.seq < 0 && stat.Pzxid == stat.Czxid: // never a candidate: never a leader
		v.since = 0
	}
	f.set(v)
	return ch, nil
}
