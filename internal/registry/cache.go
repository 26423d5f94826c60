package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// ErrClosed: the registry was closed, the gateway is shutting down.
var ErrClosed = errors.New("registry: closed, the gateway is shutting down")

// ErrCacheStopped ends the watchers of a group cache that was stopped
// (evicted, or the gateway is closing); they should retry.
var ErrCacheStopped = errors.New("registry: group cache stopped, retry")

// group is one gateway's cache of a group: one ZooKeeper watch on the
// group's journal, shared by every Lookup and watcher of the group. Every
// state it holds is the group exactly at rev (refresh.go).
type group struct {
	r    *Registry
	name string

	applyMu sync.Mutex // serializes refreshes (watch loop, linearizable reads)
	fresh   zkx.Fresh  // shares catch-ups between concurrent linearizable reads
	lastSeq int64      // last journal entry applied; -1 when none; guarded by applyMu
	armed   armed      // the journal watch the cache was current with when set; guarded by applyMu

	mu       sync.Mutex
	loaded   chan struct{} // closed after the first load
	members  *members      // the group at rev, sorted by ID; a Snapshot is a copy-on-write clone of it
	rev      int64
	changed  int64         // revision of the last change of members the cache knows (<= rev)
	wake     chan struct{} // closed and replaced when changed moves or the cache stops
	waiters  int           // blocking queries waiting (poll.go): the cache is in use
	ring     []*Event      // recent events, oldest first
	base     int64         // position in the group's event sequence of ring[0]
	floor    int64         // every event after revision floor is in ring
	subs     map[*Sub]struct{}
	held     map[int64]*heldSnap // revisions held for paged reads (page.go)
	lastUsed time.Time
	err      error // why the cache stopped, reported to waiting callers

	cancel context.CancelFunc
	done   chan struct{}
}

// View is a group exactly at revision Rev: every change up to it, none
// after it.
type View struct {
	Members []*Member // sorted by id
	Rev     int64
}

// WatchStart is how a watch begins: with a snapshot (Resync set when the
// client asked to resume and continuity could not be proven) or, when
// resuming, with the backlog of events after the requested revision.
type WatchStart struct {
	Snapshot *Snapshot
	Resync   bool
	Backlog  []*Event
}

