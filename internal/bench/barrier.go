package bench

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/go-zookeeper/zk"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// barrier: Participants participants wait at a barrier of that threshold,
// Rounds times; how long after the last arrival each is released. All but
// one arrive and are seen waiting; then the last one is sent, and each
// release is timed from that call. Beside the direct recipe (an ephemeral
// znode per participant, the last to arrive creates "ready", the others
// watch for it) over 16 sessions.
func (r *Runner) barrier(ctx context.Context) error {
	n := r.cfg.Participants
	var gwLat, dLat []time.Duration
	clients := make([]pb.BarrierServiceClient, 16)
	for i := range clients {
		clients[i] = pb.NewBarrierServiceClient(r.env.Conn())
	}
	sessions, err := r.directSessions(ctx, 16)
	if err != nil {
		return err
	}
	defer closeAll(sessions)
	for round := range r.cfg.Rounds {
		lat, err := r.gatewayBarrier(ctx, clients, fmt.Sprint("bench-b", round), n)
		if err != nil {
			return fmt.Errorf("zkcoord round %d: %w", round, err)
		}
		gwLat = append(gwLat, lat...)
		dir := path.Join(r.direct, "barrier", fmt.Sprint("b", round))
		if err := zkx.EnsurePath(sessions[0], dir, zk.WorldACL(zk.PermAll)); err != nil {
			return err
		}
		lat, err = directBarrier(ctx, sessions, dir, n)
		if err != nil {
			return fmt.Errorf("direct round %d: %w", round, err)
		}
		dLat = append(dLat, lat...)
	}
	gwLat, dLat = sortedDurations(gwLat), sortedDurations(dLat)
	w := fmt.Sprintf("AwaitBarrier (%d participants, %d rounds)", n, r.cfg.Rounds)
	f := ratioFigure(w, "release after the last arrival p99", "ms", ms(quantile(gwLat, 0.99)), ms(quantile(dLat, 0.99)), Lower, 2)
	f.Note = "from the last participant's call, the others waiting, to each release"
	abs := absFigure(w, "release after the last arrival p99, absolute", "ms", ms(quantile(gwLat, 0.99)), ms(quantile(dLat, 0.99)), Lower, 500)
	r.add(
		info(w, "release after the last arrival p50", "ms", ms(quantile(gwLat, 0.5)), ms(quantile(dLat, 0.5)), Lower),
		f, abs,
		info(w, "release after the last arrival max", "ms", ms(quantile(gwLat, 1)), ms(quantile(dLat, 1)), Lower),
	)
	return nil
}

// gatewayBarrier runs one round through AwaitBarrier streams.
func (r *Runner) gatewayBarrier(ctx context.Context, clients []pb.BarrierServiceClient, name string, n int) ([]time.Duration, error) {
	bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	released := make([]time.Time, n)
	waiting := make(chan error, n)
	errs := make(chan error, n)
	participate := func(i int) {
		st, err := clients[i%len(clients)].AwaitBarrier(bctx, &pb.AwaitBarrierRequest{Barrier: name, Threshold: int32(n), ParticipantId: fmt.Sprint("p", i)})
		if err != nil {
			waiting <- err
			errs <- err
			return
		}
		first := true
		for {
			m, err := st.Recv()
			if first {
				first = false
				waiting <- err // arrived (or failed)
			}
			if err != nil {
				errs <- err
				return
			}
			if m.Released {
				released[i] = time.Now()
				errs <- nil
				return
			}
		}
	}
	last, err := round(n, participate, waiting, errs)
	if err != nil {
		return nil, err
	}
	return since(last, released), nil
}

// round starts n-1 participants, waits until each is waiting (or failed),
// then sends the last one and waits for every participant to be released.
// participate(i) reports once on waiting, when it is waiting, and once on
// errs, when it is done. round returns when the last one was sent.
func round(n int, participate func(i int), waiting, errs <-chan error) (time.Time, error) {
	for i := range n - 1 {
		go participate(i)
	}
	for range n - 1 {
		if err := <-waiting; err != nil {
			return time.Time{}, err
		}
	}
	last := time.Now()
	go participate(n - 1)
	<-waiting
	for range n {
		if err := <-errs; err != nil {
			return time.Time{}, err
		}
	}
	return last, nil
}

// since returns each time's distance after t.
func since(t time.Time, ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, x := range ts {
		out[i] = max(x.Sub(t), 0)
	}
	return out
}

// directBarrier runs one round of the recipe straight on ZooKeeper.
func directBarrier(ctx context.Context, sessions []*zk.Conn, dir string, n int) ([]time.Duration, error) {
	ready := path.Join(dir, "ready")
	released := make([]time.Time, n)
	waiting := make(chan error, n)
	errs := make(chan error, n)
	participate := func(i int) {
		c := sessions[i%len(sessions)]
		fail := func(err error, first bool) {
			if first {
				waiting <- err
			}
			errs <- err
		}
		if _, err := c.Create(path.Join(dir, fmt.Sprint("p", i)), nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			fail(err, true)
			return
		}
		kids, _, err := c.Children(dir)
		if err != nil {
			fail(err, true)
			return
		}
		if len(kids) >= n {
			if _, err := c.Create(ready, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
				fail(err, true)
				return
			}
		}
		first := true
		for {
			ok, _, ch, err := c.ExistsW(ready)
			if first {
				first = false
				waiting <- err // arrived and watching (or failed)
			}
			if err != nil {
				errs <- err
				return
			}
			if ok {
				released[i] = time.Now()
				errs <- nil
				return
			}
			select {
			case <-ch:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			case <-time.After(2 * time.Minute):
				errs <- fmt.Errorf("participant %d not released in 2m", i)
				return
			}
		}
	}
	last, err := round(n, participate, waiting, errs)
	if err != nil {
		return nil, err
	}
	return since(last, released), nil
}
