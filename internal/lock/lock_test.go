package lock

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

func TestQueueRules(t *testing.T) {
	for _, tc := range []struct {
		modes    string // x exclusive, s shared, in queue order
		blockers []int
		holders  int
		freeX    bool
		freeS    bool
	}{
		{"", nil, 0, true, true},
		{"x", []int{-1}, 1, false, false},
		{"xx", []int{-1, 0}, 1, false, false},
		{"ss", []int{-1, -1}, 2, false, true},
		{"ssx", []int{-1, -1, 1}, 2, false, false},
		{"ssxs", []int{-1, -1, 1, 2}, 2, false, false},
		{"sxss", []int{-1, 0, 1, 1}, 1, false, false},
		{"xsxs", []int{-1, 0, 1, 2}, 1, false, false},
	} {
		var q queue
		for i, c := range tc.modes {
			m := Exclusive
			if c == 's' {
				m = Shared
			}
			q = append(q, node{name: fmt.Sprintf("%c_k%d_%010d", c, i, i), mode: m, key: fmt.Sprint("k", i), seq: int64(i)})
		}
		var blockers []int
		for i := range q {
			blockers = append(blockers, q.blocker(i))
		}
		if !slices.Equal(blockers, tc.blockers) || q.holders() != tc.holders || q.free(Exclusive) != tc.freeX || q.free(Shared) != tc.freeS {
			t.Errorf("%q: blockers %v, holders %d, free %v/%v; want %v, %d, %v/%v", tc.modes, blockers, q.holders(),
				q.free(Exclusive), q.free(Shared), tc.blockers, tc.holders, tc.freeX, tc.freeS)
		}
	}
	key := strings.Repeat("ab", 16)
	for name, ok := range map[string]bool{
		"x_" + key + "_0000000007": true, "s_" + key + "_0000000007": true, "c_" + key + "_0000000007": false,
		"x_" + key + "-0000000007": false, "x_" + key + "_00000000x7": false, "x": false,
	} {
		if n, got := parseNode(name); got != ok || (ok && (n.key != key || n.seq != 7)) {
			t.Errorf("parseNode(%q) = %+v, %v; want ok %v", name, n, got, ok)
		}
	}
}

// TestExclusiveHandover: acquirers of an exclusive lock queue, one watch
// each on its predecessor; each release hands the lock to the next with a
// higher token, and wakes that one only: ZooKeeper fires one watch per
// handover, and one waiter is woken. (The releasing holder's watch on its
// own node, which tells it that its hold ended, is the same ZooKeeper
// watch as its successor's: one session, one path. Across gateways it
// would be a second one.)
func TestExclusiveHandover(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	const n = 10
	ls := make([]lease.Lease, n)
	as := make([]*acquirer, n)
	nodes := make([]string, n)
	var token int64
	for i := range n {
		ls[i] = g.grant(t, time.Minute)
		as[i] = g.acquire(t, Request{Lock: "l", LeaseID: ls[i].ID})
		if i == 0 {
			u := as[i].expect(t, Held)
			nodes[i], token = u.Node, u.Token
			continue
		}
		u := as[i].expect(t, Queued)
		if u.Position != i || u.Mode != Exclusive || u.Holds != 1 {
			t.Fatalf("acquirer %d: %+v; want position %d", i, u.Update, i)
		}
		nodes[i] = u.Node
	}
	// One watch per waiter, on its predecessor (the holder's on itself is
	// the same ZooKeeper watch); none on the last, nor on the lock.
	dir := g.lay.Lock("l")
	got := watches(t)
	for p, ss := range got {
		if p == dir || (strings.HasPrefix(p, dir+"/") && !slices.Contains(nodes[:n-1], p[len(dir)+1:])) {
			t.Errorf("unexpected watch on %s by %v", p, ss)
		}
	}
	for _, name := range nodes[:n-1] {
		if ss := got[dir+"/"+name]; len(ss) != 1 {
			t.Errorf("watches on %s: %v, want one", name, ss)
		}
	}

	for k := range n - 1 {
		wakes, fired := g.locks.queuedWakes.Load(), zktest.Mntr(t, "zk_sum_node_deleted_watch_count")
		holds, _, err := g.locks.Release(ctx, "l", ls[k].ID, "")
		if err != nil || holds != 0 {
			t.Fatalf("Release %d: %d holds, %v", k, holds, err)
		}
		u := as[k+1].expect(t, Held)
		if u.Token <= token || u.Node != nodes[k+1] {
			t.Fatalf("hold %d: %+v after token %d", k+1, u.Update, token)
		}
		token = u.Token
		if r := as[k].expect(t, Released); r.Token == 0 || r.Node != nodes[k] {
			t.Fatalf("released %+v", r.Update)
		}
		if err := as[k].end(t); err != nil {
			t.Fatalf("Acquire after Release: %v", err)
		}
		for _, a := range as[k+2:] {
			a.quiet(t)
		}
		if w := g.locks.queuedWakes.Load() - wakes; w != 1 {
			t.Errorf("handover %d woke %d waiters, want 1", k, w)
		}
		if f := zktest.Mntr(t, "zk_sum_node_deleted_watch_count") - fired; f != 1 {
			t.Errorf("handover %d fired %d ZooKeeper watches, want 1", k, f)
		}
	}
	if _, _, err := g.locks.Release(ctx, "l", ls[0].ID, ""); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("second Release: %v, want ErrNotHeld", err)
	}
}

// TestMutualExclusion: lockers on two gateways take an exclusive lock in
// turn; none finds another inside, and tokens rise.
func TestMutualExclusion(t *testing.T) {
	g1 := setup(t)
	sess2, _ := zktest.Session(t)
	g2 := newGateway(t, sess2, g1.lay)
	var inside, entries, overlaps atomic.Int64
	var last atomic.Int64 // the last token seen inside
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 6 {
		g := []*gateway{g1, g2}[i%2]
		l := g.grant(t, time.Minute)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 8 {
				held := make(chan int64, 1)
				actx, stop := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, _ = g.locks.Acquire(actx, Request{Lock: "m", LeaseID: l.ID}, func(u Update) error {
						if u.Status == Held {
							held <- u.Token
						}
						return nil
					})
				}()
				var tok int64
				select {
				case tok = <-held:
				case <-ctx.Done():
					stop()
					<-done
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				if prev := last.Swap(tok); prev >= tok {
					overlaps.Add(1)
				}
				entries.Add(1)
				inside.Add(-1)
				if _, _, err := g.locks.Release(ctx, "m", l.ID, ""); err != nil {
					t.Errorf("Release: %v", err)
				}
				<-done
				stop()
			}
		}()
	}
	wg.Wait()
	if overlaps.Load() != 0 || entries.Load() != 48 {
		t.Fatalf("%d entries, %d overlaps or tokens out of order; want 48, 0", entries.Load(), overlaps.Load())
	}
}
