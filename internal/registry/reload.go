package registry

// Reading a whole group: the first load of a cache, and the reread of one
// that can no longer prove it missed nothing (its last entry was trimmed).
// Either gives the group exactly at one revision (read); replace turns a
// reread into the events a watcher missed.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"golang.org/x/sync/errgroup"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// state is a whole group read from ZooKeeper: its members exactly at rev,
// the revision of their last change (mod), and the last journal entry they
// reflect (-1: none).
type state struct {
	members *members
	rev     int64
	mod     int64
	lastSeq int64
}

// read reads the whole group, after the journal listing l. The members are
// read (several at a time: getAll) while the group may change, each at
// some revision between l and a second listing made after them; applying
// to them (idempotently) the entries between the two listings gives the
// group exactly as the second listing has it. When entries were trimmed in
// between, it reads again.
func (g *group) read(ctx context.Context, l listing) (state, error) {
	for range 3 {
		members, err := g.readMembers(ctx)
		if err != nil {
			return state{}, err
		}
		l2, err := g.list(ctx)
		if err != nil {
			return state{}, err
		}
		seqs, ok := l2.after(l.last())
		var es []entry
		if ok {
			es, err = g.readEntries(ctx, l2, seqs)
		}
		if !ok || errors.Is(err, errTrimmed) {
			l = l2
			continue
		} else if err != nil {
			return state{}, err
		}
		for _, e := range es {
			applyChange(members, g.name, e)
		}
		return state{members: members, rev: l2.rev, mod: l2.mod, lastSeq: l2.last()}, nil
	}
	return state{}, fmt.Errorf("%w: group %s changed faster than it could be read", ErrConflict, g.name)
}

// readMembers reads every member (none when the directory does not exist),
// pipelined (getAll). Each read is still made between the caller's two
// journal listings, which is all read needs of it.
func (g *group) readMembers(ctx context.Context) (*members, error) {
	dir := g.r.lay.Members(g.name)
	ids, _, err := g.r.sess.Children(ctx, dir)
	if errors.Is(err, zk.ErrNoNode) {
		return newMembers(), nil
	} else if err != nil {
		return nil, err
	}
	paths := make([]string, len(ids))
	for i, id := range ids {
		paths[i] = dir + "/" + id
	}
	var after func(n int)
	if h := g.r.opts.afterMemberRead; h != nil {
		after = func(n int) { h(g.name, n) }
	}
	got, err := g.r.getAll(ctx, paths, after)
	if err != nil {
		return nil, err
	}
	out := newMembers()
	for i, z := range got {
		if z.gone {
			continue
		}
		rec, err := decodeRecord(z.data)
		if err != nil {
			g.r.log.Warn("registry: skip corrupt member", "group", g.name, "member", ids[i])
			continue
		}
		out.ReplaceOrInsert(rec.member(g.name, ids[i], z.st.Czxid, z.st.Mzxid))
	}
	return out, nil
}

// znode is one read of getAll; gone when the znode did not exist.
type znode struct {
	data []byte
	st   *zk.Stat
	gone bool
}

