package lock

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestCallsHonourDeadlineWhileZooKeeperStalls: while every byte to
// ZooKeeper is stalled (connections open, nothing answers; the session
// timeout is long, so go-zookeeper does not notice), Acquire (queueing,
// adding a reentrant hold, resuming), TryAcquire, Release, Get and Check
// each return within their deadline + 50 ms with the deadline's error,
// and a holder's running Acquire goes on. Once ZooKeeper answers again,
// the lock carries on: still held, and it can be released.
func TestCallsHonourDeadlineWhileZooKeeperStalls(t *testing.T) {
	ctx := context.Background()
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	g := newGateway(t, sess, lay)
	holder, other := g.grant(t, time.Minute), g.grant(t, time.Minute)
	a := g.acquire(t, Request{Lock: "d", LeaseID: holder.ID})
	ua := a.expect(t, Held)

	px.Stall()
	ignore := func(Update) error { return nil }
	late := zktest.CheckDeadlines(t, 200*time.Millisecond, []zktest.DeadlineCall{
		{Name: "Acquire queueing", Call: func(ctx context.Context) error {
			_, err := g.locks.Acquire(ctx, Request{Lock: "d", LeaseID: other.ID}, ignore)
			return err
		}},
		{Name: "Acquire adding a reentrant hold", Call: func(ctx context.Context) error {
			_, err := g.locks.Acquire(ctx, Request{Lock: "d", LeaseID: holder.ID, Reentrant: true}, ignore)
			return err
		}},
		{Name: "Acquire resuming", Call: func(ctx context.Context) error {
			_, err := g.locks.Acquire(ctx, Request{Lock: "d", LeaseID: holder.ID, Resume: ua.Hold}, ignore)
			return err
		}},
		{Name: "TryAcquire", Call: func(ctx context.Context) error {
			_, err := g.locks.TryAcquire(ctx, Request{Lock: "e", LeaseID: other.ID})
			return err
		}},
		{Name: "Release", Call: func(ctx context.Context) error {
			_, _, err := g.locks.Release(ctx, "d", holder.ID, ua.Hold)
			return err
		}},
		{Name: "Get", Call: func(ctx context.Context) error {
			_, _, _, err := g.locks.Get(ctx, "d")
			return err
		}},
		{Name: "Check", Call: func(ctx context.Context) error {
			_, _, _, err := g.locks.Check(ctx, "d", ua.Token)
			return err
		}},
	})
	a.quiet(t)

	px.Restore()
	late()
	var holders []Holder
	zktest.Eventually(t, 10*time.Second, func() bool {
		var err error
		holders, _, _, err = g.locks.Get(ctx, "d")
		return err == nil
	}, "Get after the stall")
	if len(holders) != 1 || holders[0].Token != ua.Token {
		t.Fatalf("holders after the stall: %+v, want the hold from before it", holders)
	}
	// The calls whose deadline passed may have taken effect: release what
	// the holder's lease has, one hold at a time.
	for {
		n, _, err := g.locks.Release(ctx, "d", holder.ID, "")
		if errors.Is(err, ErrNotHeld) {
			break
		} else if err != nil {
			t.Fatalf("Release after the stall: %v", err)
		}
		if n == 0 {
			break
		}
	}
	if u := a.next(t); u.Status != Released && u.Status != Held {
		t.Fatalf("holder after the releases: %+v", u.Update)
	}
}

// TestCloseEndsBlockedAcquire: closing Locks ends an Acquire that waits on
// a stalled ZooKeeper at once, with ErrClosed.
func TestCloseEndsBlockedAcquire(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	g := newGateway(t, sess, lay)
	l := g.grant(t, time.Minute)
	px.Stall()
	defer px.Restore()
	a := g.acquire(t, Request{Lock: "c", LeaseID: l.ID})
	a.quiet(t)
	closed := time.Now()
	g.locks.Close()
	if err := a.end(t); !errors.Is(err, ErrClosed) {
		t.Fatalf("Acquire after Close: %v", err)
	}
	if took := time.Since(closed); took > zktest.Slack {
		t.Errorf("Acquire returned %v after Close", took)
	}
}
