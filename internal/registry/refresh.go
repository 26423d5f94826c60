package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// How a group cache follows ZooKeeper. Every state it shows is the group
// exactly at the revision it names: the changes of one transaction are
// applied under one hold of g.mu, and a read of the whole group (first
// load, reread after a journal gap) is completed with the journal entries
// written while it ran.

// run keeps the cache current: one watch on the journal, re-armed after
// every notification, until ctx (the cache's: it ends when the cache is
// evicted or the registry closes) ends. It waits for a linearizable
// read's catch-up under way before it returns.
func (g *group) run(ctx context.Context) {
	defer g.r.wg.Done()
	defer close(g.done)
	defer g.fresh.Close()
	var backoff zkx.Backoff
	for {
		// The watch is an exists watch on the journal directory: every
		// journaled transaction touches it (a data change), and for a group
		// never written it fires when a Register creates it. One watch per
		// group, and one that ZooKeeper's wchp/wchc report (they omit child
		// watches).
		link := g.r.sess.Link()
		_, _, ch, err := g.r.sess.ExistsW(ctx, g.r.lay.Log(g.name))
		if err == nil {
			g.applyMu.Lock()
			err = g.refresh(ctx)
			g.armed = armed{}
			if err == nil {
				g.armed = armed{ch: ch, link: link}
			}
			g.applyMu.Unlock()
		}
		if err != nil {
			if !zkx.Unknown(err) && !errors.Is(err, ErrConflict) {
				g.r.log.Warn("registry: refresh failed", "group", g.name, "err", err)
			}
			if !backoff.Wait(ctx) {
				g.fail(ErrCacheStopped)
				return
			}
			continue
		}
		backoff.Reset()
		select {
		case <-ch: // a catch-up's check (armed.fired) may have taken the event: then ch is closed
		case <-ctx.Done():
			g.fail(ErrCacheStopped)
			return
		}
		if h := g.r.opts.beforeRefresh; h != nil {
			h(g.name)
		}
	}
}

// armed is the journal watch a cache was current with when it was set:
// the cache's refresh began after the watch was registered, on the
// Session's connection link.
type armed struct {
	ch   <-chan zk.Event
	link uint64
}

// current reports whether the cache, whose watch is a, still holds every
// change the session's server had applied when the answer just received
// came: no notification came since the watch was set, on the same
// connection. go-zookeeper puts a notification in the watch's channel (and
// closes it) before it reads the next answer off the connection, and the
// server sends a watch's notification before the answer to any later
// request. Taking the event from ch is harmless: the channel is closed
// after it, and the watch loop wakes on the close.
func (a armed) current(sess *zkx.Session) bool {
	if a.ch == nil || sess.Link() != a.link {
		return false
	}
	select {
	case <-a.ch:
		return false
	default:
		return true
	}
}

func (g *group) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.err = fmt.Errorf("registry: group %s: %w", g.name, err)
	if !g.isLoaded() {
		close(g.loaded)
	}
	g.wakeLocked()
	for s := range g.subs {
		g.dropLocked(s, g.err)
	}
}

func (g *group) isLoaded() bool {
	select {
	case <-g.loaded:
		return true
	default:
		return false
	}
}

// catchUp makes the cache reflect every change committed before the call.
//
// It orders itself after those changes with a write, not ZooKeeper's sync:
// sync is not a quorum operation, and across a ZooKeeper leader change a
// read after it can miss a committed write (ZOOKEEPER-1675; the chaos run
// caught one). A write is: once it is applied on this session's server,
// so is every write committed before it. When the cache's journal watch
// has not fired by the time the barrier's answer came, on the connection
// it was set on, no change of the group came between the cache's last
// refresh and the barrier, and the cache is current without a listing
// (armed.current); otherwise the catch-up lists the journal. Concurrent
// callers share one barrier write and journal read that started after
// their call (Fresh).
//
// The shared run is bounded by the registry's context, not a caller's: a
// caller whose ctx ends gets ctx's error at once, and the run goes on for
// the others.
func (g *group) catchUp(ctx context.Context) error {
	err := g.fresh.Do(ctx, func() error {
		bg := g.r.ctx
		err := g.r.readBarrier(bg)
		if err == nil {
			g.applyMu.Lock()
			defer g.applyMu.Unlock()
			g.r.counters.catchUps.Add(1)
			if g.armed.current(g.r.sess) {
				return nil
			}
			g.r.counters.catchUpLists.Add(1)
			if err = g.refresh(bg); err != nil {
				err = fmt.Errorf("registry: read group %s: %w", g.name, err)
			}
		}
		if err != nil && bg.Err() != nil {
			return ErrClosed
		}
		return err
	})
	if errors.Is(err, zkx.ErrStopped) {
		return fmt.Errorf("registry: group %s: %w", g.name, ErrCacheStopped)
	}
	return err
}

// readBarrier writes the read-barrier znode (creating it the first time).
func (r *Registry) readBarrier(ctx context.Context) error {
	c := r.sess
	_, err := c.Set(ctx, r.lay.ReadBarrier(), nil, -1)
	if errors.Is(err, zk.ErrNoNode) {
		if _, err = c.Create(ctx, r.lay.ReadBarrier(), nil, 0); errors.Is(err, zk.ErrNodeExists) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("registry: read barrier: %w", err)
	}
	return nil
}

// refresh brings the cache up to the group as ZooKeeper has it now: it
// lists the journal and applies the entries after the last one applied,
// all under one hold of g.mu, so no reader sees part of a transaction. A
// cache not loaded yet reads the whole group; one that cannot prove
// continuity (its last entry was trimmed) rereads it. Called with applyMu
// held. ctx bounds its reads.
func (g *group) refresh(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := g.refreshOnce(ctx)
		if !errors.Is(err, errAppeared) || attempt == 2 {
			return err
		}
	}
}

