package httpgw

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// echo serves RegistryService and LeaseService calls with fixed answers,
// keeping the last request and the Content-Type it came with (vanguard
// sends the in-process handler gRPC's; the REST path passes the
// request's own). A group or lease "code-N" answers the status code N
// with a detail.
type echo struct {
	pb.UnimplementedRegistryServiceServer
	pb.UnimplementedLeaseServiceServer
	mu          sync.Mutex
	last        proto.Message
	contentType string
	deadline    bool // the call had one
}

func (e *echo) record(ctx context.Context, req proto.Message, name string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	_, deadline := ctx.Deadline()
	e.mu.Lock()
	e.last, e.contentType, e.deadline = proto.Clone(req), strings.Join(md.Get("content-type"), ","), deadline
	e.mu.Unlock()
	if err := grpc.SetHeader(ctx, metadata.Pairs("x-answer", "from "+name)); err != nil {
		return err
	}
	if err := grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "after", "x-raw-bin", "\x00\xff")); err != nil {
		return err
	}
	if n, ok := strings.CutPrefix(name, "code-"); ok {
		c, _ := strconv.Atoi(n)
		st, err := status.New(codes.Code(c), "refused: <"+n+"> \u2028 é").WithDetails(&errdetails.ErrorInfo{Reason: "R" + n, Domain: "zkcoord", Metadata: map[string]string{"k": "v"}})
		if err != nil {
			return err
		}
		return st.Err()
	}
	if name == "raw" {
		return io.ErrUnexpectedEOF // not a status: UNKNOWN
	}
	if name == "cancelled" {
		return context.Canceled
	}
	return nil
}

func (e *echo) taken() (proto.Message, string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	last, ct, deadline := e.last, e.contentType, e.deadline
	e.last, e.contentType, e.deadline = nil, "", false
	return last, ct, deadline
}

var (
	at      = timestamppb.New(time.Date(2026, 12, 1, 4, 5, 6, 789, time.UTC))
	members = []*pb.Member{
		{Group: "web", Id: "m-1", Value: "10.0.0.1:80 <&> \u2028", Metadata: map[string]string{"zone": "a", "é": "ü"}, CreateRevision: 3, ModRevision: 9, CreatedAt: at},
		{Group: "web", Id: "m-2", Persistent: true},
	}
)

func (e *echo) Lookup(ctx context.Context, req *pb.LookupRequest) (*pb.LookupResponse, error) {
	if err := e.record(ctx, req, req.GetGroup()); err != nil {
		return nil, err
	}
	if req.GetGroup() == "big" { // an answer of more than 2 KiB
		big := make([]*pb.Member, 200)
		for i := range big {
			big[i] = &pb.Member{Group: "big", Id: fmt.Sprint("m-", i), Value: "10.0.0.1:80", CreatedAt: at}
		}
		return &pb.LookupResponse{Members: big, Revision: 7}, nil
	}
	return &pb.LookupResponse{Members: members, Revision: 1 << 53, NextPageToken: "tok/+="}, nil
}

func (e *echo) Deregister(ctx context.Context, req *pb.DeregisterRequest) (*pb.DeregisterResponse, error) {
	if err := e.record(ctx, req, req.GetGroup()); err != nil {
		return nil, err
	}
	return &pb.DeregisterResponse{Revision: 12}, nil
}

func (e *echo) GetLease(ctx context.Context, req *pb.GetLeaseRequest) (*pb.GetLeaseResponse, error) {
	if err := e.record(ctx, req, req.GetLeaseId()); err != nil {
		return nil, err
	}
	return &pb.GetLeaseResponse{Ttl: durationpb.New(1500 * time.Millisecond), ExpiresAt: at, Owned: []string{"/a", "/b"}}, nil
}

func (e *echo) Revoke(ctx context.Context, req *pb.RevokeRequest) (*pb.RevokeResponse, error) {
	if err := e.record(ctx, req, req.GetLeaseId()); err != nil {
		return nil, err
	}
	return &pb.RevokeResponse{}, nil
}

