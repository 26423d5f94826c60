package election

import (
	"context"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// BenchmarkFailover: two candidates on one gateway; each op is the
// leader's Resign until the other reports Elected (the failover), after
// which the resigner campaigns again, queued behind it.
func BenchmarkFailover(b *testing.B) {
	sess, lay := zktest.Session(b)
	leases, err := lease.NewManager(sess, lay.Root, zktest.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	if err := leases.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer leases.Close()
	el, err := New(sess, lay.Root, leases, zktest.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	defer el.Close()
	ctx := context.Background()
	var ids [2]string
	for i := range ids {
		l, err := leases.Grant(ctx, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = l.ID
	}
	elected := [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}
	queued := make(chan struct{}, 1)
	run := func(i int) {
		go func() {
			_ = el.Campaign(ctx, "bench", "v", ids[i], func(u Update) error {
				switch u.Status {
				case Elected:
					elected[i] <- struct{}{}
				case Queued:
					queued <- struct{}{}
				}
				return nil
			})
		}()
	}
	run(0)
	<-elected[0]
	run(1)
	<-queued
	leader := 0
	b.ResetTimer()
	for range b.N {
		if _, _, err := el.Resign(ctx, "bench", ids[leader]); err != nil {
			b.Fatal(err)
		}
		leader = 1 - leader
		select {
		case <-elected[leader]:
		case <-time.After(10 * time.Second):
			b.Fatal("no failover")
		}
		b.StopTimer()
		run(1 - leader) // queue again behind the new leader
		<-queued
		b.StartTimer()
	}
}
