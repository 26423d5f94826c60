package server

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/validate"
)

type registryService struct {
	pb.UnimplementedRegistryServiceServer
	registry *registry.Registry
	c        *calls
	tokens   *pageTokens
}

var _ pb.RegistryServiceServer = (*registryService)(nil)

func (s *registryService) Register(ctx context.Context, req *pb.RegisterRequest) (*pb.RegisterResponse, error) {
	l, granted, err := s.c.callLease(ctx, req.GetLeaseId(), req.GetTtl())
	if err != nil {
		return nil, toStatus(err)
	}
	m, rev, err := s.registry.Register(ctx, registry.RegisterParams{
		Group: req.GetGroup(), ID: req.GetMemberId(), Value: req.GetValue(), Metadata: req.GetMetadata(),
		LeaseID: l.ID, Persistent: req.GetPersistent(),
	})
	if err != nil {
		if granted { // nothing half-created: drop the lease made for this call
			s.c.revoke(ctx, l.ID)
		}
		return nil, toStatus(err)
	}
	resp := &pb.RegisterResponse{Member: memberPB(m), Revision: rev}
	if !req.GetPersistent() {
		resp.LeaseId, resp.LeaseExpiresAt = l.ID, timestamppb.New(s.c.expiry(ctx, l))
	}
	return resp, nil
}

