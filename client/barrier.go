package client

import (
	"context"
	"errors"
	"fmt"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// AwaitBarrier joins the barrier name of threshold n, the participation
// owned by the session's lease, and blocks until n participants have
// arrived; it returns the participant's ID. WithProgress reports arrivals
// meanwhile. Joining a barrier that has already released returns at once.
// The participation stays after the release until LeaveBarrier, or the
// session's end. Cancelling ctx before the release gives up: the gateway
// removes the participation. A broken stream is reopened with backoff and
// the same participant ID.
func (s *Session) AwaitBarrier(ctx context.Context, name string, n int, opts ...AwaitOption) (string, error) {
	var o awaitOptions
	for _, fn := range opts {
		fn(&o)
	}
	ctx, release := bind(ctx, s.ctx)
	defer release()
	req := &zkcoordv1.AwaitBarrierRequest{
		Barrier: name, Threshold: int32(n), ParticipantId: o.participantID, LeaseId: s.Lease(),
	}
	err := s.c.retry(ctx, "await barrier "+name, func(b *backoff) error {
		stream, err := s.c.rpc.barrier.AwaitBarrier(ctx, req)
		if err != nil {
			return callErr(ctx, err, ErrLeaseLost)
		}
		for {
			msg, err := stream.Recv()
			if err != nil {
				return callErr(ctx, err, ErrLeaseLost)
			}
			b.reset()
			req.ParticipantId = msg.GetParticipantId() // rejoin as the same participant
			if o.progress != nil {
				o.progress(int(msg.GetArrived()), int(msg.GetThreshold()))
			}
			if msg.GetReleased() {
				return nil
			}
		}
	})
	if err != nil {
		return "", fmt.Errorf("barrier: await %s: %w", name, err)
	}
	return req.GetParticipantId(), nil
}

// JoinBarrier joins the barrier name of threshold n, the participation
// owned by the session's lease, and returns at once with the barrier's
// state (arrived, released, and the revision to follow it from with
// GetBarrier), for callers that cannot block in AwaitBarrier. The
// participation stays until LeaveBarrier or the session's end; the
// arrival that completes the count releases the barrier. WithParticipantID
// sets the participant's ID (default: the gateway generates one, returned
// in the answer); repeating a JoinBarrier with it is idempotent.
func (s *Session) JoinBarrier(ctx context.Context, name string, n int, opts ...AwaitOption) (*zkcoordv1.JoinBarrierResponse, error) {
	var o awaitOptions
	for _, fn := range opts {
		fn(&o)
	}
	resp, err := s.c.rpc.barrier.JoinBarrier(ctx, &zkcoordv1.JoinBarrierRequest{
		Barrier: name, Threshold: int32(n), ParticipantId: o.participantID, LeaseId: s.Lease(),
	})
	if err != nil {
		err = callErr(ctx, err, ErrLeaseLost)
		if errors.Is(err, ErrLeaseLost) {
			s.pokeKeepAlive()
		}
		return nil, fmt.Errorf("barrier: join %s: %w", name, err)
	}
	return resp, nil
}

// GetBarrier reads the barrier name: how many participants have arrived,
// its threshold (0 when nobody is in it), whether it has released, and
// the revision of that state. With AfterRevision(rev) and Wait(d) it is a
// blocking query: the gateway answers once the barrier has changed after
// rev (an arrival, a departure, the release), or after d.
func (c *Client) GetBarrier(ctx context.Context, name string, opts ...PollOption) (*zkcoordv1.GetBarrierResponse, error) {
	o := newPollOptions(opts)
	resp, err := c.rpc.barrier.GetBarrier(ctx, &zkcoordv1.GetBarrierRequest{Barrier: name, AfterRevision: o.after, Wait: o.waitPB()})
	if err != nil {
		return nil, fmt.Errorf("barrier: get %s: %w", name, callErr(ctx, err, ErrNotFound))
	}
	return resp, nil
}

// LeaveBarrier withdraws the session's participant from the barrier name,
// and reports whether the barrier had released. When the last participant
// of a released barrier leaves, the name can be used again.
func (s *Session) LeaveBarrier(ctx context.Context, name, participantID string) (released bool, err error) {
	resp, err := s.c.rpc.barrier.LeaveBarrier(ctx, &zkcoordv1.LeaveBarrierRequest{
		Barrier: name, ParticipantId: participantID, LeaseId: s.Lease(),
	})
	if err != nil {
		return false, fmt.Errorf("barrier: leave %s: %w", name, callErr(ctx, err, ErrNotFound))
	}
	return resp.GetWasReleased(), nil
}

// AwaitGroup blocks until the registry group has at least min members;
// WithProgress reports the count meanwhile. Cancelling ctx stops the wait.
// A broken stream is reopened with backoff.
func (c *Client) AwaitGroup(ctx context.Context, group string, min int, opts ...AwaitOption) error {
	var o awaitOptions
	for _, fn := range opts {
		fn(&o)
	}
	ctx, release := c.bind(ctx)
	defer release()
	req := &zkcoordv1.AwaitGroupRequest{Group: group, MinMembers: int32(min)}
	err := c.retry(ctx, "await group "+group, func(b *backoff) error {
		stream, err := c.rpc.barrier.AwaitGroup(ctx, req)
		if err != nil {
			return callErr(ctx, err, ErrNotFound)
		}
		for {
			msg, err := stream.Recv()
			if err != nil {
				return callErr(ctx, err, ErrNotFound)
			}
			b.reset()
			if o.progress != nil {
				o.progress(int(msg.GetMembers()), int(msg.GetMinMembers()))
			}
			if msg.GetReady() {
				return nil
			}
		}
	})
	if err != nil {
		return fmt.Errorf("barrier: await group %s: %w", group, err)
	}
	return nil
}
