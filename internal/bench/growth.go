package bench

import (
	"context"
	"fmt"
	"math"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/protobuf/proto"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// flatBound is how much a cost may grow from the smallest to the largest
// group and still count as flat.
const flatBound = 2.0

// growth: Register+Deregister, a one-member Lookup and a WatchGroup's
// initial snapshot as one group grows from Sizes[0] to Sizes[last]
// members; beside direct create+delete, Get, and Children plus a Get of
// each child.
func (r *Runner) growth(ctx context.Context) error {
	const group = "grow"
	reg := pb.NewRegistryServiceClient(r.env.Conn())
	direct, err := r.env.Direct(ctx)
	if err != nil {
		return err
	}
	defer direct.Close()
	dir := path.Join(r.direct, "grow")
	if err := zkx.EnsurePath(direct, dir, zk.WorldACL(zk.PermAll)); err != nil {
		return err
	}
	type costs struct {
		register, lookup, snapshot, dRegister, dGet, dSnapshot time.Duration
		etcd                                                   etcdCosts
	}
	nan := etcdCosts{-1, -1, -1}
	em := func(d time.Duration) float64 { // an etcd figure, NaN without etcd
		if d < 0 {
			return math.NaN()
		}
		return ms(d)
	}
	var first, last costs
	have := 0
	d := r.cfg.Duration / 2
	for si, size := range r.cfg.Sizes {
		start := time.Now()
		if err := fill(ctx, have, size, func(i int) error {
			_, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: fmt.Sprint("m", i), Value: "10.0.0.1:8080", Persistent: true})
			return err
		}); err != nil {
			return err
		}
		gwFill := time.Since(start)
		start = time.Now()
		if err := fill(ctx, have, size, func(i int) error {
			_, err := direct.Create(path.Join(dir, fmt.Sprint("m", i)), []byte("10.0.0.1:8080"), 0, zk.WorldACL(zk.PermAll))
			return err
		}); err != nil {
			return err
		}
		r.logf("  %d members: filled in %v (direct %v)", size, gwFill.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		prevSize := have // etcd's prefix is filled after the measurements below
		have = size

		// The cache follows the fill through the journal, and can lag it on
		// a busy machine: a LINEARIZABLE read brings it up to date, so that
		// the cached Lookups below and the snapshot find every member.
		if _, err := reg.Lookup(ctx, &pb.LookupRequest{Group: group, MemberId: "m0", Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); err != nil {
			return err
		}
		var c costs
		regS := Closed(ctx, 1, d, func(ctx context.Context, _, i int) error {
			m := fmt.Sprint("probe", i)
			if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: m, Value: "v", Persistent: true}); err != nil {
				return err
			}
			_, err := reg.Deregister(ctx, &pb.DeregisterRequest{Group: group, MemberId: m})
			return err
		})
		dRegS := Closed(ctx, 1, d, func(ctx context.Context, _, i int) error {
			p := path.Join(dir, fmt.Sprint("probe", i))
			if _, err := direct.Create(p, []byte("v"), 0, zk.WorldACL(zk.PermAll)); err != nil {
				return err
			}
			return direct.Delete(p, -1)
		})
		lookS := Closed(ctx, 1, d, func(ctx context.Context, _, i int) error {
			_, err := reg.Lookup(ctx, &pb.LookupRequest{Group: group, MemberId: fmt.Sprint("m", i%size)})
			return err
		})
		getS := Closed(ctx, 1, d, func(ctx context.Context, _, i int) error {
			_, _, err := direct.Get(path.Join(dir, fmt.Sprint("m", i%size)))
			return err
		})
		for _, s := range []Sample{regS, dRegS, lookS, getS} {
			if s.Ops == 0 {
				return fmt.Errorf("%d members: no successful call: %v", size, s.FirstErr)
			}
		}
		c.register, c.dRegister = regS.Quantile(0.5), dRegS.Quantile(0.5)
		c.lookup, c.dGet = lookS.Quantile(0.5), getS.Quantile(0.5)
		// Again before the snapshot: the probes above moved the group.
		if _, err := reg.Lookup(ctx, &pb.LookupRequest{Group: group, MemberId: "m0", Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); err != nil {
			return err
		}
		var snapBytes int
		var firstPage time.Duration
		if c.snapshot, firstPage, snapBytes, err = r.snapshot(ctx, group, size); err != nil {
			return err
		}
		if c.dSnapshot, err = directSnapshot(ctx, direct, dir, size); err != nil {
			return err
		}
		c.etcd = nan
		if r.env.HasEtcd() {
			if c.etcd, err = r.etcdGrowth(ctx, prevSize, size, d); err != nil {
				return err
			}
		}
		r.logf("  %d members: register+deregister p50 %v (direct %v, etcd %v), lookup p50 %v (direct get %v, etcd %v), snapshot %v (direct %v, etcd %v)",
			size, c.register, c.dRegister, c.etcd.register, c.lookup, c.dGet, c.etcd.get, c.snapshot, c.dSnapshot, c.etcd.snapshot)
		w := fmt.Sprintf("Growth (%d members)", size)
		r.add(
			info(w, "Register+Deregister p50", "ms", ms(c.register), ms(c.dRegister), Lower).withEtcd(em(c.etcd.register)),
			info(w, "Lookup one member p50", "ms", ms(c.lookup), ms(c.dGet), Lower).withEtcd(em(c.etcd.get)),
		)
		snap := info(w, "WatchGroup snapshot", "ms", ms(c.snapshot), ms(c.dSnapshot), Lower)
		if size == 10000 {
			snap = absFigure(w, "WatchGroup snapshot", "ms", ms(c.snapshot), ms(c.dSnapshot), Lower, 100)
		}
		snap = snap.withEtcd(em(c.etcd.snapshot))
		snap.Note = "median of 3 opens, from the call to the SNAPSHOT; direct: Children then a Get of each, 32 at a time; etcd: one Get of the whole prefix"
		msg := info(w, "WatchGroup snapshot message", "KiB", float64(snapBytes)/1024, math.NaN(), Lower)
		msg.Note = "gRPC clients refuse messages over 4 MiB unless they raise MaxCallRecvMsgSize"
		r.add(snap, msg)
		if err := r.pagedFigures(ctx, w, size, firstPage); err != nil {
			return err
		}
		if si == 0 {
			first = c
		}
		last = c
	}
	if len(r.cfg.Sizes) > 1 {
		w := fmt.Sprintf("Growth %d -> %d members", r.cfg.Sizes[0], r.cfg.Sizes[len(r.cfg.Sizes)-1])
		grow := func(a, b time.Duration) float64 { return float64(b) / float64(a) }
		rf := absFigure(w, "Register+Deregister p50 growth", "x", grow(first.register, last.register), grow(first.dRegister, last.dRegister), Lower, flatBound)
		lf := absFigure(w, "Lookup p50 growth", "x", grow(first.lookup, last.lookup), grow(first.dGet, last.dGet), Lower, flatBound)
		if r.env.HasEtcd() {
			rf = rf.withEtcd(grow(first.etcd.register, last.etcd.register))
			lf = lf.withEtcd(grow(first.etcd.get, last.etcd.get))
		}
		rf.Note, lf.Note = "p50 at the largest size / p50 at the smallest", "p50 at the largest size / p50 at the smallest"
		r.add(rf, lf)
	}
	return nil
}

