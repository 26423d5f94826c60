package semaphore

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Release gives up the slot that leaseID holds in semaphore name, deleting
// its znode: a permit it held goes to the first waiter at once, and its
// Acquire (on this gateway) ends with Released. It reports whether the
// slot held a permit (as of the listing just before the delete, or as its
// Acquire here saw it: a slot that holds, holds until its znode goes) and
// a revision at or after the delete (0 when it could not be read after
// it).
// ErrNotAcquired when the lease has no slot there.
//
// When ctx ends first, Release returns ctx's error at once. If the delete
// was sent, its outcome is unknown: it may still take effect, and the
// Acquire then reports Released; repeating Release settles it
// (ErrNotAcquired once the slot is gone).
func (s *Semaphores) Release(ctx context.Context, name, leaseID string) (wasHolder bool, rev int64, err error) {
	return s.release(ctx, name, leaseID, "")
}

// release is Release of the lease's slot named slot ("": whichever it
// is). A slot that an Acquire here has seen hold a permit is deleted
// without a listing; if it, or its lease, is gone meanwhile, the listing
// decides, as for any other slot (it may find another slot of the lease).
func (s *Semaphores) release(ctx context.Context, name, leaseID, slot string) (wasHolder bool, rev int64, err error) {
	key := lease.KeyOf(leaseID)
	if h := s.holderHere(name, key); h != nil && (slot == "" || slot == h.name) {
		r, err := s.remove(ctx, name, leaseID, h.path)
		if !errors.Is(err, ErrNotAcquired) && !errors.Is(err, lease.ErrNotFound) {
			return err == nil, r, err
		}
	}
	s.mu.Lock()
	n, known := s.permits[name]
	s.mu.Unlock()
	if !known {
		var err error
		n, _, err = s.permitsOf(ctx, name)
		if errors.Is(err, zk.ErrNoNode) {
			return false, 0, fmt.Errorf("%w: %s", ErrNotAcquired, name)
		} else if err != nil {
			return false, 0, fmt.Errorf("semaphore: release %s: %w", name, err)
		}
	}
	slots, _, err := s.list(ctx, name)
	if errors.Is(err, zk.ErrNoNode) {
		return false, 0, fmt.Errorf("%w: %s", ErrNotAcquired, name)
	} else if err != nil {
		return false, 0, fmt.Errorf("semaphore: release %s: %w", name, err)
	}
	i := find(slots, key)
	if i < 0 || (slot != "" && slots[i].name != slot) {
		return false, 0, fmt.Errorf("%w: %s", ErrNotAcquired, name)
	}
	if rev, err = s.remove(ctx, name, leaseID, s.lay.Slot(name, slots[i].name)); err != nil {
		return false, 0, err
	}
	return i < n, rev, nil
}

// remove deletes the lease's slot at p with the lease's ref, and returns
// the revision after it; ErrNotAcquired when p is gone.
func (s *Semaphores) remove(ctx context.Context, name, leaseID, p string) (rev int64, err error) {
	// Note the release before the delete: the acquire may see the znode
	// go before Detach returns.
	s.released.Add(p)
	if s.beforeRelease != nil {
		s.beforeRelease()
	}
	_, err = s.leases.Detach(ctx, leaseID, lease.Ref(RefKind, name), &zk.DeleteRequest{Path: p, Version: -1})
	switch {
	case err == nil:
	case zkx.Unknown(err): // the delete may have happened, or yet happen: keep the note
		return 0, fmt.Errorf("semaphore: release %s: %w", name, err)
	case errors.Is(err, zk.ErrNoNode): // gone meanwhile (its lease ended)
		s.released.Forget(p)
		return 0, fmt.Errorf("%w: %s", ErrNotAcquired, name)
	default:
		s.released.Forget(p)
		return 0, fmt.Errorf("semaphore: release %s: %w", name, err)
	}
	// A read after our own write sees it: the pzxid is at or after the delete.
	if _, stat, err := s.sess.Exists(ctx, s.lay.Semaphore(name)); err == nil {
		rev = stat.Pzxid
	}
	return rev, nil
}

// releaseOps removes the slots of a lease that ends (lease.ReleaseFunc;
// parts are [semaphore]). The acquires following them see the deletes
// through their feed and report Lost.
func (s *Semaphores) releaseOps(ctx context.Context, leaseKey string, parts []string) ([]any, error) {
	if len(parts) != 1 {
		return nil, nil
	}
	kids, _, err := s.sess.Children(ctx, s.lay.Semaphore(parts[0]))
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var ops []any
	for _, k := range kids {
		if ownedBy(k, leaseKey) {
			ops = append(ops, &zk.DeleteRequest{Path: s.lay.Slot(parts[0], k), Version: -1})
		}
	}
	return ops, nil
}

// Abandon gives up slot, the slot that leaseID holds in semaphore name
// (slot "": whichever it is, for an Acquire that never reported its
// slot), without waiting: Release runs in a goroutine s owns, retried
// while ZooKeeper is unreachable, until it is done or s closes (the slot
// then goes with its lease). It runs with ctx's values (the caller, whom
// the lease manager authorizes), not its cancellation. An Acquire of the
// same lease and semaphore on s waits until it is over, so that it queues
// again rather than resume the slot being given up; naming the slot keeps
// Abandon from giving up a slot that an Acquire made after the abandoned
// one had ended. The gRPC server abandons the slot of a client's lease
// when its Acquire stream ends.
func (s *Semaphores) Abandon(ctx context.Context, name, leaseID, slot string) {
	id := placeID(name, lease.KeyOf(leaseID))
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.leaving[id]; ok || s.closed {
		return // already leaving; or closed: it goes with its lease
	}
	done := make(chan struct{})
	s.leaving[id] = done
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(s.ctx, cancel)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			stop()
			cancel()
			s.mu.Lock()
			delete(s.leaving, id)
			s.mu.Unlock()
			close(done)
		}()
		var backoff zkx.Backoff
		for {
			_, _, err := s.release(bg, name, leaseID, slot)
			switch {
			case err == nil, errors.Is(err, ErrNotAcquired), errors.Is(err, lease.ErrNotFound), bg.Err() != nil:
				return
			case !zkx.Transient(err) && !errors.Is(err, lease.ErrUnreachable):
				s.log.Warn("semaphore: giving a slot up failed; it goes with its lease", "semaphore", name, "err", err)
				return
			}
			if !backoff.Wait(bg) {
				return
			}
		}
	}()
}

// left waits until an Abandon of the lease's slot in semaphore name, still
// going on, is over, or ctx ends.
func (s *Semaphores) left(ctx context.Context, name, leaseID string) error {
	s.mu.Lock()
	done := s.leaving[placeID(name, lease.KeyOf(leaseID))]
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
