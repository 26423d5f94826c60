package server

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/gateway"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

type statusService struct {
	pb.UnimplementedStatusServiceServer
	r       *gateway.Replica
	c       *calls
	version string
}

var _ pb.StatusServiceServer = (*statusService)(nil)

var stateTable = map[zkx.State]pb.ConnectionState{
	zkx.StateConnecting:   pb.ConnectionState_CONNECTION_STATE_DISCONNECTED,
	zkx.StateConnected:    pb.ConnectionState_CONNECTION_STATE_CONNECTED,
	zkx.StateDisconnected: pb.ConnectionState_CONNECTION_STATE_DISCONNECTED,
	zkx.StateExpired:      pb.ConnectionState_CONNECTION_STATE_EXPIRED,
	zkx.StateClosed:       pb.ConnectionState_CONNECTION_STATE_CLOSED,
}

func (s *statusService) GetStatus(ctx context.Context, _ *pb.GetStatusRequest) (*pb.GetStatusResponse, error) {
	r, sess := s.r, s.r.Session
	st := sess.Status()
	return &pb.GetStatusResponse{
		State:              stateTable[st.State],
		Server:             st.Server,
		Servers:            sess.Servers(),
		Chroot:             sess.Chroot(),
		Root:               r.Root(),
		SessionId:          fmt.Sprintf("0x%x", st.SessionID),
		SessionTimeout:     durationpb.New(sess.Timeout()),
		StateSince:         timestamppb.New(st.Since),
		SessionExpirations: st.Expirations,
		Leases:             int64(r.Leases.Count()),
		WatchedGroups:      int64(r.Registry.Groups()),
		ReplicaId:          r.ID(),
		Version:            s.version,
		Polls:              s.c.polls.Load(),
	}, nil
}
