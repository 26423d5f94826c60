package server_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

// handlerEnds records how each RPC's handler ended, by method: a client's
// deadline ends its own call on time whatever the gateway does, so the
// test watches the handlers.
type handlerEnds struct {
	armed atomic.Bool // record from now on
	mu    sync.Mutex
	by    map[string]chan error
}

func (h *handlerEnds) ch(method string) chan error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.by[method] == nil {
		h.by[method] = make(chan error, 16)
	}
	return h.by[method]
}

func (h *handlerEnds) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if h.armed.Load() {
		h.ch(info.FullMethod) <- err
	}
	return resp, err
}

func (h *handlerEnds) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, ss)
	if h.armed.Load() {
		h.ch(info.FullMethod) <- err
	}
	return err
}

// call makes an RPC with do and returns once its handler has ended too,
// with the handler's error, for zktest.CheckDeadlines to judge: a
// handler's context ends with the client's deadline, as DeadlineExceeded,
// or as Canceled when the client's cancellation of the call reaches the
// gateway first (both are the deadline's error here).
func (h *handlerEnds) call(method string, do func(ctx context.Context) error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_ = do(ctx)
		select {
		case err := <-h.ch(method):
			if c := status.Code(err); c == codes.DeadlineExceeded || c == codes.Canceled {
				return context.DeadlineExceeded
			}
			return err
		case <-time.After(time.Minute):
			return errors.New("the handler did not end within a minute")
		}
	}
}

