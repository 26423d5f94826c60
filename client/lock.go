package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

type lockStream = grpc.ServerStreamingClient[zkcoordv1.AcquireLockResponse]

// LockOption configures Lock and TryLock.
type LockOption func(*lockOptions)

type lockOptions struct {
	mode      zkcoordv1.LockMode
	reentrant bool
	onQueued  func(position int)
}

// Shared takes the lock shared (the read lock of a read/write lock):
// shared holders hold it together, an exclusive one (the default) alone.
func Shared() LockOption {
	return func(o *lockOptions) { o.mode = zkcoordv1.LockMode_LOCK_MODE_SHARED }
}

// Reentrant lets the session take a lock it already holds (or waits for)
// again: the gateway counts the holds, and each Lock's Unlock releases
// its own. Without it, a second Lock of the same lock by one session fails
// with ErrAlreadyExists.
func Reentrant() LockOption { return func(o *lockOptions) { o.reentrant = true } }

// WithOnLockQueued calls fn each time the gateway reports Lock's place in
// the queue: how many acquirers ahead block it. fn runs on the goroutine
// that called Lock.
func WithOnLockQueued(fn func(position int)) LockOption {
	return func(o *lockOptions) { o.onQueued = fn }
}

// Lock is a hold of a distributed lock by a session's lease. Its Context
// ends when the hold does; act on the lock only while it lasts, and present
// Token (or Sequencer) to resources that fence.
type Lock struct {
	term      // the hold's context and jeopardy (State)
	s         *Session
	req       *zkcoordv1.AcquireLockRequest  // the hold, to reopen its stream
	held      *zkcoordv1.AcquireLockResponse // the message that said HELD
	unlocking atomic.Bool                    // Unlock is releasing the hold
	counted   sync.Once                      // uncounts the Lock from s.locks
}

// lockCounts counts a session's Lock and TryLock calls under way and the
// holds they made that have not ended, by lock: a TryLock whose outcome
// is unknown releases what the session's lease holds on the lock only
// when nothing else of the session may be holding it.
type lockCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *lockCounts) add(name string, d int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name] += d
	n := c.n[name]
	if n == 0 {
		delete(c.n, name)
	}
	return n
}

// finish ends the hold with cause (the first cause stays) and uncounts it.
func (l *Lock) finish(cause error) {
	l.end(cause)
	l.counted.Do(func() { l.s.locks.add(l.Name(), -1) })
}

// Lock acquires lock name for the session's lease and blocks until it is
// held. WithOnLockQueued reports its place in the queue meanwhile;
// cancelling ctx before then gives the place up. It fails with
// ErrAlreadyExists when the session holds the lock already (see
// Reentrant), ErrLockLost when the hold ends before it is held (its lease
// ended), ErrLeaseLost when the session's lease is gone.
//
// The hold belongs to a stream the Lock keeps open. A broken stream ends
// the hold with ErrLockLost at once (the gateway released it when the
// stream ended, and the lock may be another's already), unless the
// gateway said it drains (JEOPARDY without a deadline): then the hold is
// in jeopardy until the lease's end, and the stream is reopened elsewhere
// to resume it; when it cannot, the hold ends with ErrLockLost.
func (s *Session) Lock(ctx context.Context, name string, opts ...LockOption) (*Lock, error) {
	o := newLockOptions(opts)
	s.locks.add(name, 1) // until the Lock finishes
	l := s.newLock(&zkcoordv1.AcquireLockRequest{Lock: name, Mode: o.mode, LeaseId: s.Lease(), Reentrant: o.reentrant})
	stop := context.AfterFunc(ctx, func() { l.cancel(context.Cause(ctx)) })
	var stream lockStream
	err := s.c.retry(l.ctx, "lock "+name, func(b *backoff) error {
		var err error
		if stream, err = l.open(); err != nil {
			return err
		}
		for {
			msg, err := stream.Recv()
			if err != nil {
				return callErr(l.ctx, err, ErrLeaseLost)
			}
			b.reset()
			resumed := l.req.GetResume() != ""
			l.req.Resume, l.req.Reentrant = msg.GetHold(), false // a broken stream resumes its hold
			switch msg.GetStatus() {
			case zkcoordv1.AcquireLockResponse_STATUS_QUEUED:
				if o.onQueued != nil {
					o.onQueued(int(msg.GetPosition()))
				}
			case zkcoordv1.AcquireLockResponse_STATUS_HELD:
				l.held = msg
				return nil
			case zkcoordv1.AcquireLockResponse_STATUS_LOST:
				if resumed && msg.GetFencingToken() == 0 {
					// The broken stream's end gave its place up: queue again.
					l.req.Resume, l.req.Reentrant = "", o.reentrant
					return errStreamEnded
				}
				return ErrLockLost
			case zkcoordv1.AcquireLockResponse_STATUS_RELEASED:
				return ErrReleased
			}
		}
	})
	if err == nil && !stop() {
		err = context.Cause(ctx) // ctx ended as the hold began
	}
	stop()
	return l.start(stream, err)
}

