package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// TestInspectLists: each InspectService list shows what the recipes hold
// (members counted, the leader and its token, arrivals, a lock's holder
// with its token, a semaphore's permits), a page at a time, only names
// with the prefix; ListLeases names a lease by key with its owner, TTL and
// what it owns, never its ID; ListReplicas marks the one that answered.
func TestInspectLists(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := testenv.Conn(t)
	in := pb.NewInspectServiceClient(cc)
	leases, reg := pb.NewLeaseServiceClient(cc), pb.NewRegistryServiceClient(cc)
	p := name(t) + "."
	l, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ group, id string }{{"g1", "a"}, {"g1", "b"}, {"g2", "a"}, {"g3", "a"}} {
		if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: p + m.group, MemberId: m.id, Value: "v", LeaseId: l.LeaseId}); err != nil {
			t.Fatal(err)
		}
	}
	// Another prefix that sorts between ours: never listed.
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: name(t) + "x", MemberId: "a", Value: "v", Persistent: true}); err != nil {
		t.Fatal(err)
	}

	first, err := in.ListGroups(ctx, &pb.ListGroupsRequest{Prefix: p, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	second, err := in.ListGroups(ctx, &pb.ListGroupsRequest{Prefix: p, PageSize: 2, PageToken: first.GetNextPageToken()})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range append(first.GetGroups(), second.GetGroups()...) {
		got = append(got, g.GetName())
		want := int32(1)
		if g.GetName() == p+"g1" {
			want = 2
		}
		if g.GetMembers() != want || g.GetRevision() <= 0 {
			t.Errorf("group %v: want %d members and a revision", g, want)
		}
	}
	if !slices.Equal(got, []string{p + "g1", p + "g2", p + "g3"}) || first.GetNextPageToken() != p+"g2" || second.GetNextPageToken() != "" {
		t.Fatalf("pages: %v (tokens %q, %q)", got, first.GetNextPageToken(), second.GetNextPageToken())
	}

	// An election with a leader and a second candidate.
	elections := pb.NewElectionServiceClient(cc)
	var leader *pb.CampaignResponse
	for i, v := range []string{"first", "second"} {
		id := l.LeaseId
		if i == 1 {
			id = "" // a lease holds one candidacy per election: the second owns its stream's
		}
		s, err := elections.Campaign(ctx, &pb.CampaignRequest{Election: p + "e", Value: v, LeaseId: id})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			leader = r
		}
	}
	es, err := in.ListElections(ctx, &pb.ListElectionsRequest{Prefix: p})
	if err != nil || len(es.GetElections()) != 1 {
		t.Fatalf("ListElections: %v, %v", es, err)
	}
	if e := es.GetElections()[0]; e.GetCandidates() != 2 || e.GetLeader().GetValue() != "first" ||
		e.GetLeader().GetFencingToken() != leader.GetLeader().GetFencingToken() || len(e.GetQueue()) != 2 ||
		e.GetQueue()[0] != e.GetLeader().GetCandidate() || e.GetQueue()[0] == e.GetQueue()[1] {
		t.Errorf("election %v, the leader's campaign said %v", e, leader)
	}

	if _, err := pb.NewBarrierServiceClient(cc).JoinBarrier(ctx, &pb.JoinBarrierRequest{Barrier: p + "b", Threshold: 3,
		ParticipantId: "w1", LeaseId: l.LeaseId}); err != nil {
		t.Fatal(err)
	}
	bs, err := in.ListBarriers(ctx, &pb.ListBarriersRequest{Prefix: p})
	if err != nil || len(bs.GetBarriers()) != 1 || bs.GetBarriers()[0].GetArrived() != 1 || bs.GetBarriers()[0].GetThreshold() != 3 {
		t.Fatalf("ListBarriers: %v, %v", bs, err)
	}

	held, err := pb.NewLockServiceClient(cc).TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: p + "l", LeaseId: l.LeaseId})
	if err != nil || !held.GetAcquired() {
		t.Fatalf("TryAcquireLock: %v, %v", held, err)
	}
	ls, err := in.ListLocks(ctx, &pb.ListLocksRequest{Prefix: p})
	if err != nil || len(ls.GetLocks()) != 1 || len(ls.GetLocks()[0].GetHolders()) != 1 ||
		ls.GetLocks()[0].GetHolders()[0].GetFencingToken() != held.GetFencingToken() {
		t.Fatalf("ListLocks: %v, %v (held with token %d)", ls, err, held.GetFencingToken())
	}

	if _, err := pb.NewSemaphoreServiceClient(cc).TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: p + "s",
		Permits: 2, LeaseId: l.LeaseId}); err != nil {
		t.Fatal(err)
	}
	ss, err := in.ListSemaphores(ctx, &pb.ListSemaphoresRequest{Prefix: p})
	if err != nil || len(ss.GetSemaphores()) != 1 || ss.GetSemaphores()[0].GetPermits() != 2 || len(ss.GetSemaphores()[0].GetHolders()) != 1 {
		t.Fatalf("ListSemaphores: %v, %v", ss, err)
	}

	// The lease, found by key through every page.
	key := lease.KeyOf(l.LeaseId)
	var found *pb.LeaseSummary
	req := &pb.ListLeasesRequest{PageSize: 3}
	for pages := 0; ; pages++ {
		page, err := in.ListLeases(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.GetLeases() {
			if s.GetKey() == l.LeaseId {
				t.Fatalf("ListLeases lists a lease ID: %v", s)
			}
			if s.GetKey() == key {
				found = s
			}
		}
		if page.GetNextPageToken() == "" || pages > 1000 {
			break
		}
		req.PageToken = page.GetNextPageToken()
	}
	if found == nil {
		t.Fatalf("lease %s not listed", key)
	}
	if found.GetTtl().AsDuration() != time.Minute || found.GetOwner() == "" || !found.GetExpiryExact() ||
		!found.GetExpiresAt().AsTime().After(time.Now()) {
		t.Errorf("lease: %v", found)
	}
	for _, ref := range []string{"member~" + p + "g1~a", "candidate~" + p + "e", "lock~" + p + "l", "permit~" + p + "s"} {
		if !slices.Contains(found.GetOwned(), ref) {
			t.Errorf("lease owns %v, not %s", found.GetOwned(), ref)
		}
	}

	rs, err := in.ListReplicas(ctx, &pb.ListReplicasRequest{})
	if err != nil || len(rs.GetReplicas()) == 0 {
		t.Fatalf("ListReplicas: %v, %v", rs, err)
	}
	self := 0
	for _, r := range rs.GetReplicas() {
		if r.GetSelf() {
			self++
			if r.GetId() != found.GetOwner() || r.GetAddress() == "" {
				t.Errorf("replica %v; the lease's owner is %s", r, found.GetOwner())
			}
		}
	}
	if self != 1 {
		t.Errorf("replicas %v: want one self", rs)
	}

	// The same list over HTTP/JSON.
	resp, err := http.Get(testenv.HTTP(t) + "/v1/groups?prefix=" + url.QueryEscape(p) + "&pageSize=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Groups        []struct{ Name string }
		NextPageToken string
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK ||
		len(body.Groups) != 1 || body.Groups[0].Name != p+"g1" || body.NextPageToken != p+"g1" {
		t.Errorf("GET /v1/groups: %d %+v %v", resp.StatusCode, body, err)
	}
}

// TestInspectRefused: lists need read over their prefix and leases and
// replicas admin; bad pages and prefixes are INVALID_ARGUMENT.
func TestInspectRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial, _ := authGateway(t)
	web := pb.NewInspectServiceClient(dial("web-token-0123456789"))       // read, register on app.
	reader := pb.NewInspectServiceClient(dial("reader-token-0123456789")) // read on everything
	ops := pb.NewInspectServiceClient(dial("ops-token-0123456789"))       // admin
	if _, err := web.ListGroups(ctx, &pb.ListGroupsRequest{Prefix: "app."}); err != nil {
		t.Errorf("web lists app.: %v", err)
	}
	_, err := web.ListGroups(ctx, &pb.ListGroupsRequest{Prefix: "app"})
	wantCode(t, "web lists app (wider than its scope)", err, codes.PermissionDenied)
	_, err = web.ListLocks(ctx, &pb.ListLocksRequest{})
	wantCode(t, "web lists every lock", err, codes.PermissionDenied)
	if _, err := reader.ListElections(ctx, &pb.ListElectionsRequest{}); err != nil {
		t.Errorf("reader lists elections: %v", err)
	}
	_, err = reader.ListLeases(ctx, &pb.ListLeasesRequest{})
	wantCode(t, "reader lists leases", err, codes.PermissionDenied)
	_, err = reader.ListReplicas(ctx, &pb.ListReplicasRequest{})
	wantCode(t, "reader lists replicas", err, codes.PermissionDenied)
	if _, err := ops.ListLeases(ctx, &pb.ListLeasesRequest{}); err != nil {
		t.Errorf("ops lists leases: %v", err)
	}
	for what, req := range map[string]*pb.ListGroupsRequest{
		"page size over 1000": {PageSize: 1001},
		"negative page size":  {PageSize: -1},
		"prefix with a slash": {Prefix: "a/../b"},
		"token with a slash":  {PageToken: "../x"},
	} {
		_, err := ops.ListGroups(ctx, req)
		wantCode(t, what, err, codes.InvalidArgument)
	}
	_, err = ops.ListLeases(ctx, &pb.ListLeasesRequest{PageToken: "g1"})
	wantCode(t, "a lease page token that is no key", err, codes.InvalidArgument)
}
