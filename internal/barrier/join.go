package barrier

import (
	"context"
	"errors"

	"github.com/go-zookeeper/zk"
)

// State is a barrier as ZooKeeper had it at revision Rev: how many
// participants are in it, its threshold (0 when the barrier has no znode:
// never joined, or removed by its last participant) and whether it has
// released.
type State struct {
	Arrived   int
	Threshold int
	Released  bool
	Rev       int64
}

// Join joins barrier name as participant (owned by leaseID) without
// waiting, for callers that cannot hold a stream (JoinBarrier): the
// participation stays until Leave or the end of its lease. When the
// arrival completes the count, Join releases the barrier. It returns the
// barrier's state after the join. Repeating it with the same lease and
// participant is idempotent (and releases a full barrier that an earlier
// attempt left unreleased); a participant id held by another lease is
// ErrParticipantExists, another threshold ErrThresholdMismatch.
//
// When ctx ends first, Join returns ctx's error at once and the outcome is
// unknown: the participation may exist (repeat the Join to settle it). A
// release already due goes on in the background, so that a full barrier
// is released even when its last participant stopped waiting for the
// answer.
func (b *Barriers) Join(ctx context.Context, name string, threshold int, participant, leaseID string) (State, error) {
	if err := b.left(ctx, name, participant); err != nil {
		return State{}, err
	}
	if _, err := b.join(ctx, name, threshold, participant, leaseID); err != nil {
		return State{}, err
	}
	return b.settle(ctx, name, threshold)
}

// settle reads the barrier and releases it (creates its ready znode) when
// threshold participants are in it, in a goroutine b owns: the caller
// gets ctx's error if ctx ends first, and the release goes on until it is
// done or b closes.
func (b *Barriers) settle(ctx context.Context, name string, threshold int) (State, error) {
	type result struct {
		s   State
		err error
	}
	ch := make(chan result, 1)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return State{}, ErrClosed
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(b.ctx, cancel)
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		defer cancel()
		defer stop()
		s, err := b.Get(bg, name)
		if err == nil && !s.Released && s.Arrived >= threshold {
			_, err = b.sess.Create(bg, b.lay.Ready(name), nil, 0)
			if err == nil || errors.Is(err, zk.ErrNodeExists) || errors.Is(err, zk.ErrNoNode) {
				s, err = b.Get(bg, name)
			}
		}
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		return State{}, ctx.Err()
	}
}
