package bench

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// semPermits is the N of the throughput semaphores: fewer than the
// largest number of callers, so that some wait.
const semPermits = 4

// semaphore: acquire+release pairs at 1 and Callers callers on a semaphore
// of semPermits permits, and the handover after a release with Waiters
// waiters on a semaphore of one, beside Curator's InterProcessSemaphoreV2
// run directly with one session per caller (directsem.go).
func (r *Runner) semaphore(ctx context.Context) error {
	if err := r.semaphoreThroughput(ctx); err != nil {
		return err
	}
	return r.semaphoreHandover(ctx)
}

// grantAll grants n leases of a minute; revoke revokes them.
func (r *Runner) grantAll(ctx context.Context, n int) (ids []string, revoke func(), err error) {
	leases := pb.NewLeaseServiceClient(r.env.Conn())
	revoke = func() {
		for _, id := range ids {
			_, _ = leases.Revoke(context.WithoutCancel(ctx), &pb.RevokeRequest{LeaseId: id})
		}
	}
	for range n {
		g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
		if err != nil {
			revoke()
			return nil, nil, err
		}
		ids = append(ids, g.LeaseId)
	}
	return ids, revoke, nil
}

// acquireHeld opens an AcquireSemaphore stream and reads it until HELD.
func acquireHeld(ctx context.Context, c pb.SemaphoreServiceClient, req *pb.AcquireSemaphoreRequest) (pb.SemaphoreService_AcquireSemaphoreClient, error) {
	st, err := c.AcquireSemaphore(ctx, req)
	if err != nil {
		return nil, err
	}
	for {
		m, err := st.Recv()
		if err != nil {
			return nil, err
		}
		switch m.Status {
		case pb.AcquireSemaphoreResponse_STATUS_HELD:
			return st, nil
		case pb.AcquireSemaphoreResponse_STATUS_LOST, pb.AcquireSemaphoreResponse_STATUS_RELEASED:
			return nil, fmt.Errorf("place ended: %v", m.Status)
		}
	}
}

func (r *Runner) semaphoreThroughput(ctx context.Context) error {
	callers := []int{1, r.cfg.Callers}
	direct, err := r.directSessions(ctx, r.cfg.Callers)
	if err != nil {
		return err
	}
	defer closeAll(direct)
	ids, revoke, err := r.grantAll(ctx, r.cfg.Callers)
	if err != nil {
		return err
	}
	defer revoke()
	sems := make([]pb.SemaphoreServiceClient, r.cfg.Callers)
	for i := range sems {
		sems[i] = pb.NewSemaphoreServiceClient(r.env.Conn())
	}
	w := fmt.Sprintf("Semaphore (%d permits)", semPermits)
	for _, c := range callers {
		name := fmt.Sprint("bench-sem-", c)
		gw := func(ctx context.Context, w, _ int) error {
			st, err := acquireHeld(ctx, sems[w], &pb.AcquireSemaphoreRequest{Semaphore: name, Permits: semPermits, LeaseId: ids[w]})
			if err != nil {
				return err
			}
			if _, err := sems[w].ReleaseSemaphore(ctx, &pb.ReleaseSemaphoreRequest{Semaphore: name, LeaseId: ids[w]}); err != nil {
				return err
			}
			for { // RELEASED, then the stream ends
				if _, err := st.Recv(); err != nil {
					return nil
				}
			}
		}
		dir := path.Join(r.direct, name)
		if err := directSemSetup(direct[0], dir); err != nil {
			return err
		}
		dr := func(ctx context.Context, w, _ int) error {
			lease, err := directSemAcquire(ctx, direct[w], dir, semPermits)
			if err != nil {
				return err
			}
			return direct[w].Delete(lease, -1)
		}
		g := Closed(ctx, c, r.cfg.Duration, gw)
		r.point("zkcoord AcquireSemaphore+Release", c, g)
		d := Closed(ctx, c, r.cfg.Duration, dr)
		r.point("direct Curator semaphore acquire+release", c, d)
		if g.Ops == 0 || d.Ops == 0 {
			return fmt.Errorf("no successful pair at %d callers: %v %v", c, g.FirstErr, d.FirstErr)
		}
		sfx := fmt.Sprintf(" (%d callers)", c)
		r.add(
			ratioFigure(w, "acquire+release pairs/s"+sfx, "ops/s", g.Throughput(), d.Throughput(), Higher, 0.7),
			info(w, "acquire+release p50"+sfx, "ms", ms(g.Quantile(0.5)), ms(d.Quantile(0.5)), Lower),
			info(w, "acquire+release p99"+sfx, "ms", ms(g.Quantile(0.99)), ms(d.Quantile(0.99)), Lower),
		)
	}
	return nil
}