func (g *group) refreshOnce(ctx context.Context) error {
	l, err := g.list(ctx)
	if errors.Is(err, zk.ErrNoNode) {
		return g.absent(ctx)
	} else if err != nil {
		return err
	}
	if !g.isLoaded() {
		s, err := g.read(ctx, l)
		if err != nil {
			return err
		}
		g.install(s)
		return nil
	}
	seqs, ok := l.after(g.lastSeq)
	var es []entry
	if ok {
		if h := g.r.opts.beforeEntriesRead; h != nil {
			names := make([]string, len(seqs))
			for i, s := range seqs {
				names[i] = l.names[s]
			}
			h(g.name, names)
		}
		es, err = g.readEntries(ctx, l, seqs)
	}
	if !ok || errors.Is(err, errTrimmed) {
		return g.reread(ctx, l)
	} else if err != nil {
		return err
	}
	evs := make([]*Event, 0, len(es))
	g.mu.Lock()
	for _, e := range es {
		if ev := applyChange(g.members, g.name, e); ev != nil {
			evs = append(evs, ev)
		}
	}
	g.rev = max(g.rev, l.rev)
	g.publishLocked(evs)
	g.mu.Unlock()
	now := time.Now()
	for _, e := range es {
		g.r.counters.lag.observe(e.ctime, now)
	}
	g.lastSeq = l.last()
	g.r.trimJournal(ctx, g.name, l.seqs, l.names)
	return nil
}

// listing is one read of a group's journal.
type listing struct {
	seqs  []int64          // entries' sequence numbers, sorted
	names map[int64]string // entries' names by sequence number
	rev   int64            // the revision the listing reflects
	mod   int64            // the revision of the group's last change (the directory's mzxid)
}

// list lists the journal; zk.ErrNoNode when the group was never written.
// The journal directory's mzxid is the revision of the group's last change
// (every change touches it) and its pzxid that of the last entry created
// or trimmed: their maximum is a revision at which the group was exactly
// what the listed entries make it.
func (g *group) list(ctx context.Context) (listing, error) {
	names, st, err := g.r.sess.Children(ctx, g.r.lay.Log(g.name))
	if err != nil {
		return listing{}, err
	}
	seqs, byseq := parseLog(names)
	return listing{seqs: seqs, names: byseq, rev: max(st.Pzxid, st.Mzxid), mod: st.Mzxid}, nil
}

// last is the sequence number of the listing's last entry, or -1.
func (l listing) last() int64 {
	if len(l.seqs) == 0 {
		return -1
	}
	return l.seqs[len(l.seqs)-1]
}

// after returns the listed entries after sequence number seq (-1: all),
// and whether the listing proves it holds every entry written after seq.
// Trims remove the oldest entries, so it does when it still holds seq
// itself or, for -1, when it starts at the first entry ever (sequence 0).
func (l listing) after(seq int64) ([]int64, bool) {
	if seq < 0 {
		return l.seqs, len(l.seqs) == 0 || l.seqs[0] == 0
	}
	if _, ok := l.names[seq]; !ok {
		return nil, false
	}
	i := sort.Search(len(l.seqs), func(i int) bool { return l.seqs[i] > seq })
	return l.seqs[i:], true
}

// entry is one journal entry read: a change at revision rev, the zxid of
// its transaction.
type entry struct {
	ch    change
	rev   int64
	ctime time.Time // when the change was committed (ZooKeeper's clock)
}

// errTrimmed: a listed journal entry was trimmed before it was read.
var errTrimmed = errors.New("registry: journal entry trimmed while read")

// readEntries reads the entries seqs of l (pipelined: getAll), in order,
// skipping corrupt ones.
func (g *group) readEntries(ctx context.Context, l listing, seqs []int64) ([]entry, error) {
	dir := g.r.lay.Log(g.name)
	paths := make([]string, len(seqs))
	for i, s := range seqs {
		paths[i] = dir + "/" + l.names[s]
	}
	got, err := g.r.getAll(ctx, paths, nil)
	if err != nil {
		return nil, err
	}
	out := make([]entry, 0, len(seqs))
	for i, z := range got {
		if z.gone {
			return nil, errTrimmed
		}
		e := entry{rev: z.st.Czxid, ctime: time.UnixMilli(z.st.Ctime)}
		if err := json.Unmarshal(z.data, &e.ch); err != nil {
			g.r.log.Warn("registry: skip corrupt journal entry", "group", g.name, "entry", l.names[seqs[i]])
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// applyChange applies one journal entry to members, idempotently: an entry
// the members already reflect (read after it was written) changes nothing.
// It returns the change as an event, or nil.
func applyChange(members *members, group string, e entry) *Event {
	ch, rev := e.ch, e.rev
	cur, ok := getMember(members, ch.ID)
	switch ch.Op {
	case "put":
		if ch.Rec == nil || (ok && cur.ModRev >= rev) {
			return nil
		}
		createRev, typ := rev, Joined
		if ok {
			createRev, typ = cur.CreateRev, Updated
		} else if ch.CreateRev != 0 {
			createRev = ch.CreateRev
		}
		m := ch.Rec.member(group, ch.ID, createRev, rev)
		members.ReplaceOrInsert(m)
		return &Event{Type: typ, Rev: rev, Member: m}
	case "del":
		if !ok || cur.ModRev >= rev {
			return nil
		}
		members.Delete(cur)
		return &Event{Type: Left, Rev: rev, Member: cur}
	}
	return nil
}
