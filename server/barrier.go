package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/barrier"
	"github.com/zkcoord/zkcoord/internal/registry"
)

type barrierService struct {
	pb.UnimplementedBarrierServiceServer
	barriers *barrier.Barriers
	registry *registry.Registry // AwaitGroup follows a group
	c        *calls
}

var _ pb.BarrierServiceServer = (*barrierService)(nil)

// AwaitBarrier joins and waits. Without a lease_id the participation is
// owned by the stream: ending the stream removes it.
func (s *barrierService) AwaitBarrier(req *pb.AwaitBarrierRequest, stream pb.BarrierService_AwaitBarrierServer) error {
	ctx, cancel := s.c.streamContext(stream.Context())
	defer cancel()
	leaseID, release, err := s.c.streamLease(ctx, req.GetLeaseId(), req.GetTtl().AsDuration())
	if err != nil {
		return toStatus(err)
	}
	defer release()
	id := participantID(req.GetParticipantId())
	n := int(req.GetThreshold())
	err = s.barriers.Await(ctx, req.GetBarrier(), n, id, leaseID, func(arrived int, released bool) error {
		return stream.Send(&pb.AwaitBarrierResponse{Arrived: int32(arrived), Threshold: int32(n), Released: released,
			ParticipantId: id, LeaseId: leaseID})
	})
	return toStatus(err)
}

// JoinBarrier joins without waiting: the participation belongs to the
// request's lease, or to one granted for the call from its ttl.
func (s *barrierService) JoinBarrier(ctx context.Context, req *pb.JoinBarrierRequest) (*pb.JoinBarrierResponse, error) {
	l, granted, err := s.c.callLease(ctx, req.GetLeaseId(), req.GetTtl())
	if err != nil {
		return nil, toStatus(err)
	}
	id := participantID(req.GetParticipantId())
	st, err := s.barriers.Join(ctx, req.GetBarrier(), int(req.GetThreshold()), id, l.ID)
	if err != nil {
		if granted { // nothing half-created: drop the lease made for this call
			s.c.revoke(ctx, l.ID)
		}
		return nil, toStatus(err)
	}
	return &pb.JoinBarrierResponse{Arrived: int32(st.Arrived), Threshold: int32(st.Threshold), Released: st.Released,
		Revision: st.Rev, ParticipantId: id, LeaseId: l.ID, LeaseExpiresAt: timestamppb.New(s.c.expiry(ctx, l))}, nil
}

// GetBarrier reads a barrier, at once or, with a wait, as a blocking query.
func (s *barrierService) GetBarrier(ctx context.Context, req *pb.GetBarrierRequest) (*pb.GetBarrierResponse, error) {
	var st barrier.State
	var err error
	if until, release, ok := s.c.pollWindow(ctx, req.GetWait()); ok {
		defer release()
		st, err = s.barriers.Poll(ctx, req.GetBarrier(), req.GetAfterRevision(), until)
	} else {
		st, err = s.barriers.Get(ctx, req.GetBarrier())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetBarrierResponse{Arrived: int32(st.Arrived), Threshold: int32(st.Threshold), Released: st.Released,
		Revision: st.Rev}, nil
}

// participantID is id, or a new random one when it is empty.
func participantID(id string) string {
	if id != "" {
		return id
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *barrierService) LeaveBarrier(ctx context.Context, req *pb.LeaveBarrierRequest) (*pb.LeaveBarrierResponse, error) {
	released, err := s.barriers.Leave(ctx, req.GetBarrier(), req.GetParticipantId(), req.GetLeaseId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.LeaveBarrierResponse{WasReleased: released}, nil
}

func (s *barrierService) AwaitGroup(req *pb.AwaitGroupRequest, stream pb.BarrierService_AwaitGroupServer) error {
	ctx, cancel := s.c.streamContext(stream.Context())
	defer cancel()
	min := int(req.GetMinMembers())
	err := s.registry.AwaitCount(ctx, req.GetGroup(), min, func(n int, rev int64, ready bool) error {
		return stream.Send(&pb.AwaitGroupResponse{Members: int32(n), MinMembers: int32(min), Ready: ready, Revision: rev})
	})
	return toStatus(err)
}
