package bench

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// oneShotTTL is the TTL of the one-shot registrations: longer than the
// rest of the run, so that their ends fall after it (the workload runs
// just before php, which leaves members too).
const oneShotTTL = 10 * time.Minute

// oneShot: the registration of a process that registers once with a TTL
// and never calls again (PHP-style): a Register with a ttl (the gateway
// grants the lease and registers under it in one call), beside a direct
// ZooKeeper TTL node (CreateTTL, ZooKeeper's extended types) and etcd's
// Grant then Put under the new lease, at Callers callers, the systems
// interleaved in rounds.
func (r *Runner) oneShot(ctx context.Context) error {
	const group = "oneshot"
	direct, err := r.env.Direct(ctx)
	if err != nil {
		return err
	}
	defer direct.Close()
	dir := path.Join(r.direct, group)
	if err := zkx.EnsurePath(direct, dir, zk.WorldACL(zk.PermAll)); err != nil {
		return err
	}
	regs := make([]pb.RegistryServiceClient, r.cfg.Callers)
	for w := range regs {
		regs[w] = pb.NewRegistryServiceClient(r.env.Conn())
	}
	systems := []system{
		{name: "zkcoord Register with TTL", op: func(ctx context.Context, w, i int) error {
			_, err := regs[w].Register(ctx, &pb.RegisterRequest{Group: group, MemberId: fmt.Sprintf("w%d-%d", w, i),
				Value: "10.0.0.1:8080", Ttl: durationpb.New(oneShotTTL)})
			return err
		}},
		{name: "direct CreateTTL", op: func(ctx context.Context, w, i int) error {
			_, err := direct.CreateTTL(path.Join(dir, fmt.Sprintf("w%d-%d", w, i)), []byte("10.0.0.1:8080"), zk.FlagTTL,
				zk.WorldACL(zk.PermAll), oneShotTTL)
			return err
		}},
	}
	if r.env.HasEtcd() {
		systems = append(systems, system{name: "etcd Grant+Put", op: func(ctx context.Context, w, i int) error {
			c := r.env.EtcdClient(w % 4)
			g, err := c.Grant(ctx, int64(oneShotTTL/time.Second))
			if err != nil {
				return err
			}
			_, err = c.Put(ctx, fmt.Sprintf("%s/oneshot/w%d-%d", r.etcdRoot(), w, i), "10.0.0.1:8080", clientv3.WithLease(g.ID))
			return err
		}})
	}
	st, err := r.interleave(ctx, r.cfg.Callers, systems)
	if err != nil {
		return err
	}
	e := noStat
	if len(st) > 2 {
		e = st[2]
	}
	w := "One-shot registration with a TTL"
	c := fmt.Sprintf(" (%d callers)", r.cfg.Callers)
	f := info(w, "registrations/s"+c, "ops/s", st[0].Throughput, st[1].Throughput, Higher).withEtcd(e.Throughput)
	f.Note = "zkcoord: Register with a ttl; direct: CreateTTL (a TTL node, no session tie); etcd: Grant then Put under the lease"
	r.add(f,
		info(w, "p50 latency"+c, "ms", st[0].P50, st[1].P50, Lower).withEtcd(e.P50),
		info(w, "p99 latency"+c, "ms", st[0].P99, st[1].P99, Lower).withEtcd(e.P99),
	)
	return nil
}
