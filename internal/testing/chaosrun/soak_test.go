package chaosrun_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/testing/chaos"
	"github.com/zkcoord/zkcoord/internal/zkserver"
)

var (
	soak        = flag.Duration("chaos.soak", 0, "run the soak for this long (e.g. 30m); 0 skips it")
	soakClients = flag.Int("chaos.soak.clients", 200, "concurrent clients of the soak")
)

// sample is one minute's resource figures of the deployment.
type sample struct {
	at         time.Duration
	goroutines []int // per replica
	heapMB     []float64
	fds        []int
	znodes     int
}

func (s sample) String() string {
	return fmt.Sprintf("t=%-6v goroutines=%v heap_MB=%v fds=%v znodes=%d", s.at.Round(time.Second), s.goroutines, s.heapMB, s.fds, s.znodes)
}

// TestSoak churns leases, members, candidacies and streams from hundreds of
// clients against two replicas for -chaos.soak, printing the replicas'
// goroutines, heap and open files and ZooKeeper's znode count every minute;
// it fails if they grow (last minute above twice the figure a third into the
// run, plus a small allowance).
func TestSoak(t *testing.T) {
	if *soak == 0 {
		t.Skip("soak: run with -chaos.soak=30m")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *soak+5*time.Minute)
	defer cancel()
	bin, err := chaos.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := chaos.StartCluster(ctx, chaos.Options{ZooKeepers: 1, Replicas: 2, Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	wctx, stop := context.WithTimeout(ctx, *soak)
	defer stop()
	var wg sync.WaitGroup
	conns := make([]*client.Client, 10)
	for i := range conns {
		if conns[i], err = client.New(ctx, c.Target()); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	for i := range *soakClients {
		cl := conns[i%len(conns)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			churn(wctx, cl, i)
		}()
	}
	var samples []sample
	start := time.Now()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-wctx.Done():
			done = true
		case <-tick.C:
		}
		s := measure(t, c, time.Since(start))
		samples = append(samples, s)
		fmt.Fprintln(os.Stderr, "soak:", s)
	}
	wg.Wait()
	if len(samples) < 3 {
		return
	}
	// The baseline is a third into the run: by then group journals have
	// filled up to their trim bound (docs/DESIGN.md), which is their size
	// from then on.
	first, last := samples[len(samples)/3], samples[len(samples)-1]
	for i := range first.goroutines {
		if last.goroutines[i] > 2*first.goroutines[i]+100 || last.fds[i] > 2*first.fds[i]+50 || last.heapMB[i] > 2*first.heapMB[i]+32 {
			t.Errorf("replica %d grew: first %v, last %v", i, first, last)
		}
	}
	if last.znodes > 2*first.znodes+500 {
		t.Errorf("znodes grew: first %d, last %d", first.znodes, last.znodes)
	}
}

// churn is one client: a session registering a member, campaigning briefly
// in one of ten elections, watching a group for a while, then closing,
// again and again.
func churn(ctx context.Context, c *client.Client, i int) {
	for n := 0; ctx.Err() == nil; n++ {
		s, err := c.NewSession(ctx, client.WithTTL(10*time.Second))
		if err != nil {
			continue
		}
		group := fmt.Sprintf("g%d", i%20)
		_, _ = s.Register(ctx, group, fmt.Sprintf("c%d-%d", i, n%3), "v")
		if i%4 == 0 {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if l, err := s.Campaign(cctx, fmt.Sprintf("e%d", i%10), "x"); err == nil {
				_ = l.Resign(ctx)
			}
			cancel()
		}
		if i%5 == 0 {
			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			for range c.WatchGroup(wctx, group) {
			}
			cancel()
		}
		t := time.NewTimer(time.Duration(500+i%1000) * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.Close(cctx)
		cancel()
	}
}

func measure(t *testing.T, c *chaos.Cluster, at time.Duration) sample {
	s := sample{at: at}
	for _, r := range c.Replicas() {
		var vars struct {
			Goroutines int `json:"goroutines"`
			Memstats   struct {
				HeapAlloc uint64 `json:"HeapAlloc"`
			} `json:"memstats"`
		}
		if resp, err := http.Get("http://" + r.DebugAddr + "/debug/vars"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&vars)
			resp.Body.Close()
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", r.Pid()))
		s.goroutines = append(s.goroutines, vars.Goroutines)
		s.heapMB = append(s.heapMB, float64(vars.Memstats.HeapAlloc/(1<<20)))
		s.fds = append(s.fds, len(fds))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if m, err := zkserver.Mntr(ctx, c.ZK().Servers[0].Addr()); err == nil {
		s.znodes = int(m["zk_znode_count"])
	}
	return s
}
