package bench

import (
	"context"
	"fmt"
	"path"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// lock: an exclusive lock taken and released, through zkcoord (an Acquire
// stream until HELD, then Release) beside go-zookeeper's zk.Lock with one
// session per caller: throughput at 1 and Callers callers on one lock;
// then Waiters acquirers queued on one lock, the holder releasing
// Failovers times: the time from the release to the next holder's HELD,
// and the watch notifications ZooKeeper sends per handover (mntr's
// node_deleted_watch_count).
func (r *Runner) lock(ctx context.Context) error {
	n := max(r.cfg.Callers, r.cfg.Waiters)
	leases := pb.NewLeaseServiceClient(r.env.Conn())
	ids := make([]string, n)
	locks := make([]pb.LockServiceClient, n)
	for w := range n {
		g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
		if err != nil {
			return err
		}
		ids[w], locks[w] = g.LeaseId, pb.NewLockServiceClient(r.env.Conn())
	}
	defer func() {
		for _, id := range ids {
			_, _ = leases.Revoke(context.WithoutCancel(ctx), &pb.RevokeRequest{LeaseId: id})
		}
	}()
	sessions, err := r.directSessions(ctx, n)
	if err != nil {
		return err
	}
	defer closeAll(sessions)
	acl := zk.WorldACL(zk.PermAll)

	const w = "Lock acquire+release (one lock)"
	for _, c := range []int{1, r.cfg.Callers} {
		name := fmt.Sprint("bench-lock-", c)
		gw := func(ctx context.Context, w, _ int) error { return gatewayLockOnce(ctx, locks[w], name, ids[w]) }
		dir := path.Join(r.direct, "lock", fmt.Sprint(c))
		dr := func(_ context.Context, w, _ int) error {
			l := zk.NewLock(sessions[w], dir, acl)
			if err := l.Lock(); err != nil {
				return err
			}
			return l.Unlock()
		}
		g := Closed(ctx, c, r.cfg.Duration, gw)
		r.point("zkcoord Acquire+Release", c, g)
		d := Closed(ctx, c, r.cfg.Duration, dr)
		r.point("direct zk.Lock+Unlock", c, d)
		if g.Ops == 0 || d.Ops == 0 {
			return fmt.Errorf("lock: no successful call at %d callers: %v %v", c, g.FirstErr, d.FirstErr)
		}
		cs := fmt.Sprintf(" (%d callers)", c)
		r.add(
			info(w, "acquire+release/s"+cs, "ops/s", g.Throughput(), d.Throughput(), Higher),
			info(w, "p50 latency"+cs, "ms", ms(g.Quantile(0.5)), ms(d.Quantile(0.5)), Lower),
			info(w, "p99 latency"+cs, "ms", ms(g.Quantile(0.99)), ms(d.Quantile(0.99)), Lower),
		)
	}
	return r.lockHandovers(ctx, ids[:r.cfg.Waiters], locks[:r.cfg.Waiters], sessions[:r.cfg.Waiters])
}

// gatewayLockOnce takes lock name for lease id through an Acquire stream,
// releases it with Release, and waits for the stream to say RELEASED.
func gatewayLockOnce(ctx context.Context, locks pb.LockServiceClient, name, id string) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := locks.AcquireLock(sctx, &pb.AcquireLockRequest{Lock: name, LeaseId: id})
	if err != nil {
		return err
	}
	hold, err := recvStatus(st, pb.AcquireLockResponse_STATUS_HELD)
	if err != nil {
		return err
	}
	if _, err := locks.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: name, LeaseId: id, Hold: hold}); err != nil {
		return err
	}
	_, err = recvStatus(st, pb.AcquireLockResponse_STATUS_RELEASED)
	return err
}

// recvStatus receives until a message of status want, and returns its hold.
func recvStatus(st pb.LockService_AcquireLockClient, want pb.AcquireLockResponse_Status) (string, error) {
	for {
		m, err := st.Recv()
		if err != nil {
			return "", err
		}
		if m.Status == want {
			return m.Hold, nil
		}
		if m.Status == pb.AcquireLockResponse_STATUS_LOST {
			return "", fmt.Errorf("lock: hold lost")
		}
	}
}

