package client

import (
	"context"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// LeaderEvent is the leader of an election after a change.
type LeaderEvent struct {
	// Leader is the leader's term, nil when the election has no leader.
	Leader *zkcoordv1.LeaderInfo
	// Revision is the revision (zxid) of the change.
	Revision int64
	// Err is set in the last event when the observation ended for another
	// reason than its context: the gateway refused it. Leader is then nil.
	Err error
}

// Observe sends the leader of election on the returned channel: the current
// one first (nil Leader: no leader), then each change. The gateway
// coalesces changes that come faster than they are read to the latest
// leader, so a slow reader sees the current leader, not every term. When the
// stream breaks it reconnects with backoff; the state it then finds is sent
// only if it differs from the last one sent.
//
// The channel is closed when ctx ends or the client is closed. When the
// gateway refuses the observation for good, the last event carries Err.
func (c *Client) Observe(ctx context.Context, election string) <-chan LeaderEvent {
	ch := make(chan LeaderEvent)
	ctx, release := c.bind(ctx)
	send := func(ev LeaderEvent) bool {
		select {
		case ch <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	started := c.grp.start(func() {
		defer close(ch)
		defer release()
		if err := c.observe(ctx, election, send); err != nil && ctx.Err() == nil {
			send(LeaderEvent{Err: err})
		}
	})
	if !started {
		release()
		closed := make(chan LeaderEvent, 1)
		closed <- LeaderEvent{Err: ErrClosed}
		close(closed)
		return closed
	}
	return ch
}

// observe runs an observation, passing each new leader state to emit, until
// emit returns false (then it returns errStopped), ctx ends or the gateway
// refuses it.
func (c *Client) observe(ctx context.Context, election string, emit func(LeaderEvent) bool) error {
	var last *zkcoordv1.LeaderInfo
	sent := false
	return c.retry(ctx, "observe "+election, func(b *backoff) error {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.rpc.election.Observe(sctx, &zkcoordv1.ObserveRequest{Election: election})
		if err != nil {
			return callErr(sctx, err, ErrNotFound)
		}
		for {
			msg, err := stream.Recv()
			if err != nil {
				return callErr(sctx, err, ErrNotFound)
			}
			b.reset()
			if sent && sameTerm(last, msg.GetLeader()) {
				continue // the state found again after a reconnection
			}
			last, sent = msg.GetLeader(), true
			if !emit(LeaderEvent{Leader: last, Revision: msg.GetRevision()}) {
				return errStopped
			}
		}
	})
}

// sameTerm reports whether a and b (nil: no leader) are the same term.
func sameTerm(a, b *zkcoordv1.LeaderInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.GetCandidate() == b.GetCandidate() && a.GetFencingToken() == b.GetFencingToken()
}
