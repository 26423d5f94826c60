package bench

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// lookup: a one-member Lookup, from the cache and LINEARIZABLE, beside a
// direct Get (and Sync + Get) of the same znode and an etcd Get
// (serializable, and linearizable) of the same value, swept over
// concurrency, the three systems interleaved in rounds.
func (r *Runner) lookup(ctx context.Context) error {
	const group, members = "lookup", 10
	reg := pb.NewRegistryServiceClient(r.env.Conn())
	for i := range members {
		if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: fmt.Sprint("m", i),
			Value: "10.0.0.1:8080", Persistent: true}); err != nil {
			return err
		}
	}
	direct, err := r.env.Direct(ctx)
	if err != nil {
		return err
	}
	defer direct.Close()
	ids := make([]string, members)
	paths := make([]string, members)
	for i := range members {
		ids[i] = fmt.Sprint("m", i)
		paths[i] = r.groups.Member(group, ids[i])
	}
	conns := make([]pb.RegistryServiceClient, 16)
	for i := range conns {
		conns[i] = pb.NewRegistryServiceClient(r.env.Conn())
	}
	gwLookup := func(cons pb.Consistency) func(ctx context.Context, w, i int) error {
		return func(ctx context.Context, w, i int) error {
			resp, err := conns[w%len(conns)].Lookup(ctx, &pb.LookupRequest{Group: group, MemberId: ids[(w+i)%members], Consistency: cons})
			if err == nil && len(resp.Members) != 1 {
				return errors.New("lookup: member missing")
			}
			return err
		}
	}
	directGet := func(ctx context.Context, w, i int) error {
		_, _, err := direct.Get(paths[(w+i)%members])
		return err
	}
	directSyncGet := func(ctx context.Context, w, i int) error {
		p := paths[(w+i)%members]
		if _, err := direct.Sync(p); err != nil {
			return err
		}
		_, _, err := direct.Get(p)
		return err
	}
	// etcd: the same ten values under a prefix, read by one-key Gets,
	// serializable (the member's local copy, as the cache) and linearizable
	// (a quorum read, as LINEARIZABLE), on the first 4 clients.
	var etcdGet func(serializable bool) func(ctx context.Context, w, i int) error
	if r.env.HasEtcd() {
		keys := make([]string, members)
		for i := range members {
			keys[i] = fmt.Sprintf("%s/lookup/m%d", r.etcdRoot(), i)
			if _, err := r.env.EtcdClient(0).Put(ctx, keys[i], "10.0.0.1:8080"); err != nil {
				return err
			}
		}
		etcdGet = func(serializable bool) func(ctx context.Context, w, i int) error {
			var opts []clientv3.OpOption
			if serializable {
				opts = append(opts, clientv3.WithSerializable())
			}
			return func(ctx context.Context, w, i int) error {
				resp, err := r.env.EtcdClient(w%4).Get(ctx, keys[(w+i)%members], opts...)
				if err == nil && len(resp.Kvs) != 1 {
					return errors.New("etcd get: key missing")
				}
				return err
			}
		}
	}
	barrier := path.Join(r.direct, "lookup-floor")
	if err := zkx.EnsurePath(direct, barrier, zk.WorldACL(zk.PermAll)); err != nil {
		return err
	}
	directSet := func(ctx context.Context, w, i int) error {
		_, err := direct.Set(barrier, nil, -1)
		return err
	}
	var cached, lin, lin1 pair
	floor := noStat
	// The CPU of every process of the run around each system's rounds:
	// what a Lookup costs the machine, and how busy its cores were.
	meters := []*cpuMeter{newCPUMeter(r.env), newCPUMeter(r.env), newCPUMeter(r.env)}
	var cachedCPU, linCPU cpuReading
	// ZooKeeper's transactions around the linearizable rounds: the
	// barrier writes, each shared by the reads that wait for it.
	var z0, zxids int64
	var linWrites float64
	zxidBefore := func() (err error) {
		z0, err = r.env.Zxid(ctx)
		return err
	}
	zxidAfter := func() error {
		z1, err := r.env.Zxid(ctx)
		zxids += z1 - z0
		return err
	}
	for _, c := range r.cfg.Concurrency {
		for _, kind := range []string{"cached", "linearizable"} {
			systems := []system{
				{name: "zkcoord Lookup cached", op: gwLookup(pb.Consistency_CONSISTENCY_CACHED)},
				{name: "direct Get", op: directGet},
			}
			if kind == "linearizable" {
				zxids = 0
				systems = []system{
					{name: "zkcoord Lookup linearizable", op: gwLookup(pb.Consistency_CONSISTENCY_LINEARIZABLE), before: zxidBefore, after: zxidAfter},
					{name: "direct Sync+Get", op: directSyncGet},
				}
			}
			if etcdGet != nil {
				if kind == "cached" {
					systems = append(systems, system{name: "etcd Get serializable", op: etcdGet(true)})
				} else {
					systems = append(systems, system{name: "etcd Get linearizable", op: etcdGet(false)})
				}
			}
			st, err := r.interleave(ctx, c, metered(meters, systems))
			if err != nil {
				return err
			}
			p := pair{st[0], st[1], noStat}
			if len(st) > 2 {
				p.etcd = st[2]
			}
			switch {
			case kind == "cached" && c == r.cfg.Callers:
				cached, cachedCPU = p, readCPU(meters, st)
			case kind == "linearizable" && c == r.cfg.Callers:
				lin, linCPU = p, readCPU(meters, st)
				linWrites = float64(zxids) / float64(p.gw.Calls)
			}
			if kind == "linearizable" && c == 1 {
				lin1 = p
				// The floor of a lone caller's catch-up: the quorum write
				// it cannot do without, alone (DESIGN.md, "Lookup").
				fl, err := r.interleave(ctx, 1, []system{{name: "direct SetData (the barrier's floor)", op: directSet}})
				if err != nil {
					return err
				}
				floor = fl[0]
			}
		}
	}
	if cached.gw.Calls == 0 {
		return fmt.Errorf("no load point at %d callers (-concurrency must include it)", r.cfg.Callers)
	}
	c := fmt.Sprintf(" (%d callers)", r.cfg.Callers)
	r.add(
		ratioFigure("Lookup cached", "throughput"+c, "ops/s", cached.gw.Throughput, cached.direct.Throughput, Higher, 2).withEtcd(cached.etcd.Throughput),
		ratioFigure("Lookup cached", "p50 latency"+c, "ms", cached.gw.P50, cached.direct.P50, Lower, 1).withEtcd(cached.etcd.P50),
		info("Lookup cached", "p99 latency"+c, "ms", cached.gw.P99, cached.direct.P99, Lower).withEtcd(cached.etcd.P99),
		ratioFigure("Lookup linearizable", "throughput"+c, "ops/s", lin.gw.Throughput, lin.direct.Throughput, Higher, 0.8).etcdBound(lin.etcd.Throughput, 1),
		info("Lookup linearizable", "p50 latency"+c, "ms", lin.gw.P50, lin.direct.P50, Lower).withEtcd(lin.etcd.P50),
	)
	r.add(cachedCPU.figures("Lookup cached", "Lookup", c, cached.throughputs())...)
	r.add(linCPU.figures("Lookup linearizable", "Lookup", c, lin.throughputs())...)
	wr := info("Lookup linearizable", "ZooKeeper writes per Lookup"+c, "txns", linWrites, 0, Lower)
	wr.Note = "ZooKeeper's zxid over the zkcoord rounds, per Lookup (warm-ups included): the barrier writes, one per catch-up shared by the reads that wait for it; direct's sync is not a transaction"
	r.add(wr)
	if lin1.gw.Calls > 0 {
		f := info("Lookup linearizable", "p50 latency (1 caller)", "ms", lin1.gw.P50, lin1.direct.P50, Lower).etcdBound(lin1.etcd.P50, 1.5)
		f.Note = "one caller alone: no concurrent read shares its catch-up write"
		r.add(f, info("Lookup linearizable", "throughput (1 caller)", "ops/s", lin1.gw.Throughput, lin1.direct.Throughput, Higher).withEtcd(lin1.etcd.Throughput))
		fl := info("Lookup linearizable", "p50 floor: a direct SetData alone (1 caller)", "ms", floor.P50, lin1.direct.P50, Lower).withEtcd(lin1.etcd.P50)
		fl.Note = "the zkcoord column is one direct SetData, the fsync'd quorum write a catch-up cannot do without: its ratio to etcd is the least the 1-caller ratio can be"
		r.add(fl)
	}
	return nil
}

// pair is a load point's medians of zkcoord, direct and etcd (noStat
// without etcd).
type pair struct{ gw, direct, etcd Stat }

func (p pair) throughputs() [3]float64 {
	return [3]float64{p.gw.Throughput, p.direct.Throughput, p.etcd.Throughput}
}
