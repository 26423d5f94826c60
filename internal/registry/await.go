package registry

import (
	"context"
	"fmt"
)

// AwaitCount waits until group has at least min members ("wait until there
// are enough resources"), reporting the count and revision to progress at
// the start and on every change. It returns nil once the count is reached;
// cancelling ctx ends the wait with ctx's error. It adds no watch of its
// own: it follows the group cache.
func (r *Registry) AwaitCount(ctx context.Context, group string, min int, progress func(n int, rev int64, ready bool) error) error {
	sub, start, err := r.Watch(ctx, group, 0)
	if err != nil {
		return err
	}
	defer sub.Close()
	n, rev := start.Snapshot.Len(), start.Snapshot.Rev
	for {
		if err := progress(n, rev, n >= min); err != nil || n >= min {
			return err
		}
		var evs []*Event
		for len(evs) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-sub.Ready():
			}
			if evs, err = sub.Take(); err != nil {
				return fmt.Errorf("registry: await %s: %w", group, err)
			}
		}
		for _, ev := range evs { // every queued change before reporting
			switch ev.Type {
			case Joined:
				n++
			case Left:
				n--
			}
			rev = ev.Rev
		}
	}
}
