package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/testenv/httpc"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestLockResumeOfNothingCreatesNothing: AcquireLock resuming a hold that
// was never issued, on a lock never used, answers LOST at once and leaves
// ZooKeeper as it was (it created the lock's directory).
func TestLockResumeOfNothingCreatesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := testenv.Conn(t)
	locks, leases := pb.NewLockServiceClient(cc), pb.NewLeaseServiceClient(cc)
	g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	truth, err := zkx.Dial(ctx, testenv.ZooKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	defer truth.Close()
	before := tree(t, truth.Conn())
	lk := name(t)
	s, err := locks.AcquireLock(ctx, &pb.AcquireLockRequest{Lock: lk, LeaseId: g.LeaseId, Resume: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); err != nil || r.Status != pb.AcquireLockResponse_STATUS_LOST || r.FencingToken != 0 {
		t.Fatalf("resume of a hold never issued: %v, %v; want LOST without a token", r, err)
	}
	// Only what the call could have made: other tests' leases may end meanwhile.
	added, _ := diff(before, tree(t, truth.Conn()))
	for _, p := range added {
		if strings.Contains(p, "/locks") {
			t.Errorf("the resume created %s", p)
		}
	}
}

// TestCheckSequencerSharedHolders: readers hold a lock together whatever
// their tokens, so the older reader's token is current although it is
// below highest_token: a resource of a read/write lock may not refuse
// every token below highest_token (only an exclusive lock's or an
// election's), as the docs said it may.
func TestCheckSequencerSharedHolders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	locks := pb.NewLockServiceClient(testenv.Conn(t))
	lk := name(t)
	var tokens []int64
	for range 2 {
		r, err := locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: lk, Mode: pb.LockMode_LOCK_MODE_SHARED, Ttl: durationpb.New(time.Minute)})
		if err != nil || !r.Acquired {
			t.Fatalf("a reader's TryAcquire: %v, %v", r, err)
		}
		tokens = append(tokens, r.FencingToken)
	}
	c, err := locks.CheckSequencer(ctx, &pb.CheckSequencerRequest{Lock: lk, FencingToken: tokens[0]})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Current || c.HighestToken != tokens[1] || tokens[0] >= tokens[1] {
		t.Fatalf("the older reader's token %d: %v; want current, with the newer reader's %d highest", tokens[0], c, tokens[1])
	}
}

// TestHTTPLockStreamEndReleases: an :acquire stream over HTTP under a
// client's lease (a PHP worker's) releases its hold when the client goes
// away: the next acquirer holds, and the lease lives on with nothing on
// the lock.
func TestHTTPLockStreamEndReleases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := httpc.Client{Base: testenv.HTTP(t)}
	locks, leases := pb.NewLockServiceClient(testenv.Conn(t)), pb.NewLeaseServiceClient(testenv.Conn(t))
	g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	lk := name(t)
	a, r, err := c.OpenLines(ctx, "POST", "/v1/locks/"+lk+":acquire", map[string]any{"leaseId": g.LeaseId})
	if err != nil || a == nil {
		t.Fatalf("acquire: %v %v", r, err)
	}
	if m, err := a.Next(); err != nil || str(m, "status") != "STATUS_HELD" {
		t.Fatalf("acquire: %v, %v", m, err)
	}
	b, _ := acquireUntil(t, ctx, locks, &pb.AcquireLockRequest{Lock: lk}, pb.AcquireLockResponse_STATUS_QUEUED)
	a.Close() // the PHP worker went away
	recvUntil(t, b, pb.AcquireLockResponse_STATUS_HELD)
	if _, err := leases.GetLease(ctx, &pb.GetLeaseRequest{LeaseId: g.LeaseId}); err != nil {
		t.Errorf("the client's lease after its stream ended: %v", err)
	}
	if r, err := locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: lk, LeaseId: g.LeaseId}); code(err) != codes.NotFound {
		t.Errorf("the client's lease still has a hold: %v, %v", r, err)
	}
}
