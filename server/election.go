package server

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/election"
)

type electionService struct {
	pb.UnimplementedElectionServiceServer
	elections *election.Elections
	c         *calls
}

var _ pb.ElectionServiceServer = (*electionService)(nil)

var campaignStatus = map[election.Status]pb.CampaignResponse_Status{
	election.Queued:   pb.CampaignResponse_STATUS_QUEUED,
	election.Elected:  pb.CampaignResponse_STATUS_ELECTED,
	election.Jeopardy: pb.CampaignResponse_STATUS_JEOPARDY,
	election.Lost:     pb.CampaignResponse_STATUS_LOST,
	election.Resigned: pb.CampaignResponse_STATUS_RESIGNED,
}

// Campaign streams a candidacy's states. Without a lease_id the candidacy
// is owned by the stream: ending the stream withdraws it at once.
func (s *electionService) Campaign(req *pb.CampaignRequest, stream pb.ElectionService_CampaignServer) error {
	ctx, cancel := s.c.streamContext(stream.Context())
	defer cancel()
	leaseID, release, err := s.c.streamLease(ctx, req.GetLeaseId(), req.GetTtl().AsDuration())
	if err != nil {
		return toStatus(err)
	}
	defer release()
	err = s.elections.Campaign(ctx, req.GetElection(), req.GetValue(), leaseID, func(u election.Update) error {
		resp := &pb.CampaignResponse{Status: campaignStatus[u.Status], Candidate: u.Candidate, Position: int32(u.Position),
			FencingToken: u.Token, LeaseId: leaseID, Leader: leaderPB(u.Leader)}
		if !u.Deadline.IsZero() {
			resp.JeopardyDeadline = timestamppb.New(u.Deadline)
		}
		return stream.Send(resp)
	})
	return toStatus(err)
}

func (s *electionService) Resign(ctx context.Context, req *pb.ResignRequest) (*pb.ResignResponse, error) {
	was, rev, err := s.elections.Resign(ctx, req.GetElection(), req.GetLeaseId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ResignResponse{WasLeader: was, Revision: rev}, nil
}

// Leader reads the leader, at once or, with a wait, as a blocking query.
func (s *electionService) Leader(ctx context.Context, req *pb.LeaderRequest) (*pb.LeaderResponse, error) {
	var l *election.LeaderInfo
	var rev int64
	var err error
	if until, release, ok := s.c.pollWindow(ctx, req.GetWait()); ok {
		defer release()
		l, rev, err = s.elections.Poll(ctx, req.GetElection(), req.GetAfterRevision(), until)
	} else {
		l, rev, err = s.elections.Leader(ctx, req.GetElection())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.LeaderResponse{Leader: leaderPB(l), Revision: rev}, nil
}

func (s *electionService) Observe(req *pb.ObserveRequest, stream pb.ElectionService_ObserveServer) error {
	ctx, cancel := s.c.streamContext(stream.Context())
	defer cancel()
	err := s.elections.Observe(ctx, req.GetElection(), func(l *election.LeaderInfo, rev int64) error {
		return stream.Send(&pb.ObserveResponse{Leader: leaderPB(l), Revision: rev})
	})
	return toStatus(err)
}

func leaderPB(l *election.LeaderInfo) *pb.LeaderInfo {
	if l == nil {
		return nil
	}
	return &pb.LeaderInfo{Election: l.Election, Candidate: l.Candidate, Value: l.Value, FencingToken: l.Token,
		CampaignedAt: timestamppb.New(l.CampaignedAt)}
}
