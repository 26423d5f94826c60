package server

import (
	"context"
	"errors"
	"sort"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/gateway"
	"github.com/zkcoord/zkcoord/internal/lease"
)

// inspectService lists what the recipes hold, for operators. Each list
// reads the recipe's names, cuts a page out of them, then reads each item
// of the page through the recipe, as the Get calls do.
type inspectService struct {
	pb.UnimplementedInspectServiceServer
	r *gateway.Replica
}

var _ pb.InspectServiceServer = (*inspectService)(nil)

// defaultPageSize is a page's size when the request gives none.
const defaultPageSize = 100

// pageOf cuts one page out of sorted names: the names that start with
// prefix, after token (the last name of the previous page), at most size
// (0: defaultPageSize). next is the page's last name while more remain.
func pageOf(names []string, prefix, token string, size int32) (page []string, next string) {
	n := int(size)
	if n == 0 {
		n = defaultPageSize
	}
	from := max(token, prefix)
	i := sort.SearchStrings(names, from)
	if i < len(names) && names[i] == token {
		i++
	}
	for ; i < len(names) && strings.HasPrefix(names[i], prefix); i++ {
		if len(page) == n {
			return page, page[n-1]
		}
		page = append(page, names[i])
	}
	return page, ""
}

func (s *inspectService) ListGroups(ctx context.Context, req *pb.ListGroupsRequest) (*pb.ListGroupsResponse, error) {
	list, err := s.r.Registry.GroupNames(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	names, next := pageOf(list.Names, req.GetPrefix(), req.GetPageToken(), req.GetPageSize())
	resp := &pb.ListGroupsResponse{NextPageToken: next}
	for _, g := range names {
		v, err := s.r.Registry.Lookup(ctx, g, "", false)
		if err != nil {
			return nil, toStatus(err)
		}
		resp.Groups = append(resp.Groups, &pb.GroupSummary{Name: g, Members: int32(len(v.Members)), Revision: v.Rev})
	}
	return resp, nil
}

func (s *inspectService) ListElections(ctx context.Context, req *pb.ListElectionsRequest) (*pb.ListElectionsResponse, error) {
	all, err := s.r.Elections.Names(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	names, next := pageOf(all, req.GetPrefix(), req.GetPageToken(), req.GetPageSize())
	resp := &pb.ListElectionsResponse{NextPageToken: next}
	for _, e := range names {
		l, rev, err := s.r.Elections.Leader(ctx, e)
		if err != nil {
			return nil, toStatus(err)
		}
		queue, err := s.r.Elections.Queue(ctx, e)
		if err != nil {
			return nil, toStatus(err)
		}
		sum := &pb.ElectionSummary{Name: e, Candidates: int32(len(queue)), Revision: rev, Queue: queue}
		if l != nil {
			sum.Leader = leaderPB(l)
		}
		resp.Elections = append(resp.Elections, sum)
	}
	return resp, nil
}

func (s *inspectService) ListBarriers(ctx context.Context, req *pb.ListBarriersRequest) (*pb.ListBarriersResponse, error) {
	all, err := s.r.Barriers.Names(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	names, next := pageOf(all, req.GetPrefix(), req.GetPageToken(), req.GetPageSize())
	resp := &pb.ListBarriersResponse{NextPageToken: next}
	for _, b := range names {
		st, err := s.r.Barriers.Get(ctx, b)
		if err != nil {
			return nil, toStatus(err)
		}
		resp.Barriers = append(resp.Barriers, &pb.BarrierSummary{Name: b, Arrived: int32(st.Arrived),
			Threshold: int32(st.Threshold), Released: st.Released})
	}
	return resp, nil
}

func (s *inspectService) ListLocks(ctx context.Context, req *pb.ListLocksRequest) (*pb.ListLocksResponse, error) {
	all, err := s.r.Locks.Names(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	names, next := pageOf(all, req.GetPrefix(), req.GetPageToken(), req.GetPageSize())
	resp := &pb.ListLocksResponse{NextPageToken: next}
	for _, l := range names {
		holders, waiters, _, err := s.r.Locks.Get(ctx, l)
		if err != nil {
			return nil, toStatus(err)
		}
		resp.Locks = append(resp.Locks, &pb.LockSummary{Name: l, Holders: holdersPB(holders), Waiters: waitersPB(waiters)})
	}
	return resp, nil
}

func (s *inspectService) ListSemaphores(ctx context.Context, req *pb.ListSemaphoresRequest) (*pb.ListSemaphoresResponse, error) {
	all, err := s.r.Semaphores.Names(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	names, next := pageOf(all, req.GetPrefix(), req.GetPageToken(), req.GetPageSize())
	resp := &pb.ListSemaphoresResponse{NextPageToken: next}
	for _, n := range names {
		st, err := s.r.Semaphores.Get(ctx, n)
		if err != nil {
			return nil, toStatus(err)
		}
		resp.Semaphores = append(resp.Semaphores, &pb.SemaphoreSummary{Name: n, Permits: int32(st.Permits),
			Holders: slotsPB(st.Holders), Waiters: slotsPB(st.Waiters)})
	}
	return resp, nil
}

func (s *inspectService) ListLeases(ctx context.Context, req *pb.ListLeasesRequest) (*pb.ListLeasesResponse, error) {
	all, err := s.r.Leases.Keys(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	keys, next := pageOf(all, "", req.GetPageToken(), req.GetPageSize())
	resp := &pb.ListLeasesResponse{NextPageToken: next}
	for _, k := range keys {
		in, err := s.r.Leases.Inspect(ctx, k)
		if errors.Is(err, lease.ErrNotFound) {
			continue // ended since the listing
		} else if err != nil {
			return nil, toStatus(err)
		}
		sum := &pb.LeaseSummary{Key: k, Ttl: durationpb.New(in.TTL), ExpiryExact: in.Exact, Owner: in.Owner,
			Holder: in.Holder, Owned: in.Owned}
		if !in.Granted.IsZero() {
			sum.GrantedAt = timestamppb.New(in.Granted)
		}
		if !in.ExpiresAt.IsZero() {
			sum.ExpiresAt = timestamppb.New(in.ExpiresAt)
		}
		resp.Leases = append(resp.Leases, sum)
	}
	return resp, nil
}

func (s *inspectService) ListReplicas(ctx context.Context, _ *pb.ListReplicasRequest) (*pb.ListReplicasResponse, error) {
	rs, err := s.r.Leases.Replicas(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.ListReplicasResponse{}
	for _, r := range rs {
		resp.Replicas = append(resp.Replicas, &pb.ReplicaSummary{Id: r.ID, Address: r.Addr, Self: r.ID == s.r.ID()})
	}
	return resp, nil
}