// lockHandovers queues len(ids) acquirers on one lock, through zkcoord and
// directly, and measures Failovers handovers.
func (r *Runner) lockHandovers(ctx context.Context, ids []string, locks []pb.LockServiceClient, sessions []*zk.Conn) error {
	n := len(ids)
	const name = "bench-handover"
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // cancel first: an early return leaves goroutines waiting for it
	won := make(chan elected, n)
	var mu sync.Mutex
	holds := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cctx.Err() == nil {
				st, err := locks[i].AcquireLock(cctx, &pb.AcquireLockRequest{Lock: name, LeaseId: ids[i]})
				if err != nil {
					continue
				}
				hold, err := recvStatus(st, pb.AcquireLockResponse_STATUS_HELD)
				if err != nil {
					continue
				}
				mu.Lock()
				holds[i] = hold
				mu.Unlock()
				select {
				case won <- elected{i, time.Now()}:
				case <-cctx.Done():
					return
				}
				_, _ = recvStatus(st, pb.AcquireLockResponse_STATUS_RELEASED)
			}
		}()
	}
	// Count from a quiet ZooKeeper: the throughput runs' releases done,
	// every acquirer queued.
	if _, err := r.env.Quiet(ctx, 500*time.Millisecond); err != nil {
		return err
	}
	fired0, err := r.deletedWatches(ctx)
	if err != nil {
		return err
	}
	gwLat, err := failovers(ctx, r.cfg.Failovers, won, func(leader int) error {
		mu.Lock()
		hold := holds[leader]
		mu.Unlock()
		_, err := locks[leader].ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: name, LeaseId: ids[leader], Hold: hold})
		return err
	})
	if err != nil {
		return fmt.Errorf("zkcoord: %w", err)
	}
	fired1, err := r.deletedWatches(ctx)
	if err != nil {
		return err
	}
	cancel()
	wg.Wait()

	// Direct: zk.Lock, one session per acquirer.
	dir := path.Join(r.direct, "handover")
	dctx, dcancel := context.WithCancel(ctx)
	defer dcancel()
	dwon := make(chan elected, n)
	release := make([]chan struct{}, n)
	var dwg sync.WaitGroup
	defer dwg.Wait()
	// zk.Lock waits on its watch without a context: the lockers still
	// queued return when their sessions close (before dwg.Wait).
	defer func() {
		closeAll(sessions)
		clear(sessions)
	}()
	for i := range n {
		release[i] = make(chan struct{}, 1)
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			l := zk.NewLock(sessions[i], dir, zk.WorldACL(zk.PermAll))
			for dctx.Err() == nil {
				if err := l.Lock(); err != nil {
					return
				}
				select {
				case dwon <- elected{i, time.Now()}:
				case <-dctx.Done():
					return
				}
				select {
				case <-release[i]:
				case <-dctx.Done():
					return
				}
				_ = l.Unlock()
			}
		}()
	}
	// The gateway's acquirers' streams ended with cancel: their holds are
	// released in the background, each release waking the next.
	if _, err := r.env.Quiet(ctx, 500*time.Millisecond); err != nil {
		return err
	}
	dfired0, err := r.deletedWatches(ctx)
	if err != nil {
		return err
	}
	dLat, err := failovers(ctx, r.cfg.Failovers, dwon, func(leader int) error {
		release[leader] <- struct{}{}
		return nil
	})
	if err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	dfired1, err := r.deletedWatches(ctx)
	if err != nil {
		return err
	}
	dcancel()

	w := fmt.Sprintf("Lock handover (%d waiters, %d releases)", n, r.cfg.Failovers)
	k := float64(r.cfg.Failovers)
	f := absFigure(w, "handover after release p99", "ms", ms(quantile(gwLat, 0.99)), ms(quantile(dLat, 0.99)), Lower, 50)
	f.Note = "from the Release call to the next acquirer's HELD"
	wf := absFigure(w, "watch notifications per handover", "watches", float64(fired1-fired0)/k, float64(dfired1-dfired0)/k, Lower, 1)
	wf.Note = "mntr zk_sum_node_deleted_watch_count over the releases"
	r.add(
		info(w, "handover after release p50", "ms", ms(quantile(gwLat, 0.5)), ms(quantile(dLat, 0.5)), Lower),
		f,
		info(w, "handover after release max", "ms", ms(quantile(gwLat, 1)), ms(quantile(dLat, 1)), Lower),
		wf,
	)
	return nil
}

// deletedWatches reads how many watches ZooKeeper has fired on deletions.
func (r *Runner) deletedWatches(ctx context.Context) (int64, error) {
	m, err := r.env.Mntr(ctx)
	if err != nil {
		return 0, err
	}
	v, ok := m["zk_sum_node_deleted_watch_count"]
	if !ok {
		return 0, fmt.Errorf("bench: no zk_sum_node_deleted_watch_count in mntr")
	}
	return v, nil
}