// getAll reads paths, pipelinedReads at a time on the session: go-zookeeper
// pipelines concurrent requests on its one connection, so n reads take
// about n/pipelinedReads round trips instead of n (BENCHMARKS.md, "First
// load of a large group"). Any error but a missing znode ends the reads.
// after, if not nil, is called after each read with the number made so
// far, one call at a time (tests change the group in the middle).
// The workers' context can be cancelled, so zkx runs each of their reads
// on a goroutine of its own (bounded): that cost is in the benchmarks.
func (r *Registry) getAll(ctx context.Context, paths []string, after func(n int)) ([]znode, error) {
	got := make([]znode, len(paths))
	var (
		mu   sync.Mutex
		done int
	)
	read := func(ctx context.Context, i int) error {
		data, st, err := r.sess.Get(ctx, paths[i])
		switch {
		case errors.Is(err, zk.ErrNoNode):
			got[i].gone = true
		case err != nil:
			return err
		default:
			got[i] = znode{data: data, st: st}
		}
		if after != nil {
			mu.Lock()
			done++
			after(done)
			mu.Unlock()
		}
		return nil
	}
	if len(paths) <= 1 { // the common catch-up, one entry: no goroutine
		for i := range paths {
			if err := read(ctx, i); err != nil {
				return nil, err
			}
		}
		return got, nil
	}
	var next atomic.Int64
	eg, ctx := errgroup.WithContext(ctx)
	for range min(pipelinedReads, len(paths)) {
		eg.Go(func() error {
			for i := int(next.Add(1) - 1); i < len(paths); i = int(next.Add(1) - 1) {
				if err := read(ctx, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	return got, nil
}

// pipelinedReads is how many reads getAll keeps in flight: the session's
// other requests wait behind them, and more did not load faster.
const pipelinedReads = 8

// install makes s the first state of the cache and releases the callers
// waiting for it.
func (g *group) install(s state) {
	g.lastSeq = s.lastSeq
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members, g.rev, g.floor, g.changed = s.members, s.rev, s.rev, s.mod
	g.lastUsed = time.Now() // callers waited for the load: not idle yet
	close(g.loaded)
}

// reread reads the whole group again when the journal no longer proves
// continuity (entries trimmed before this gateway applied them).
func (g *group) reread(ctx context.Context, l listing) error {
	s, err := g.read(ctx, l)
	if err != nil {
		return err
	}
	g.r.log.Info("registry: journal gap, reread group", "group", g.name, "rev", s.rev)
	return g.replace(s)
}

// replace makes s the state of the cache and emits the difference as
// events of revision s.rev, so watchers still see every net change, as one
// unit.
func (g *group) replace(s state) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	evs := diff(g.members, s.members, s.rev)
	if len(evs) > 0 && s.rev <= g.rev { // cannot be: the changes came after g.rev
		return fmt.Errorf("registry: group %s read at revision %d, not after the cache's %d", g.name, s.rev, g.rev)
	}
	g.members, g.rev = s.members, max(g.rev, s.rev)
	g.publishLocked(evs)
	g.lastSeq = s.lastSeq
	return nil
}

// absent makes the cache an empty group when its journal does not exist:
// nobody ever registered in it. Reads create nothing (only Register creates
// a group's directories); the run loop's exists watch on the journal fires
// when it is created. The revision is one at which the journal did not
// exist (zkx.AbsentRev).
func (g *group) absent(ctx context.Context) error {
	g.r.ensured.Delete(g.name)
	rev, err := zkx.AbsentRev(ctx, g.r.sess, g.r.lay.Log(g.name))
	if errors.Is(err, zkx.ErrAppeared) {
		return errAppeared
	} else if err != nil {
		return err
	}
	s := state{members: newMembers(), rev: rev, lastSeq: -1}
	if !g.isLoaded() {
		g.install(s)
		return nil
	}
	return g.replace(s)
}

// errAppeared: the group's journal, read as absent, exists by the time its
// parent is listed; refresh tries again.
var errAppeared = fmt.Errorf("%w: group created while read", ErrConflict)

// diff returns the events that turn old into cur, all of revision rev, in
// ID order: a merge of the two sorted trees.
func diff(old, cur *members, rev int64) []*Event {
	a, b := snapshotOf(old).Members(), snapshotOf(cur).Members()
	var evs []*Event
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0].ID < b[0].ID):
			evs = append(evs, &Event{Type: Left, Rev: rev, Member: a[0]})
			a = a[1:]
		case len(a) == 0 || b[0].ID < a[0].ID:
			evs = append(evs, &Event{Type: Joined, Rev: rev, Member: b[0]})
			b = b[1:]
		default:
			if a[0].ModRev != b[0].ModRev {
				evs = append(evs, &Event{Type: Updated, Rev: rev, Member: b[0]})
			}
			a, b = a[1:], b[1:]
		}
	}
	return evs
}

// snapshotOf wraps a tree nobody changes any more.
func snapshotOf(t *members) *Snapshot { return &Snapshot{tree: t} }
