package registry_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// BenchmarkFirstLoad times a gateway's first Lookup of a group it has not
// cached: the members' listing and a read of every member (reload.go),
// then the journal's second listing. Each iteration builds a new gateway on
// its own session (not timed) and closes it after.
//
//	go test -run '^$' -bench 'FirstLoad/members=(1000|10000)$' -benchtime 4x -count 6 ./internal/registry/
func BenchmarkFirstLoad(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprint("members=", n), func(b *testing.B) {
			var lay zktest.Layout
			fill := gateway(b, &lay)
			fillGroup(b, fill, "g", 0, n)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				e := gateway(b, &lay)
				b.StartTimer()
				v, err := e.reg.Lookup(ctx, "g", "", false)
				b.StopTimer()
				if err != nil || len(v.Members) != n {
					b.Fatalf("first load: %d members, %v", len(v.Members), err)
				}
				e.reg.Close()
				e.leases.Close()
				e.sess.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/member")
		})
	}
}

// BenchmarkCatchUp times a group cache's catch-up on 500 journal entries:
// its watch loop is held (WithBeforeRefresh) while another gateway
// registers 500 members, then let go; the time runs from the release until
// a watcher of the cache has the 500 events.
//
//	go test -run '^$' -bench CatchUp -benchtime 20x -count 6 ./internal/registry/
func BenchmarkCatchUp(b *testing.B) {
	const n = 500
	ctx := context.Background()
	var (
		lay     zktest.Layout
		release atomic.Pointer[chan struct{}]
	)
	a := gateway(b, &lay, registry.WithBeforeRefresh(func(string) {
		if ch := release.Load(); ch != nil {
			<-*ch
		}
	}))
	w := gateway(b, &lay)
	fillGroup(b, w, "g", 0, 1)
	sub, _, err := a.reg.Watch(ctx, "g", 0)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	b.ResetTimer()
	// A failure while the loop is held must not leave a's Close waiting
	// for it (cleanups run last first: this one before a's).
	b.Cleanup(func() {
		if ch := release.Swap(nil); ch != nil {
			close(*ch)
		}
	})
	for i := range b.N {
		b.StopTimer()
		ch := make(chan struct{})
		release.Store(&ch)
		fillGroup(b, w, "g", (i+1)*n, n)
		b.StartTimer()
		if release.CompareAndSwap(&ch, nil) {
			close(ch)
		}
		for got := 0; got < n; {
			ev, err := sub.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if ev.Type != registry.Joined {
				b.Fatalf("event %v, want JOINED", ev.Type)
			}
			got++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n, "µs/entry")
}

// fillGroup registers n persistent members numbered from first on, 32
// calls at a time.
func fillGroup(b *testing.B, e env, group string, first, n int) {
	b.Helper()
	var (
		wg     sync.WaitGroup
		next   atomic.Int64
		failed atomic.Value
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				_, _, err := e.reg.Register(context.Background(), registry.RegisterParams{
					Group: group, ID: fmt.Sprintf("m%07d", first+i), Value: "10.0.0.1:8080", Persistent: true})
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}
