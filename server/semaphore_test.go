package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/testenv/httpc"
)

type permitStream = grpc.ServerStreamingClient[pb.AcquireSemaphoreResponse]

// recvStatus receives the next message of s and checks its status.
func recvStatus(t *testing.T, what string, s permitStream, want pb.AcquireSemaphoreResponse_Status) *pb.AcquireSemaphoreResponse {
	t.Helper()
	r, err := s.Recv()
	if err != nil {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
	if r.GetStatus() != want {
		t.Fatalf("%s: %v, want %v", what, r, want)
	}
	return r
}

// TestSemaphoreOverGRPC: AcquireSemaphore streams hold at most N permits,
// in order; a stream that ends gives its place up, whether its lease is
// its own (revoked) or the client's (the lease lives on); TryAcquire with
// a ttl that finds no permit revokes the lease it made; ReleaseSemaphore,
// GetSemaphore, and the errors of another N and of a release without a
// place.
func TestSemaphoreOverGRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := testenv.Conn(t)
	sems, leases := pb.NewSemaphoreServiceClient(cc), pb.NewLeaseServiceClient(cc)
	sem := name(t)
	open := func(leaseID, value string) (permitStream, context.CancelFunc) {
		sctx, stop := context.WithCancel(ctx)
		s, err := sems.AcquireSemaphore(sctx, &pb.AcquireSemaphoreRequest{Semaphore: sem, Permits: 2, Value: value, LeaseId: leaseID})
		if err != nil {
			t.Fatal(err)
		}
		return s, stop
	}
	a, stopA := open("", "a")
	ha := recvStatus(t, "a", a, pb.AcquireSemaphoreResponse_STATUS_HELD)
	if ha.GetPermits() != 2 || ha.GetToken() <= 0 || ha.GetLeaseId() == "" {
		t.Fatalf("a: %v", ha)
	}
	owned, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	b, stopB := open(owned.GetLeaseId(), "b")
	recvStatus(t, "b", b, pb.AcquireSemaphoreResponse_STATUS_HELD)
	c, stopC := open("", "c")
	defer stopC()
	if q := recvStatus(t, "c", c, pb.AcquireSemaphoreResponse_STATUS_QUEUED); q.GetPosition() != 0 {
		t.Fatalf("c: %v", q)
	}
	d, stopD := open("", "d")
	defer stopD()
	recvStatus(t, "d", d, pb.AcquireSemaphoreResponse_STATUS_QUEUED)

	g, err := sems.GetSemaphore(ctx, &pb.GetSemaphoreRequest{Semaphore: sem})
	if err != nil || g.GetPermits() != 2 || len(g.GetHolders()) != 2 || len(g.GetWaiters()) != 2 ||
		g.GetHolders()[0].GetValue() != "a" || g.GetWaiters()[0].GetValue() != "c" || g.GetHolders()[0].GetToken() != ha.GetToken() {
		t.Fatalf("GetSemaphore: %v, %v", g, err)
	}
	// A TryAcquire with a ttl finds every permit held: no place, no lease.
	tr, err := sems.TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: sem, Permits: 2, Ttl: durationpb.New(time.Minute)})
	if err != nil || tr.GetAcquired() || tr.GetLeaseId() != "" || tr.GetHeld() != 2 {
		t.Fatalf("TryAcquire of a full semaphore: %v, %v", tr, err)
	}
	wantCode(t, "AcquireSemaphore with another N", recvErr(sems.AcquireSemaphore(ctx,
		&pb.AcquireSemaphoreRequest{Semaphore: sem, Permits: 3, Ttl: durationpb.New(time.Minute)})), codes.FailedPrecondition)

	// a's stream (its own lease) ends: c holds, d moves up.
	stopA()
	recvStatus(t, "c after a's stream ended", c, pb.AcquireSemaphoreResponse_STATUS_HELD)
	recvStatus(t, "d after a's stream ended", d, pb.AcquireSemaphoreResponse_STATUS_QUEUED)
	if _, err := leases.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: ha.GetLeaseId()}); code(err) != codes.NotFound {
		t.Fatalf("a's own lease after its stream: %v, want it revoked", err)
	}
	// b's stream (the client's lease) ends: d holds, and b's lease lives on.
	stopB()
	hd := recvStatus(t, "d after b's stream ended", d, pb.AcquireSemaphoreResponse_STATUS_HELD)
	if _, err := leases.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: owned.GetLeaseId()}); err != nil {
		t.Fatalf("b's lease after its stream ended: %v", err)
	}
	wantCode(t, "ReleaseSemaphore of b's place, given up", releaseErr(ctx, sems, sem, owned.GetLeaseId()), codes.NotFound)

	// TryAcquire with b's lease: full again (c and d hold); Release d.
	if tr, err := sems.TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: sem, Permits: 2,
		LeaseId: owned.GetLeaseId()}); err != nil || tr.GetAcquired() || tr.GetLeaseId() != owned.GetLeaseId() {
		t.Fatalf("TryAcquire with a lease, full: %v, %v", tr, err)
	}
	rel, err := sems.ReleaseSemaphore(ctx, &pb.ReleaseSemaphoreRequest{Semaphore: sem, LeaseId: hd.GetLeaseId()})
	if err != nil || !rel.GetWasHolder() || rel.GetRevision() <= 0 {
		t.Fatalf("ReleaseSemaphore: %v, %v", rel, err)
	}
	if r := recvStatus(t, "d after its release", d, pb.AcquireSemaphoreResponse_STATUS_RELEASED); r.GetToken() != hd.GetToken() {
		t.Fatalf("d released: %v", r)
	}
	tr, err = sems.TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: sem, Permits: 2, LeaseId: owned.GetLeaseId(), Value: "b2"})
	if err != nil || !tr.GetAcquired() || tr.GetToken() <= hd.GetToken() || tr.GetLeaseExpiresAt() == nil {
		t.Fatalf("TryAcquire with a permit free: %v, %v", tr, err)
	}
	if _, err := sems.ReleaseSemaphore(ctx, &pb.ReleaseSemaphoreRequest{Semaphore: sem, LeaseId: owned.GetLeaseId()}); err != nil {
		t.Fatal(err)
	}
}

