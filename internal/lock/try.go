package lock

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Result is what TryAcquire did.
type Result struct {
	// Acquired is true when the lease holds the lock now.
	Acquired bool
	// Node, Hold, Token and Holds describe the hold when Acquired.
	Node  string
	Hold  string
	Token int64
	Holds int
	// Holders are the lock's holders when not Acquired, as seen.
	Holders []Holder
}

// TryAcquire takes lock req.Lock for lease req.LeaseID if it is free for
// req.Mode now, and never waits. When the lock is not free it creates
// nothing, or removes the node it created when a concurrent acquirer got
// ahead of it, and names the holders. The hold belongs to the lease until
// Release or the lease's end.
//
// When the lease already has a node in the lock, TryAcquire adds a hold to
// it if req.Reentrant and that node holds the lock (a node still queued is
// not acquired), fails with ErrAlreadyHeld without req.Reentrant, and
// with ErrModeMismatch for the other mode.
//
// When ctx ends first, TryAcquire returns ctx's error at once; if it was
// writing, the outcome is unknown (a node it created and could not remove
// in time is removed in the background).
func (l *Locks) TryAcquire(ctx context.Context, req Request) (Result, error) {
	var backoff zkx.Backoff
	for conflicts := 0; ; {
		r, err := l.tryOnce(ctx, req, conflicts > 0)
		switch {
		case err == nil:
			l.counters.Tried(r.Acquired)
			return r, nil
		case errors.Is(err, ErrConflict) && conflicts < 5:
			conflicts++
		case refusal(err):
			return Result{}, err // it names the lock
		case !zkx.Transient(err):
			return Result{}, fmt.Errorf("lock: try %s: %w", req.Lock, err)
		}
		if !backoff.Wait(ctx) {
			return Result{}, ctx.Err()
		}
	}
}

func (l *Locks) tryOnce(ctx context.Context, req Request, dropRef bool) (Result, error) {
	dir := l.lay.Lock(req.Lock)
	key := lease.KeyOf(req.LeaseID)
	q, _, err := l.list(ctx, req.Lock)
	if errors.Is(err, zk.ErrNoNode) {
		if err := l.sess.EnsurePath(ctx, dir); err != nil {
			return Result{}, err
		}
		q, _, err = l.list(ctx, req.Lock)
	}
	if err != nil {
		return Result{}, err
	}
	hold := newHold()
	if i := q.find(key); i >= 0 {
		if q.blocker(i) >= 0 && q[i].mode == req.mode() && req.Reentrant {
			return l.notAcquired(ctx, req.Lock, q) // queued: TryAcquire never waits
		}
		p := dir + "/" + q[i].name
		rec, stat, err := l.addHold(ctx, req, q[i], p, hold)
		if err != nil {
			return Result{}, err
		}
		return Result{Acquired: true, Node: q[i].name, Hold: hold, Token: stat.Czxid, Holds: len(rec.Holds)}, nil
	}
	if !q.free(req.mode()) {
		return l.notAcquired(ctx, req.Lock, q)
	}
	if l.beforeCreate != nil {
		l.beforeCreate()
	}
	f := &follower{}
	if err := l.create(ctx, req, key, hold, dropRef, f); err != nil {
		return Result{}, err
	}
	// Another acquirer may have queued between the listing and the create.
	q, _, err = l.list(ctx, req.Lock)
	if err == nil {
		if i := q.index(f.node); i >= 0 && q.blocker(i) < 0 {
			_, stat, err := l.sess.Get(ctx, f.path)
			if errors.Is(err, zk.ErrNoNode) {
				return Result{}, ErrConflict // its lease ended meanwhile
			} else if err != nil {
				return Result{}, fmt.Errorf("lock: read %s: %w", f.path, err) // held, by the lease: Release settles it
			}
			return Result{Acquired: true, Node: f.node, Hold: hold, Token: stat.Czxid, Holds: 1}, nil
		}
		err = l.withdraw(ctx, req, f.path)
	}
	if err != nil {
		l.background(ctx, func(ctx context.Context) {
			if err := zkx.Retry(ctx, func() error { return l.withdraw(ctx, req, f.path) }); err != nil && ctx.Err() == nil {
				l.log.Warn("lock: could not remove the node of a TryAcquire that failed; it goes with its lease",
					"lock", req.Lock, "node", f.node, "err", err)
			}
		})
		return Result{}, err
	}
	return l.notAcquired(ctx, req.Lock, q)
}

// withdraw removes the node at p that a TryAcquire created and did not
// acquire, with the lease's ref to it.
func (l *Locks) withdraw(ctx context.Context, req Request, p string) error {
	_, err := l.leases.Detach(ctx, req.LeaseID, lease.Ref(RefKind, req.Lock), &zk.DeleteRequest{Path: p, Version: -1})
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	return err
}

// notAcquired is TryAcquire's answer when the lock is not free: who holds
// it.
func (l *Locks) notAcquired(ctx context.Context, name string, q queue) (Result, error) {
	h, err := l.holders(ctx, name, q)
	if err != nil {
		return Result{}, err
	}
	return Result{Holders: h}, nil
}
