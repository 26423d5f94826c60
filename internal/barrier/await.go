package barrier

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// wait is Await's wait once the participant has joined: it follows the
// barrier through the Awaits' feed (one child watch per barrier on this
// gateway, however many wait), reporting each new count, until the
// barrier releases, the participant is removed, or ctx ends.
//
// The feed may have been started before this participant joined, so the
// views it shows count only from the participant's creation on: a view at
// a revision before it may not show it yet. A view from then on that does
// not show it means it was removed (its lease ended, or a Leave raced).
func (b *Barriers) wait(ctx context.Context, name string, threshold int, participant, leaseID string, progress Progress) error {
	removed := fmt.Errorf("%w: participant %s/%s was removed", lease.ErrNotFound, name, participant)
	ok, st, err := b.sess.Exists(ctx, b.lay.Participant(name, participant))
	switch {
	case err != nil && ctx.Err() != nil:
		return b.giveUp(ctx, name, participant, leaseID)
	case err != nil:
		return fmt.Errorf("barrier: read participant: %w", err)
	case !ok:
		b.cleanup(ctx, name)
		return removed
	}
	joined := st.Czxid
	f, err := b.follow(feedKey{name: name, await: true})
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			b.unfollow(f)
		}
	}()
	last := -1
	for after := int64(-1); ; {
		v, err := f.await(ctx, nil, func(v view) bool { return v.gone() || (v.loaded && v.s.Rev >= joined && v.s.Rev > after) })
		switch {
		case ctx.Err() != nil:
			return b.giveUp(ctx, name, participant, leaseID)
		case err != nil:
			return err
		case v.gone() && v.s.Rev < joined:
			// A feed that saw the barrier gone before this participant
			// joined (it ended as this call came to it): follow a new one.
			b.unfollow(f)
			if f, err = b.follow(feedKey{name: name, await: true}); err != nil {
				return err // f is nil: nothing more to unfollow
			}
			continue
		case v.gone():
			return removed // the barrier went, and this participant with it
		}
		after = v.s.Rev
		n, ready := v.s.Arrived, v.s.Released
		if !v.has(participant) {
			// Removed under us: remove the barrier if nobody else is in it.
			b.cleanup(ctx, name)
			if !ready {
				return removed
			}
		}
		if n >= threshold && !ready {
			ready = b.release(ctx, f, v.czxid, name)
		}
		if ready {
			return progress(max(n, threshold), true)
		}
		if n != last {
			last = n
			if err := progress(n, false); err != nil {
				return err
			}
		}
	}
}

// release creates the ready znode of the barrier znode created at czxid,
// once for all the Awaits of f that see it full: the others wait for the
// first one's create, and see its outcome. A create that fails for want of
// ZooKeeper is retried (no later change might wake the waiters) until ctx
// ends. It reports whether the barrier is released. When ctx ends first,
// the create may still land: the others are released, and this
// participant, which gave up, leaves.
func (b *Barriers) release(ctx context.Context, f *feed, czxid int64, name string) bool {
	f.relMu.Lock()
	defer f.relMu.Unlock()
	if f.released == czxid {
		return true
	}
	err := zkx.Retry(ctx, func() error {
		_, err := b.sess.Create(ctx, b.lay.Ready(name), nil, 0)
		if errors.Is(err, zk.ErrNodeExists) {
			return nil
		}
		return err
	})
	if err != nil {
		return false // ctx ended, or the barrier went (its next view shows it)
	}
	f.released = czxid
	return true
}
