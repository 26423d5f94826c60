package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// span is one hold as its client saw it: from the answer that said it
// held (start) until it stopped acting on it (end: just before it asked
// for the release, or the owning lease's announced expiry, whichever is
// first). A correct lock never lets two spans that exclude each other
// overlap, whatever the gateways the calls go through.
type span struct {
	who        string
	how        string
	token      int64
	shared     bool
	start, end time.Time
}

// spans collects the workers' spans and the violations they saw on the
// spot (a check that answered wrong).
type spans struct {
	mu   sync.Mutex
	all  []span
	errs []string
}

func (s *spans) add(sp span) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, sp)
}

func (s *spans) errorf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

// excludes reports whether a and b may not hold at once.
func excludes(a, b span) bool { return !a.shared || !b.shared }

// lockViolations checks spans of one lock: no two that exclude each other
// overlap, and a hold's token is above every earlier hold's that it
// excludes (the token rule of the lock workload's checker).
func lockViolations(all []span) []string {
	slices.SortFunc(all, func(a, b span) int { return a.start.Compare(b.start) })
	var out []string
	for i, b := range all {
		for _, a := range all[:i] {
			if a.token == b.token {
				continue // the same node (reentrant holds)
			}
			if excludes(a, b) && b.start.Before(a.end) {
				out = append(out, fmt.Sprintf("%s (%s, token %d) told held at %s while %s (%s, token %d) held until %s",
					b.who, b.how, b.token, b.start.Format("15:04:05.000"), a.who, a.how, a.token, a.end.Format("15:04:05.000")))
			}
			if excludes(a, b) && !a.end.After(b.start) && b.token <= a.token {
				out = append(out, fmt.Sprintf("%s's token %d after %s's %d", b.who, b.token, a.who, a.token))
			}
		}
	}
	return out
}

// permitViolations checks spans of one semaphore of n permits: at no time
// more than n of them.
func permitViolations(all []span, n int) []string {
	var out []string
	for _, b := range all {
		live := 0
		for _, a := range all {
			if !a.start.After(b.start) && b.start.Before(a.end) {
				live++
			}
		}
		if live > n {
			out = append(out, fmt.Sprintf("%d permits held at %s (%s, %s)", live, b.start.Format("15:04:05.000"), b.who, b.how))
		}
	}
	return out
}

