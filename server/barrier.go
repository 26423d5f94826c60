package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

type barrierService struct {
	pb.UnimplementedBarrierServiceServer
	g *Gateway
}

var _ pb.BarrierServiceServer = (*barrierService)(nil)

// AwaitBarrier joins and waits. Without a lease_id the participation is
// owned by the stream: ending the stream removes it.
func (s *barrierService) AwaitBarrier(req *pb.AwaitBarrierRequest, stream pb.BarrierService_AwaitBarrierServer) error {
	ctx, cancel := s.g.streamContext(stream.Context())
	defer cancel()
	leaseID, release, err := s.g.streamLease(ctx, req.GetLeaseId(), req.GetTtl().AsDuration())
	if err != nil {
		return toStatus(err)
	}
	defer release()
	id := req.GetParticipantId()
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	n := int(req.GetThreshold())
	err = s.g.barriers.Await(ctx, req.GetBarrier(), n, id, leaseID, func(arrived int, released bool) error {
		return stream.Send(&pb.AwaitBarrierResponse{Arrived: int32(arrived), Threshold: int32(n), Released: released,
			ParticipantId: id, LeaseId: leaseID})
	})
	return toStatus(s.g.stopErr(err))
}

func (s *barrierService) LeaveBarrier(ctx context.Context, req *pb.LeaveBarrierRequest) (*pb.LeaveBarrierResponse, error) {
	released, err := s.g.barriers.Leave(ctx, req.GetBarrier(), req.GetParticipantId(), req.GetLeaseId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.LeaveBarrierResponse{WasReleased: released}, nil
}

func (s *barrierService) AwaitGroup(req *pb.AwaitGroupRequest, stream pb.BarrierService_AwaitGroupServer) error {
	ctx, cancel := s.g.streamContext(stream.Context())
	defer cancel()
	min := int(req.GetMinMembers())
	err := s.g.registry.AwaitCount(ctx, req.GetGroup(), min, func(n int, rev int64, ready bool) error {
		return stream.Send(&pb.AwaitGroupResponse{Members: int32(n), MinMembers: int32(min), Ready: ready, Revision: rev})
	})
	return toStatus(s.g.stopErr(err))
}
