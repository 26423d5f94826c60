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
// predecessor) run directly with one session per candidate, and etcd's
// concurrency.Election with one session (lease) per candidate. All three
// elections stand at once; their failovers run in Interleave rounds,
// alternating, and each figure is over all of a system's failovers.
func (r *Runner) campaign(ctx context.Context) error {
	const election = "bench-elect"
	n := r.cfg.Candidates
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // cancel first: an early return leaves goroutines waiting for it

	leases := pb.NewLeaseServiceClient(r.env.Conn())
	ids := make([]string, n)
	for i := range n {
		// Not kept alive: longer than the three elections' rounds.
		g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(sweepTTL)})
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
	gw := &handovers{won: won, resign: func(leader int) error {
		_, err := el.Resign(ctx, &pb.ResignRequest{Election: election, LeaseId: ids[leader]})
		return err
	}}

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
	dwon := make(chan elected, n)
	dqueued := make(chan int, n)
	resign := make([]chan struct{}, n)
	for i := range n {
		resign[i] = make(chan struct{}, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			directCandidate(cctx, sessions[i], dir, i, dqueued, dwon, resign[i])
		}()
	}
	for range n {
		<-dqueued
	}
	direct := &handovers{won: dwon, resign: func(leader int) error {
		resign[leader] <- struct{}{}
		return nil
	}}
	sides := []*handovers{gw, direct}
	if r.env.HasEtcd() {
		e, err := r.etcdElection(cctx, &wg, n)
		if err != nil {
			return fmt.Errorf("etcd: %w", err)
		}
		sides = append(sides, e)
	}
	rounds := r.cfg.Interleave
	for k := range rounds {
		// Failovers spread over the rounds, the first rounds taking the
		// remainder.
		chunk := r.cfg.Failovers / rounds
		if k < r.cfg.Failovers%rounds {
			chunk++
		}
		for si, s := range sides {
			if err := s.run(ctx, chunk); err != nil {
				return fmt.Errorf("%s: %w", []string{"zkcoord", "direct", "etcd"}[si], err)
			}
		}
	}
	gwWatches, err := r.env.WatchesUnder(ctx, r.elections.Election(election))
	if err != nil {
		return err
	}
	dWatches, err := r.env.WatchesUnder(ctx, dir)
	if err != nil {
		return err
	}
	cancel()
	wg.Wait()
	gwLat, dLat := sortedDurations(gw.lat), sortedDurations(direct.lat)
	var eLat []time.Duration
	if len(sides) > 2 {
		eLat = sortedDurations(sides[2].lat)
	}
	eq := quantilesMs(eLat, len(sides) > 2)

	w := fmt.Sprintf("Campaign (%d candidates, %d resigns)", n, r.cfg.Failovers)
	gmax, gsum := watchStats(gwWatches)
	dmax, dsum := watchStats(dWatches)
	p50 := ratioFigure(w, "failover after resign p50", "ms", ms(quantile(gwLat, 0.5)), ms(quantile(dLat, 0.5)), Lower, 1.2).etcdBound(eq(0.5), 1)
	p50.Note = "etcd: concurrency.Election, one session (lease) per candidate; the leader's Resign, to the next one's Campaign returning"
	f := absFigure(w, "failover after resign p99", "ms", ms(quantile(gwLat, 0.99)), ms(quantile(dLat, 0.99)), Lower, 50).withEtcd(eq(0.99))
	f.Note = "from the Resign call to the next candidate's ELECTED"
	wf := absFigure(w, "watch notifications per failover", "watches", float64(gmax), float64(dmax), Lower, 1)
	wf.Note = fmt.Sprintf("wchp: most watches on one candidate znode (watches on candidates in all: %d, direct %d)", gsum, dsum)
	r.add(
		p50,
		f,
		info(w, "failover after resign max", "ms", ms(quantile(gwLat, 1)), ms(quantile(dLat, 1)), Lower).withEtcd(eq(1)),
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
	s := &handovers{won: won, resign: resign}
	if err := s.run(ctx, k); err != nil {
		return nil, err
	}
	return sortedDurations(s.lat), nil
}

// handovers is one election's failovers, measured in rounds: the leader
// resigns, the next one's election is timed.
type handovers struct {
	won    <-chan elected
	resign func(leader int) error
	leader *elected // the current leader, nil before the first
	lat    []time.Duration
}

// run makes the leader resign k times (waiting for the first leader if
// there is none yet) and adds each failover's time to lat.
func (s *handovers) run(ctx context.Context, k int) error {
	timeout := func() <-chan time.Time { return time.After(30 * time.Second) }
	if s.leader == nil {
		select {
		case e := <-s.won:
			s.leader = &e
		case <-timeout():
			return fmt.Errorf("no leader elected in 30s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for range k {
		t0 := time.Now()
		if err := s.resign(s.leader.cand); err != nil {
			return err
		}
		for {
			var e elected
			select {
			case e = <-s.won:
			case <-timeout():
				return fmt.Errorf("no new leader 30s after candidate %d resigned", s.leader.cand)
			case <-ctx.Done():
				return ctx.Err()
			}
			if e.cand == s.leader.cand {
				continue // its own election before the resign took effect
			}
			s.lat = append(s.lat, e.at.Sub(t0))
			s.leader = &e
			break
		}
	}
	return nil
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
