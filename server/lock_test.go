package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

type lockStream = grpc.ServerStreamingClient[pb.AcquireLockResponse]

// acquireUntil opens an Acquire stream and receives until a message of
// status want.
func acquireUntil(t *testing.T, ctx context.Context, locks pb.LockServiceClient, req *pb.AcquireLockRequest, want pb.AcquireLockResponse_Status) (lockStream, *pb.AcquireLockResponse) {
	t.Helper()
	s, err := locks.AcquireLock(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return s, recvUntil(t, s, want)
}

func recvUntil(t *testing.T, s lockStream, want pb.AcquireLockResponse_Status) *pb.AcquireLockResponse {
	t.Helper()
	for {
		r, err := s.Recv()
		if err != nil {
			t.Fatalf("Acquire: %v before %v", err, want)
		}
		if r.Status == want {
			return r
		}
	}
}

// holdsOf reads the lock's holders and waiters: node → holds (waiters: 0).
func holdsOf(t *testing.T, locks pb.LockServiceClient, name string) map[string]int32 {
	t.Helper()
	r, err := locks.GetLock(context.Background(), &pb.GetLockRequest{Lock: name})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int32{}
	for _, h := range r.Holders {
		out[h.Node] = h.Holds
	}
	for _, w := range r.Waiters {
		out[w.Node] = 0
	}
	return out
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
	}
}

// TestLockStreamEndReleases: what releases what. A stream without a lease
// runs under a lease of its own, revoked when it ends: the next waiter
// holds at once. A stream under a client's lease releases only its own
// hold when it ends (the lease's other holds stay; a waiter's node goes).
// A hold taken with TryAcquire lasts until Release or the lease's end.
func TestLockStreamEndReleases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := testenv.Conn(t)
	locks, leases := pb.NewLockServiceClient(cc), pb.NewLeaseServiceClient(cc)
	lk := name(t)

	// The stream's own lease.
	actx, stopA := context.WithCancel(ctx)
	_, ha := acquireUntil(t, actx, locks, &pb.AcquireLockRequest{Lock: lk}, pb.AcquireLockResponse_STATUS_HELD)
	b, _ := acquireUntil(t, ctx, locks, &pb.AcquireLockRequest{Lock: lk}, pb.AcquireLockResponse_STATUS_QUEUED)
	stopA()
	hb := recvUntil(t, b, pb.AcquireLockResponse_STATUS_HELD)
	if hb.FencingToken <= ha.FencingToken {
		t.Fatalf("token %d after %d", hb.FencingToken, ha.FencingToken)
	}
	if _, err := leases.GetLease(ctx, &pb.GetLeaseRequest{LeaseId: ha.LeaseId}); status.Code(err) != codes.NotFound {
		t.Errorf("the ended stream's own lease: %v, want NotFound", err)
	}

	// A client's lease: the stream's end takes its own hold only.
	g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	lk2 := lk + ".client"
	sctx, stopS := context.WithCancel(ctx)
	_, hs := acquireUntil(t, sctx, locks, &pb.AcquireLockRequest{Lock: lk2, LeaseId: g.LeaseId}, pb.AcquireLockResponse_STATUS_HELD)
	try, err := locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: lk2, LeaseId: g.LeaseId, Reentrant: true})
	if err != nil || !try.Acquired || try.Holds != 2 || try.FencingToken != hs.FencingToken {
		t.Fatalf("reentrant TryAcquire: %v, %v", try, err)
	}
	stopS()
	eventually(t, func() bool { return holdsOf(t, locks, lk2)[hs.Node] == 1 }, "the stream's hold released, the try's kept")
	// A waiter's stream that ends leaves the queue.
	wctx, stopW := context.WithCancel(ctx)
	_, hw := acquireUntil(t, wctx, locks, &pb.AcquireLockRequest{Lock: lk2, Mode: pb.LockMode_LOCK_MODE_SHARED}, pb.AcquireLockResponse_STATUS_QUEUED)
	if hw.Position != 1 || hw.Mode != pb.LockMode_LOCK_MODE_SHARED {
		t.Fatalf("a reader behind a writer: %v", hw)
	}
	stopW()
	eventually(t, func() bool { return len(holdsOf(t, locks, lk2)) == 1 }, "the waiter's node removed")
	if r, err := locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: lk2, LeaseId: g.LeaseId}); err != nil || r.Holds != 0 {
		t.Fatalf("Release of the try's hold: %v, %v", r, err)
	}
	if r, err := locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: lk2, LeaseId: g.LeaseId}); status.Code(err) != codes.NotFound {
		t.Fatalf("Release of nothing: %v, %v; want NotFound", r, err)
	}

	// TryAcquire with a ttl: the lease is the call's; its end releases.
	t1, err := locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: lk + ".ttl", Ttl: durationpb.New(time.Second)})
	if err != nil || !t1.Acquired || t1.LeaseId == "" || t1.LeaseExpiresAt == nil {
		t.Fatalf("TryAcquire with a ttl: %v, %v", t1, err)
	}
	t2, err := locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: lk + ".ttl", Ttl: durationpb.New(time.Minute)})
	if err != nil || t2.Acquired || len(t2.Holders) != 1 || t2.Holders[0].Node != t1.Node {
		t.Fatalf("TryAcquire of a held lock: %v, %v", t2, err)
	}
	if t2.LeaseId != "" {
		t.Errorf("TryAcquire that did not acquire names lease %s, which it revoked", t2.LeaseId)
	}
	if st, err := leases.GetLease(ctx, &pb.GetLeaseRequest{LeaseId: t1.LeaseId}); err != nil || st.GetTtl().AsDuration() != time.Second {
		t.Errorf("the holder's lease: %v, %v", st, err)
	}
	_, h := acquireUntil(t, ctx, locks, &pb.AcquireLockRequest{Lock: lk + ".ttl"}, pb.AcquireLockResponse_STATUS_HELD)
	if h.FencingToken <= t1.FencingToken {
		t.Fatalf("token %d after the lapsed lease's %d", h.FencingToken, t1.FencingToken)
	}
}

