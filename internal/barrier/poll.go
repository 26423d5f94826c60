package barrier

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Get reads barrier name's state from ZooKeeper (GetBarrier without a
// wait). A barrier without a znode is empty, at a revision at which it did
// not exist; reading it creates nothing.
func (b *Barriers) Get(ctx context.Context, name string) (State, error) {
	s, _, _, _, err := b.look(ctx, name, false, false)
	return s, err
}

// Poll is Get as a blocking query (a long-poll): it answers once the
// barrier has changed after revision after (someone arrived or left, it
// released, it was removed), or when until is closed (the wait is over, or
// the gateway is stopping), with the state then. The answer comes at once
// when after is 0 (a read, as Get), or when the barrier changed after it
// already. An after ahead of this gateway's view makes Poll read the
// barrier from ZooKeeper; if it is still ahead, the answer comes at once,
// at a lower revision, and the caller starts again from it.
//
// The Polls of a barrier share one watch per gateway: a child watch on
// the barrier's znode, which fires at every arrival, departure, release and
// removal (so it does not outlive the barrier), or, while the barrier has
// no znode, an exists watch on it, which stays on the ZooKeeper server
// until the barrier is created (as a read of a group nobody registered in
// does). A waiting Poll adds no watch of its own. Cancelling ctx ends the
// wait with ctx's error; Close ends it with ErrClosed.
func (b *Barriers) Poll(ctx context.Context, name string, after int64, until <-chan struct{}) (State, error) {
	if after <= 0 {
		return b.Get(ctx, name)
	}
	f, err := b.follow(feedKey{name: name})
	if err != nil {
		return State{}, err
	}
	defer b.unfollow(f)
	v, err := f.await(ctx, until, func(v view) bool { return v.loaded })
	if err != nil {
		return State{}, err
	}
	if !v.loaded { // the wait ended first (ZooKeeper slow?)
		return b.Get(ctx, name)
	}
	if after > v.s.Rev {
		s, err := b.Get(ctx, name)
		if err != nil || after > s.Rev {
			return s, err // another history (another ensemble?): the caller resets
		}
		// The feed lags ZooKeeper: its watch has fired (ZooKeeper sends a
		// watch event before the answer of a later read), so it catches up.
		if v, err = f.await(ctx, until, func(v view) bool { return v.s.Rev >= s.Rev }); err != nil || v.s.Rev < s.Rev {
			return s, err
		}
	}
	v, err = f.await(ctx, until, func(v view) bool { return v.s.Rev > after })
	return v.s, err
}

// look reads barrier name's state; with watch set, also a watch that fires
// at its next change: a child watch on the barrier's znode, or, with
// watchAbsent too, an exists watch on it when it does not exist (no watch
// then without it). kids are the barrier's children, sorted (nil when it
// does not exist), and czxid the zxid that created its znode.
func (b *Barriers) look(ctx context.Context, name string, watch, watchAbsent bool) (s State, kids []string, czxid int64, _ <-chan zk.Event, _ error) {
	c := b.sess
	dir := b.lay.Barrier(name)
	for range 8 {
		var kids []string
		var st *zk.Stat
		var ch <-chan zk.Event
		var err error
		if watch {
			kids, st, ch, err = c.ChildrenW(ctx, dir)
		} else {
			kids, st, err = c.Children(ctx, dir)
		}
		if errors.Is(err, zk.ErrNoNode) {
			if watch && watchAbsent {
				var ok bool
				if ok, _, ch, err = c.ExistsW(ctx, dir); err != nil {
					return State{}, nil, 0, nil, err
				} else if ok {
					continue // created meanwhile
				}
			}
			rev, err := zkx.AbsentRev(ctx, c, dir)
			if errors.Is(err, zkx.ErrAppeared) {
				continue
			}
			return State{Rev: rev}, nil, 0, ch, err
		} else if err != nil {
			return State{}, nil, 0, nil, err
		}
		// The threshold is the barrier's data. A read that shows it
		// unchanged since the listing (same creation, same last data
		// change) is the data at the listing's revision.
		data, dst, err := c.Get(ctx, dir)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		} else if err != nil {
			return State{}, nil, 0, nil, err
		}
		if dst.Czxid != st.Czxid || dst.Mzxid != st.Mzxid {
			continue
		}
		n, ready := count(kids)
		threshold, _ := strconv.Atoi(string(data))
		slices.Sort(kids)
		return State{Arrived: n, Threshold: threshold, Released: ready, Rev: max(st.Pzxid, st.Mzxid)}, kids, st.Czxid, ch, nil
	}
	return State{}, nil, 0, nil, ErrConflict
}

