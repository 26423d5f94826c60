package barrier_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/barrier"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestCrowdSharesOneFeed: the Awaits of one barrier on one gateway follow
// it through one watch and one read per change, however many wait. n
// participants wait; the last arrival releases them all, and the releases
// cost ZooKeeper a few children reads (the feed's), not one per waiter (as
// when each Await listed the barrier itself: n reads of n children at every
// change, quadratic in the crowd). Then every participant leaves and no
// child watch is left.
func TestCrowdSharesOneFeed(t *testing.T) {
	var children atomic.Int64
	e := newEnv(t, zkx.WithObserver(func(op zkx.Op, _ time.Duration, _ error) {
		if op == zkx.OpChildren {
			children.Add(1)
		}
	}))

	const n = 200
	before := zktest.ChildWatches(t)
	l := e.grant(t, time.Minute)
	ws := make([]*waiter, n)
	for i := range ws {
		ws[i] = e.await("crowd", n+1, fmt.Sprint("p", i), l)
	}
	for _, w := range ws {
		w.arrived(t, n)
	}
	if got := zktest.ChildWatches(t); got != before+1 {
		t.Errorf("%d Awaits waiting: %d child watches, want %d", n, got, before+1)
	}
	reads := children.Load()
	lastLease := e.grant(t, time.Minute)
	last := e.await("crowd", n+1, "last", lastLease)
	for _, w := range append(ws, last) {
		if err := w.end(t); err != nil {
			t.Fatalf("Await: %v", err)
		}
	}
	// The last one's join lists the barrier once, the feed once or twice
	// per change (its arrival, ready); a few more if a read raced a change.
	if got := children.Load() - reads; got > 10 {
		t.Errorf("releasing %d Awaits took %d children reads; want at most 10 (one feed)", n+1, got)
	}
	if err := e.leases.Revoke(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Leave(context.Background(), "crowd", "last", lastLease); err != nil {
		t.Fatal(err)
	}
	if e.exists(t, e.lay.Barrier("crowd")) {
		t.Error("the barrier stays after everyone left")
	}
	zktest.Eventually(t, 10*time.Second, func() bool { return zktest.ChildWatches(t) == before },
		"child watches %d, want %d once the crowd left", zktest.ChildWatches(t), before)
}

// TestAwaitSkipsEndedFeed: an Await that comes to a feed that ended (it saw
// the barrier gone before this participant joined) follows a new one
// instead of waiting on it for ever.
func TestAwaitSkipsEndedFeed(t *testing.T) {
	e := newEnv(t)
	barrier.EndAwaitFeed(e.b, "reborn")
	a := e.await("reborn", 2, "a", e.grant(t, time.Minute))
	b := e.await("reborn", 2, "b", e.grant(t, time.Minute))
	for _, w := range []*waiter{a, b} {
		if err := w.end(t); err != nil {
			t.Fatalf("Await: %v", err)
		}
	}
}