// loadGroup returns the cache of name, creating and starting it if needed,
// and waits for its first load.
func (r *Registry) loadGroup(ctx context.Context, name string) (*group, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	g, ok := r.groups[name]
	if ok {
		// Mark the use under r.mu: the janitor, which holds r.mu while it
		// looks, cannot evict a cache someone is starting to use.
		g.mu.Lock()
		g.lastUsed = time.Now()
		g.mu.Unlock()
	} else {
		gctx, cancel := context.WithCancel(r.ctx)
		g = &group{r: r, name: name, lastSeq: -1, loaded: make(chan struct{}), members: newMembers(),
			subs: map[*Sub]struct{}{}, held: map[int64]*heldSnap{}, cancel: cancel, done: make(chan struct{}), lastUsed: time.Now(),
			wake: make(chan struct{})}
		r.groups[name] = g
		r.wg.Add(1)
		go g.run(gctx)
	}
	r.mu.Unlock()
	select {
	case <-g.loaded:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g, g.err
}

// group returns the loaded cache of name, replacing one that was stopped
// while the caller waited for it.
func (r *Registry) group(ctx context.Context, name string) (*group, error) {
	g, err := r.loadGroup(ctx, name)
	if errors.Is(err, ErrCacheStopped) {
		r.mu.Lock()
		if r.groups[name] == g {
			delete(r.groups, name)
		}
		r.mu.Unlock()
		g, err = r.loadGroup(ctx, name)
	}
	return g, err
}

// Lookup returns the group's members (or the one named by id, if not "",
// ErrMemberNotFound when absent) from the cache, exactly as they were at
// the View's revision. With linearizable set, it first orders itself after
// every write committed before the call and applies them. A group nobody
// ever registered in is empty, at a revision at which it did not exist;
// reading it creates nothing in ZooKeeper. When ctx ends before the group's
// first load or the catch-up, Lookup returns ctx's error at once; both go
// on for the gateway's other callers.
func (r *Registry) Lookup(ctx context.Context, name, id string, linearizable bool) (View, error) {
	g, err := r.group(ctx, name)
	if err != nil {
		return View{}, err
	}
	return g.lookup(ctx, id, linearizable)
}

// lookup answers a Lookup from the loaded cache g.
func (g *group) lookup(ctx context.Context, id string, linearizable bool) (View, error) {
	if linearizable {
		if err := g.catchUp(ctx); err != nil {
			return View{}, err
		}
	}
	name := g.name
	g.mu.Lock()
	defer g.mu.Unlock()
	if id != "" {
		if m, ok := getMember(g.members, id); ok {
			return View{Members: []*Member{m}, Rev: g.rev}, nil
		}
		return View{Rev: g.rev}, fmt.Errorf("%w: %s/%s", ErrMemberNotFound, name, id)
	}
	return g.viewLocked(), nil
}

// Revision returns the revision of this replica's cache of a group (the
// View.Rev a cached Lookup would answer), without copying its members: a
// caller that kept a View of that revision has the group as it is. It
// loads the cache as Lookup does, with the same errors.
func (r *Registry) Revision(ctx context.Context, name string) (int64, error) {
	g, err := r.group(ctx, name)
	if err != nil {
		return 0, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rev, nil
}

// Watch subscribes to a group. startRev 0 starts with a snapshot; a
// positive startRev resumes after that revision, which the caller holds
// whole (every event of it), with a resync snapshot when this gateway
// cannot prove it has every event since. ctx bounds the start (the group's
// first load, a catch-up to startRev); the Sub lasts until Close.
func (r *Registry) Watch(ctx context.Context, name string, startRev int64) (*Sub, WatchStart, error) {
	return r.watch(ctx, name, startRev, nil)
}

func (r *Registry) watch(ctx context.Context, name string, startRev int64, notify func()) (*Sub, WatchStart, error) {
	for attempt := 0; ; attempt++ {
		g, err := r.group(ctx, name)
		if err != nil {
			return nil, WatchStart{}, err
		}
		if startRev > 0 {
			g.mu.Lock()
			ahead := startRev > g.rev
			g.mu.Unlock()
			if ahead { // the client saw a newer state through another gateway
				if err := g.catchUp(ctx); err != nil {
					return nil, WatchStart{}, err
				}
			}
		}
		g.mu.Lock()
		// The cache may have stopped (the janitor evicted it, idle, between
		// its load and now) and dropped its watchers already: a Sub added
		// now would never hear of anything. Under g.mu a stop either comes
		// after the subscription (it ends the Sub with its error) or is seen
		// here, and a new cache is taken.
		if g.err != nil && errors.Is(g.err, ErrCacheStopped) && attempt < 3 {
			g.mu.Unlock()
			continue
		}
		s, ws, err := g.subscribeLocked(startRev, notify)
		g.mu.Unlock()
		return s, ws, err
	}
}

// subscribeLocked adds a Sub to g (g.mu held), with its start: a backlog
// after startRev, or a snapshot.
func (g *group) subscribeLocked(startRev int64, notify func()) (*Sub, WatchStart, error) {
	if g.err != nil {
		return nil, WatchStart{}, g.err
	}
	s := &Sub{g: g, notify: notify, next: g.base + int64(len(g.ring))}
	if notify == nil {
		s.ready = make(chan struct{}, 1)
	}
	g.subs[s] = struct{}{}
	var ws WatchStart
	switch {
	case startRev > 0 && startRev >= g.floor && startRev <= g.rev:
		i := sort.Search(len(g.ring), func(i int) bool { return g.ring[i].Rev > startRev })
		ws.Backlog = slices.Clone(g.ring[i:])
	default:
		ws.Snapshot, ws.Resync = g.snapshotLocked(), startRev > 0
		if ws.Resync {
			g.r.counters.resyncs.Add(1)
		}
	}
	return s, ws, nil
}

// viewLocked returns the whole group now, in ID order (the tree's: no
// sort).
func (g *group) viewLocked() View {
	return View{Members: g.snapshotLocked().Members(), Rev: g.rev}
}

// janitor evicts group caches nobody used for a while.
func (r *Registry) janitor() {
	defer r.wg.Done()
	t := time.NewTicker(max(r.opts.idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		now := time.Now()
		for name, g := range r.groups {
			g.mu.Lock()
			g.expireHeldLocked(now)
			loaded := false
			select {
			case <-g.loaded:
				loaded = true
			default: // still loading (ZooKeeper unreachable?): callers wait on it
			}
			idle := loaded && len(g.subs) == 0 && g.waiters == 0 && time.Since(g.lastUsed) > r.opts.idle
			failed := g.err != nil
			g.mu.Unlock()
			if idle || failed {
				g.cancel()
				delete(r.groups, name)
			}
		}
		r.mu.Unlock()
	}
}

// cachedAbsent reports whether this gateway's loaded cache of group lacks
// member id. It is a hint (the cache may lag ZooKeeper) for skipping a read
// before a create that ZooKeeper checks anyway.
func (r *Registry) cachedAbsent(group, id string) bool {
	r.mu.Lock()
	g, ok := r.groups[group]
	r.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-g.loaded:
	default:
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return false
	}
	return !g.members.Has(&Member{ID: id})
}

// Groups returns the number of groups this gateway caches (and watches).
func (r *Registry) Groups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.groups)
}

// Close stops every group cache, ending their watchers with an error.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	gs := make([]*group, 0, len(r.groups))
	for _, g := range r.groups {
		gs = append(gs, g)
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	for _, g := range gs {
		g.mu.Lock()
		for s := range g.subs {
			g.dropLocked(s, ErrClosed)
		}
		g.mu.Unlock()
	}
}
