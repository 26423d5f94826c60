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
