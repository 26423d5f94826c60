package lease

import "context"

// opLock serializes one lease's ZooKeeper writes. Unlike a sync.Mutex, a
// wait for it honours the caller's context.
type opLock chan struct{}

func newOpLock() opLock { return make(opLock, 1) }

// lock takes the lock, or returns ctx's error if ctx ends first.
func (l opLock) lock(ctx context.Context) error {
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l opLock) unlock() { <-l }

// settle runs fn, a step whose outcome this replica must know (it changes
// who owns a lease or its record's version: a grant, an adoption, a moved
// horizon, a hand-off), to completion in a goroutine the Manager owns, and
// waits for it until ctx ends. A caller that gives up gets ctx's error at
// once while fn finishes, so the Manager's view of the lease never depends
// on a write whose outcome nobody read. fn's context keeps ctx's values
// (the Caller) and ends only when the Manager closes.
func settle[T any](m *Manager, ctx context.Context, fn func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(m.ctx, cancel)
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	if !m.background(func(context.Context) {
		defer cancel()
		defer stop()
		v, err := fn(bg)
		ch <- result{v, err}
	}) {
		stop()
		cancel()
		return zero, ErrClosed
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
