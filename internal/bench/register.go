package bench

import (
	"context"
	"fmt"
	"math"
	"path"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// register: Register then Deregister of a member under a lease, beside a
// direct ephemeral create and delete, swept over concurrency.
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
		g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
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
	var gs, ds Sample
	var g64, d64 Sample             // at 64 callers, when swept: issue 15's second target
	var gTxns, dTxns float64        // ZooKeeper transactions per pair, at Callers
	var gZK, dZK, gGW time.Duration // ZooKeeper's and the gateway's CPU per pair
	for _, c := range r.cfg.Concurrency {
		z0, err := r.env.Zxid(ctx)
		if err != nil {
			return err
		}
		gw0, zk0 := r.env.CPU()
		g := Closed(ctx, c, r.cfg.Duration, gw)
		r.point("zkcoord Register+Deregister", c, g)
		z1, err := r.env.Quiet(ctx, 500*time.Millisecond)
		if err != nil {
			return err
		}
		gw1, zk1 := r.env.CPU()
		d := Closed(ctx, c, r.cfg.Duration, dr)
		r.point("direct create+delete ephemeral", c, d)
		z2, err := r.env.Quiet(ctx, 500*time.Millisecond)
		if err != nil {
			return err
		}
		_, zk2 := r.env.CPU()
		if g.Ops == 0 || d.Ops == 0 {
			return fmt.Errorf("no successful call at %d callers: %v %v", c, g.FirstErr, d.FirstErr)
		}
		if c == 64 {
			g64, d64 = g, d
		}
		if c == r.cfg.Callers {
			gs, ds = g, d
			// Every pair made in the run, warm-up included, over the
			// transactions it caused (journal trims included).
			gn, dn := g.Ops+g.warm, d.Ops+d.warm
			gTxns, dTxns = float64(z1-z0)/float64(gn), float64(z2-z1)/float64(dn)
			gZK, dZK = (zk1-zk0)/time.Duration(gn), (zk2-zk1)/time.Duration(dn)
			gGW = (gw1 - gw0) / time.Duration(gn)
		}
	}
	c := fmt.Sprintf(" (%d callers)", r.cfg.Callers)
	r.add(
		ratioFigure("Register+Deregister", "pairs/s"+c, "ops/s", gs.Throughput(), ds.Throughput(), Higher, 1.0),
		info("Register+Deregister", "p50 latency"+c, "ms", ms(gs.Quantile(0.5)), ms(ds.Quantile(0.5)), Lower),
		info("Register+Deregister", "p99 latency"+c, "ms", ms(gs.Quantile(0.99)), ms(ds.Quantile(0.99)), Lower),
		info("Register+Deregister", "ZooKeeper transactions per pair"+c, "txns", gTxns, dTxns, Lower),
		info("Register+Deregister", "ZooKeeper CPU per pair"+c, "µs", us(gZK), us(dZK), Lower),
		info("Register+Deregister", "gateway CPU per pair"+c, "µs", us(gGW), math.NaN(), Lower),
	)
	if g64.Ops > 0 && d64.Ops > 0 {
		r.add(ratioFigure("Register+Deregister", "pairs/s (64 callers)", "ops/s", g64.Throughput(), d64.Throughput(), Higher, 1.5))
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
	per := (r.cfg.KeepAlives + workers - 1) / workers
	clients := make([]pb.LeaseServiceClient, workers)
	for w := range clients {
		clients[w] = pb.NewLeaseServiceClient(r.env.Conn())
	}
	start := time.Now()
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for range per {
				if _, err := clients[w].KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: ids[w]}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			return err
		}
	}
	took := time.Since(start)
	after, err := r.env.Zxid(ctx)
	if err != nil {
		return err
	}
	n := per * workers
	writes := float64(after-before) / float64(n)
	r.logf("  %d keepalives in %v; zxid %#x -> %#x", n, took.Round(time.Millisecond), before, after)
	f := absFigure("KeepAlive", fmt.Sprintf("ZooKeeper writes per keepalive (%d keepalives)", n), "writes", writes, math.NaN(), Lower, 0)
	f.Note = fmt.Sprintf("zxid %#x before, %#x after", before, after)
	r.add(f, info("KeepAlive", fmt.Sprintf("keepalives/s (%d callers)", workers), "ops/s", float64(n)/took.Seconds(), math.NaN(), Higher))
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