// semaphoreHandover queues Waiters acquirers on a semaphore of one
// permit; the holder releases Waiters-1 times, and each time the next
// acquirer holds. Also counts the watches ZooKeeper holds meanwhile.
func (r *Runner) semaphoreHandover(ctx context.Context) error {
	const name = "bench-sem-handover"
	n := r.cfg.Waiters
	ids, revoke, err := r.grantAll(ctx, n)
	if err != nil {
		return err
	}
	defer revoke()
	base, err := r.env.Mntr(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // cancel first: an early return leaves goroutines waiting for it
	held := make(chan elected, n)
	sems := pb.NewSemaphoreServiceClient(r.env.Conn())
	for i := range n { // one after the other, so that queue order is i's
		st, err := sems.AcquireSemaphore(cctx, &pb.AcquireSemaphoreRequest{Semaphore: name, Permits: 1, LeaseId: ids[i]})
		if err != nil {
			return err
		}
		if _, err := st.Recv(); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				held <- elected{0, time.Now()}
			}
			for {
				m, err := st.Recv()
				if err != nil {
					return
				}
				if m.Status == pb.AcquireSemaphoreResponse_STATUS_HELD {
					held <- elected{i, time.Now()}
				}
			}
		}()
	}
	during, err := r.env.settledWatches(ctx)
	if err != nil {
		return err
	}
	gwLat, err := failovers(ctx, n-1, held, func(holder int) error {
		_, err := sems.ReleaseSemaphore(ctx, &pb.ReleaseSemaphoreRequest{Semaphore: name, LeaseId: ids[holder]})
		return err
	})
	if err != nil {
		return fmt.Errorf("zkcoord: %w", err)
	}
	cancel()
	wg.Wait()

	// Direct: one session per acquirer, queued in order.
	sessions, err := r.directSessions(ctx, n)
	if err != nil {
		return err
	}
	defer closeAll(sessions)
	dir := path.Join(r.direct, name)
	if err := directSemSetup(sessions[0], dir); err != nil {
		return err
	}
	dbase, err := r.env.Mntr(ctx)
	if err != nil {
		return err
	}
	dctx, dcancel := context.WithCancel(ctx)
	defer dcancel()
	dheld := make(chan elected, n)
	leases := make([]chan string, n)
	var dwg sync.WaitGroup
	defer dwg.Wait()
	for i := range n {
		leases[i] = make(chan string, 1)
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			lease, err := directSemAcquire(dctx, sessions[i], dir, 1)
			if err != nil {
				return
			}
			leases[i] <- lease
			dheld <- elected{i, time.Now()}
		}()
	}
	if err := awaitWaiters(ctx, sessions[0], path.Join(dir, "locks"), n-1); err != nil {
		return err
	}
	dduring, err := r.env.settledWatches(ctx)
	if err != nil {
		return err
	}
	dLat, err := failovers(ctx, n-1, dheld, func(holder int) error {
		return sessions[holder].Delete(<-leases[holder], -1)
	})
	if err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	dcancel()

	w := fmt.Sprintf("Semaphore handover (%d waiters, %d releases)", n, n-1)
	f := absFigure(w, "handover after release p99", "ms", ms(quantile(gwLat, 0.99)), ms(quantile(dLat, 0.99)), Lower, 50)
	f.Note = "from the ReleaseSemaphore call (direct: the delete) to the next acquirer's HELD"
	wf := info(w, "ZooKeeper watches while they wait", "watches", float64(during-base["zk_watch_count"]),
		float64(dduring-dbase["zk_watch_count"]), Lower)
	wf.Note = "mntr zk_watch_count: one child watch per semaphore per gateway; direct, one per mutex waiter and the counting holder's"
	r.add(
		info(w, "handover after release p50", "ms", ms(quantile(gwLat, 0.5)), ms(quantile(dLat, 0.5)), Lower),
		f,
		info(w, "handover after release max", "ms", ms(quantile(gwLat, 1)), ms(quantile(dLat, 1)), Lower),
		wf,
	)
	return nil
}

// awaitWaiters waits until want acquirers wait on the direct mutex at dir
// (its znodes less the holder's), within 30 s.
func awaitWaiters(ctx context.Context, c *zk.Conn, dir string, want int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		kids, _, err := c.Children(dir)
		if err != nil {
			return err
		}
		if len(kids) >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("direct: the acquirers did not all queue within 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// settledWatches reads mntr's zk_watch_count until two readings 200 ms
// apart agree (at most 5 s): the waiters have set their watches.
func (e *Env) settledWatches(ctx context.Context) (int64, error) {
	deadline := time.Now().Add(5 * time.Second)
	last := int64(-1)
	for {
		m, err := e.Mntr(ctx)
		if err != nil {
			return 0, err
		}
		n := m["zk_watch_count"]
		if n == last || time.Now().After(deadline) {
			return n, nil
		}
		last = n
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
