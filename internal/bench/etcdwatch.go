package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdFan is n etcd watchers on one prefix, the fan-out's etcd side. Each
// of the etcd clients multiplexes its watchers on one gRPC watch stream
// (clientv3 shares a stream among a client's watches with the same
// context metadata), so n watchers ride on 16 streams, as zkcoord's
// WatchGroup streams ride on 16 connections.
type etcdFan struct {
	prefix   string
	n        int
	arrivals chan etcdArrival
	opened   time.Duration
	// etcd's memory before and after the watchers opened.
	before, after Memory
}

type etcdArrival struct {
	key string
	at  time.Time
}

// etcdWatchers opens n watchers on a fresh prefix and returns once etcd
// has confirmed every one (WithCreatedNotify). Their goroutines are added
// to wg and end with ctx.
func (r *Runner) etcdWatchers(ctx context.Context, wg *sync.WaitGroup, n, changes int) (*etcdFan, error) {
	f := &etcdFan{prefix: r.etcdRoot() + "/fan/", n: n, arrivals: make(chan etcdArrival, n*(changes+1))}
	var err error
	if f.before, err = r.env.EtcdMemory(ctx); err != nil {
		return nil, err
	}
	ready := make(chan error, n)
	start := time.Now()
	for i := range n {
		wch := r.env.EtcdClient(i).Watch(ctx, f.prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for resp := range wch {
				now := time.Now()
				if err := resp.Err(); err != nil {
					if first {
						ready <- err
					}
					return
				}
				if first {
					first = false
					ready <- nil
					if resp.Created {
						continue
					}
				}
				for _, ev := range resp.Events {
					select {
					case f.arrivals <- etcdArrival{string(ev.Kv.Key), now}:
					case <-ctx.Done():
						return
					}
				}
			}
			if first {
				ready <- fmt.Errorf("watch closed before it was created: %v", ctx.Err())
			}
		}()
	}
	for range n {
		if err := <-ready; err != nil {
			return nil, err
		}
	}
	f.opened = time.Since(start)
	if f.after, err = r.env.EtcdMemory(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// change puts one key under the prefix and returns how long it took to
// reach each watcher.
func (f *etcdFan) change(ctx context.Context, c *clientv3.Client, member string) ([]time.Duration, error) {
	key := f.prefix + member
	t0 := time.Now()
	if _, err := c.Put(ctx, key, "v"); err != nil {
		return nil, err
	}
	lat := make([]time.Duration, 0, f.n)
	timeout := time.After(30 * time.Second)
	for len(lat) < f.n {
		select {
		case a := <-f.arrivals:
			if a.key == key {
				lat = append(lat, a.at.Sub(t0))
			}
		case <-timeout:
			return nil, fmt.Errorf("etcd: change %s reached %d of %d watchers in 30s", member, len(lat), f.n)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return lat, nil
}
