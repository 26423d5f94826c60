package lock

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Status is an acquirer's state, as Acquire reports it. The values match
// zkcoord.v1.AcquireLockResponse.Status.
type Status int

// The states of a hold.
const (
	// Queued: waiting; Position says how many nodes ahead block it.
	Queued Status = iota + 1
	// Held: holding the lock; Token identifies the hold. Sent again after
	// a Jeopardy when the hold went on.
	Held
	// Jeopardy: the gateway lost ZooKeeper while holding; the hold goes
	// on but may end at Deadline.
	Jeopardy
	// Lost: the hold ended without a release (its lease ended, or its
	// node was removed). Acquire returns after it.
	Lost
	// Released: Release removed the hold. Acquire returns after it.
	Released
)

func (s Status) String() string {
	if s < Queued || s > Released {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return [...]string{"queued", "held", "jeopardy", "lost", "released"}[s-1]
}

// Request is an acquire of a lock by a lease.
type Request struct {
	Lock    string
	Mode    Mode // Exclusive when zero
	LeaseID string
	// Reentrant adds a hold to the lease's node when the lease already has
	// one in the lock, instead of failing with ErrAlreadyHeld.
	Reentrant bool
	// Resume follows this hold of the lease instead of acquiring one (for
	// Acquire only): Lost at once when it is gone.
	Resume string
}

func (r Request) mode() Mode {
	if r.Mode == Shared {
		return Shared
	}
	return Exclusive
}

// Update is a change of a hold's state.
type Update struct {
	Status Status
	// Node is the lease's node in the lock, <m>_<lease key>_<sequence>.
	Node string
	Hold string
	Mode Mode
	// Position, when Queued, is how many nodes ahead block it as of the
	// last change of the node it watches: an upper bound.
	Position int
	// Token is the hold's fencing token when Held or Jeopardy, and when
	// Lost or Released if the hold was held.
	Token int64
	// Holds is how many holds the lease has on the lock, as last read.
	Holds int
	// Deadline, when Jeopardy, is when the hold may end.
	Deadline time.Time
}

// errGone: the hold to resume is not there.
var errGone = errors.New("lock: hold gone")

// refusal reports whether err is an acquire's refusal, which names its lock.
func refusal(err error) bool {
	return errors.Is(err, ErrAlreadyHeld) || errors.Is(err, ErrModeMismatch) || errors.Is(err, ErrTooManyHolds) || errors.Is(err, errGone)
}

// Acquire acquires lock req.Lock for lease req.LeaseID and reports the
// hold's state to report: Queued, then Held; Jeopardy and Held again while
// the gateway loses and regains ZooKeeper during the hold. It stays
// running while the lock is held, and returns after reporting Released
// (Release removed the hold) or Lost (its lease ended, or its node was
// removed otherwise). An error from report ends Acquire with that error.
// It returns the hold's ID in every case, so that the caller can release
// it.
//
// A lease has one node per lock. When it has one already, Acquire adds a
// hold to it if req.Reentrant (it is held when that node is), fails with
// ErrAlreadyHeld otherwise, and with ErrModeMismatch when the node is of
// the other mode. With req.Resume it follows that hold instead (Lost at
// once if it is gone).
//
// Cancelling ctx ends Acquire with ctx's error but does not release the
// hold: Release does, or the lease's end (the gRPC server releases a
// stream's hold when the stream ends). If ctx ends while Acquire writes
// (ZooKeeper slow), whether the hold was added is unknown: a Release of
// the hold that follows on the same session settles it. Acquire ends
// with ErrClosed when l is closed.
func (l *Locks) Acquire(ctx context.Context, req Request, report func(Update) error) (hold string, err error) {
	hold = req.Resume
	if hold == "" {
		hold = newHold()
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)()
	report, done := l.counted(report)
	defer done()
	err = l.acquire(cctx, req, hold, report)
	if err != nil && ctx.Err() == nil && l.ctx.Err() != nil {
		return hold, ErrClosed
	}
	return hold, err
}

func (l *Locks) acquire(ctx context.Context, req Request, hold string, report func(Update) error) error {
	// Listen before entering, so a wake-up about this hold is never
	// missed between the two.
	wake, stop := l.wakers.Listen(req.Lock + "/" + lease.KeyOf(req.LeaseID))
	defer stop()
	f, err := l.enter(ctx, req, hold)
	if errors.Is(err, errGone) {
		return report(Update{Status: Lost, Hold: hold, Mode: req.mode()})
	} else if err != nil {
		return err
	}
	l.log.Debug("lock: acquire", "lock", req.Lock, "node", f.node, "hold", hold)
	return f.run(ctx, wake, report)
}

// enter adds hold to the lease's node in the lock, creating the node if
// the lease has none, and returns the follower of the hold.
func (l *Locks) enter(ctx context.Context, req Request, hold string) (*follower, error) {
	var backoff zkx.Backoff
	for conflicts := 0; ; {
		f, err := l.enterOnce(ctx, req, hold, conflicts > 0)
		switch {
		case err == nil:
			return f, nil
		case errors.Is(err, ErrConflict) && conflicts < 5:
			conflicts++
		case refusal(err):
			return nil, err // it names the lock
		case !zkx.Transient(err): // a context error too: the outcome of a write is unknown then
			return nil, fmt.Errorf("lock: acquire %s: %w", req.Lock, err)
		}
		if !backoff.Wait(ctx) {
			return nil, ctx.Err()
		}
	}
}

// enterOnce is one attempt of enter. The lease's ref to its node doubles as
// a lock: a second create for the same lease and lock fails with
// ErrNodeExists. retry says an attempt failed before: it removes a ref
// that outlived its node.
func (l *Locks) enterOnce(ctx context.Context, req Request, hold string, retry bool) (*follower, error) {
	dir := l.lay.Lock(req.Lock)
	key := lease.KeyOf(req.LeaseID)
	f := &follower{l: l, lock: req.Lock, hold: hold, mode: req.mode()}
	owns, known := l.leases.Owns(req.LeaseID, lease.Ref(RefKind, req.Lock))
	if known && !owns && req.Resume == "" && !retry {
		// The lease (granted here) has no node in the lock: create one at
		// once. The ref created with it checks that in ZooKeeper; a lock
		// directory not there yet fails it too, and the retry lists.
		return f, l.create(ctx, req, key, hold, false, f)
	}
	q, _, err := l.list(ctx, req.Lock)
	if errors.Is(err, zk.ErrNoNode) {
		if req.Resume != "" {
			return nil, errGone // a lock never used has no hold to resume: create nothing
		}
		if err := l.sess.EnsurePath(ctx, dir); err != nil {
			return nil, err
		}
		q, _, err = l.list(ctx, req.Lock)
	}
	if err != nil {
		return nil, err
	}
	if i := q.find(key); i >= 0 {
		f.node = q[i].name
		f.path = dir + "/" + f.node
		rec, stat, err := l.addHold(ctx, req, q[i], f.path, hold)
		if err != nil {
			return nil, err
		}
		f.token, f.holds = stat.Czxid, len(rec.Holds)
		return f, nil
	}
	if req.Resume != "" {
		return nil, errGone
	}
	return f, l.create(ctx, req, key, hold, retry, f)
}

// addHold adds hold to the lease's node n (at p), as req allows, and
// returns the node's record and Stat after it. With req.Resume it only
// checks that the hold is there.
func (l *Locks) addHold(ctx context.Context, req Request, n node, p, hold string) (record, *zk.Stat, error) {
	data, stat, err := l.sess.Get(ctx, p)
	if errors.Is(err, zk.ErrNoNode) {
		return record{}, nil, ErrConflict // ended meanwhile
	} else if err != nil {
		return record{}, nil, err
	}
	rec := decode(data)
	switch {
	case n.mode != req.mode():
		return record{}, nil, fmt.Errorf("%w: %s holds %s in %s mode", ErrModeMismatch, n.name, req.Lock, n.mode)
	case req.Resume != "":
		if !rec.has(hold) {
			return record{}, nil, errGone
		}
		return rec, stat, nil
	case !req.Reentrant:
		return record{}, nil, fmt.Errorf("%w: %s (holds: %d); acquire with reentrant to add one", ErrAlreadyHeld, req.Lock, len(rec.Holds))
	case len(rec.Holds) >= MaxHolds:
		return record{}, nil, fmt.Errorf("%w: %d on %s", ErrTooManyHolds, len(rec.Holds), req.Lock)
	}
	rec.Holds = append(rec.Holds, hold)
	res, err := l.leases.Attach(ctx, req.LeaseID, "", &zk.SetDataRequest{Path: p, Data: rec.encode(), Version: stat.Version})
	if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
		return record{}, nil, ErrConflict // changed or ended meanwhile
	} else if err != nil {
		return record{}, nil, err
	}
	if res[0].Stat != nil {
		stat = res[0].Stat
	}
	return rec, stat, nil
}

// create creates the lease's node in the lock with hold, in one
// transaction with the lease's ref to it, and fills f in (but its token).
func (l *Locks) create(ctx context.Context, req Request, key, hold string, dropRef bool, f *follower) error {
	dir := l.lay.Lock(req.Lock)
	ref := lease.Ref(RefKind, req.Lock)
	if dropRef {
		if _, err := l.leases.Detach(ctx, req.LeaseID, ref); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
	}
	rec := record{Holds: []string{hold}}
	res, err := l.leases.Attach(ctx, req.LeaseID, ref,
		&zk.CreateRequest{Path: dir + "/" + req.mode().prefix() + "_" + key + "_", Data: rec.encode(), Acl: l.sess.ACL(), Flags: zk.FlagSequence})
	if errors.Is(err, zk.ErrNodeExists) || errors.Is(err, zk.ErrNoNode) {
		return ErrConflict // created concurrently, or the directory went
	} else if err != nil {
		return err
	}
	f.node = path.Base(res[0].String)
	f.path = dir + "/" + f.node
	f.holds = 1 // its token is read when it holds the lock
	return nil
}
