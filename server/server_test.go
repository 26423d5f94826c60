package server_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// names holds each test's name for ZooKeeper: the test's name plus a
// number unique in the binary, so -count=N runs do not meet old state.
var (
	names   sync.Map // *testing.T → string
	nameSeq atomic.Int64
)

func name(t *testing.T) string {
	n, _ := names.LoadOrStore(t, fmt.Sprintf("%s-%d", strings.NewReplacer("/", ".", "_", "-").Replace(t.Name()), nameSeq.Add(1)))
	return n.(string)
}

func code(err error) codes.Code { return status.Code(err) }

func TestLeaseLifecycle(t *testing.T) {
	ctx := context.Background()
	leases := pb.NewLeaseServiceClient(testenv.Conn(t))
	g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.LeaseId) != 32 || g.Ttl.AsDuration() != 5*time.Second || time.Until(g.ExpiresAt.AsTime()) <= 0 {
		t.Fatalf("Grant = %v", g)
	}
	ka, err := leases.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: g.LeaseId})
	if err != nil || !ka.ExpiresAt.AsTime().After(g.ExpiresAt.AsTime().Add(-time.Millisecond)) {
		t.Fatalf("KeepAlive = %v, %v", ka, err)
	}
	stream, err := leases.KeepAliveStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := stream.Send(&pb.KeepAliveStreamRequest{LeaseId: g.LeaseId}); err != nil {
			t.Fatal(err)
		}
		r, err := stream.Recv()
		if err != nil || r.LeaseId != g.LeaseId {
			t.Fatalf("KeepAliveStream = %v, %v", r, err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("stream end: %v", err)
	}
	reg := pb.NewRegistryServiceClient(testenv.Conn(t))
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: name(t), MemberId: "m", Value: "v", LeaseId: g.LeaseId}); err != nil {
		t.Fatal(err)
	}
	gl, err := leases.GetLease(ctx, &pb.GetLeaseRequest{LeaseId: g.LeaseId})
	if err != nil || len(gl.Owned) != 1 || gl.Owned[0] != "member~"+name(t)+"~m" {
		t.Fatalf("GetLease = %v, %v", gl, err)
	}
	if _, err := leases.Revoke(ctx, &pb.RevokeRequest{LeaseId: g.LeaseId}); err != nil {
		t.Fatal(err)
	}
	if _, err := leases.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: g.LeaseId}); code(err) != codes.NotFound {
		t.Fatalf("KeepAlive after Revoke: %v", err)
	}
	lk, _ := reg.Lookup(ctx, &pb.LookupRequest{Group: name(t), Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
	if len(lk.GetMembers()) != 0 {
		t.Fatalf("member outlived its revoked lease: %v", lk.Members)
	}
}

// TestOneShotClientTTL: a client registers with a TTL and exits at once. The
// member is visible to Lookup and WatchGroup until the TTL lapses, then gone
// within 1 s.
func TestOneShotClientTTL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	group := name(t)
	reg := pb.NewRegistryServiceClient(testenv.Conn(t))
	watch, err := reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: group})
	if err != nil {
		t.Fatal(err)
	}
	if snap, err := watch.Recv(); err != nil || snap.Type != pb.WatchGroupResponse_TYPE_SNAPSHOT || len(snap.Members) != 0 {
		t.Fatalf("snapshot = %v, %v", snap, err)
	}

	// The one-shot client: its own connection, one call, gone.
	const ttl = 2 * time.Second
	func() {
		cc := testenv.Conn(t)
		r, err := pb.NewRegistryServiceClient(cc).Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "php-1",
			Value: "10.1.1.1:9000", Metadata: map[string]string{"zone": "a"}, Ttl: durationpb.New(ttl)})
		if err != nil || r.LeaseId == "" || r.Member.GetId() != "php-1" {
			t.Fatalf("Register = %v, %v", r, err)
		}
		cc.Close()
	}()
	registered := time.Now()

	joined, err := watch.Recv()
	if err != nil || joined.Type != pb.WatchGroupResponse_TYPE_JOINED || joined.Member.Metadata["zone"] != "a" {
		t.Fatalf("JOINED = %v, %v", joined, err)
	}
	lk, err := reg.Lookup(ctx, &pb.LookupRequest{Group: group})
	if err != nil || len(lk.Members) != 1 || lk.Revision < joined.Revision {
		t.Fatalf("Lookup while alive = %v, %v", lk, err)
	}
	left, err := watch.Recv()
	gone := time.Since(registered)
	if err != nil || left.Type != pb.WatchGroupResponse_TYPE_LEFT || left.Member.Id != "php-1" || left.Revision <= joined.Revision {
		t.Fatalf("LEFT = %v, %v", left, err)
	}
	if gone < ttl-100*time.Millisecond || gone > ttl+time.Second {
		t.Fatalf("member left %v after registering with TTL %v", gone, ttl)
	}
	t.Logf("member with TTL %v left after %v", ttl, gone)
	lk, _ = reg.Lookup(ctx, &pb.LookupRequest{Group: group})
	if len(lk.Members) != 0 {
		t.Fatalf("Lookup after TTL = %v", lk.Members)
	}
}