// TestHandlersHonourDeadlineWhileZooKeeperStalls: while every byte between
// a gateway and ZooKeeper is stalled (connections open, nothing answers;
// the session timeout is long, so go-zookeeper does not notice), each
// handler that needs ZooKeeper returns within the call's deadline + 50 ms
// with DEADLINE_EXCEEDED: unary calls, and streams before their first
// message. (A client's own deadline ends its call on time anyway; a handler
// that kept waiting held its goroutine, its stream's lease and a graceful
// stop.) Once ZooKeeper answers again, the gateway serves again.
func TestHandlersHonourDeadlineWhileZooKeeperStalls(t *testing.T) {
	ctx := context.Background()
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	h := &handlerEnds{by: map[string]chan error{}}
	g, err := server.New(ctx, sess, server.WithRoot(lay.Root))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- server.Serve(sctx, g, server.Listeners{GRPC: lis}, 5*time.Second,
			grpc.ChainUnaryInterceptor(h.unary), grpc.ChainStreamInterceptor(h.stream))
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		g.Close()
	})
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	leases, reg := pb.NewLeaseServiceClient(cc), pb.NewRegistryServiceClient(cc)
	el, bar := pb.NewElectionServiceClient(cc), pb.NewBarrierServiceClient(cc)
	sems, in := pb.NewSemaphoreServiceClient(cc), pb.NewInspectServiceClient(cc)

	grant := func() string {
		t.Helper()
		r, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetLeaseId()
	}
	revoked, held := grant(), grant()
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "g", MemberId: "p", Value: "v", Persistent: true}); err != nil {
		t.Fatal(err)
	}
	look, err := reg.Lookup(ctx, &pb.LookupRequest{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopCampaign := context.WithCancel(ctx)
	defer stopCampaign()
	if err := recvErr(el.Campaign(cctx, &pb.CampaignRequest{Election: "e", Value: "v", LeaseId: held})); err != nil {
		t.Fatal(err)
	}
	// The Resign below is of another election: its delete, sent before
	// its deadline, may still be applied once ZooKeeper answers (its
	// outcome is unknown), and e must keep its leader for the check after
	// the stall.
	if err := recvErr(el.Campaign(cctx, &pb.CampaignRequest{Election: "r", Value: "v", LeaseId: held})); err != nil {
		t.Fatal(err)
	}
	if err := recvErr(bar.AwaitBarrier(ctx, &pb.AwaitBarrierRequest{Barrier: "done", Threshold: 1, ParticipantId: "p", LeaseId: held})); err != nil {
		t.Fatal(err)
	}
	locks := pb.NewLockServiceClient(cc)
	taken, err := locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: "l", LeaseId: held})
	if err != nil || !taken.GetAcquired() {
		t.Fatalf("TryAcquire: %v, %v", taken, err)
	}

	// A Campaign under a lease of its own (no lease_id), whose deadline
	// passes while ZooKeeper stalls: its handler ends at once, revoking
	// that lease in the background.
	sctx, stopStream := context.WithTimeout(ctx, time.Second)
	defer stopStream()
	streamEnd, _ := sctx.Deadline()
	if err := recvErr(el.Campaign(sctx, &pb.CampaignRequest{Election: "own", Value: "v", Ttl: durationpb.New(10 * time.Second)})); err != nil {
		t.Fatal(err)
	}

	h.armed.Store(true)
	px.Stall()
	const svc = "/zkcoord.v1."
	select {
	case err := <-h.ch(svc + "ElectionService/Campaign"):
		if took := time.Since(streamEnd); took > zktest.Slack {
			t.Errorf("Campaign under its own lease: its handler ended %v after the deadline: %v", took.Round(time.Millisecond), err)
		}
		t.Logf("Campaign under its own lease: %v, its handler ended %v after the deadline", err, time.Since(streamEnd).Round(time.Millisecond))
	case <-time.After(time.Until(streamEnd) + 500*time.Millisecond):
		t.Errorf("Campaign under its own lease: its handler still running 500 ms after the deadline")
	}
	late := zktest.CheckDeadlines(t, 200*time.Millisecond, []zktest.DeadlineCall{
		{Name: "Revoke", Call: h.call(svc+"LeaseService/Revoke", func(ctx context.Context) error {
			_, err := leases.Revoke(ctx, &pb.RevokeRequest{LeaseId: revoked})
			return err
		})},
		{Name: "GetLease", Call: h.call(svc+"LeaseService/GetLease", func(ctx context.Context) error {
			_, err := leases.GetLease(ctx, &pb.GetLeaseRequest{LeaseId: held})
			return err
		})},
		{Name: "Register in a new group", Call: h.call(svc+"RegistryService/Register", func(ctx context.Context) error {
			_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "new", MemberId: "p", Value: "v", Persistent: true})
			return err
		})},
		{Name: "Deregister", Call: h.call(svc+"RegistryService/Deregister", func(ctx context.Context) error {
			_, err := reg.Deregister(ctx, &pb.DeregisterRequest{Group: "g", MemberId: "p"})
			return err
		})},
		{Name: "LINEARIZABLE Lookup", Call: h.call(svc+"RegistryService/Lookup", func(ctx context.Context) error {
			_, err := reg.Lookup(ctx, &pb.LookupRequest{Group: "g", Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
			return err
		})},
		{Name: "WatchGroup resuming ahead of the cache", Call: h.call(svc+"RegistryService/WatchGroup", func(ctx context.Context) error {
			return recvErr(reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: "g", StartRevision: look.GetRevision() + 1_000_000}))
		})},
		{Name: "Watch creating a watch resuming ahead of the cache", Call: h.call(svc+"RegistryService/Watch", func(ctx context.Context) error {
			w, err := reg.Watch(ctx)
			if err == nil {
				err = w.Send(&pb.WatchRequest{Request: &pb.WatchRequest_Create{Create: &pb.WatchCreateRequest{Group: "g", StartRevision: look.GetRevision() + 1_000_000}}})
			}
			for err == nil {
				_, err = w.Recv()
			}
			return err
		})},
		{Name: "Campaign", Call: h.call(svc+"ElectionService/Campaign", func(ctx context.Context) error {
			return recvErr(el.Campaign(ctx, &pb.CampaignRequest{Election: "other", Value: "v", LeaseId: held}))
		})},
		{Name: "Resign", Call: h.call(svc+"ElectionService/Resign", func(ctx context.Context) error {
			_, err := el.Resign(ctx, &pb.ResignRequest{Election: "r", LeaseId: held})
			return err
		})},
		{Name: "Leader", Call: h.call(svc+"ElectionService/Leader", func(ctx context.Context) error {
			_, err := el.Leader(ctx, &pb.LeaderRequest{Election: "e"})
			return err
		})},
		{Name: "AwaitBarrier", Call: h.call(svc+"BarrierService/AwaitBarrier", func(ctx context.Context) error {
			return recvErr(bar.AwaitBarrier(ctx, &pb.AwaitBarrierRequest{Barrier: "b", Threshold: 2, ParticipantId: "p", LeaseId: held}))
		})},
		{Name: "LeaveBarrier", Call: h.call(svc+"BarrierService/LeaveBarrier", func(ctx context.Context) error {
			_, err := bar.LeaveBarrier(ctx, &pb.LeaveBarrierRequest{Barrier: "done", ParticipantId: "p", LeaseId: held})
			return err
		})},
		{Name: "JoinBarrier", Call: h.call(svc+"BarrierService/JoinBarrier", func(ctx context.Context) error {
			_, err := bar.JoinBarrier(ctx, &pb.JoinBarrierRequest{Barrier: "joined", Threshold: 2, ParticipantId: "p", LeaseId: held})
			return err
		})},
		{Name: "GetBarrier", Call: h.call(svc+"BarrierService/GetBarrier", func(ctx context.Context) error {
			_, err := bar.GetBarrier(ctx, &pb.GetBarrierRequest{Barrier: "done"})
			return err
		})},
		{Name: "GetBarrier with a wait", Call: h.call(svc+"BarrierService/GetBarrier", func(ctx context.Context) error {
			_, err := bar.GetBarrier(ctx, &pb.GetBarrierRequest{Barrier: "done", AfterRevision: 1, Wait: durationpb.New(time.Minute)})
			return err
		})},
		{Name: "Leader with a wait", Call: h.call(svc+"ElectionService/Leader", func(ctx context.Context) error {
			_, err := el.Leader(ctx, &pb.LeaderRequest{Election: "e", AfterRevision: 1, Wait: durationpb.New(time.Minute)})
			return err
		})},
		{Name: "LINEARIZABLE Lookup with a wait", Call: h.call(svc+"RegistryService/Lookup", func(ctx context.Context) error {
			_, err := reg.Lookup(ctx, &pb.LookupRequest{Group: "g", Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE,
				AfterRevision: look.GetRevision(), Wait: durationpb.New(time.Minute)})
			return err
		})},
		// A cached group needs no ZooKeeper: the wait ends before the
		// deadline, with the cache's answer.
		{Name: "Lookup with a wait", MayPass: true, Call: h.call(svc+"RegistryService/Lookup", func(ctx context.Context) error {
			_, err := reg.Lookup(ctx, &pb.LookupRequest{Group: "g", AfterRevision: look.GetRevision(), Wait: durationpb.New(time.Minute)})
			return err
		})},
		{Name: "AwaitGroup", Call: h.call(svc+"BarrierService/AwaitGroup", func(ctx context.Context) error {
			return recvErr(bar.AwaitGroup(ctx, &pb.AwaitGroupRequest{Group: "g", MinMembers: 100}))
		})},
		{Name: "Acquire", Call: h.call(svc+"LockService/AcquireLock", func(ctx context.Context) error {
			return recvErr(locks.AcquireLock(ctx, &pb.AcquireLockRequest{Lock: "other", LeaseId: held}))
		})},
		{Name: "TryAcquire", Call: h.call(svc+"LockService/TryAcquireLock", func(ctx context.Context) error {
			_, err := locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: "tried", LeaseId: held})
			return err
		})},
		{Name: "Release", Call: h.call(svc+"LockService/ReleaseLock", func(ctx context.Context) error {
			_, err := locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: "l", LeaseId: held, Hold: taken.GetHold()})
			return err
		})},
		{Name: "GetLock", Call: h.call(svc+"LockService/GetLock", func(ctx context.Context) error {
			_, err := locks.GetLock(ctx, &pb.GetLockRequest{Lock: "l"})
			return err
		})},
		{Name: "CheckSequencer of a lock", Call: h.call(svc+"LockService/CheckSequencer", func(ctx context.Context) error {
			_, err := locks.CheckSequencer(ctx, &pb.CheckSequencerRequest{Lock: "l", FencingToken: taken.GetFencingToken()})
			return err
		})},
		{Name: "CheckSequencer of an election", Call: h.call(svc+"LockService/CheckSequencer", func(ctx context.Context) error {
			_, err := locks.CheckSequencer(ctx, &pb.CheckSequencerRequest{Election: "e", FencingToken: 1})
			return err
		})},
		{Name: "AcquireSemaphore", Call: h.call(svc+"SemaphoreService/AcquireSemaphore", func(ctx context.Context) error {
			return recvErr(sems.AcquireSemaphore(ctx, &pb.AcquireSemaphoreRequest{Semaphore: "s", Permits: 1, LeaseId: held}))
		})},
		{Name: "TryAcquireSemaphore", Call: h.call(svc+"SemaphoreService/TryAcquireSemaphore", func(ctx context.Context) error {
			_, err := sems.TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: "s", Permits: 1, LeaseId: held})
			return err
		})},
		{Name: "ReleaseSemaphore", Call: h.call(svc+"SemaphoreService/ReleaseSemaphore", func(ctx context.Context) error {
			_, err := sems.ReleaseSemaphore(ctx, &pb.ReleaseSemaphoreRequest{Semaphore: "s", LeaseId: held})
			return err
		})},
		{Name: "GetSemaphore", Call: h.call(svc+"SemaphoreService/GetSemaphore", func(ctx context.Context) error {
			_, err := sems.GetSemaphore(ctx, &pb.GetSemaphoreRequest{Semaphore: "s"})
			return err
		})},
		// The group names and g's view are cached: ListGroups may answer.
		{Name: "ListGroups", MayPass: true, Call: h.call(svc+"InspectService/ListGroups", func(ctx context.Context) error {
			_, err := in.ListGroups(ctx, &pb.ListGroupsRequest{})
			return err
		})},
		{Name: "ListElections", Call: h.call(svc+"InspectService/ListElections", func(ctx context.Context) error {
			_, err := in.ListElections(ctx, &pb.ListElectionsRequest{})
			return err
		})},
		{Name: "ListBarriers", Call: h.call(svc+"InspectService/ListBarriers", func(ctx context.Context) error {
			_, err := in.ListBarriers(ctx, &pb.ListBarriersRequest{})
			return err
		})},
		{Name: "ListLocks", Call: h.call(svc+"InspectService/ListLocks", func(ctx context.Context) error {
			_, err := in.ListLocks(ctx, &pb.ListLocksRequest{})
			return err
		})},
		{Name: "ListSemaphores", Call: h.call(svc+"InspectService/ListSemaphores", func(ctx context.Context) error {
			_, err := in.ListSemaphores(ctx, &pb.ListSemaphoresRequest{})
			return err
		})},
		{Name: "ListLeases", Call: h.call(svc+"InspectService/ListLeases", func(ctx context.Context) error {
			_, err := in.ListLeases(ctx, &pb.ListLeasesRequest{})
			return err
		})},
		{Name: "ListReplicas", Call: h.call(svc+"InspectService/ListReplicas", func(ctx context.Context) error {
			_, err := in.ListReplicas(ctx, &pb.ListReplicasRequest{})
			return err
		})},
	})

	px.Restore()
	late()
	zktest.Eventually(t, 10*time.Second, func() bool {
		_, err := reg.Lookup(ctx, &pb.LookupRequest{Group: "g", Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
		return err == nil
	}, "LINEARIZABLE Lookup after the stall")
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "new", MemberId: "p", Value: "v", Persistent: true}); err != nil {
		t.Errorf("Register after the stall: %v", err)
	}
	if r, err := el.Leader(ctx, &pb.LeaderRequest{Election: "e"}); err != nil || r.GetLeader() == nil {
		t.Errorf("Leader after the stall: %v, %v", r, err)
	}
	if _, err := leases.Revoke(ctx, &pb.RevokeRequest{LeaseId: held}); err != nil {
		t.Errorf("Revoke after the stall: %v", err)
	}
}
