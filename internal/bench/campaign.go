package bench

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

type elected struct {
	cand int
	at   time.Time
}

// campaign: Candidates candidates in one election; the leader resigns
// Failovers times and each time the next is elected. Beside the same
// recipe (ephemeral sequential znodes, each candidate watching only its
// predecessor) run directly with one session per candidate.
func (r *Runner) campaign(ctx context.Context) error {
	const election = "bench-elect"
	n := r.cfg.Candidates
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	leases := pb.NewLeaseServiceClient(r.env.Conn())
	ids := make([]string, n)
	for i := range n {
		g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
		if err != nil {
			return err
		}
		ids[i] = g.LeaseId
	}
	defer func() {
		for _, id := range ids {
			_, _ = leases.Revoke(context.WithoutCancel(ctx), &pb.RevokeRequest{LeaseId: id})
		}
	}()
	won := make(chan elected, n)
	queued := make(chan int, n)
	for i := range n {
		el := pb.NewElectionServiceClient(r.env.Conn())
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for cctx.Err() == nil {
				st, err := el.Campaign(cctx, &pb.CampaignRequest{Election: election, Value: fmt.Sprint("c", i), LeaseId: ids[i]})
				if err != nil {
					continue
				}
				for {
					m, err := st.Recv()
					if err != nil {
						break
					}
					if first {
						first = false
						queued <- i
					}
					if m.Status == pb.CampaignResponse_STATUS_ELECTED {
						select {
						case won <- elected{i, time.Now()}:
						case <-cctx.Done():
							return
						}
					}
					if m.Status == pb.CampaignResponse_STATUS_RESIGNED || m.Status == pb.CampaignResponse_STATUS_LOST {
						break
					}
				}
			}
		}()
	}
	for range n {
		<-queued
	}
	el := pb.NewElectionServiceClient(r.env.Conn())
	gwLat, err := failovers(ctx, r.cfg.Failovers, won, func(leader int) error {
		_, err := el.Resign(ctx, &pb.ResignRequest{Election: election, LeaseId: ids[leader]})
		return err
	})
	if err != nil {
		return fmt.Errorf("zkcoord: %w", err)
	}
	gwWatches, err := r.env.WatchesUnder(ctx, r.elections.Election(election))
	if err != nil {
		return err
	}
	cancel()
	wg.Wait()

	// Direct: one session per candidate.
	sessions, err := r.directSessions(ctx, n)
	if err != nil {
		return err
	}
	defer closeAll(sessions)
	dir := path.Join(r.direct, "elect")
	if err := zkx.EnsurePath(sessions[0], dir, zk.WorldACL(zk.PermAll)); err != nil {
		return err
	}
	dctx, dcancel := context.WithCancel(ctx)
	defer dcancel()
	dwon := make(chan elected, n)
	dqueued := make(chan int, n)
	resign := make([]chan struct{}, n)
	var dwg sync.WaitGroup
	defer dwg.Wait()
	for i := range n {
		resign[i] = make(chan struct{}, 1)
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			directCandidate(dctx, sessions[i], dir, i, dqueued, dwon, resign[i])
		}()
	}
	for range n {
		<-dqueued
	}
	dLat, err := failovers(ctx, r.cfg.Failovers, dwon, func(leader int) error {
		resign[leader] <- struct{}{}
		return nil
	})
	if err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	dWatches, err := r.env.WatchesUnder(ctx, dir)
	if err != nil {
		return err
	}
	dcancel()

	w := fmt.Sprintf("Campaign (%d candidates, %d resigns)", n, r.cfg.Failovers)
	gmax, gsum := watchStats(gwWatches)
	dmax, dsum := watchStats(dWatches)
	f := absFigure(w, "failover after resign p99", "ms", ms(quantile(gwLat, 0.99)), ms(quantile(dLat, 0.99)), Lower, 50)
	f.Note = "from the Resign call to the next candidate's ELECTED"
	wf := absFigure(w, "watch notifications per failover", "watches", float64(gmax), float64(dmax), Lower, 1)
	wf.Note = fmt.Sprintf("wchp: most watches on one candidate znode (watches on candidates in all: %d, direct %d)", gsum, dsum)
	r.add(
		info(w, "failover after resign p50", "ms", ms(quantile(gwLat, 0.5)), ms(quantile(dLat, 0.5)), Lower),
		f,
		info(w, "failover after resign max", "ms", ms(quantile(gwLat, 1)), ms(quantile(dLat, 1)), Lower),
		wf,
	)
	return nil
}

func watchStats(m map[string]int) (most, sum int) {
	for _, n := range m {
		most = max(most, n)
		sum += n
	}
	return most, sum
}

// failovers makes the leader resign k times and measures how long the next
// candidate takes to be elected.
func failovers(ctx context.Context, k int, won <-chan elected, resign func(leader int) error) ([]time.Duration, error) {
	timeout := func() <-chan time.Time { return time.After(30 * time.Second) }
	var leader elected
	select {
	case leader = <-won:
	case <-timeout():
		return nil, fmt.Errorf("no leader elected in 30s")
	}
	lat := make([]time.Duration, 0, k)
	for range k {
		t0 := time.Now()
		if err := resign(leader.cand); err != nil {
			return nil, err
		}
		for {
			var e elected
			select {
			case e = <-won:
			case <-timeout():
				return nil, fmt.Errorf("no new leader 30s after candidate %d resigned", leader.cand)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if e.cand == leader.cand {
				continue // its own election before the resign took effect
			}
			lat = append(lat, e.at.Sub(t0))
			leader = e
			break
		}
	}
	return sortedDurations(lat), nil
}

// directCandidate runs the herd-avoiding election recipe on its own
// session: an ephemeral sequential znode, a watch on its predecessor only.
// On a resign it deletes its znode and enters again.
func directCandidate(ctx context.Context, c *zk.Conn, dir string, i int, queued chan<- int, won chan<- elected, resign <-chan struct{}) {
	first := true
	for ctx.Err() == nil {
		me, err := c.CreateProtectedEphemeralSequential(path.Join(dir, "c-"), []byte(fmt.Sprint("c", i)), zk.WorldACL(zk.PermAll))
		if err != nil {
			return
		}
		name := path.Base(me)
		if first {
			first = false
			queued <- i
		}
		for ctx.Err() == nil {
			kids, _, err := c.Children(dir)
			if err != nil {
				return
			}
			slices.SortFunc(kids, func(a, b string) int { return strings.Compare(seq(a), seq(b)) })
			pos := slices.Index(kids, name)
			if pos < 0 {
				return // the session lost its znode
			}
			if pos == 0 {
				select {
				case won <- elected{i, time.Now()}:
				case <-ctx.Done():
					return
				}
				select {
				case <-resign:
				case <-ctx.Done():
					return
				}
				_ = c.Delete(me, -1)
				break
			}
			ok, _, ch, err := c.ExistsW(path.Join(dir, kids[pos-1]))
			if err != nil {
				return
			}
			if !ok {
				continue
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}
}

// seq is the sequence suffix of a sequential znode's name.
func seq(name string) string { return name[len(name)-10:] }