// TryLock takes lock name for the session's lease if it is free now, and
// never waits: it fails with ErrLocked when the lock is held (or, shared,
// waited for by an exclusive acquirer), and takes nothing then. Otherwise
// the hold is followed as Lock's is. A call that fails with an unknown
// outcome (the gateway unreachable, ctx's deadline) may have taken the
// lock: it then releases what the lease holds there, unless another Lock
// of the session holds (or is taking) it.
func (s *Session) TryLock(ctx context.Context, name string, opts ...LockOption) (*Lock, error) {
	o := newLockOptions(opts)
	lease := s.Lease()
	s.locks.add(name, 1) // until the Lock finishes, or the try fails
	r, err := s.c.rpc.lock.TryAcquireLock(ctx, &zkcoordv1.TryAcquireLockRequest{Lock: name, Mode: o.mode, LeaseId: lease, Reentrant: o.reentrant})
	if err = callErr(ctx, err, ErrLeaseLost); err != nil {
		if s.locks.add(name, -1) == 0 && (IsTransient(err) || errors.Is(err, context.DeadlineExceeded)) {
			// It may have taken the lock, and nothing else of the
			// session holds it: whatever the lease holds there is this
			// call's.
			s.releaseAll(name, lease)
		}
		if errors.Is(err, ErrLeaseLost) {
			s.pokeKeepAlive()
		}
		return nil, fmt.Errorf("lock: try %s: %w", name, err)
	}
	if !r.GetAcquired() {
		s.locks.add(name, -1)
		return nil, fmt.Errorf("lock: try %s: %w (%d holders)", name, ErrLocked, len(r.GetHolders()))
	}
	l := s.newLock(&zkcoordv1.AcquireLockRequest{Lock: name, Mode: o.mode, LeaseId: lease, Resume: r.GetHold()})
	var stream lockStream
	err = s.c.retry(l.ctx, "lock "+name, func(*backoff) error {
		var err error
		if stream, err = l.open(); err != nil {
			return err
		}
		msg, err := stream.Recv()
		if err != nil {
			return callErr(l.ctx, err, ErrLeaseLost)
		}
		if msg.GetStatus() != zkcoordv1.AcquireLockResponse_STATUS_HELD {
			return ErrLockLost
		}
		l.held = msg
		return nil
	})
	return l.start(stream, err) // a hold no stream took over is released there
}

func newLockOptions(opts []LockOption) lockOptions {
	var o lockOptions
	for _, fn := range opts {
		fn(&o)
	}
	return o
}

func (s *Session) newLock(req *zkcoordv1.AcquireLockRequest) *Lock {
	l := &Lock{s: s, req: req}
	// The hold's context outlives the call: it ends with the hold.
	l.init(s.ctx)
	return l
}

// start follows a hold that began on stream (err nil), or ends it with err
// and gives the hold up. Closing the stream is not enough: a gateway that
// drains keeps the hold of every stream that ends meanwhile, the one its
// client has just closed included, and its lease is the session's, which
// lives on: the place would wait in the queue, then hold the lock, for
// nobody.
func (l *Lock) start(stream lockStream, err error) (*Lock, error) {
	if err == nil && !l.s.grp.start(func() { l.run(stream) }) {
		err = ErrSessionClosed
	}
	if err != nil {
		l.finish(err) // the stream closes: the gateway releases what it held, unless it drains
		if hold := l.req.GetResume(); hold != "" && mayHold(err) {
			l.s.release(l.Name(), l.req.GetLeaseId(), hold)
		}
		if errors.Is(err, ErrLeaseLost) {
			l.s.pokeKeepAlive()
		}
		return nil, fmt.Errorf("lock: %s: %w", l.req.GetLock(), err)
	}
	return l, nil
}

// Context returns a context that ends when the hold does. Its cause says
// why: ErrReleased (Unlock), ErrLockLost (the lease or the hold ended, or
// the hold could not be confirmed after the stream broke), ErrJeopardy,
// ErrSessionClosed or ErrClosed.
func (l *Lock) Context() context.Context { return l.ctx }

// Token returns the hold's fencing token: it strictly increases over the
// successive holders of the lock.
func (l *Lock) Token() int64 { return l.held.GetFencingToken() }

// Name returns the lock's name.
func (l *Lock) Name() string { return l.req.GetLock() }

// Holds returns how many holds the session's lease had on the lock when
// this one began (more than one with Reentrant).
func (l *Lock) Holds() int { return int(l.held.GetHolds()) }

// Sequencer returns the hold's sequencer, for a resource that checks it
// (CheckSequencer, Fence).
func (l *Lock) Sequencer() Sequencer {
	return Sequencer{Lock: l.Name(), Token: l.Token(), Shared: l.req.GetMode() == zkcoordv1.LockMode_LOCK_MODE_SHARED}
}

