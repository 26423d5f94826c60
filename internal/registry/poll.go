package registry

import (
	"context"
	"time"
)

// Poll is Lookup as a blocking query (a long-poll): it answers once the
// group has changed after revision after, or when until is closed (the
// wait is over, or the gateway is stopping), with the group as it is then
// (with linearizable set, after a catch-up, as Lookup). The answer comes
// at once when after is 0, or when the group changed after it already.
//
// An after ahead of this gateway's cache (the caller saw it through
// another gateway) makes the cache catch up with ZooKeeper once; if it is
// still ahead, the answer comes at once, at a lower revision, and the
// caller starts again from it.
//
// Only a change of members ends the wait early: a revision that moves
// without one (a trim of the journal) does not. Waiting costs no ZooKeeper
// operation and adds no watch: every Poll of a group follows the group's
// cache, and one change wakes them all. A waiting Poll keeps the cache from
// eviction. Cancelling ctx ends the wait with ctx's error.
func (r *Registry) Poll(ctx context.Context, name, id string, linearizable bool, after int64, until <-chan struct{}) (View, error) {
	g, err := r.group(ctx, name)
	if err != nil {
		return View{}, err
	}
	if after > 0 {
		if err := g.await(ctx, after, until); err != nil {
			return View{}, err
		}
	}
	return g.lookup(ctx, id, linearizable)
}

// await waits until the cache holds a change after revision after, until
// is closed, or the cache stops (its error). An after ahead of the cache
// gets one catch-up, and no wait if it is still ahead.
func (g *group) await(ctx context.Context, after int64, until <-chan struct{}) error {
	g.mu.Lock()
	ahead := after > g.rev
	g.mu.Unlock()
	if ahead {
		if err := g.catchUp(ctx); err != nil {
			return err
		}
		g.mu.Lock()
		ahead = after > g.rev
		g.mu.Unlock()
		if ahead {
			return nil // another history (another ensemble?): the caller resets
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waiters++
	defer func() {
		g.waiters--
		g.lastUsed = time.Now()
	}()
	for g.changed <= after && g.err == nil {
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-until:
			g.mu.Lock()
			return nil
		case <-ctx.Done():
			g.mu.Lock()
			return ctx.Err()
		}
		g.mu.Lock()
	}
	return g.err
}

// wakeLocked wakes the blocking queries of g: its changed revision moved,
// or it stopped.
func (g *group) wakeLocked() {
	close(g.wake)
	g.wake = make(chan struct{})
}
