package bench

import (
	"context"
	"fmt"
	"math"
	"path"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// sweepTTL is the TTL of the leases the register sweep registers under,
// granted once before it and never kept alive: longer than the sweep,
// whose interleaved rounds take minutes.
const sweepTTL = 10 * time.Minute

// register: Register then Deregister of a member under a lease, beside a
// direct ephemeral create and delete and etcd's Put with a lease then
// Delete, swept over concurrency, the systems interleaved in rounds.
func (r *Runner) register(ctx context.Context) error {
	const group = "reg"
	direct, err := r.env.Direct(ctx)
	if err != nil {
		return err
	}
	defer direct.Close()
	dir := path.Join(r.direct, "reg")
	if err := zkx.EnsurePath(direct, dir, zk.WorldACL(zk.PermAll)); err != nil {
		return err
	}
	maxC := 0
	for _, c := range r.cfg.Concurrency {
		maxC = max(maxC, c)
	}
	leases := pb.NewLeaseServiceClient(r.env.Conn())
	ids := make([]string, maxC)
	regs := make([]pb.RegistryServiceClient, maxC)
	for w := range maxC {
		g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(sweepTTL)})
		if err != nil {
			return err
		}
		ids[w] = g.LeaseId
		regs[w] = pb.NewRegistryServiceClient(r.env.Conn())
	}
	defer func() {
		for _, id := range ids {
			_, _ = leases.Revoke(context.WithoutCancel(ctx), &pb.RevokeRequest{LeaseId: id})
		}
	}()
	gw := func(ctx context.Context, w, i int) error {
		m := fmt.Sprintf("w%d-%d", w, i)
		if _, err := regs[w].Register(ctx, &pb.RegisterRequest{Group: group, MemberId: m, Value: "10.0.0.1:8080", LeaseId: ids[w]}); err != nil {
			return err
		}
		_, err := regs[w].Deregister(ctx, &pb.DeregisterRequest{Group: group, MemberId: m, LeaseId: ids[w]})
		return err
	}
	dr := func(ctx context.Context, w, i int) error {
		p := path.Join(dir, fmt.Sprintf("w%d-%d", w, i))
		if _, err := direct.Create(p, []byte("10.0.0.1:8080"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			return err
		}
		return direct.Delete(p, -1)
	}
	// etcd: Put under the worker's lease, then Delete, as a registry on
	// etcd registers and deregisters.
	var etcdLeases []clientv3.LeaseID
	if r.env.HasEtcd() {
		for range maxC {
			g, err := r.env.EtcdClient(0).Grant(ctx, int64(sweepTTL/time.Second))
			if err != nil {
				return err
			}
			etcdLeases = append(etcdLeases, g.ID)
		}
		defer func() {
			for _, id := range etcdLeases {
				_, _ = r.env.EtcdClient(0).Revoke(context.WithoutCancel(ctx), id)
			}
		}()
	}
	et := func(ctx context.Context, w, i int) error {
		c := r.env.EtcdClient(w % 4)
		k := fmt.Sprintf("%s/reg/w%d-%d", r.etcdRoot(), w, i)
		if _, err := c.Put(ctx, k, "10.0.0.1:8080", clientv3.WithLease(etcdLeases[w])); err != nil {
			return err
		}
		_, err := c.Delete(ctx, k)
		return err
	}
	// Counters around each round: ZooKeeper's zxid (read once it is quiet,
	// so that the journal trims and ends of a round count in it) and the
	// processes' CPU.
	var z0, z1 int64
	var gw0, zk0, gwSum, gSum, dSum time.Duration
	var gTxnSum, dTxnSum int64
	zkBefore := func() error {
		var err error
		z0, err = r.env.Zxid(ctx) // quiet since the last round's after
		gw0, zk0 = r.env.CPU()
		return err
	}
	zkAfter := func(txns *int64, zkCPU, gwCPU *time.Duration) func() error {
		return func() error {
			var err error
			z1, err = r.env.Quiet(ctx, 500*time.Millisecond)
			gw1, zk1 := r.env.CPU()
			*txns += z1 - z0
			*zkCPU += zk1 - zk0
			if gwCPU != nil {
				*gwCPU += gw1 - gw0
			}
			return err
		}
	}
	var gs, ds, es Stat
	var g64, d64, e64 Stat          // at 64 callers, when swept: issue 15's second target
	var gTxns, dTxns float64        // ZooKeeper transactions per pair, at Callers
	var gZK, dZK, gGW time.Duration // ZooKeeper's and the gateway's CPU per pair
	// Every process's CPU over the rounds, read before the wait for quiet
	// (what the pairs cost the machine while they ran, and how busy it was).
	meters := []*cpuMeter{newCPUMeter(r.env), newCPUMeter(r.env), newCPUMeter(r.env)}
	var pairCPU cpuReading
	for _, c := range r.cfg.Concurrency {
		gTxnSum, dTxnSum, gSum, dSum, gwSum = 0, 0, 0, 0, 0
		systems := []system{
			{name: "zkcoord Register+Deregister", op: gw, before: zkBefore, after: zkAfter(&gTxnSum, &gSum, &gwSum)},
			{name: "direct create+delete ephemeral", op: dr, before: zkBefore, after: zkAfter(&dTxnSum, &dSum, nil)},
		}
		if r.env.HasEtcd() {
			systems = append(systems, system{name: "etcd Put with lease+Delete", op: et})
		}
		st, err := r.interleave(ctx, c, metered(meters, systems))
		if err != nil {
			return err
		}
		if c == 64 {
			g64, d64, e64 = st[0], st[1], noStat
			if len(st) > 2 {
				e64 = st[2]
			}
		}
		if c == r.cfg.Callers {
			gs, ds, es = st[0], st[1], noStat
			if len(st) > 2 {
				es = st[2]
			}
			// Every pair made in the rounds, warm-ups included, over the
			// transactions it caused (journal trims included).
			gn, dn := gs.Calls, ds.Calls
			gTxns, dTxns = float64(gTxnSum)/float64(gn), float64(dTxnSum)/float64(dn)
			gZK, dZK = gSum/time.Duration(gn), dSum/time.Duration(dn)
			gGW = gwSum / time.Duration(gn)
			pairCPU = readCPU(meters, st)
		}
	}
	if gs.Calls == 0 {
		return fmt.Errorf("no load point at %d callers (-concurrency must include it)", r.cfg.Callers)
	}
	c := fmt.Sprintf(" (%d callers)", r.cfg.Callers)
	r.add(
		ratioFigure("Register+Deregister", "pairs/s"+c, "ops/s", gs.Throughput, ds.Throughput, Higher, 1.0).etcdBound(es.Throughput, 1),
		info("Register+Deregister", "p50 latency"+c, "ms", gs.P50, ds.P50, Lower).withEtcd(es.P50),
		info("Register+Deregister", "p99 latency"+c, "ms", gs.P99, ds.P99, Lower).withEtcd(es.P99),
		info("Register+Deregister", "ZooKeeper transactions per pair"+c, "txns", gTxns, dTxns, Lower),
		info("Register+Deregister", "ZooKeeper CPU per pair"+c, "µs", us(gZK), us(dZK), Lower),
		info("Register+Deregister", "gateway CPU per pair"+c, "µs", us(gGW), math.NaN(), Lower),
	)
	r.add(pairCPU.figures("Register+Deregister", "pair", c, pair{gs, ds, es}.throughputs())...)
	if g64.Calls > 0 {
		r.add(ratioFigure("Register+Deregister", "pairs/s (64 callers)", "ops/s", g64.Throughput, d64.Throughput, Higher, 1.5).withEtcd(e64.Throughput))
	}
	return nil
}