// Unlock releases the hold: the next waiters get the lock, and the hold's
// context ends with ErrReleased. It returns when the gateway has released
// it. It fails with ErrLockLost when the hold had already ended otherwise.
// The hold ends even if the call fails (cancelling ctx abandons it, say):
// its stream closes, and the session gives the hold up in the background.
func (l *Lock) Unlock(ctx context.Context) error {
	if l.ctx.Err() != nil {
		if cause := context.Cause(l.ctx); !errors.Is(cause, ErrReleased) {
			return fmt.Errorf("lock: unlock %s: %w: %w", l.Name(), ErrLockLost, cause)
		}
		return nil
	}
	l.unlocking.Store(true)
	ctx, release := bind(ctx, l.s.ctx)
	defer release()
	err := l.s.c.retry(ctx, "unlock "+l.Name(), func(*backoff) error {
		_, err := l.s.c.rpc.lock.ReleaseLock(ctx, &zkcoordv1.ReleaseLockRequest{Lock: l.Name(), LeaseId: l.req.GetLeaseId(), Hold: l.held.GetHold()})
		return callErr(ctx, err, ErrLockLost)
	})
	l.finish(ErrReleased)
	if err != nil && mayHold(err) {
		// The stream's end releases the hold, unless its gateway drains:
		// give it up in the background, as a failed Lock does.
		l.s.grp.start(func() { l.s.release(l.Name(), l.req.GetLeaseId(), l.held.GetHold()) })
	}
	if err != nil {
		return fmt.Errorf("lock: unlock %s: %w", l.Name(), err)
	}
	return nil
}

// open opens the hold's stream.
func (l *Lock) open() (lockStream, error) {
	stream, err := l.s.c.rpc.lock.AcquireLock(l.ctx, l.req)
	return stream, callErr(l.ctx, err, ErrLeaseLost)
}

// run follows the hold on its stream until it ends.
func (l *Lock) run(stream lockStream) {
	draining := false
	for {
		msg, err := stream.Recv()
		if err != nil {
			err = callErr(l.ctx, err, ErrLeaseLost)
			if !draining || l.ctx.Err() != nil || !IsTransient(err) {
				// The stream's end released the hold (the gateway keeps it
				// only when it said it drains): another may hold the lock
				// from now on.
				l.finish(fmt.Errorf("%w: %w", ErrLockLost, err))
				return
			}
			// A drain: the gateway handed the hold off with the lease, no
			// longer than the lease: in jeopardy until then.
			l.jeopardy(l.s.expires())
			if stream = l.reopen(); stream == nil {
				return
			}
			draining = false
			continue
		}
		switch msg.GetStatus() {
		case zkcoordv1.AcquireLockResponse_STATUS_HELD:
			l.jeopardy(time.Time{})
		case zkcoordv1.AcquireLockResponse_STATUS_JEOPARDY:
			deadline := l.s.expires() // a drain: the hold lasts as long as the lease
			if msg.GetJeopardyDeadline() != nil {
				deadline = msg.GetJeopardyDeadline().AsTime()
			} else {
				draining = true
			}
			l.jeopardy(deadline)
		case zkcoordv1.AcquireLockResponse_STATUS_RELEASED:
			if l.unlocking.Load() {
				l.finish(ErrReleased)
			} else { // released by another call (a stream of the hold that ended)
				l.finish(fmt.Errorf("%w: released elsewhere", ErrLockLost))
			}
			return
		default: // LOST (QUEUED cannot follow HELD)
			if l.unlocking.Load() {
				// Unlock's release, done through another gateway: this one
				// did not release the hold itself, and says LOST.
				l.finish(ErrReleased)
			} else {
				l.finish(ErrLockLost)
			}
			return
		}
	}
}

// reopen reopens the stream, resuming the hold, until it yields a first
// message; it returns the stream if the hold went on, else ends the hold
// and returns nil.
func (l *Lock) reopen() lockStream {
	var stream lockStream
	var first *zkcoordv1.AcquireLockResponse
	err := l.s.c.retry(l.ctx, "lock "+l.Name(), func(*backoff) error {
		var err error
		if stream, err = l.open(); err != nil {
			return err
		}
		first, err = stream.Recv()
		return callErr(l.ctx, err, ErrLeaseLost)
	})
	switch {
	case err != nil:
		l.finish(fmt.Errorf("%w: %w", ErrLockLost, err))
	case first.GetStatus() == zkcoordv1.AcquireLockResponse_STATUS_HELD && first.GetFencingToken() == l.Token():
		l.jeopardy(time.Time{})
		return stream
	default:
		l.finish(fmt.Errorf("%w: the hold did not resume", ErrLockLost))
	}
	return nil
}
