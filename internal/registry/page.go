package registry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrRevisionGone: a page was asked at a revision this gateway no longer
// holds (the hold expired, the cache was evicted or restarted, or another
// replica served the first page). The reader starts again from the first
// page.
var ErrRevisionGone = errors.New("registry: revision no longer held for paging, read again from the first page")

// Snapshot is a group exactly at revision Rev, held cheaply: an O(1)
// copy-on-write clone of the cache's member tree, which the cache's later
// changes do not touch. It is safe for concurrent reads.
type Snapshot struct {
	Rev  int64
	tree *members
}

// Len returns the number of members.
func (s *Snapshot) Len() int { return s.tree.Len() }

// Members returns every member, sorted by ID.
func (s *Snapshot) Members() []*Member {
	out := make([]*Member, 0, s.tree.Len())
	s.tree.Ascend(func(m *Member) bool {
		out = append(out, m)
		return true
	})
	return out
}

// Page returns the members with IDs after after ("" from the first), in ID
// order: at most limit of them, and no more than fit in maxBytes (by
// Member.Size; always at least one). more reports whether members follow.
func (s *Snapshot) Page(after string, limit, maxBytes int) (ms []*Member, more bool) {
	size := 0
	s.tree.AscendGreaterOrEqual(&Member{ID: after}, func(m *Member) bool {
		if after != "" && m.ID == after {
			return true
		}
		if n := m.Size(); len(ms) > 0 && (len(ms) >= limit || size+n > maxBytes) {
			more = true
			return false
		} else {
			size += n
		}
		ms = append(ms, m)
		return true
	})
	return ms, more
}

// Size is an upper bound of the member's size on the wire (protobuf or
// JSON), for bounding pages.
func (m *Member) Size() int {
	n := 96 + 2*(len(m.Group)+len(m.ID)+len(m.Value))
	for k, v := range m.Metadata {
		n += 8 + 2*(len(k)+len(v))
	}
	return n
}

// PageQuery asks for one page of a whole group.
type PageQuery struct {
	// Rev is the revision of an earlier page to continue; 0 reads the
	// group as it is now (a first page).
	Rev int64
	// After is the ID of the last member of the earlier page ("" for the
	// first page).
	After string
	// Limit and MaxBytes bound the page (see Snapshot.Page).
	Limit, MaxBytes int
}

// Page is one page of a group at revision Rev. More says members follow:
// the gateway then holds Rev for a while, for the next page.
type Page struct {
	Members []*Member
	Rev     int64
	More    bool
}

// LookupPage returns a page of the group: with q.Rev 0, its first members
// as the group is now (after a catch-up when linearizable, as Lookup);
// otherwise the members after q.After exactly as they were at q.Rev, or
// ErrRevisionGone when this gateway no longer holds that revision. Every
// page of one read comes from the same revision, so together they are the
// group at the first page's revision: nothing duplicated, nothing missed,
// whatever joined or left between pages.
func (r *Registry) LookupPage(ctx context.Context, name string, q PageQuery, linearizable bool) (Page, error) {
	g, err := r.group(ctx, name)
	if err != nil {
		return Page{}, err
	}
	return g.page(ctx, q, linearizable)
}

// PollPage is LookupPage of a first page as a blocking query (see Poll).
func (r *Registry) PollPage(ctx context.Context, name string, q PageQuery, linearizable bool, after int64, until <-chan struct{}) (Page, error) {
	g, err := r.group(ctx, name)
	if err != nil {
		return Page{}, err
	}
	if after > 0 {
		if err := g.await(ctx, after, until); err != nil {
			return Page{}, err
		}
	}
	return g.page(ctx, q, linearizable)
}

// heldSnap is a revision held for readers' next pages.
type heldSnap struct {
	snap *Snapshot
	used time.Time
}

func (g *group) page(ctx context.Context, q PageQuery, linearizable bool) (Page, error) {
	if q.Rev == 0 && linearizable {
		if err := g.catchUp(ctx); err != nil {
			return Page{}, err
		}
	}
	g.mu.Lock()
	s, err := g.snapshotAtLocked(q.Rev)
	g.mu.Unlock()
	if err != nil {
		return Page{}, err
	}
	ms, more := s.Page(q.After, q.Limit, q.MaxBytes)
	if more {
		g.mu.Lock()
		g.holdLocked(s)
		g.mu.Unlock()
	}
	return Page{Members: ms, Rev: s.Rev, More: more}, nil
}

// snapshotLocked returns the group as the cache has it now.
func (g *group) snapshotLocked() *Snapshot {
	return &Snapshot{Rev: g.rev, tree: g.members.Clone()}
}

// snapshotAtLocked returns the group at rev (0: now): a held snapshot of
// rev, or the cache itself when the group has not changed since rev (its
// state is the same at every revision from its last change on: this also
// serves a revision a page of another replica named).
func (g *group) snapshotAtLocked(rev int64) (*Snapshot, error) {
	if rev == 0 {
		return g.snapshotLocked(), nil
	}
	if h, ok := g.held[rev]; ok {
		h.used = time.Now()
		g.lastUsed = h.used
		return h.snap, nil
	}
	if g.changed <= rev && rev <= g.rev {
		s := g.snapshotLocked()
		s.Rev = rev
		return s, nil
	}
	return nil, fmt.Errorf("%w: group %s at revision %d", ErrRevisionGone, g.name, rev)
}

// holdLocked keeps s for the next pages of its readers, for the registry's
// page hold; at most maxHeld revisions per group, the least recently used
// going first.
func (g *group) holdLocked(s *Snapshot) {
	now := time.Now()
	if h, ok := g.held[s.Rev]; ok {
		h.used = now
		return
	}
	if len(g.held) >= g.r.opts.maxHeld {
		var oldest int64
		var at time.Time
		for rev, h := range g.held {
			if at.IsZero() || h.used.Before(at) {
				oldest, at = rev, h.used
			}
		}
		delete(g.held, oldest)
	}
	g.held[s.Rev] = &heldSnap{snap: s, used: now}
	g.lastUsed = now
}

// expireHeldLocked drops the held revisions unused for the page hold.
func (g *group) expireHeldLocked(now time.Time) {
	for rev, h := range g.held {
		if now.Sub(h.used) > g.r.opts.pageHold {
			delete(g.held, rev)
		}
	}
}
