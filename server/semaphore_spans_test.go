package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// permitWorker takes a permit of semaphore sem (n permits) again and
// again until ctx ends, through one of two gateways and in one of the
// ways a client can, and gives it up through either (ReleaseSemaphore,
// Revoke, the stream's end, the lease's expiry), as lockWorker does.
func permitWorker(ctx context.Context, who, sem string, n int32, gws [2]*grpcPair, rng *rand.Rand, out *spans) {
	for ctx.Err() == nil {
		g, other := gws[rng.IntN(2)], gws[rng.IntN(2)]
		work := time.Duration(rng.IntN(30)) * time.Millisecond
		switch rng.IntN(3) {
		case 0, 1: // a stream, under its own lease or a client's
			var lease string
			expires := time.Now().Add(time.Hour)
			if rng.IntN(2) == 0 {
				gr, err := g.leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(5 * time.Second)})
				if err != nil {
					continue
				}
				lease, expires = gr.LeaseId, gr.ExpiresAt.AsTime()
			}
			sctx, stop := context.WithCancel(ctx)
			s, err := g.sems.AcquireSemaphore(sctx, &pb.AcquireSemaphoreRequest{Semaphore: sem, Permits: n, LeaseId: lease})
			if err != nil {
				stop()
				continue
			}
			var held *pb.AcquireSemaphoreResponse
			for held == nil {
				r, err := s.Recv()
				if err != nil || r.Status == pb.AcquireSemaphoreResponse_STATUS_LOST || r.Status == pb.AcquireSemaphoreResponse_STATUS_RELEASED {
					break
				}
				if r.Status == pb.AcquireSemaphoreResponse_STATUS_HELD {
					held = r
				}
			}
			if held == nil {
				stop()
				continue
			}
			sp := span{who: who, how: "stream", token: held.Token, start: time.Now()}
			time.Sleep(work)
			sp.end = minTime(time.Now(), expires)
			switch {
			case lease == "":
			case rng.IntN(2) == 0:
				sp.how = "stream+lease released"
				_, _ = other.sems.ReleaseSemaphore(ctx, &pb.ReleaseSemaphoreRequest{Semaphore: sem, LeaseId: lease})
			default:
				sp.how = "stream+lease revoked"
				_, _ = other.leases.Revoke(ctx, &pb.RevokeRequest{LeaseId: lease})
			}
			stop()
			out.add(sp)
			if lease != "" {
				_, _ = g.leases.Revoke(ctx, &pb.RevokeRequest{LeaseId: lease})
			}
		case 2: // TryAcquire with a short ttl: released, or left to expire
			r, err := g.sems.TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: sem, Permits: n, Ttl: durationpb.New(time.Second)})
			if err != nil || !r.Acquired {
				time.Sleep(work)
				continue
			}
			sp := span{who: who, how: "try+ttl", token: r.Token, start: time.Now()}
			expires := r.LeaseExpiresAt.AsTime()
			if rng.IntN(3) == 0 {
				sp.end = expires
				out.add(sp)
				continue
			}
			time.Sleep(work)
			sp.end = minTime(time.Now(), expires)
			_, _ = other.sems.ReleaseSemaphore(ctx, &pb.ReleaseSemaphoreRequest{Semaphore: sem, LeaseId: r.LeaseId})
			out.add(sp)
		}
	}
}

// TestPermitSpansAcrossGateways: workers take permits of one semaphore of
// 2 through two replicas of one root, by streams and TryAcquire, and give
// them up through either replica, by release, revoke, stream end or lease
// expiry: never more than 2 held at once as their clients saw them.
func TestPermitSpansAcrossGateways(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	root := "/" + name(t)
	var gws [2]*grpcPair
	for i := range gws {
		cc := startReplica(t, root, fmt.Sprintf("r%d", i)).cc
		gws[i] = &grpcPair{locks: pb.NewLockServiceClient(cc), sems: pb.NewSemaphoreServiceClient(cc), leases: pb.NewLeaseServiceClient(cc)}
	}
	var out spans
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			permitWorker(ctx, fmt.Sprintf("w%d", i), "s", 2, gws, rand.New(rand.NewPCG(uint64(i), 14)), &out)
		}()
	}
	wg.Wait()
	if len(out.all) < 20 {
		t.Fatalf("only %d permits in the run: too few to say anything", len(out.all))
	}
	for _, e := range append(out.errs, permitViolations(out.all, 2)...) {
		t.Error(e)
	}
	t.Logf("%d permits", len(out.all))
}