// TestRESTLikeVanguard: a REST request without a body answers the same
// (status, headers, body) whether rest.go serves it or vanguard does, and
// the method receives the same request; plain requests are served by
// rest.go, the others (refused, or read in vanguard's own way) by
// vanguard.
func TestRESTLikeVanguard(t *testing.T) {
	handler := func(viaTranscoder bool) (http.Handler, *echo) {
		e := &echo{}
		s := newServer(&fakeHealth{})
		u := NewUnary(nil)
		registerZkcoord(u, e, e)
		h, err := Handler(s, Options{Unary: u, viaTranscoder: viaTranscoder})
		if err != nil {
			t.Fatal(err)
		}
		return h, e
	}
	want, wantEcho := handler(true)
	got, gotEcho := handler(false)
	wantSrv, gotSrv := httptest.NewServer(want), httptest.NewServer(got)
	defer wantSrv.Close()
	defer gotSrv.Close()

	type answer struct {
		code     int
		header   http.Header
		body     string
		req      proto.Message
		ct       string
		deadline bool
	}
	call := func(srv *httptest.Server, e *echo, method, path string, header http.Header) answer {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Header.Del("Date")
		last, ct, deadline := e.taken()
		return answer{resp.StatusCode, resp.Header, string(b), last, ct, deadline}
	}
	json := http.Header{"Content-Type": {"application/json"}}
	for _, c := range []struct {
		method, path string
		header       http.Header
		plain        bool // served by rest.go
	}{
		{"GET", "/v1/groups/web", nil, true},
		{"GET", "/v1/groups/web", http.Header{"Accept-Encoding": {"identity"}}, true},
		{"GET", "/v1/groups/web", http.Header{"Accept-Encoding": {"gzip"}}, true},
		{"GET", "/v1/groups/web", json, true},
		{"GET", "/v1/groups/web", http.Header{"Authorization": {"Bearer x"}, "X-Raw-Bin": {"AAE="}}, true},
		{"GET", "/v1/groups/web/members/m-1", nil, true},
		{"GET", "/v1/groups/web?consistency=LINEARIZABLE", nil, true},
		{"GET", "/v1/groups/web?consistency=2", nil, true},
		{"GET", "/v1/groups/web?consistency=99", nil, true},
		{"GET", "/v1/groups/web?afterRevision=5&wait=30s&pageSize=10", nil, true},
		{"GET", "/v1/groups/web?after_revision=-5&page_size=3&pageToken=a%2Fb+c", nil, true},
		{"GET", "/v1/groups/web?wait=1.5s&pageToken=", nil, true},
		{"GET", "/v1/groups/web.v2_a-b~c", nil, true},
		{"GET", "/v1/groups/code-5", nil, true},
		{"GET", "/v1/groups/code-3", nil, true},
		{"GET", "/v1/groups/code-9", nil, true},
		{"GET", "/v1/groups/code-14", nil, true},
		{"GET", "/v1/groups/code-16", nil, true},
		{"GET", "/v1/groups/code-2", nil, true},
		{"GET", "/v1/groups/code-1", nil, true},
		{"GET", "/v1/groups/code-99", nil, true},
		{"GET", "/v1/groups/raw", nil, true},
		{"GET", "/v1/groups/cancelled", nil, true},
		{"DELETE", "/v1/groups/web/members/m-1?leaseId=L1", nil, true},
		{"DELETE", "/v1/groups/code-10/members/m-1", nil, true},
		{"GET", "/v1/leases/L1", nil, true},
		{"DELETE", "/v1/leases/L1", nil, true},
		{"GET", "/v1/locks/l", nil, true},
		{"GET", "/v1/groups?prefix=a&pageSize=2", nil, true},
		{"GET", "/v1/groups/big", nil, true},
		{"GET", "/v1/elections/e/leader", nil, true},
		{"GET", "/v1/barriers/b", nil, true},
		{"GET", "/v1/semaphores/s", nil, true},
		{"GET", "/v1/status", nil, true},
		{"GET", "/v1/groups/web", http.Header{"Accept": {"text/html"}, "User-Agent": {"php"}}, true},
		// Read by vanguard.
		{"GET", "/v1/groups/w%C3%A9b", nil, false},
		{"GET", "/v1/groups/web%2Fx", nil, false},
		{"GET", "/v1/groups/web/", nil, false},
		{"GET", "/v1/groups//members/m-1", nil, false},
		{"GET", "/v1/groups/a:b", nil, false},
		{"GET", "/v1/groups/web?nope=1", nil, false},
		{"GET", "/v1/groups/web?AfterRevision=1", nil, false},
		{"GET", "/v1/groups/web?afterRevision=x", nil, false},
		{"GET", "/v1/groups/web?afterRevision=1.5", nil, false},
		{"GET", "/v1/groups/web?pageSize=99999999999", nil, false},
		{"GET", "/v1/groups/web?consistency=BOGUS", nil, false},
		{"GET", "/v1/groups/web?consistency=", nil, false},
		{"GET", "/v1/groups/web?wait=forever", nil, false},
		{"GET", "/v1/groups/web?wait=%2230s%22", nil, false},
		{"GET", "/v1/groups/web?afterRevision=1&afterRevision=2", nil, false},
		// Not here: a field named twice by its two names (vanguard sets
		// them in the map's order, so its answer varies from call to call).
		{"GET", "/v1/groups/web?group=other", nil, false},
		{"GET", "/v1/groups/web?pageToken=%FF", nil, false},
		{"GET", "/v1/groups/web?members=1", nil, false},
		{"GET", "/v1/groups/web", http.Header{"X-Server-Timeout": {"5"}}, false},
		{"GET", "/v1/groups/web", http.Header{"Content-Type": {"text/plain"}}, false},
		{"GET", "/v1/groups/web", http.Header{"Content-Encoding": {"gzip"}}, false},
		{"GET", "/v1/groups/web", http.Header{"Content-Type": {"application/json", "application/json"}}, false},
		{"GET", "/v1/groups/web", http.Header{"Connect-Protocol-Version": {"1"}}, false},
		{"GET", "/v1/groups/web", http.Header{"Grpc-Timeout": {"1n"}}, false},
		{"GET", "/v1/groups/web", http.Header{"Grpc-Timeout": {"30S"}}, false},
		{"GET", "/v1/groups/web", http.Header{"Grpc-Encoding": {"gzip"}}, false},
		{"GET", "/v1/groups/web?connect=v1&encoding=json&message=%7B%7D", nil, false},
		{"GET", "/v1/groups/web", http.Header{"X-Raw-Bin": {"!!"}}, true},
	} {
		name := c.method + " " + c.path + fmt.Sprint(c.header)
		w := call(wantSrv, wantEcho, c.method, c.path, c.header)
		g := call(gotSrv, gotEcho, c.method, c.path, c.header)
		if g.code != w.code || g.body != w.body {
			t.Errorf("%s:\nREST path: %d %s\nvanguard:  %d %s", name, g.code, g.body, w.code, w.body)
		}
		if !equalHeaders(g.header, w.header) {
			t.Errorf("%s: headers\nREST path: %v\nvanguard:  %v", name, g.header, w.header)
		}
		if !proto.Equal(g.req, w.req) || g.deadline != w.deadline {
			t.Errorf("%s: the method received\nREST path: %v (deadline %v)\nvanguard:  %v (deadline %v)", name, g.req, g.deadline, w.req, w.deadline)
		}
		if viaREST := g.req != nil && !strings.HasPrefix(g.ct, "application/grpc"); g.req != nil && viaREST != c.plain {
			t.Errorf("%s: served by rest.go %v, want %v (content-type the method saw: %q)", name, viaREST, c.plain, g.ct)
		}
		if c.plain && g.req == nil && w.req != nil {
			t.Errorf("%s: the method was not called", name)
		}
		t.Logf("%s: %d %.120s", name, g.code, g.body)
	}
}