// TestCheckSequencerGRPC: CheckSequencer of a lock's and an election's
// tokens, current and stale, through the service.
func TestCheckSequencerGRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := testenv.Conn(t)
	locks, el := pb.NewLockServiceClient(cc), pb.NewElectionServiceClient(cc)
	lk := name(t)
	r, err := locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: lk, Ttl: durationpb.New(time.Minute)})
	if err != nil || !r.Acquired {
		t.Fatal(r, err)
	}
	check := func(req *pb.CheckSequencerRequest, want bool) *pb.CheckSequencerResponse {
		t.Helper()
		c, err := locks.CheckSequencer(ctx, req)
		if err != nil || c.Current != want || c.Revision == 0 {
			t.Fatalf("CheckSequencer(%v) = %v, %v; want current %v", req, c, err, want)
		}
		return c
	}
	if c := check(&pb.CheckSequencerRequest{Lock: lk, FencingToken: r.FencingToken}, true); c.HighestToken != r.FencingToken {
		t.Fatalf("highest %d, want %d", c.HighestToken, r.FencingToken)
	}
	if _, err := locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: lk, LeaseId: r.LeaseId, Hold: r.Hold}); err != nil {
		t.Fatal(err)
	}
	check(&pb.CheckSequencerRequest{Lock: lk, FencingToken: r.FencingToken}, false)

	cctx, stop := context.WithCancel(ctx)
	camp, err := el.Campaign(cctx, &pb.CampaignRequest{Election: lk, Value: "v"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := camp.Recv()
	if err != nil || e.Status != pb.CampaignResponse_STATUS_ELECTED {
		t.Fatal(e, err)
	}
	check(&pb.CheckSequencerRequest{Election: lk, FencingToken: e.FencingToken}, true)
	check(&pb.CheckSequencerRequest{Lock: lk, FencingToken: e.FencingToken}, false) // a lock is not an election
	stop()
	eventually(t, func() bool {
		c, err := locks.CheckSequencer(ctx, &pb.CheckSequencerRequest{Election: lk, FencingToken: e.FencingToken})
		return err == nil && !c.Current
	}, "the term's token stale once its stream ended")
}

// TestLockHostile: malformed lock requests and requests for holds the
// caller's lease does not have are refused with the right code, and change
// nothing in ZooKeeper.
func TestLockHostile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A gateway of its own: the tree is compared under its root, where no
	// other test's lease ends meanwhile.
	sess, lay := zktest.Session(t)
	cc := dialAddr(t, testenv.ServeAddr(t, sess, server.WithRoot(lay.Root)))
	locks, leases := pb.NewLockServiceClient(cc), pb.NewLeaseServiceClient(cc)
	lk := name(t)
	owner, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	intruder, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	held, err := locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: lk, LeaseId: owner.LeaseId})
	if err != nil || !held.Acquired {
		t.Fatal(held, err)
	}
	truth, err := zkx.Dial(ctx, testenv.ZooKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	defer truth.Close()
	before := tree(t, truth.Conn())

	inv := codes.InvalidArgument
	calls := map[string]struct {
		code codes.Code
		do   func() error
	}{}
	add := func(what string, code codes.Code, do func() error) {
		calls[what] = struct {
			code codes.Code
			do   func() error
		}{code, do}
	}
	for _, n := range badNames {
		q := fmt.Sprintf("%q", n)
		add("Acquire "+q, inv, func() error { return first(locks.AcquireLock(ctx, &pb.AcquireLockRequest{Lock: n})) })
		add("TryAcquire "+q, inv, func() error {
			_, err := locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: n, LeaseId: owner.LeaseId})
			return err
		})
		add("Release "+q, inv, func() error {
			_, err := locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: n, LeaseId: owner.LeaseId})
			return err
		})
		add("GetLock "+q, inv, func() error { _, err := locks.GetLock(ctx, &pb.GetLockRequest{Lock: n}); return err })
		add("CheckSequencer lock "+q, inv, func() error {
			_, err := locks.CheckSequencer(ctx, &pb.CheckSequencerRequest{Lock: n, FencingToken: 1})
			return err
		})
		add("CheckSequencer election "+q, inv, func() error {
			_, err := locks.CheckSequencer(ctx, &pb.CheckSequencerRequest{Election: n, FencingToken: 1})
			return err
		})
	}
	add("Acquire mode 7", inv, func() error { return first(locks.AcquireLock(ctx, &pb.AcquireLockRequest{Lock: lk, Mode: 7})) })
	add("Acquire resume without a lease", inv, func() error {
		return first(locks.AcquireLock(ctx, &pb.AcquireLockRequest{Lock: lk, Resume: held.Hold}))
	})
	add("Release hold ../", inv, func() error {
		_, err := locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: lk, LeaseId: owner.LeaseId, Hold: "../" + strings.Repeat("a", 13)})
		return err
	})
	add("TryAcquire without a lease", inv, func() error { _, err := locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: lk}); return err })
	add("CheckSequencer token 0", inv, func() error {
		_, err := locks.CheckSequencer(ctx, &pb.CheckSequencerRequest{Lock: lk})
		return err
	})
	add("Release with another lease", codes.NotFound, func() error {
		_, err := locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: lk, LeaseId: intruder.LeaseId})
		return err
	})
	add("Release another hold with another lease", codes.NotFound, func() error {
		_, err := locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: lk, LeaseId: intruder.LeaseId, Hold: held.Hold})
		return err
	})
	add("Release a hold the lease has not", codes.NotFound, func() error {
		_, err := locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: lk, LeaseId: owner.LeaseId, Hold: "0123456789abcdef"})
		return err
	})
	add("TryAcquire again without reentrant", codes.AlreadyExists, func() error {
		_, err := locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: lk, LeaseId: owner.LeaseId})
		return err
	})
	add("Acquire again without reentrant", codes.AlreadyExists, func() error {
		return first(locks.AcquireLock(ctx, &pb.AcquireLockRequest{Lock: lk, LeaseId: owner.LeaseId}))
	})
	add("Acquire in the other mode", codes.FailedPrecondition, func() error {
		return first(locks.AcquireLock(ctx, &pb.AcquireLockRequest{Lock: lk, LeaseId: owner.LeaseId, Mode: pb.LockMode_LOCK_MODE_SHARED, Reentrant: true}))
	})
	add("Acquire under an unknown lease", codes.NotFound, func() error {
		return first(locks.AcquireLock(ctx, &pb.AcquireLockRequest{Lock: lk, LeaseId: strings.Repeat("0", 32)}))
	})
	for what, c := range calls {
		if err := c.do(); status.Code(err) != c.code {
			t.Errorf("%s: %v, want %v", what, err, c.code)
		}
	}
	after := tree(t, truth.Conn())
	if added, removed := diff(before, after); len(under(lay.Root, added)) > 0 || len(under(lay.Root, removed)) > 0 {
		t.Errorf("ZooKeeper's tree changed: added %v, removed %v", under(lay.Root, added), under(lay.Root, removed))
	}
	if c, err := locks.CheckSequencer(ctx, &pb.CheckSequencerRequest{Lock: lk, FencingToken: held.FencingToken}); err != nil || !c.Current {
		t.Errorf("the owner's hold after the hostile calls: %v, %v", c, err)
	}
	t.Logf("%d hostile lock calls refused as expected; ZooKeeper's tree unchanged", len(calls))
}