func (s *registryService) Deregister(ctx context.Context, req *pb.DeregisterRequest) (*pb.DeregisterResponse, error) {
	rev, err := s.registry.Deregister(ctx, req.GetGroup(), req.GetMemberId(), req.GetLeaseId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DeregisterResponse{Revision: rev}, nil
}

// Lookup reads a group, at once or, with a wait, as a blocking query; a
// whole group in pages when the caller asks for them (lookupPage), in one
// answer otherwise, as etcd's Range without a limit: a client that does
// not know pages never gets part of a group as if it were all of it.
func (s *registryService) Lookup(ctx context.Context, req *pb.LookupRequest) (*pb.LookupResponse, error) {
	if req.GetMemberId() == "" && (req.GetPageSize() > 0 || req.GetPageToken() != "") {
		return s.lookupPage(ctx, req)
	}
	linearizable := req.GetConsistency() == pb.Consistency_CONSISTENCY_LINEARIZABLE
	var v registry.View
	var err error
	if until, release, ok := s.c.pollWindow(ctx, req.GetWait()); ok {
		defer release()
		v, err = s.registry.Poll(ctx, req.GetGroup(), req.GetMemberId(), linearizable, req.GetAfterRevision(), until)
	} else {
		v, err = s.registry.Lookup(ctx, req.GetGroup(), req.GetMemberId(), linearizable)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.LookupResponse{Revision: v.Rev, Members: membersPB(v.Members)}, nil
}

// lookupPage reads a page of a whole group: the first (now, or after a
// wait), or the one after a page token, at the token's revision.
func (s *registryService) lookupPage(ctx context.Context, req *pb.LookupRequest) (*pb.LookupResponse, error) {
	q := registry.PageQuery{Limit: pageSize(req.GetPageSize()), MaxBytes: validate.MaxMemberPageBytes}
	linearizable := req.GetConsistency() == pb.Consistency_CONSISTENCY_LINEARIZABLE
	var p registry.Page
	var err error
	if t := req.GetPageToken(); t != "" {
		if q.Rev, q.After, err = s.tokens.check(ctx, req.GetGroup(), t); err == nil {
			p, err = s.registry.LookupPage(ctx, req.GetGroup(), q, false)
		}
	} else if until, release, ok := s.c.pollWindow(ctx, req.GetWait()); ok {
		defer release()
		p, err = s.registry.PollPage(ctx, req.GetGroup(), q, linearizable, req.GetAfterRevision(), until)
	} else {
		p, err = s.registry.LookupPage(ctx, req.GetGroup(), q, linearizable)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.LookupResponse{Revision: p.Rev, Members: membersPB(p.Members)}
	if p.More {
		resp.NextPageToken = s.tokens.issue(ctx, req.GetGroup(), p.Rev, p.Members[len(p.Members)-1].ID)
	}
	return resp, nil
}

// pageSize is a request's page size, or the default.
func pageSize(n int32) int {
	if n <= 0 {
		return validate.DefaultMemberPage
	}
	return int(n)
}

func membersPB(ms []*registry.Member) []*pb.Member {
	out := make([]*pb.Member, len(ms))
	for i, m := range ms {
		out[i] = memberPB(m)
	}
	return out
}

func (s *registryService) WatchGroup(req *pb.WatchGroupRequest, stream pb.RegistryService_WatchGroupServer) error {
	ctx := stream.Context()
	sub, start, err := s.registry.Watch(ctx, req.GetGroup(), req.GetStartRevision())
	if err != nil {
		return toStatus(err)
	}
	defer sub.Close()
	if v := start.Snapshot; v != nil {
		if err := sendSnapshot(stream.Send, v, start.Resync, int(req.GetSnapshotPageSize())); err != nil {
			return err
		}
	}
	for _, ev := range start.Backlog {
		if err := stream.Send(sharedEventPB(ev)); err != nil {
			return err
		}
	}
	if start.Snapshot == nil && len(start.Backlog) == 0 {
		// A resume with nothing to send yet: answer the call now, so a
		// client (an HTTP one especially) knows its stream is up before
		// the group's next change.
		if err := stream.SendHeader(nil); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return toStatus(ctx.Err())
		case <-s.c.stopping:
			return toStatus(errStopping)
		case <-sub.Ready():
		}
		evs, err := sub.Take()
		if err != nil {
			return toStatus(fmt.Errorf("watch %s: %w", req.GetGroup(), err))
		}
		for _, ev := range evs {
			if err := stream.Send(sharedEventPB(ev)); err != nil {
				return err
			}
		}
	}
}

// sendSnapshot sends a watch's snapshot: whole without a page size (for
// clients that predate pages), else in pages of at most pageSize members
// and validate.MaxMemberPageBytes, all but the last with more set. The
// pages are read from the Snapshot, which the cache's later changes do
// not touch: the first goes out as soon as it is read.
func sendSnapshot(send func(*pb.WatchGroupResponse) error, v *registry.Snapshot, resync bool, pageSize int) error {
	if pageSize == 0 {
		return send(&pb.WatchGroupResponse{Type: pb.WatchGroupResponse_TYPE_SNAPSHOT, Revision: v.Rev,
			Resync: resync, Members: membersPB(v.Members())})
	}
	after := ""
	for {
		ms, more := v.Page(after, pageSize, validate.MaxMemberPageBytes)
		if err := send(&pb.WatchGroupResponse{Type: pb.WatchGroupResponse_TYPE_SNAPSHOT, Revision: v.Rev,
			Resync: resync, Members: membersPB(ms), More: more}); err != nil || !more {
			return err
		}
		after = ms[len(ms)-1].ID
	}
}

func memberPB(m *registry.Member) *pb.Member {
	return &pb.Member{Group: m.Group, Id: m.ID, Value: m.Value, Metadata: m.Metadata, Persistent: m.Persistent,
		CreateRevision: m.CreateRev, ModRevision: m.ModRev, CreatedAt: timestamppb.New(m.CreatedAt)}
}

func eventPB(ev *registry.Event) *pb.WatchGroupResponse {
	var t pb.WatchGroupResponse_Type
	switch ev.Type {
	case registry.Joined:
		t = pb.WatchGroupResponse_TYPE_JOINED
	case registry.Left:
		t = pb.WatchGroupResponse_TYPE_LEFT
	case registry.Updated:
		t = pb.WatchGroupResponse_TYPE_UPDATED
	}
	return &pb.WatchGroupResponse{Type: t, Revision: ev.Rev, Member: memberPB(ev.Member), More: ev.More}
}

// sharedEventPB is ev's message for one of the group's streams: the
// event's encoding, made once for all of them (registry.Event.Encoded),
// carried as the message's unknown fields, which proto.Marshal writes as
// they are. A change reaches every stream of its group, thousands on one
// gateway, and each encoded the same member before. An event that does
// not encode (nil) goes as its plain message, whose Send reports why.
func sharedEventPB(ev *registry.Event) *pb.WatchGroupResponse {
	b := ev.Encoded(encodeEvent)
	if b == nil {
		return eventPB(ev)
	}
	resp := &pb.WatchGroupResponse{}
	resp.ProtoReflect().SetUnknown(b)
	return resp
}

// encodeEvent is eventPB's wire encoding, nil when it does not encode.
func encodeEvent(ev *registry.Event) []byte {
	b, err := proto.Marshal(eventPB(ev))
	if err != nil {
		return nil
	}
	return b
}
