package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	peerpb "github.com/zkcoord/zkcoord/gen/zkcoord/peer/v1"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/lease/peer"
)

// peerService answers other replicas.
type peerService struct {
	peerpb.UnimplementedPeerServiceServer
	leases *lease.Manager
}

var _ peerpb.PeerServiceServer = (*peerService)(nil)

func (s *peerService) KeepAlive(ctx context.Context, req *peerpb.KeepAliveRequest) (*peerpb.KeepAliveResponse, error) {
	l, err := s.leases.KeepAliveLocal(peer.WithCaller(ctx, req.GetCaller()), req.GetLeaseId())
	if err != nil {
		return nil, peerStatus(err)
	}
	return &peerpb.KeepAliveResponse{Ttl: durationpb.New(l.TTL), ExpiresAt: timestamppb.New(l.ExpiresAt)}, nil
}

func (s *peerService) Handoff(ctx context.Context, req *peerpb.HandoffRequest) (*peerpb.HandoffResponse, error) {
	if err := s.leases.Handoff(peer.WithCaller(ctx, req.GetCaller()), req.GetLeaseId()); err != nil {
		return nil, peerStatus(err)
	}
	return &peerpb.HandoffResponse{}, nil
}

func (s *peerService) GetLease(ctx context.Context, req *peerpb.GetLeaseRequest) (*peerpb.GetLeaseResponse, error) {
	l, err := s.leases.Get(peer.WithCaller(ctx, req.GetCaller()), req.GetLeaseId())
	if err != nil {
		return nil, peerStatus(err)
	}
	return &peerpb.GetLeaseResponse{Ttl: durationpb.New(l.TTL), ExpiresAt: timestamppb.New(l.ExpiresAt)}, nil
}

// peerStatus is toStatus for the PeerService: lease.ErrNotHolder gets the
// LEASE_NOT_HOLDER ErrorInfo (peer.NotHolderDetail), which the forwarding
// replica's peer.Client maps back.
func peerStatus(err error) error {
	serr := toStatus(err)
	if !errors.Is(err, lease.ErrNotHolder) {
		return serr
	}
	st, err := status.Convert(serr).WithDetails(peer.NotHolderDetail())
	if err != nil {
		return serr
	}
	return st.Err()
}
