package server

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

type statusService struct {
	pb.UnimplementedStatusServiceServer
	g *Gateway
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
	g := s.g
	st := g.sess.Status()
	return &pb.GetStatusResponse{
		State:              stateTable[st.State],
		Server:             st.Server,
		Servers:            g.sess.Servers(),
		Chroot:             g.sess.Chroot(),
		Root:               g.opts.root,
		SessionId:          fmt.Sprintf("0x%x", st.SessionID),
		SessionTimeout:     durationpb.New(g.sess.Timeout()),
		StateSince:         timestamppb.New(st.Since),
		SessionExpirations: st.Expirations,
		Leases:             int64(g.leases.Count()),
		WatchedGroups:      int64(g.registry.Groups()),
		ReplicaId:          g.opts.replicaID,
		Version:            g.opts.version,
		Polls:              g.polls.Load(),
	}, nil
}
