package registry

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// GroupList is the groups that exist, as this replica last saw them.
type GroupList struct {
	// Names is sorted, shared by every caller: read it, do not change it.
	Names []string
	// Rev is the revision (the groups directory's pzxid) of the listing:
	// it moves whenever a group is created, and only then (0 before the
	// first group).
	Rev int64
}

// index is this replica's list of groups: one child watch on the groups
// directory, loaded by the first GroupNames and kept until Close.
type index struct {
	start  sync.Once
	loaded chan struct{} // closed after the first listing, or when the registry closes

	mu   sync.Mutex
	list GroupList
	ok   bool // list holds a listing
}

// GroupNames returns the names of the groups that exist: every group a
// Register ever wrote to (a group's directories are never removed, so a
// group whose members all left is still listed; Lookup says it is
// empty). The first call lists the groups directory and starts following
// it with one child watch, which fires only when a group is created;
// every later call answers from memory, with no ZooKeeper operation. It
// can lag ZooKeeper by the time a watch notification takes, and keeps
// the last listing while ZooKeeper is away. When ctx ends before the
// first listing, GroupNames returns ctx's error at once; the listing goes
// on for the next caller.
func (r *Registry) GroupNames(ctx context.Context) (GroupList, error) {
	r.idx.start.Do(func() {
		r.idx.loaded = make(chan struct{})
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.closed {
			close(r.idx.loaded)
			return
		}
		r.wg.Add(1)
		go r.followGroups()
	})
	select {
	case <-r.idx.loaded:
	case <-ctx.Done():
		return GroupList{}, ctx.Err()
	}
	r.idx.mu.Lock()
	defer r.idx.mu.Unlock()
	if !r.idx.ok {
		return GroupList{}, ErrClosed
	}
	return r.idx.list, nil
}

// followGroups keeps the index current until the registry closes: it lists
// the groups directory with a child watch and lists it again each time the
// watch fires. Before the first Register the directory may not exist: an
// exists watch waits for it.
func (r *Registry) followGroups() {
	defer r.wg.Done()
	ctx := r.ctx
	first := true
	defer func() {
		if first {
			close(r.idx.loaded)
		}
	}()
	var backoff zkx.Backoff
	for {
		names, st, ch, err := r.sess.ChildrenW(ctx, r.lay.Groups())
		if errors.Is(err, zk.ErrNoNode) {
			var ok bool
			ok, st, ch, err = r.sess.ExistsW(ctx, r.lay.Groups())
			if err == nil && ok {
				continue // created meanwhile: list it
			}
			names, st = nil, &zk.Stat{}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !zkx.Unknown(err) {
				r.log.Warn("registry: list groups failed", "err", err)
			}
			if !backoff.Wait(ctx) {
				return
			}
			continue
		}
		backoff.Reset()
		slices.Sort(names)
		r.idx.mu.Lock()
		r.idx.list, r.idx.ok = GroupList{Names: names, Rev: st.Pzxid}, true
		r.idx.mu.Unlock()
		if first {
			first = false
			close(r.idx.loaded)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}