// snapshot opens a WatchGroup stream three times, with a client's default
// limits (4 MiB messages) and the snapshot in pages, and returns the
// medians of the time to the whole snapshot (its last page) and to its
// first page, and the size of its largest message.
func (r *Runner) snapshot(ctx context.Context, group string, size int) (whole, first time.Duration, bytes int, err error) {
	c := pb.NewRegistryServiceClient(r.env.Conn())
	var wholes, firsts []time.Duration
	for range 3 {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		t0 := time.Now()
		st, err := c.WatchGroup(sctx, &pb.WatchGroupRequest{Group: group, SnapshotPageSize: snapshotPage})
		if err != nil {
			cancel()
			return 0, 0, 0, err
		}
		n := 0
		for page := 0; ; page++ {
			m, err := st.Recv()
			if err != nil {
				cancel()
				return 0, 0, 0, err
			}
			if page == 0 {
				firsts = append(firsts, time.Since(t0))
			}
			n += len(m.Members)
			bytes = max(bytes, proto.Size(m))
			if !m.More {
				break
			}
		}
		wholes = append(wholes, time.Since(t0))
		cancel()
		if n < size {
			return 0, 0, 0, fmt.Errorf("snapshot of %d members, want at least %d", n, size)
		}
	}
	return quantile(sortedDurations(wholes), 0.5), quantile(sortedDurations(firsts), 0.5), bytes, nil
}

// directSnapshot reads the group directly: Children, then each child's
// data, 32 at a time.
func directSnapshot(ctx context.Context, c *zk.Conn, dir string, size int) (time.Duration, error) {
	var ds []time.Duration
	for range 3 {
		t0 := time.Now()
		kids, _, err := c.Children(dir)
		if err != nil {
			return 0, err
		}
		if len(kids) < size {
			return 0, fmt.Errorf("direct: %d children, want at least %d", len(kids), size)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Value
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= len(kids) || ctx.Err() != nil {
						return
					}
					if _, _, err := c.Get(path.Join(dir, kids[i])); err != nil && err != zk.ErrNoNode {
						failed.Store(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	return quantile(sortedDurations(ds), 0.5), nil
}

// fill calls add(i) for i in [from, to), 64 at a time.
func fill(ctx context.Context, from, to int, add func(i int) error) error {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && failed.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= to {
					return
				}
				if err := add(i); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	return ctx.Err()
}
