package lock

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Release removes hold (the lease's most recent one when hold is "") from
// the lease's node in lock name, and the node with its last hold: the lock
// is released (or the lease leaves its queue) and the next waiters get it.
// The Acquire following the hold, on this gateway, ends with Released. It
// returns how many holds the lease still has on the lock and a revision at
// or after the release (0 when it could not be read after it).
// ErrNotHeld when the lease has no such hold there; the lease's holder
// only (lease.ErrNotHolder).
//
// When ctx ends first, Release returns ctx's error at once. If the write
// was sent, its outcome is unknown: it may still take effect, and the
// hold's Acquire then reports Released; repeating Release with the hold's
// ID settles it (ErrNotHeld once it is gone).
func (l *Locks) Release(ctx context.Context, name, leaseID, hold string) (holds int, rev int64, err error) {
	var backoff zkx.Backoff
	for conflicts := 0; ; {
		holds, rev, err = l.releaseOnce(ctx, name, leaseID, hold)
		switch {
		case err == nil:
			return holds, rev, nil
		case errors.Is(err, ErrConflict) && conflicts < 5:
			conflicts++
		default:
			return 0, 0, err
		}
		if !backoff.Wait(ctx) {
			return 0, 0, ctx.Err()
		}
	}
}

func (l *Locks) releaseOnce(ctx context.Context, name, leaseID, hold string) (int, int64, error) {
	key := lease.KeyOf(leaseID)
	dir := l.lay.Lock(name)
	notHeld := fmt.Errorf("%w: %s", ErrNotHeld, name)
	q, _, err := l.list(ctx, name)
	if errors.Is(err, zk.ErrNoNode) {
		return 0, 0, notHeld
	} else if err != nil {
		return 0, 0, fmt.Errorf("lock: list %s: %w", name, err)
	}
	i := q.find(key)
	if i < 0 {
		return 0, 0, notHeld
	}
	p := dir + "/" + q[i].name
	data, stat, err := l.sess.Get(ctx, p)
	if errors.Is(err, zk.ErrNoNode) {
		return 0, 0, notHeld
	} else if err != nil {
		return 0, 0, fmt.Errorf("lock: read %s: %w", p, err)
	}
	rec := decode(data)
	switch {
	case hold == "" && len(rec.Holds) > 0:
		hold = rec.Holds[len(rec.Holds)-1]
	case hold == "" || !rec.has(hold):
		return 0, 0, notHeld
	}
	rest := rec.without(hold)
	// Note the release before the write: the acquire may see the hold go
	// before the write returns.
	l.released.Add(p + "#" + hold)
	var res []zk.MultiResponse
	if len(rest.Holds) == 0 {
		res, err = l.leases.Detach(ctx, leaseID, lease.Ref(RefKind, name), &zk.DeleteRequest{Path: p, Version: stat.Version})
	} else {
		res, err = l.leases.Attach(ctx, leaseID, "", &zk.SetDataRequest{Path: p, Data: rest.encode(), Version: stat.Version})
	}
	switch {
	case err == nil:
	case zkx.Unknown(err): // the write may have happened, or yet happen: keep the note
		return 0, 0, fmt.Errorf("lock: release %s: %w", name, err)
	case errors.Is(err, zk.ErrBadVersion):
		l.released.Forget(p + "#" + hold)
		return 0, 0, ErrConflict // another hold came or went meanwhile
	case errors.Is(err, zk.ErrNoNode): // gone meanwhile (its lease ended)
		l.released.Forget(p + "#" + hold)
		return 0, 0, notHeld
	default:
		l.released.Forget(p + "#" + hold)
		return 0, 0, fmt.Errorf("lock: release %s: %w", name, err)
	}
	l.wakers.Wake(name + "/" + key)
	var rev int64
	if len(res) > 0 && res[0].Stat != nil {
		rev = res[0].Stat.Mzxid
	}
	// A read after our own write sees it: the pzxid is at or after a delete.
	if _, st, err := l.sess.Exists(ctx, dir); err == nil {
		rev = max(rev, st.Pzxid)
	}
	return len(rest.Holds), rev, nil
}
