package server

import (
	"context"
	"errors"
	"io"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/lease"
)

type leaseService struct {
	pb.UnimplementedLeaseServiceServer
	leases *lease.Manager
	c      *calls
}

var _ pb.LeaseServiceServer = (*leaseService)(nil)

func (s *leaseService) Grant(ctx context.Context, req *pb.GrantRequest) (*pb.GrantResponse, error) {
	holder, limit := auth.LeaseQuota(ctx)
	l, err := s.leases.GrantFor(ctx, req.GetTtl().AsDuration(), holder, limit)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GrantResponse{LeaseId: l.ID, Ttl: durationpb.New(l.TTL), ExpiresAt: timestamppb.New(l.ExpiresAt)}, nil
}

func (s *leaseService) KeepAlive(ctx context.Context, req *pb.KeepAliveRequest) (*pb.KeepAliveResponse, error) {
	l, err := s.leases.KeepAlive(ctx, req.GetLeaseId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.KeepAliveResponse{Ttl: durationpb.New(l.TTL), ExpiresAt: timestamppb.New(l.ExpiresAt)}, nil
}

func (s *leaseService) KeepAliveStream(stream pb.LeaseService_KeepAliveStreamServer) error {
	ctx := stream.Context()
	reqs := make(chan *pb.KeepAliveStreamRequest)
	recvErr := make(chan error, 1)
	go func() { // ends when the stream ends: Recv returns then
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				recvErr <- ctx.Err()
				return
			}
		}
	}()
	for {
		select {
		case <-s.c.stopping:
			return toStatus(errStopping)
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return toStatus(err)
		case req := <-reqs:
			l, err := s.leases.KeepAlive(ctx, req.GetLeaseId())
			if err != nil {
				return toStatus(err)
			}
			if err := stream.Send(&pb.KeepAliveStreamResponse{LeaseId: req.GetLeaseId(), Ttl: durationpb.New(l.TTL),
				ExpiresAt: timestamppb.New(l.ExpiresAt)}); err != nil {
				return err
			}
		}
	}
}

func (s *leaseService) Revoke(ctx context.Context, req *pb.RevokeRequest) (*pb.RevokeResponse, error) {
	if err := s.leases.Revoke(ctx, req.GetLeaseId()); err != nil {
		return nil, toStatus(err)
	}
	// The revision is read after the revoke's transaction: at or after it.
	rev, err := s.leases.Revision(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.RevokeResponse{Revision: rev}, nil
}

func (s *leaseService) GetLease(ctx context.Context, req *pb.GetLeaseRequest) (*pb.GetLeaseResponse, error) {
	l, err := s.leases.Describe(ctx, req.GetLeaseId())
	if err != nil {
		return nil, toStatus(err)
	}
	owned, err := s.leases.Owned(ctx, req.GetLeaseId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetLeaseResponse{Ttl: durationpb.New(l.TTL), ExpiresAt: timestamppb.New(l.ExpiresAt), Owned: owned}, nil
}
