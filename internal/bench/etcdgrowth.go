package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdCosts is the growth workload's etcd side at one size.
type etcdCosts struct{ register, get, snapshot time.Duration }

// etcdGrowth fills the etcd group prefix from have to size keys (Txns of
// 100 Puts, 16 at a time), then measures at one caller a Put+Delete p50,
// a one-key Get p50 (linearizable, etcd's default) and the median of 3
// whole-prefix Gets, the group's snapshot in etcd.
func (r *Runner) etcdGrowth(ctx context.Context, have, size int, d time.Duration) (etcdCosts, error) {
	var c etcdCosts
	prefix := r.etcdRoot() + "/grow/"
	key := func(i int) string { return fmt.Sprintf("%sm%d", prefix, i) }
	const batch = 100
	var next atomic.Int64
	next.Store(int64(have))
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && failed.Load() == nil {
				from := int(next.Add(batch)) - batch
				if from >= size {
					return
				}
				var ops []clientv3.Op
				for i := from; i < min(from+batch, size); i++ {
					ops = append(ops, clientv3.OpPut(key(i), "10.0.0.1:8080"))
				}
				if _, err := r.env.EtcdClient(w).Txn(ctx).Then(ops...).Commit(); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return c, err
	}
	cl := r.env.EtcdClient(0)
	regS := Closed(ctx, 1, d, func(ctx context.Context, _, i int) error {
		k := fmt.Sprintf("%sprobe%d", prefix, i)
		if _, err := cl.Put(ctx, k, "v"); err != nil {
			return err
		}
		_, err := cl.Delete(ctx, k)
		return err
	})
	getS := Closed(ctx, 1, d, func(ctx context.Context, _, i int) error {
		resp, err := cl.Get(ctx, key(i%size))
		if err == nil && len(resp.Kvs) != 1 {
			return fmt.Errorf("etcd: %s missing", key(i%size))
		}
		return err
	})
	for _, s := range []Sample{regS, getS} {
		if s.Ops == 0 {
			return c, fmt.Errorf("etcd, %d keys: no successful call: %v", size, s.FirstErr)
		}
	}
	c.register, c.get = regS.Quantile(0.5), getS.Quantile(0.5)
	var ds []time.Duration
	for range 3 {
		t0 := time.Now()
		resp, err := cl.Get(ctx, prefix, clientv3.WithPrefix())
		if err != nil {
			return c, err
		}
		ds = append(ds, time.Since(t0))
		if len(resp.Kvs) < size {
			return c, fmt.Errorf("etcd: prefix Get of %d keys, want at least %d", len(resp.Kvs), size)
		}
	}
	c.snapshot = quantile(sortedDurations(ds), 0.5)
	return c, nil
}