// lockWorker takes lock lk again and again until ctx ends, each time
// through one of two gateways and in one of the ways a client can
// (a stream under its own lease or a client's, TryAcquire with a ttl or a
// lease, reentrant or not), and gives it up through the other gateway or
// the same (ReleaseLock, Revoke, the stream's end, the lease's expiry).
// While it holds, CheckSequencer through the other gateway must say
// current; after a release or revoke returns, not current.
func lockWorker(ctx context.Context, who, lk string, shared bool, gws [2]*grpcPair, rng *rand.Rand, out *spans) {
	mode := pb.LockMode_LOCK_MODE_EXCLUSIVE
	if shared {
		mode = pb.LockMode_LOCK_MODE_SHARED
	}
	// check asks g whether token is current; a hold whose lease may have
	// ended by the answer (its expiry close) is not held to current.
	check := func(g *grpcPair, token int64, want bool, when string, expires ...time.Time) {
		c, err := g.locks.CheckSequencer(ctx, &pb.CheckSequencerRequest{Lock: lk, FencingToken: token})
		if len(expires) > 0 && time.Now().Add(100*time.Millisecond).After(expires[0]) {
			return
		}
		if err != nil {
			// Not at the run's end, whose deadline the gateway may see first.
			if dl, _ := ctx.Deadline(); time.Until(dl) > time.Second {
				out.errorf("%s: CheckSequencer %s: %v", who, when, err)
			}
			return
		}
		if c.Current != want {
			out.errorf("%s: CheckSequencer of token %d %s: current %v, want %v", who, token, when, c.Current, want)
		}
	}
	for ctx.Err() == nil {
		g, other := gws[rng.IntN(2)], gws[rng.IntN(2)]
		work := time.Duration(rng.IntN(30)) * time.Millisecond
		switch how := rng.IntN(4); how {
		case 0: // a stream under its own lease; it ends by closing
			sctx, stop := context.WithCancel(ctx)
			s, err := g.locks.AcquireLock(sctx, &pb.AcquireLockRequest{Lock: lk, Mode: mode})
			if err != nil {
				stop()
				continue
			}
			held, err := recvHeld(s)
			if err != nil {
				stop()
				continue
			}
			sp := span{who: who, how: "stream", token: held.FencingToken, shared: shared, start: time.Now()}
			check(other, sp.token, true, "while held")
			time.Sleep(work)
			sp.end = time.Now()
			stop()
			out.add(sp)
		case 1: // a stream under a client's lease; it ends with ReleaseLock or Revoke
			gr, err := g.leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(5 * time.Second)})
			if err != nil {
				continue
			}
			sctx, stop := context.WithCancel(ctx)
			s, err := g.locks.AcquireLock(sctx, &pb.AcquireLockRequest{Lock: lk, Mode: mode, LeaseId: gr.LeaseId})
			if err != nil {
				stop()
				continue
			}
			held, err := recvHeld(s)
			if err != nil {
				stop()
				continue
			}
			sp := span{who: who, how: "stream+lease", token: held.FencingToken, shared: shared, start: time.Now()}
			check(other, sp.token, true, "while held")
			time.Sleep(work)
			sp.end = minTime(time.Now(), gr.ExpiresAt.AsTime())
			if rng.IntN(2) == 0 {
				_, err = other.locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: lk, LeaseId: gr.LeaseId, Hold: held.Hold})
			} else {
				_, err = other.leases.Revoke(ctx, &pb.RevokeRequest{LeaseId: gr.LeaseId})
			}
			if err == nil {
				check(gws[rng.IntN(2)], sp.token, false, "after its release returned")
			}
			stop()
			out.add(sp)
			_, _ = g.leases.Revoke(ctx, &pb.RevokeRequest{LeaseId: gr.LeaseId})
		case 2: // TryAcquire with a short ttl: released, or left to expire
			r, err := g.locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: lk, Mode: mode, Ttl: durationpb.New(time.Second)})
			if err != nil || !r.Acquired {
				time.Sleep(work)
				continue
			}
			sp := span{who: who, how: "try+ttl", token: r.FencingToken, shared: shared, start: time.Now()}
			expires := r.LeaseExpiresAt.AsTime()
			if rng.IntN(3) == 0 { // left to expire: it held until its lease's announced end
				sp.end = expires
				out.add(sp)
				continue
			}
			check(other, sp.token, true, "while held", expires)
			time.Sleep(work)
			sp.end = minTime(time.Now(), expires)
			if _, err := other.locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: lk, LeaseId: r.LeaseId, Hold: r.Hold}); err == nil {
				check(gws[rng.IntN(2)], sp.token, false, "after its release returned")
			}
			out.add(sp)
		case 3: // TryAcquire twice with a client's lease, reentrant; released one by one
			gr, err := g.leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(5 * time.Second)})
			if err != nil {
				continue
			}
			r1, err := g.locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: lk, Mode: mode, LeaseId: gr.LeaseId, Reentrant: true})
			if err != nil || !r1.Acquired {
				_, _ = g.leases.Revoke(ctx, &pb.RevokeRequest{LeaseId: gr.LeaseId})
				time.Sleep(work)
				continue
			}
			sp := span{who: who, how: "try+lease reentrant", token: r1.FencingToken, shared: shared, start: time.Now()}
			r2, err := other.locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: lk, Mode: mode, LeaseId: gr.LeaseId, Reentrant: true})
			if err == nil && (!r2.Acquired || r2.FencingToken != r1.FencingToken || r2.Holds != 2) {
				out.errorf("%s: a reentrant TryAcquire of a held lock: %v", who, r2)
			}
			if err == nil {
				rel, err := gws[rng.IntN(2)].locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: lk, LeaseId: gr.LeaseId, Hold: r1.Hold})
				if err == nil && rel.Holds != 1 {
					out.errorf("%s: the first of two holds released: %d left", who, rel.Holds)
				}
				check(other, sp.token, true, "with one hold of two left")
				time.Sleep(work)
				sp.end = minTime(time.Now(), gr.ExpiresAt.AsTime())
				if _, err := other.locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: lk, LeaseId: gr.LeaseId, Hold: r2.Hold}); err == nil {
					check(gws[rng.IntN(2)], sp.token, false, "after its last release returned")
				}
			} else {
				sp.end = minTime(time.Now(), gr.ExpiresAt.AsTime())
			}
			out.add(sp)
			_, _ = g.leases.Revoke(ctx, &pb.RevokeRequest{LeaseId: gr.LeaseId})
		}
	}
}

// recvHeld receives until HELD.
func recvHeld(s lockStream) (*pb.AcquireLockResponse, error) {
	for {
		r, err := s.Recv()
		if err != nil {
			return nil, err
		}
		switch r.Status {
		case pb.AcquireLockResponse_STATUS_HELD:
			return r, nil
		case pb.AcquireLockResponse_STATUS_LOST, pb.AcquireLockResponse_STATUS_RELEASED:
			return nil, fmt.Errorf("%v before held", r.Status)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// grpcPair is one gateway's clients.
type grpcPair struct {
	locks  pb.LockServiceClient
	sems   pb.SemaphoreServiceClient
	leases pb.LeaseServiceClient
}

// TestLockSpansAcrossGateways: workers take one lock through two replicas
// of one root in every way a client can, exclusive and shared, and give it
// up through either replica, by release, revoke, stream end or lease
// expiry. No two holds that exclude each other overlap as their clients
// saw them, tokens rise, and CheckSequencer through either replica agrees.
func TestLockSpansAcrossGateways(t *testing.T) {
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
			rng := rand.New(rand.NewPCG(uint64(i), 13))
			lockWorker(ctx, fmt.Sprintf("w%d", i), "rw", i >= 3, gws, rng, &out)
		}()
	}
	wg.Wait()
	if len(out.all) < 20 {
		t.Fatalf("only %d holds in the run: too few to say anything", len(out.all))
	}
	for _, e := range append(out.errs, lockViolations(out.all)...) {
		t.Error(e)
	}
	t.Logf("%d holds", len(out.all))
}
