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
//	go test -run '^$' -bench FirstLoad -benchtime 5x -count 5 ./internal/registry/
func BenchmarkFirstLoad(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprint("members=", n), func(b *testing.B) {
			var lay zktest.Layout
			fill := gateway(b, &lay)
			fillGroup(b, fill, "g", n)
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

// fillGroup registers n persistent members, 32 calls at a time.
func fillGroup(b *testing.B, e env, group string, n int) {
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
					Group: group, ID: fmt.Sprintf("m%07d", i), Value: "10.0.0.1:8080", Persistent: true})
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