// keepalive: how many ZooKeeper writes keepalives cost (the server's zxid
// before and after), and how fast they go.
func (r *Runner) keepalive(ctx context.Context) error {
	leases := pb.NewLeaseServiceClient(r.env.Conn())
	workers := r.cfg.Callers
	ids := make([]string, workers)
	for w := range workers {
		g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
		if err != nil {
			return err
		}
		ids[w] = g.LeaseId
	}
	defer func() {
		for _, id := range ids {
			_, _ = leases.Revoke(context.WithoutCancel(ctx), &pb.RevokeRequest{LeaseId: id})
		}
	}()
	// Wait until ZooKeeper is quiet (the previous workload's journal trims
	// and lease expiries done), so that writes counted are the keepalives'.
	before, err := r.env.Quiet(ctx, time.Second)
	if err != nil {
		return err
	}
	var etcdLeases []clientv3.LeaseID
	if r.env.HasEtcd() {
		for range workers {
			g, err := r.env.EtcdClient(0).Grant(ctx, 60)
			if err != nil {
				return err
			}
			etcdLeases = append(etcdLeases, g.ID)
		}
		defer func() {
			for _, id := range etcdLeases {
				_, _ = r.env.EtcdClient(0).Revoke(context.WithoutCancel(ctx), id)
			}
		}()
	}
	rounds := r.cfg.Interleave
	per := (r.cfg.KeepAlives + workers*rounds - 1) / (workers * rounds) // per worker and round
	clients := make([]pb.LeaseServiceClient, workers)
	for w := range clients {
		clients[w] = pb.NewLeaseServiceClient(r.env.Conn())
	}
	gwOp := func(ctx context.Context, w int) error {
		_, err := clients[w].KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: ids[w]})
		return err
	}
	etcdOp := func(ctx context.Context, w int) error {
		_, err := r.env.EtcdClient(w%4).KeepAliveOnce(ctx, etcdLeases[w])
		return err
	}
	// Rounds, zkcoord and etcd alternating; every zkcoord keepalive of
	// every round is counted against ZooKeeper's zxid (etcd's rounds write
	// nothing to ZooKeeper).
	var gwRates, etcdRates []float64
	for range rounds {
		rate, err := burst(ctx, workers, per, gwOp)
		if err != nil {
			return err
		}
		gwRates = append(gwRates, rate)
		if r.env.HasEtcd() {
			if rate, err = burst(ctx, workers, per, etcdOp); err != nil {
				return fmt.Errorf("etcd: %w", err)
			}
			etcdRates = append(etcdRates, rate)
		}
	}
	after, err := r.env.Zxid(ctx)
	if err != nil {
		return err
	}
	n := per * workers * rounds
	writes := float64(after-before) / float64(n)
	r.logf("  %d keepalives, %.0f/s (etcd KeepAliveOnce %.0f/s); zxid %#x -> %#x", n, median(gwRates), median(etcdRates), before, after)
	f := absFigure("KeepAlive", fmt.Sprintf("ZooKeeper writes per keepalive (%d keepalives)", n), "writes", writes, math.NaN(), Lower, 0)
	f.Note = fmt.Sprintf("zxid %#x before, %#x after", before, after)
	rf := info("KeepAlive", fmt.Sprintf("keepalives/s (%d callers)", workers), "ops/s", median(gwRates), math.NaN(), Higher).withEtcd(median(etcdRates))
	rf.Note = "etcd: KeepAliveOnce on one lease per caller; median of the rounds"
	r.add(f, rf)
	return nil
}

// burst runs per calls of op on each of workers goroutines and returns the
// calls per second.
func burst(ctx context.Context, workers, per int, op func(ctx context.Context, w int) error) (float64, error) {
	start := time.Now()
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for range per {
				if err := op(ctx, w); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return 0, first
	}
	return float64(per*workers) / time.Since(start).Seconds(), nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
