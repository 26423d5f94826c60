package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// etcdElection stands n candidates in one etcd election
// (concurrency.Election, one session, and so one lease, per candidate,
// the sessions spread over the etcd clients) and returns its handovers
// once every candidate has its key. Each candidate, once elected, waits
// for its resign, resigns and campaigns again. The candidates' goroutines
// are added to wg and end with ctx.
func (r *Runner) etcdElection(ctx context.Context, wg *sync.WaitGroup, n int) (*handovers, error) {
	prefix := r.etcdRoot() + "/elect"
	sessions := make([]*concurrency.Session, n)
	for i := range n {
		s, err := concurrency.NewSession(r.env.EtcdClient(i), concurrency.WithTTL(60))
		if err != nil {
			closeSessions(sessions)
			return nil, err
		}
		sessions[i] = s
	}
	won := make(chan elected, n)
	resign := make([]chan struct{}, n)
	for i := range n {
		resign[i] = make(chan struct{}, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sessions[i].Close()
			e := concurrency.NewElection(sessions[i], prefix)
			for ctx.Err() == nil {
				if err := e.Campaign(ctx, fmt.Sprint("c", i)); err != nil {
					return
				}
				select {
				case won <- elected{i, time.Now()}:
				case <-ctx.Done():
					return
				}
				select {
				case <-resign[i]:
				case <-ctx.Done():
					return
				}
				if err := e.Resign(ctx); err != nil {
					return
				}
			}
		}()
	}
	// Campaign blocks until elected, so the queue is read from etcd: every
	// candidate has put its key when the prefix holds n keys.
	c := r.env.EtcdClient(0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(ctx, prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return nil, err
		}
		if resp.Count >= int64(n) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d candidates queued in 30s", resp.Count, n)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return &handovers{won: won, resign: func(leader int) error {
		resign[leader] <- struct{}{}
		return nil
	}}, nil
}

func closeSessions(ss []*concurrency.Session) {
	for _, s := range ss {
		if s != nil {
			s.Close()
		}
	}
}
