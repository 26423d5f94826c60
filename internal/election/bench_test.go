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
func BenchmarkFailover(b *testing.B) { benchFailover(b, 2, false, false) }

// BenchmarkFailoverQueue: the same with ten candidates, each resigner
// queueing again at the tail, as the bench's campaign workload does: the
// candidate next in line queued behind several.
func BenchmarkFailoverQueue(b *testing.B) { benchFailover(b, 10, false, false) }

// BenchmarkFailoverElected: ten candidates as BenchmarkFailoverQueue, each op
// from the Resign call to the next candidate's Elected only, as the bench's
// campaign workload times it: Resign, which reads the election's revision
// after its delete, returns outside the timed span.
func BenchmarkFailoverElected(b *testing.B) { benchFailover(b, 10, true, false) }

// BenchmarkRequeue: ten candidates as BenchmarkFailoverQueue, each op the
// resigner's new Campaign until it reports Queued at the tail (its lease,
// held here, has no candidacy in the election then): what a resigned
// leader's re-entry costs, which the bench's campaign workload overlaps
// with the next failover.
func BenchmarkRequeue(b *testing.B) { benchFailover(b, 10, false, true) }

// benchFailover times the failovers of n candidates (until the next one's
// Elected only, with untilElected), or with requeue the resigner's
// re-entry instead.
func benchFailover(b *testing.B, n int, untilElected, requeue bool) {
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
	ids := make([]string, n)
	elected := make([]chan struct{}, n)
	for i := range ids {
		l, err := leases.Grant(ctx, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		ids[i], elected[i] = l.ID, make(chan struct{}, 1)
	}
	queued := make(chan struct{}, 1)
	run := func(i int) {
		go func() {
			_ = el.Campaign(ctx, "bench", "v", ids[i], func(u Update) error {
				switch u.Status {
				case Elected:
					elected[i] <- struct{}{}
				case Queued:
					select { // once per campaign (a position change reports again)
					case queued <- struct{}{}:
					default:
					}
				}
				return nil
			})
		}()
	}
	run(0)
	<-elected[0]
	for i := 1; i < n; i++ {
		run(i)
		<-queued
	}
	leader := 0
	b.ResetTimer()
	for range b.N {
		if requeue {
			b.StopTimer()
		}
		resigned := make(chan error, 1)
		go func(id string) {
			_, _, err := el.Resign(ctx, "bench", id)
			resigned <- err
		}(ids[leader])
		if !untilElected {
			if err := <-resigned; err != nil {
				b.Fatal(err)
			}
		}
		old := leader
		leader = (leader + 1) % n
		select {
		case <-elected[leader]:
		case <-time.After(10 * time.Second):
			b.Fatal("no failover")
		}
		b.StopTimer()
		if untilElected {
			if err := <-resigned; err != nil {
				b.Fatal(err)
			}
		}
		for len(queued) > 0 { // the others' position changes
			<-queued
		}
		if requeue {
			b.StartTimer()
		}
		run(old) // queue again at the tail
		<-queued
		if requeue {
			b.StopTimer()
		}
		b.StartTimer()
	}
}