func TestRegisterErrors(t *testing.T) {
	ctx := context.Background()
	group := name(t)
	reg := pb.NewRegistryServiceClient(testenv.Conn(t))
	r, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "x", Value: "1", Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "x", Value: "2", Ttl: durationpb.New(time.Minute)})
	if code(err) != codes.AlreadyExists {
		t.Fatalf("taking another lease's member id: %v", err)
	}
	if _, err := reg.Deregister(ctx, &pb.DeregisterRequest{Group: group, MemberId: "x"}); code(err) != codes.PermissionDenied {
		t.Fatalf("Deregister without the lease: %v", err)
	}
	if _, err := reg.Deregister(ctx, &pb.DeregisterRequest{Group: group, MemberId: "x", LeaseId: r.LeaseId}); err != nil {
		t.Fatal(err)
	}
	// Invalid input: InvalidArgument naming the field, nothing created.
	bad := []*pb.RegisterRequest{
		{Group: "a/b", MemberId: "m", Persistent: true},
		{Group: group, MemberId: "..", Persistent: true},
		{Group: group, MemberId: "m"},
		{Group: group, MemberId: "m", Persistent: true, Ttl: durationpb.New(time.Minute)},
		{Group: group, MemberId: "m", Ttl: durationpb.New(time.Millisecond)},
		{Group: group, MemberId: "m", LeaseId: "not-a-lease"},
		{Group: group, MemberId: "m", Persistent: true, Value: strings.Repeat("x", 70<<10)},
	}
	for _, req := range bad {
		_, err := reg.Register(ctx, req)
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument {
			t.Fatalf("Register(%v) = %v, want InvalidArgument", req, err)
		}
		var fields []string
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				for _, v := range br.FieldViolations {
					fields = append(fields, v.Field)
				}
			}
		}
		if len(fields) == 0 {
			t.Fatalf("Register(%v): no field violations in %v", req, st)
		}
	}
	lk, err := reg.Lookup(ctx, &pb.LookupRequest{Group: group, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
	if err != nil || len(lk.Members) != 0 {
		t.Fatalf("after invalid registers: %v, %v", lk, err)
	}
	// A lease granted by Register with a TTL is dropped when the register
	// fails: the gateway holds no more leases after the refused call.
	status0, _ := pb.NewStatusServiceClient(testenv.Conn(t)).GetStatus(ctx, &pb.GetStatusRequest{})
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "p", Persistent: true}); err != nil {
		t.Fatal(err)
	}
	_, err = reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "p", Ttl: durationpb.New(time.Minute)})
	if code(err) != codes.AlreadyExists {
		t.Fatalf("leased register over a persistent member: %v", err)
	}
	status1, _ := pb.NewStatusServiceClient(testenv.Conn(t)).GetStatus(ctx, &pb.GetStatusRequest{})
	if status1.GetLeases() > status0.GetLeases() {
		t.Fatalf("refused Register left a lease: %d -> %d leases", status0.GetLeases(), status1.GetLeases())
	}
}

func TestWatchResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	group := name(t)
	reg := pb.NewRegistryServiceClient(testenv.Conn(t))
	first, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "a", Persistent: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b", "c"} {
		if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: id, Persistent: true}); err != nil {
			t.Fatal(err)
		}
	}
	// Resume right after a's registration: b and c follow, no snapshot. The
	// group cache was loaded by the registers' group, so its history may
	// start after a; then the stream must resync instead.
	w, err := reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: group, StartRevision: first.Revision})
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.Recv()
	if err != nil {
		t.Fatal(err)
	}
	switch r.Type {
	case pb.WatchGroupResponse_TYPE_SNAPSHOT:
		if !r.Resync || len(r.Members) != 3 {
			t.Fatalf("resume snapshot = %v", r)
		}
	case pb.WatchGroupResponse_TYPE_JOINED:
		if r.Member.Id != "b" {
			t.Fatalf("first resumed event = %v", r)
		}
		if r, err = w.Recv(); err != nil || r.Member.Id != "c" {
			t.Fatalf("second resumed event = %v, %v", r, err)
		}
	default:
		t.Fatalf("resume began with %v", r)
	}
	// A revision from before any history this gateway has: resync.
	w2, err := reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: group, StartRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := w2.Recv(); err != nil || r.Type != pb.WatchGroupResponse_TYPE_SNAPSHOT || !r.Resync || len(r.Members) != 3 {
		t.Fatalf("old resume = %v, %v", r, err)
	}
}

func TestBarrierOverGRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	bar := pb.NewBarrierServiceClient(testenv.Conn(t))
	const n = 3
	streams := make([]grpc.ServerStreamingClient[pb.AwaitBarrierResponse], n)
	for i := range streams {
		s, err := bar.AwaitBarrier(ctx, &pb.AwaitBarrierRequest{Barrier: name(t), Threshold: n})
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = s
		// Wait for this participant's own arrival before the next joins.
		for {
			r, err := s.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if r.Released && i < n-1 {
				t.Fatalf("released early: %v", r)
			}
			if r.Released {
				if _, err := s.Recv(); err != io.EOF {
					t.Fatalf("stream after release: %v", err)
				}
				streams[i] = nil
				break
			}
			if int(r.Arrived) == i+1 {
				break
			}
		}
	}
	for i, s := range streams {
		if s == nil {
			continue
		}
		for {
			r, err := s.Recv()
			if err != nil {
				t.Fatalf("participant %d: %v", i, err)
			}
			if r.Released {
				if r.Arrived < n || r.ParticipantId == "" {
					t.Fatalf("release message %v", r)
				}
				break
			}
		}
		if _, err := s.Recv(); err != io.EOF {
			t.Fatalf("stream after release: %v", err)
		}
	}
	// A participant whose deadline passes leaves nothing behind.
	dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer dcancel()
	s, err := bar.AwaitBarrier(dctx, &pb.AwaitBarrierRequest{Barrier: name(t) + "-never", Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err = s.Recv(); err != nil {
			break
		}
	}
	if code(err) != codes.DeadlineExceeded {
		t.Fatalf("deadline: %v", err)
	}
}

func TestAwaitGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	group := name(t)
	bar := pb.NewBarrierServiceClient(testenv.Conn(t))
	reg := pb.NewRegistryServiceClient(testenv.Conn(t))
	s, err := bar.AwaitGroup(ctx, &pb.AwaitGroupRequest{Group: group, MinMembers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"r1", "r2"} {
		r, err := s.Recv()
		if err != nil || int(r.Members) != i || r.Ready {
			t.Fatalf("AwaitGroup before %s: %v, %v", id, r, err)
		}
		if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: id, Ttl: durationpb.New(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := s.Recv()
	if err != nil || r.Members != 2 || !r.Ready {
		t.Fatalf("AwaitGroup at 2: %v, %v", r, err)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("after ready: %v", err)
	}
}

func TestStatusAndHealth(t *testing.T) {
	ctx := context.Background()
	st, err := pb.NewStatusServiceClient(testenv.Conn(t)).GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != pb.ConnectionState_CONNECTION_STATE_CONNECTED || st.Server != testenv.ZooKeeper(t) ||
		st.SessionId == "0x0" || len(st.Servers) != 1 {
		t.Fatalf("GetStatus = %v", st)
	}
	h, err := healthpb.NewHealthClient(testenv.Conn(t)).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", h, err)
	}
	h, err = healthpb.NewHealthClient(testenv.Conn(t)).Check(ctx, &healthpb.HealthCheckRequest{Service: "zkcoord.v1.RegistryService"})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("registry health = %v, %v", h, err)
	}
}