// feed is one barrier as this gateway sees it, kept current for its
// followers by one goroutine holding one watch (look's). A barrier has two
// feeds at most: one for its Polls, which watches for the barrier's
// creation while it has no znode, and one for its Awaits (key.await),
// which never does: an Await is in the barrier, so a barrier without a
// znode has removed it, and the feed ends there; its child watch fires
// when the barrier's children change or its znode goes, so it does not
// outlive the barrier.
type feed struct {
	key    feedKey
	refs   int // guarded by Barriers.mu
	cancel context.CancelFunc

	mu      sync.Mutex
	v       view
	changed chan struct{} // closed and replaced when v changes

	relMu    sync.Mutex // one release (ready's create) at a time
	released int64      // the czxid of the barrier znode released through this feed
}

// feedKey names a feed: its barrier, and whether it serves Awaits.
type feedKey struct {
	name  string
	await bool
}

// view is a feed's state.
type view struct {
	loaded bool
	s      State
	kids   []string // the barrier's children, sorted; nil when it has no znode
	czxid  int64    // the barrier znode's creation; 0 when it has none (an Await feed's last view)
	err    error    // the feed stopped
}

// gone reports that the view shows the barrier without a znode.
func (v view) gone() bool { return v.loaded && v.czxid == 0 }

// has reports whether the view shows participant in the barrier.
func (v view) has(participant string) bool {
	_, ok := slices.BinarySearch(v.kids, "p-"+participant)
	return ok
}

func (f *feed) set(v view) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.v.loaded && v.err == nil && v.s == f.v.s && v.czxid == f.v.czxid {
		return
	}
	f.v = v
	close(f.changed)
	f.changed = make(chan struct{})
}

// await waits until f's view satisfies done, until is closed (nil: never)
// or ctx ends, and returns the view then. The feed's end is an error.
func (f *feed) await(ctx context.Context, until <-chan struct{}, done func(view) bool) (view, error) {
	for {
		f.mu.Lock()
		v, ch := f.v, f.changed
		f.mu.Unlock()
		switch {
		case v.err != nil:
			return v, v.err
		case done(v):
			return v, nil
		}
		select {
		case <-ch:
		case <-until:
			return v, nil
		case <-ctx.Done():
			return v, ctx.Err()
		}
	}
}

// follow returns the feed k, starting it for its first follower.
func (b *Barriers) follow(k feedKey) (*feed, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	f, ok := b.feeds[k]
	if !ok {
		ctx, cancel := context.WithCancel(b.ctx)
		f = &feed{key: k, cancel: cancel, changed: make(chan struct{})}
		b.feeds[k] = f
		b.wg.Add(1)
		go b.run(ctx, f)
	}
	f.refs++
	return f, nil
}

// unfollow drops a follower of f; the last one stops the feed.
func (b *Barriers) unfollow(f *feed) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f.refs--; f.refs == 0 {
		f.cancel()
		if b.feeds[f.key] == f {
			delete(b.feeds, f.key)
		}
	}
}

// run keeps f current until ctx is done (its last follower left, or
// Close), then ends its followers with ErrClosed. Transient errors are
// retried with backoff; others end the feed and its followers. An Await
// feed that sees the barrier without a znode ends there, its last view
// showing it so.
func (b *Barriers) run(ctx context.Context, f *feed) {
	defer b.wg.Done()
	err := ErrClosed
	var backoff zkx.Backoff
	for {
		s, kids, czxid, ch, lerr := b.look(ctx, f.key.name, true, !f.key.await)
		if lerr == nil {
			backoff.Reset()
			f.set(view{loaded: true, s: s, kids: kids, czxid: czxid})
			if ch == nil { // an Await feed, and the barrier is gone
				b.mu.Lock()
				if b.feeds[f.key] == f {
					delete(b.feeds, f.key) // the next Await starts afresh
				}
				b.mu.Unlock()
				return
			}
			select {
			case <-ch: // a change, or the watch lost with the session
				continue
			case <-ctx.Done():
			}
			break
		}
		if ctx.Err() != nil {
			break
		}
		if !zkx.Transient(lerr) && !errors.Is(lerr, ErrConflict) {
			b.log.Warn("barrier: follow failed", "barrier", f.key.name, "err", lerr)
			err = lerr
			break
		}
		if !backoff.Wait(ctx) {
			break
		}
	}
	b.mu.Lock()
	if b.feeds[f.key] == f {
		delete(b.feeds, f.key) // the next follower starts afresh
	}
	b.mu.Unlock()
	f.set(view{err: err})
}
