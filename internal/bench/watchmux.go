package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// watchmux: for each n of MuxWatches, n watches of one group multiplexed
// on MuxStreams Watch streams (one per connection) of one gateway, as
// etcd's clients multiplex watchers: idle memory per watch, and how long
// one membership change takes to reach every watch. Beside the one-group
// WatchGroup streams of the watch workload.
func (r *Runner) watchmux(ctx context.Context) error {
	for i, n := range r.cfg.MuxWatches {
		if err := r.watchmuxN(ctx, i, n); err != nil {
			return fmt.Errorf("%d watches: %w", n, err)
		}
	}
	return nil
}

// muxArrivals counts, per stream, the watches the current change reached.
type muxArrivals struct {
	member atomic.Pointer[string] // the change being measured
	t0     atomic.Int64           // when its Register was sent (UnixNano)
	got    atomic.Int64
	all    chan struct{} // receives when got reaches the watches' number
}

// memJudgedFrom is the fewest watches whose memory watchmux judges: at
// 1,000 the heap+stacks difference (half a MiB) has read negative.
const memJudgedFrom = 10000

// etcdMuxMax is the most watches watchmux drives etcd beside: etcd's
// counterpart at 100,000 would add its watchers' setup to every run.
const etcdMuxMax = 10000

// watchmuxN is run i of watchmux, with n watches on a group of its own (a
// size may come twice).
func (r *Runner) watchmuxN(ctx context.Context, i, n int) error {
	group := fmt.Sprintf("fanmux-%d-%d", i, n)
	s := r.cfg.MuxStreams
	reg := pb.NewRegistryServiceClient(r.env.Conn())
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "seed", Value: "v", Persistent: true}); err != nil {
		return err
	}
	before, err := r.env.GatewayMemory(ctx)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	arr := &muxArrivals{all: make(chan struct{}, 1)}
	arr.member.Store(new(string))
	lats := make([][]time.Duration, s)
	ready := make(chan error, 2*s) // each stream: its snapshots, then maybe its end
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // cancel first: an early return leaves goroutines waiting for it
	openStart := time.Now()
	for i := range s {
		watches := n/s + btoi(i < n%s)
		st, err := pb.NewRegistryServiceClient(r.env.Conn()).Watch(sctx)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() { // ends with sctx: Recv fails then
			defer wg.Done()
			snaps := 0
			for {
				m, err := st.Recv()
				if err != nil {
					if snaps < watches {
						ready <- err
					}
					return
				}
				e := m.GetEvent()
				switch {
				case m.GetCanceled():
					ready <- fmt.Errorf("watch %d canceled: %s", m.GetWatchId(), m.GetCancelReason())
					return
				case e.GetType() == pb.WatchGroupResponse_TYPE_SNAPSHOT:
					if snaps++; snaps == watches {
						ready <- nil
					}
				case e.GetType() == pb.WatchGroupResponse_TYPE_JOINED && e.GetMember().GetId() == *arr.member.Load():
					lats[i] = append(lats[i], time.Duration(time.Now().UnixNano()-arr.t0.Load()))
					if arr.got.Add(1) == int64(n) {
						select {
						case arr.all <- struct{}{}:
						default:
						}
					}
				}
			}
		}()
		for range watches {
			if err := st.Send(&pb.WatchRequest{Request: &pb.WatchRequest_Create{Create: &pb.WatchCreateRequest{Group: group}}}); err != nil {
				return err
			}
		}
	}
	for range s {
		if err := <-ready; err != nil {
			return fmt.Errorf("open watches: %w", err)
		}
	}
	opened := time.Since(openStart)
	r.logf("  %d watches on %d streams open with their snapshot in %v", n, s, opened.Round(time.Millisecond))
	after, err := r.env.GatewayMemory(ctx)
	if err != nil {
		return err
	}
	// etcd: as many watchers, on 16 clients, up to etcdMuxMax: each change
	// goes to zkcoord's watches, then to etcd's.
	var fan *etcdFan
	if r.env.HasEtcd() && n <= etcdMuxMax {
		if fan, err = r.etcdWatchers(sctx, &wg, n, r.cfg.Changes); err != nil {
			return fmt.Errorf("etcd: %w", err)
		}
		r.logf("  %d etcd watchers created in %v", n, fan.opened.Round(time.Millisecond))
	}
	var eLat []time.Duration
	// Each change's Register call and its reaching every watch, to tell a
	// slow write from a slow fan-out (the progress line below).
	type change struct{ write, all time.Duration }
	changes := make([]change, 0, r.cfg.Changes)
	for k := range r.cfg.Changes {
		member := fmt.Sprintf("mux%d-%d-%d", i, n, k)
		arr.got.Store(0)
		arr.member.Store(&member)
		t0 := time.Now()
		arr.t0.Store(t0.UnixNano())
		if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: member, Value: "v", Persistent: true}); err != nil {
			return err
		}
		write := time.Since(t0)
		select {
		case <-arr.all:
		case <-time.After(60 * time.Second):
			return fmt.Errorf("change %d reached %d of %d watches in 60s", k, arr.got.Load(), n)
		}
		changes = append(changes, change{write, time.Since(t0)})
		if fan != nil {
			lat, err := fan.change(ctx, r.env.EtcdClient(0), member)
			if err != nil {
				return err
			}
			eLat = append(eLat, lat...)
		}
	}
	cancel()
	wg.Wait()
	slices.SortFunc(changes, func(a, b change) int { return cmp.Compare(b.all, a.all) })
	if len(changes) > 3 {
		changes = changes[:3]
	}
	var slow []string
	for _, c := range changes {
		slow = append(slow, fmt.Sprintf("%v (its Register %v)", c.all.Round(10*time.Microsecond), c.write.Round(10*time.Microsecond)))
	}
	r.logf("  %d watches: slowest changes to every watch %s", n, strings.Join(slow, ", "))
	var lat []time.Duration
	for _, l := range lats {
		lat = append(lat, l...)
	}
	lat, eLat = sortedDurations(lat), sortedDurations(eLat)
	eq := quantilesMs(eLat, fan != nil)
	per := float64(after.RSS-before.RSS) / float64(n) / 1024
	heapPer := float64((after.HeapInuse+after.StackInuse)-(before.HeapInuse+before.StackInuse)) / float64(n) / 1024
	w := fmt.Sprintf("Watch fan-out (%d watches on %d streams)", n, s)
	if fan != nil {
		w = fmt.Sprintf("Watch fan-out (%d watches on %d streams; etcd: %d watchers on 16 clients)", n, s, n)
	}
	fig := absFigure(w, "change to every watch p99", "ms", ms(quantile(lat, 0.99)), math.NaN(), Lower, 1000).etcdBound(eq(0.99), 1)
	fig.Note = "from the Register call to each watch's JOINED; etcd: from the Put to each watcher's event; issue 15: <= 1 s at 100,000, no slower than etcd's multiplexed watchers"
	// Judged on heap+stacks after a forced GC, as the WatchGroup figure.
	mf := info(w, "memory per idle watch (RSS)", "KiB", per, math.NaN(), Lower)
	mf.Note = fmt.Sprintf("RSS %d -> %d MiB (information: pages freed by earlier workloads are reused)", before.RSS>>20, after.RSS>>20)
	hf := absFigure(w, "heap+stacks per idle watch", "KiB", heapPer, math.NaN(), Lower, 8)
	hf.Note = "after a forced GC; issue 15: <= 8 KiB per idle watcher"
	if n < memJudgedFrom {
		hf = info(w, "heap+stacks per idle watch", "KiB", heapPer, math.NaN(), Lower)
		hf.Note = fmt.Sprintf("information: under %d watches (about half a KiB each) the difference is within the heap's own variation between two GCs", memJudgedFrom)
	}
	r.add(
		info(w, "change to every watch p50", "ms", ms(quantile(lat, 0.5)), math.NaN(), Lower).withEtcd(eq(0.5)),
		fig,
		info(w, "change to every watch max", "ms", ms(quantile(lat, 1)), math.NaN(), Lower).withEtcd(eq(1)),
		mf,
		hf,
		info(w, "open all watches with their snapshot", "ms", ms(opened), math.NaN(), Lower),
	)
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
