package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// ErrClosed: the registry was closed, the gateway is shutting down.
var ErrClosed = errors.New("registry: closed, the gateway is shutting down")

// ErrSlowWatcher ends a watcher that did not keep up with its group's
// events; it should resume from its last revision.
var ErrSlowWatcher = errors.New("registry: watcher too slow, resume from last revision")

// group is one gateway's cache of a group: one ZooKeeper child watch on the
// group's journal, shared by every Lookup and watcher of the group.
type group struct {
	r    *Registry
	name string

	applyMu sync.Mutex // serializes refreshes (watch loop, linearizable reads)
	fresh   zkx.Fresh  // shares catch-ups between concurrent linearizable reads
	lastSeq int64      // last journal entry applied; -1 when none; guarded by applyMu

	mu       sync.Mutex
	loaded   chan struct{} // closed after the first load
	members  map[string]*Member
	rev      int64
	ring     []*Event // recent events, oldest first
	base     int64    // position in the group's event sequence of ring[0]
	floor    int64    // every event after revision floor is in ring
	subs     map[*Sub]struct{}
	lastUsed time.Time
	err      error // load error, reported to waiting callers

	cancel context.CancelFunc
	done   chan struct{}
}

// Sub is one watcher of a group. It holds no buffer of its own: it reads
// the group's ring of recent events from its own position, so an idle
// watcher costs a few words, and one that falls a whole ring behind is
// ended with ErrSlowWatcher rather than silently missing events.
type Sub struct {
	g     *group
	ready chan struct{} // capacity 1: signalled when Take has something
	next  int64         // position in the group's event sequence of the next event to take
	ended bool
	err   error

	pending []*Event // taken by Next, not yet returned
}

// Ready returns a channel that receives when Take has events or the end of
// the watch to report.
func (s *Sub) Ready() <-chan struct{} { return s.ready }

// Take returns the events since the last Take, in revision order. Once the
// watch has ended it returns why: ErrSlowWatcher, ErrCacheStopped (or the
// group's load error), or ErrWatchClosed after Close.
func (s *Sub) Take() ([]*Event, error) {
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.ended {
		return nil, s.err
	}
	end := g.base + int64(len(g.ring))
	if s.next >= end {
		return nil, nil
	}
	evs := slices.Clone(g.ring[s.next-g.base:])
	s.next = end
	return evs, nil
}

// Next returns the next event, waiting for it until ctx is done; after the
// end of the watch it returns why, as Take does. Use Next or Take, not both.
func (s *Sub) Next(ctx context.Context) (*Event, error) {
	for len(s.pending) == 0 {
		evs, err := s.Take()
		if err != nil {
			return nil, err
		}
		if len(evs) > 0 {
			s.pending = evs
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ready:
		}
	}
	ev := s.pending[0]
	s.pending = s.pending[1:]
	return ev, nil
}

// ErrWatchClosed is what Take reports after Close.
var ErrWatchClosed = errors.New("registry: watch closed")

// Close stops the watcher.
func (s *Sub) Close() {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.g.dropLocked(s, ErrWatchClosed)
}

func (g *group) dropLocked(s *Sub, err error) {
	if _, ok := g.subs[s]; !ok {
		return
	}
	delete(g.subs, s)
	s.ended, s.err = true, err
	s.signal()
	g.lastUsed = time.Now()
}

func (s *Sub) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// View is a consistent state of a group.
type View struct {
	Members []*Member // sorted by id
	Rev     int64
}

// WatchStart is how a watch begins: with a snapshot (Resync set when the
// client asked to resume and continuity could not be proven) or, when
// resuming, with the backlog of events after the requested revision.
type WatchStart struct {
	Snapshot *View
	Resync   bool
	Backlog  []*Event
}

