package server

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/lease"
)

type leaseService struct {
	pb.UnimplementedLeaseServiceServer
	g *Gateway
}

var _ pb.LeaseServiceServer = (*leaseService)(nil)

func (s *leaseService) Grant(ctx context.Context, req *pb.GrantRequest) (*pb.GrantResponse, error) {
	holder, limit := auth.LeaseQuota(ctx)
	l, err := s.g.leases.GrantFor(ctx, req.GetTtl().AsDuration(), holder, limit)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GrantResponse{LeaseId: l.ID, Ttl: durationpb.New(l.TTL), ExpiresAt: timestamppb.New(l.ExpiresAt)}, nil
}

func (s *leaseService) KeepAlive(ctx context.Context, req *pb.KeepAliveRequest) (*pb.KeepAliveResponse, error) {
	l, err := s.g.leases.KeepAlive(ctx, req.GetLeaseId())
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
		case <-s.g.stopping:
			return toStatus(errStopping)
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return toStatus(err)
		case req := <-reqs:
			l, err := s.g.leases.KeepAlive(ctx, req.GetLeaseId())
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
	if err := s.g.leases.Revoke(ctx, req.GetLeaseId()); err != nil {
		return nil, toStatus(err)
	}
	// The revision is read after the revoke's transaction: at or after it.
	// (A Revoke whose ctx ended while ZooKeeper was slow has ended the
	// lease, its removal going on in the background: the read ends with
	// ctx, DEADLINE_EXCEEDED or CANCELED.)
	_, st, err := s.g.sess.Exists(ctx, s.g.lay.Leases())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.RevokeResponse{Revision: st.Pzxid}, nil
}

func (s *leaseService) GetLease(ctx context.Context, req *pb.GetLeaseRequest) (*pb.GetLeaseResponse, error) {
	l, err := s.g.leases.Describe(ctx, req.GetLeaseId())
	if err != nil {
		return nil, toStatus(err)
	}
	owned, err := s.g.leases.Owned(ctx, req.GetLeaseId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetLeaseResponse{Ttl: durationpb.New(l.TTL), ExpiresAt: timestamppb.New(l.ExpiresAt), Owned: owned}, nil
}

// callLease returns the lease a unary call that creates something names
// (renewed: using a lease renews it) or, with ttl, one granted for the
// call; granted says so: revoke it if the call fails, so that nothing is
// left half-created.
func (g *Gateway) callLease(ctx context.Context, leaseID string, ttl *durationpb.Duration) (lease.Lease, bool, error) {
	if leaseID != "" {
		l, err := g.leases.KeepAlive(ctx, leaseID)
		if err != nil {
			return lease.Lease{}, false, err
		}
		return l, false, nil
	}
	if ttl == nil {
		return lease.Lease{}, false, nil
	}
	holder, limit := auth.LeaseQuota(ctx)
	l, err := g.leases.GrantFor(ctx, ttl.AsDuration(), holder, limit)
	if err != nil {
		return lease.Lease{}, false, err
	}
	return l, true, nil
}

// expiry is when the lease l (renewed or granted by the call) ends unless
// kept alive, as the call's answer says it: the expiry this replica holds
// when the call moved the lease here, else the renewal's (the lease may
// well be owned by another replica: a call that changed nothing did not
// take it over).
func (g *Gateway) expiry(ctx context.Context, l lease.Lease) time.Time {
	if now, err := g.leases.Get(ctx, l.ID); err == nil && now.ExpiresAt.After(l.ExpiresAt) {
		return now.ExpiresAt
	}
	return l.ExpiresAt
}

// streamLease returns the lease a stream runs under: the client's, or an
// implicit one granted now, kept alive while the stream lives and revoked
// when it ends (the returned release, which does not wait for ZooKeeper
// past the stream's ctx: see Gateway.revoke). If the gateway dies, the
// implicit lease lapses after its TTL.
func (g *Gateway) streamLease(ctx context.Context, leaseID string, ttl time.Duration) (string, func(), error) {
	if leaseID != "" {
		if _, err := g.leases.KeepAlive(ctx, leaseID); err != nil {
			return "", nil, err
		}
		return leaseID, func() {}, nil
	}
	if ttl == 0 {
		ttl = g.opts.streamTTL
	}
	holder, limit := auth.LeaseQuota(ctx)
	l, err := g.leases.GrantFor(ctx, ttl, holder, limit)
	if err != nil {
		return "", nil, err
	}
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx)) // ends with release
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-kctx.Done():
				return
			case <-t.C:
				if _, err := g.leases.KeepAlive(kctx, l.ID); errors.Is(err, lease.ErrNotFound) {
					return
				}
			}
		}
	}()
	return l.ID, func() {
		stop()
		<-finished
		if g.draining.Load() {
			return // handed off with the others: the client may resume with it
		}
		g.revoke(ctx, l.ID)
	}, nil
}
