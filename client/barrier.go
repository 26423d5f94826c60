package client

import (
	"context"
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