// group returns the cache of name, creating and starting it if needed, and
// waits for its first load.
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
		g = &group{r: r, name: name, lastSeq: -1, loaded: make(chan struct{}), members: map[string]*Member{},
			subs: map[*Sub]struct{}{}, cancel: cancel, done: make(chan struct{}), lastUsed: time.Now()}
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
// ErrMemberNotFound when absent) from the cache. With linearizable set, it first syncs the ZooKeeper server
// with the leader and applies every journal entry committed before the call.
func (r *Registry) Lookup(ctx context.Context, name, id string, linearizable bool) (View, error) {
	g, err := r.group(ctx, name)
	if err != nil {
		return View{}, err
	}
	if linearizable {
		if err := g.catchUp(); err != nil {
			return View{}, err
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if id != "" {
		if m, ok := g.members[id]; ok {
			return View{Members: []*Member{m}, Rev: g.rev}, nil
		}
		return View{Rev: g.rev}, fmt.Errorf("%w: %s/%s", ErrMemberNotFound, name, id)
	}
	return g.viewLocked(), nil
}

// Watch subscribes to a group. startRev 0 starts with a snapshot; a
// positive startRev resumes after that revision, with a resync snapshot when
// this gateway cannot prove it has every event since.
func (r *Registry) Watch(ctx context.Context, name string, startRev int64) (*Sub, WatchStart, error) {
	g, err := r.group(ctx, name)
	if err != nil {
		return nil, WatchStart{}, err
	}
	if startRev > 0 {
		g.mu.Lock()
		ahead := startRev > g.rev
		g.mu.Unlock()
		if ahead { // the client saw a newer state through another gateway
			if err := g.catchUp(); err != nil {
				return nil, WatchStart{}, err
			}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s := &Sub{g: g, ready: make(chan struct{}, 1), next: g.base + int64(len(g.ring))}
	g.subs[s] = struct{}{}
	var ws WatchStart
	switch {
	case startRev > 0 && startRev >= g.floor && startRev <= g.rev && !g.sharedRevLocked(startRev):
		i := sort.Search(len(g.ring), func(i int) bool { return g.ring[i].Rev > startRev })
		ws.Backlog = slices.Clone(g.ring[i:])
	default:
		v := g.viewLocked()
		ws.Snapshot, ws.Resync = &v, startRev > 0
	}
	return s, ws, nil
}

// sharedRevLocked reports whether several events carry revision rev (the
// events of one reread do): a client that saw rev may have missed some of
// them, so it cannot resume from rev without a snapshot.
func (g *group) sharedRevLocked(rev int64) bool {
	i := sort.Search(len(g.ring), func(i int) bool { return g.ring[i].Rev >= rev })
	return i+1 < len(g.ring) && g.ring[i].Rev == rev && g.ring[i+1].Rev == rev
}

func (g *group) viewLocked() View {
	ms := make([]*Member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	return View{Members: ms, Rev: g.rev}
}

// run keeps the cache current: one watch on the journal, re-armed after
// every notification.
func (g *group) run(ctx context.Context) {
	defer g.r.wg.Done()
	defer close(g.done)
	c := g.r.sess.Conn()
	attempt := 0
	for {
		if err := g.r.ensure(g.name); err != nil {
			if !zkx.Transient(err) {
				g.fail(err)
				return
			}
			if !zkx.Backoff(ctx, attempt) {
				g.fail(ErrCacheStopped)
				return
			}
			attempt++
			continue
		}
		// The watch is a data watch on the journal directory, which every
		// journaled transaction touches: one watch per group, and one that
		// ZooKeeper's wchp/wchc report (they omit child watches).
		var names []string
		var stat *zk.Stat
		ok, _, ch, err := c.ExistsW(g.r.lay.Log(g.name))
		if err == nil && !ok {
			err = zk.ErrNoNode
		}
		if err == nil {
			names, stat, err = c.Children(g.r.lay.Log(g.name))
		}
		if err == nil {
			g.applyMu.Lock()
			err = g.apply(names, stat)
			g.applyMu.Unlock()
		}
		if err != nil {
			if errors.Is(err, zk.ErrNoNode) {
				g.r.ensured.Delete(g.name)
			}
			if !zkx.Transient(err) && !errors.Is(err, zk.ErrNoNode) {
				g.r.log.Warn("registry: refresh failed", "group", g.name, "err", err)
			}
			if !zkx.Backoff(ctx, attempt) {
				g.fail(ErrCacheStopped)
				return
			}
			attempt++
			continue
		}
		attempt = 0
		select {
		case <-ch:
		case <-ctx.Done():
			g.fail(ErrCacheStopped)
			return
		}
	}
}

// ErrCacheStopped ends the watchers of a group cache that was stopped
// (evicted, or the gateway is closing); they should retry.
var ErrCacheStopped = errors.New("registry: group cache stopped, retry")

func (g *group) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.err = fmt.Errorf("registry: group %s: %w", g.name, err)
	select {
	case <-g.loaded:
	default:
		close(g.loaded)
	}
	for s := range g.subs {
		g.dropLocked(s, g.err)
	}
}

// catchUp makes the cache reflect every change committed before the call.
//
// It orders itself after those changes with a write, not ZooKeeper's sync:
// sync is not a quorum operation, and across a ZooKeeper leader change a
// read after it can miss a committed write (ZOOKEEPER-1675; the chaos run
// caught one). A write is: once it is applied on this session's server,
// so is every write committed before it. Concurrent callers share one
// barrier write and journal read that started after their call (Fresh).
func (g *group) catchUp() error {
	return g.fresh.Do(func() error {
		if err := g.r.readBarrier(); err != nil {
			return err
		}
		g.applyMu.Lock()
		defer g.applyMu.Unlock()
		names, stat, err := g.r.sess.Conn().Children(g.r.lay.Log(g.name))
		if err != nil {
			return fmt.Errorf("registry: read journal: %w", err)
		}
		return g.apply(names, stat)
	})
}

// readBarrier writes the read-barrier znode (creating it the first time).
func (r *Registry) readBarrier() error {
	c := r.sess.Conn()
	_, err := c.Set(r.lay.ReadBarrier(), nil, -1)
	if errors.Is(err, zk.ErrNoNode) {
		if _, err = c.Create(r.lay.ReadBarrier(), nil, 0, r.sess.ACL()); errors.Is(err, zk.ErrNodeExists) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("registry: read barrier: %w", err)
	}
	return nil
}

// apply brings the cache up to the journal listing names (with its Stat).
// Called with applyMu held.
func (g *group) apply(names []string, stat *zk.Stat) error {
	seqs, byseq := parseLog(names)
	listRev := max(stat.Pzxid, stat.Mzxid)
	select {
	case <-g.loaded:
	default:
		return g.load(seqs, listRev)
	}
	// Continuity: the last applied entry is still in the journal (trims
	// remove a prefix). A cache that has applied none yet (it loaded an
	// empty journal) is continuous only if the journal still starts at its
	// first entry ever, sequence 0.
	continuous := len(seqs) == 0 || seqs[0] == 0
	if g.lastSeq >= 0 {
		_, continuous = byseq[g.lastSeq]
	}
	if !continuous {
		return g.reload(seqs, listRev)
	}
	for _, s := range seqs {
		if s <= g.lastSeq {
			continue
		}
		data, st, err := g.r.sess.Conn().Get(g.r.lay.Log(g.name) + "/" + byseq[s])
		if errors.Is(err, zk.ErrNoNode) { // trimmed under us
			return g.reload(seqs, listRev)
		} else if err != nil {
			return err
		}
		var ch change
		if err := json.Unmarshal(data, &ch); err != nil {
			g.r.log.Warn("registry: skip corrupt journal entry", "group", g.name, "entry", byseq[s])
		} else {
			g.mu.Lock()
			g.applyChange(ch, st.Czxid)
			g.mu.Unlock()
		}
		g.lastSeq = s
	}
	g.mu.Lock()
	if listRev > g.rev {
		g.rev = listRev
	}
	g.mu.Unlock()
	g.r.trimJournal(g.name, seqs, byseq)
	return nil
}

// applyChange applies one journal entry at revision rev, idempotently: an
// entry already reflected in the cache (read after it was written) is
// skipped. Called with g.mu held.
func (g *group) applyChange(ch change, rev int64) {
	cur, ok := g.members[ch.ID]
	switch ch.Op {
	case "put":
		if ch.Rec == nil || (ok && cur.ModRev >= rev) {
			return
		}
		createRev := rev
		typ := Joined
		if ok {
			createRev, typ = cur.CreateRev, Updated
		} else if ch.CreateRev != 0 {
			createRev = ch.CreateRev
		}
		m := ch.Rec.member(g.name, ch.ID, createRev, rev)
		g.members[ch.ID] = m
		g.emitLocked(&Event{Type: typ, Rev: rev, Member: m})
	case "del":
		if !ok || cur.ModRev >= rev {
			return
		}
		delete(g.members, ch.ID)
		g.emitLocked(&Event{Type: Left, Rev: rev, Member: cur})
	}
	if rev > g.rev {
		g.rev = rev
	}
}

// emitLocked records ev in the ring and wakes every watcher. A watcher
// that has not taken the event leaving the ring is ended with
// ErrSlowWatcher rather than silently missing it.
func (g *group) emitLocked(ev *Event) {
	if len(g.ring) >= g.r.opts.ring {
		g.floor = g.ring[0].Rev
		g.ring[0] = nil
		g.ring = g.ring[1:]
		g.base++
	}
	g.ring = append(g.ring, ev)
	for s := range g.subs {
		if s.next < g.base {
			g.dropLocked(s, ErrSlowWatcher)
			continue
		}
		s.signal()
	}
}

// load reads the group for the first time: journal position first, then
// the members, so every later entry is applied (idempotently) on top.
func (g *group) load(seqs []int64, listRev int64) error {
	members, rev, err := g.readMembers()
	if err != nil {
		return err
	}
	if len(seqs) > 0 {
		g.lastSeq = seqs[len(seqs)-1]
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members = members
	g.rev = max(rev, listRev)
	g.floor = g.rev
	g.lastUsed = time.Now() // callers waited for the load: not idle yet
	close(g.loaded)
	return nil
}

// reload rereads the members when the journal no longer proves continuity
// (entries trimmed before this gateway applied them) and emits the
// difference as events, so watchers still see every net change.
func (g *group) reload(seqs []int64, listRev int64) error {
	members, rev, err := g.readMembers()
	if err != nil {
		return err
	}
	if len(seqs) > 0 {
		g.lastSeq = seqs[len(seqs)-1]
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	rev = max(rev, listRev, g.rev+1)
	ids := make([]string, 0, len(members)+len(g.members))
	for id := range members {
		ids = append(ids, id)
	}
	for id := range g.members {
		if _, ok := members[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		old, had := g.members[id]
		cur, has := members[id]
		switch {
		case had && !has:
			delete(g.members, id)
			g.emitLocked(&Event{Type: Left, Rev: rev, Member: old})
		case !had && has:
			g.members[id] = cur
			g.emitLocked(&Event{Type: Joined, Rev: rev, Member: cur})
		case had && has && old.ModRev != cur.ModRev:
			g.members[id] = cur
			g.emitLocked(&Event{Type: Updated, Rev: rev, Member: cur})
		}
	}
	g.rev = rev
	g.r.log.Info("registry: journal gap, reread group", "group", g.name, "rev", rev)
	return nil
}

// readMembers reads every member; rev is the members directory's pzxid.
func (g *group) readMembers() (map[string]*Member, int64, error) {
	c := g.r.sess.Conn()
	dir := g.r.lay.Members(g.name)
	ids, stat, err := c.Children(dir)
	if err != nil {
		return nil, 0, err
	}
	out := make(map[string]*Member, len(ids))
	for _, id := range ids {
		data, st, err := c.Get(dir + "/" + id)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		} else if err != nil {
			return nil, 0, err
		}
		rec, err := decodeRecord(data)
		if err != nil {
			g.r.log.Warn("registry: skip corrupt member", "group", g.name, "member", id)
			continue
		}
		out[id] = rec.member(g.name, id, st.Czxid, st.Mzxid)
	}
	return out, stat.Pzxid, nil
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
		for name, g := range r.groups {
			g.mu.Lock()
			loaded := false
			select {
			case <-g.loaded:
				loaded = true
			default: // still loading (ZooKeeper unreachable?): callers wait on it
			}
			idle := loaded && len(g.subs) == 0 && time.Since(g.lastUsed) > r.opts.idle
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
	_, has := g.members[id]
	return !has
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