// equalHeaders compares response headers, the values of each in order.
func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestRESTRoutes: the rules' paths without a body are served by rest.go,
// and two that would take the same paths are refused.
func TestRESTRoutes(t *testing.T) {
	s := newServer(&fakeHealth{})
	u := NewUnary(nil)
	registerZkcoord(u, pb.UnimplementedRegistryServiceServer{}, pb.UnimplementedLeaseServiceServer{})
	healthpb.RegisterHealthServer(u, &fakeHealth{})
	rules, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, name := range Services {
		if _, ok := s.GetServiceInfo()[name]; ok {
			names = append(names, name)
		}
	}
	schemas, err := withRules(names, rules)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := u.restRoutes(schemas)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rt := range routes {
		got = append(got, rt.verb+" "+(&rt).String()+" "+rt.call.info.FullMethod)
	}
	slices.Sort(got)
	want := []string{
		"DELETE /v1/groups/{group}/members/{member_id} /zkcoord.v1.RegistryService/Deregister",
		"DELETE /v1/leases/{lease_id} /zkcoord.v1.LeaseService/Revoke",
		"GET /v1/barriers /zkcoord.v1.InspectService/ListBarriers",
		"GET /v1/barriers/{barrier} /zkcoord.v1.BarrierService/GetBarrier",
		"GET /v1/elections /zkcoord.v1.InspectService/ListElections",
		"GET /v1/elections/{election}/leader /zkcoord.v1.ElectionService/Leader",
		"GET /v1/groups /zkcoord.v1.InspectService/ListGroups",
		"GET /v1/groups/{group} /zkcoord.v1.RegistryService/Lookup",
		"GET /v1/groups/{group}/members/{member_id} /zkcoord.v1.RegistryService/Lookup",
		"GET /v1/leases /zkcoord.v1.InspectService/ListLeases",
		"GET /v1/leases/{lease_id} /zkcoord.v1.LeaseService/GetLease",
		"GET /v1/locks /zkcoord.v1.InspectService/ListLocks",
		"GET /v1/locks/{lock} /zkcoord.v1.LockService/GetLock",
		"GET /v1/replicas /zkcoord.v1.InspectService/ListReplicas",
		"GET /v1/semaphores /zkcoord.v1.InspectService/ListSemaphores",
		"GET /v1/semaphores/{semaphore} /zkcoord.v1.SemaphoreService/GetSemaphore",
		"GET /v1/status /zkcoord.v1.StatusService/GetStatus",
	}
	if !slices.Equal(got, want) {
		t.Errorf("routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A binding that takes Lookup's paths.
	for _, r := range rules {
		if r.GetSelector() == "zkcoord.v1.LeaseService.GetLease" {
			r.AdditionalBindings = append(r.AdditionalBindings, &annotations.HttpRule{Pattern: &annotations.HttpRule_Get{Get: "/v1/groups/{lease_id}"}})
		}
	}
	if schemas, err = withRules(names, rules); err != nil {
		t.Fatal(err)
	}
	if _, err := u.restRoutes(schemas); err == nil || !strings.Contains(err.Error(), "take the same paths") {
		t.Errorf("two rules for GET /v1/groups/{...}: %v, want an error", err)
	}
}
