package server

import (
	"context"
	"errors"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/semaphore"
)

type semaphoreService struct {
	pb.UnimplementedSemaphoreServiceServer
	sems *semaphore.Semaphores
	c    *calls
}

var _ pb.SemaphoreServiceServer = (*semaphoreService)(nil)

var permitStatus = map[semaphore.Status]pb.AcquireSemaphoreResponse_Status{
	semaphore.Queued:   pb.AcquireSemaphoreResponse_STATUS_QUEUED,
	semaphore.Held:     pb.AcquireSemaphoreResponse_STATUS_HELD,
	semaphore.Jeopardy: pb.AcquireSemaphoreResponse_STATUS_JEOPARDY,
	semaphore.Lost:     pb.AcquireSemaphoreResponse_STATUS_LOST,
	semaphore.Released: pb.AcquireSemaphoreResponse_STATUS_RELEASED,
}

// AcquireSemaphore streams a place's states. The place is the stream's:
// when the stream ends, it is given up (the stream's own lease is
// revoked; a client's lease gives the place up in the background), except
// on a drain, when the lease is handed over with it: a holder is told
// JEOPARDY without a deadline, and may resume with the lease.
func (s *semaphoreService) AcquireSemaphore(req *pb.AcquireSemaphoreRequest, stream pb.SemaphoreService_AcquireSemaphoreServer) error {
	ctx, cancel := s.c.streamContext(stream.Context())
	defer cancel()
	leaseID, release, err := s.c.streamLease(ctx, req.GetLeaseId(), req.GetTtl().AsDuration())
	if err != nil {
		return toStatus(err)
	}
	defer release()
	name, permits := req.GetSemaphore(), int(req.GetPermits())
	var last semaphore.Update
	err = s.sems.Acquire(ctx, name, permits, req.GetValue(), leaseID, func(u semaphore.Update) error {
		last = u
		return stream.Send(acquirePB(u, leaseID))
	})
	switch {
	case err == nil, errors.Is(err, semaphore.ErrPermitsMismatch), errors.Is(err, lease.ErrNotFound), errors.Is(err, lease.ErrNotHolder):
		// The place ended, or was never made.
	case s.c.draining.Load():
		if last.Status == semaphore.Held || last.Status == semaphore.Jeopardy {
			_ = stream.Send(acquirePB(semaphore.Update{Status: semaphore.Jeopardy, Slot: last.Slot, Token: last.Token,
				Permits: last.Permits}, leaseID))
		}
	case req.GetLeaseId() != "":
		s.sems.Abandon(ctx, name, leaseID, last.Slot)
	}
	return toStatus(err)
}

func acquirePB(u semaphore.Update, leaseID string) *pb.AcquireSemaphoreResponse {
	resp := &pb.AcquireSemaphoreResponse{Status: permitStatus[u.Status], Slot: u.Slot, Position: int32(u.Position),
		Token: u.Token, LeaseId: leaseID, Permits: int32(u.Permits)}
	if !u.Deadline.IsZero() {
		resp.JeopardyDeadline = timestamppb.New(u.Deadline)
	}
	return resp
}

// TryAcquireSemaphore takes a free permit for the request's lease, or for
// one granted for the call from its ttl (revoked when no permit is free).
func (s *semaphoreService) TryAcquireSemaphore(ctx context.Context, req *pb.TryAcquireSemaphoreRequest) (*pb.TryAcquireSemaphoreResponse, error) {
	l, granted, err := s.c.callLease(ctx, req.GetLeaseId(), req.GetTtl())
	if err != nil {
		return nil, toStatus(err)
	}
	r, err := s.sems.TryAcquire(ctx, req.GetSemaphore(), int(req.GetPermits()), req.GetValue(), l.ID)
	if granted && (err != nil || !r.Acquired) { // nothing half-created: drop the lease made for this call
		s.c.revoke(ctx, l.ID)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.TryAcquireSemaphoreResponse{Acquired: r.Acquired, Slot: r.Slot, Token: r.Token, Permits: req.GetPermits(),
		Held: int32(r.Held), Revision: r.Rev}
	if r.Acquired || !granted {
		resp.LeaseId, resp.LeaseExpiresAt = l.ID, timestamppb.New(s.c.expiry(ctx, l))
	}
	return resp, nil
}

func (s *semaphoreService) ReleaseSemaphore(ctx context.Context, req *pb.ReleaseSemaphoreRequest) (*pb.ReleaseSemaphoreResponse, error) {
	was, rev, err := s.sems.Release(ctx, req.GetSemaphore(), req.GetLeaseId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ReleaseSemaphoreResponse{WasHolder: was, Revision: rev}, nil
}

func (s *semaphoreService) GetSemaphore(ctx context.Context, req *pb.GetSemaphoreRequest) (*pb.GetSemaphoreResponse, error) {
	st, err := s.sems.Get(ctx, req.GetSemaphore())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetSemaphoreResponse{Permits: int32(st.Permits), Holders: slotsPB(st.Holders), Waiters: slotsPB(st.Waiters),
		Revision: st.Rev}, nil
}

func slotsPB(slots []semaphore.Slot) []*pb.SemaphoreSlot {
	out := make([]*pb.SemaphoreSlot, len(slots))
	for i, x := range slots {
		out[i] = &pb.SemaphoreSlot{Slot: x.Name, Value: x.Value, Token: x.Token, AcquiredAt: timestamppb.New(x.AcquiredAt)}
	}
	return out
}
