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
	n, rev := len(start.Snapshot.Members), start.Snapshot.Rev
	for {
		if err := progress(n, rev, n >= min); err != nil || n >= min {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-sub.C():
			if !ok {
				return fmt.Errorf("registry: await %s: %w", group, sub.Err())
			}
			switch ev.Type {
			case Joined:
				n++
			case Left:
				n--
			}
			rev = ev.Rev
			// Drain what is already queued before reporting.
			for drained := false; !drained; {
				select {
				case ev, ok := <-sub.C():
					if !ok {
						return fmt.Errorf("registry: await %s: %w", group, sub.Err())
					}
					if ev.Type == Joined {
						n++
					} else if ev.Type == Left {
						n--
					}
					rev = ev.Rev
				default:
					drained = true
				}
			}
		}
	}
}