// TestSemaphoreStreamEndNotOnDrain: a drain hands a holder's lease over
// with its place: the stream gets JEOPARDY without a deadline, then ends,
// and AcquireSemaphore with the lease on another replica resumes the
// permit (HELD, the same token).
func TestSemaphoreStreamEndNotOnDrain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := "/" + name(t)
	r0, r1 := testenv.StartReplica(t, root, "r0"), testenv.StartReplica(t, root, "r1")
	c0 := pb.NewSemaphoreServiceClient(dialAddr(t, r0.Addr))
	s, err := c0.AcquireSemaphore(ctx, &pb.AcquireSemaphoreRequest{Semaphore: "s", Permits: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := recvStatus(t, "held on r0", s, pb.AcquireSemaphoreResponse_STATUS_HELD)
	go r0.Stop() // drains: SIGTERM
	if j := recvStatus(t, "on the drain", s, pb.AcquireSemaphoreResponse_STATUS_JEOPARDY); j.GetJeopardyDeadline() != nil || j.GetToken() != h.GetToken() {
		t.Fatalf("on the drain: %v", j)
	}
	if _, err := s.Recv(); code(err) != codes.Unavailable {
		t.Fatalf("the stream after the drain: %v, want UNAVAILABLE", err)
	}
	s1, err := pb.NewSemaphoreServiceClient(dialAddr(t, r1.Addr)).AcquireSemaphore(ctx, &pb.AcquireSemaphoreRequest{Semaphore: "s", Permits: 1,
		LeaseId: h.GetLeaseId()})
	if err != nil {
		t.Fatal(err)
	}
	if r := recvStatus(t, "resumed on r1", s1, pb.AcquireSemaphoreResponse_STATUS_HELD); r.GetToken() != h.GetToken() {
		t.Fatalf("resumed with token %d, want %d", r.GetToken(), h.GetToken())
	}
}

// TestHTTPSemaphore: the acquire stream as newline-delimited JSON (HELD,
// QUEUED, the next HELD when the first stream closes), and the unary paths
// (tryAcquire, the semaphore, release) as REST.
func TestHTTPSemaphore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := httpc.Client{Base: testenv.HTTP(t)}
	sem := "/v1/semaphores/http." + name(t)
	a, r, err := c.OpenLines(ctx, "POST", sem+":acquire", map[string]any{"permits": 1, "value": "a", "ttl": "10s"})
	if err != nil || a == nil {
		t.Fatalf("acquire a: %v %v", r, err)
	}
	if m, err := a.Next(); err != nil || str(m, "status") != "STATUS_HELD" {
		t.Fatalf("a: %v, %v", m, err)
	}
	b, r, err := c.OpenLines(ctx, "POST", sem+":acquire", map[string]any{"permits": 1, "value": "b", "ttl": "10s"})
	if err != nil || b == nil {
		t.Fatalf("acquire b: %v %v", r, err)
	}
	defer b.Close()
	if m, err := b.Next(); err != nil || str(m, "status") != "STATUS_QUEUED" {
		t.Fatalf("b: %v, %v", m, err)
	}
	tr, err := c.Do(ctx, "POST", sem+":tryAcquire", map[string]any{"permits": 1, "ttl": "10s"})
	if err != nil || tr.Status != 200 || tr.Body["acquired"] != false || tr.Body["held"] != float64(1) {
		t.Fatalf("tryAcquire of a full semaphore: %v %v", tr, err)
	}
	a.Close() // the stream's end gives the permit up
	m, err := b.Next()
	if err != nil || str(m, "status") != "STATUS_HELD" {
		t.Fatalf("b after a's stream closed: %v, %v", m, err)
	}
	g, err := c.Do(ctx, "GET", sem, nil)
	if err != nil || g.Status != 200 || len(g.Body["holders"].([]any)) != 1 {
		t.Fatalf("GET the semaphore: %v %v", g, err)
	}
	rel, err := c.Do(ctx, "POST", sem+":release", map[string]any{"leaseId": str(m, "leaseId")})
	if err != nil || rel.Status != 200 || rel.Body["wasHolder"] != true {
		t.Fatalf("release: %v %v", rel, err)
	}
	if m, err := b.Next(); err != nil || str(m, "status") != "STATUS_RELEASED" {
		t.Fatalf("b after its release: %v, %v", m, err)
	}
	if r, err := c.Do(ctx, "POST", sem+":tryAcquire", map[string]any{"permits": 2, "ttl": "10s"}); err != nil || r.Status != 400 || r.Code() != 9 {
		t.Fatalf("tryAcquire with another N: %v %v", r, err)
	}
}

func releaseErr(ctx context.Context, sems pb.SemaphoreServiceClient, sem, leaseID string) error {
	_, err := sems.ReleaseSemaphore(ctx, &pb.ReleaseSemaphoreRequest{Semaphore: sem, LeaseId: leaseID})
	return err
}

// dialAddr dials a gateway at addr in plaintext, closed at cleanup.
func dialAddr(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}
