package semaphore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestOneWatchPerSemaphorePerGateway: two gateways, each with a holder and
// 15 waiters of one semaphore, hold one child watch each on it, and no
// data watch on any slot: the waiters share their gateway's feed. A second
// semaphore adds one more; a release hands the permit to the first waiter
// wherever it runs, and moves every other waiter up.
func TestOneWatchPerSemaphorePerGateway(t *testing.T) {
	g1 := setup(t)
	sess2, _ := zktest.Session(t)
	g2 := newGateway(t, sess2, g1.lay)
	base := childWatches(t)
	const per = 16
	var all []*acquire
	var ls []lease.Lease
	for i := range 2 * per {
		g := g1
		if i%2 == 1 {
			g = g2
		}
		l := g.grant(t, time.Minute)
		a := g.acquire(t, "s", 2, fmt.Sprint("w", i), l.ID)
		if i < 2 {
			a.expect(t, Held)
		} else if u := a.expect(t, Queued); u.Position != i-2 {
			t.Fatalf("waiter %d: position %d", i, u.Position)
		}
		all, ls = append(all, a), append(ls, l)
	}
	if n := childWatches(t) - base; n != 2 {
		t.Fatalf("%d child watches for one semaphore on two gateways (%d waiters), want 2", n, 2*per-2)
	}
	if g1.sems.feeds.count() != 1 || g2.sems.feeds.count() != 1 {
		t.Fatalf("feeds: %d and %d, want one each", g1.sems.feeds.count(), g2.sems.feeds.count())
	}
	for p := range strings.SplitSeq(zktest.FourLetter(t, "wchp"), "\n") {
		if strings.HasPrefix(p, g1.lay.Semaphore("s")) {
			t.Errorf("data watch on %s", p)
		}
	}
	g1.acquire(t, "t", 1, "x", g1.grant(t, time.Minute).ID).expect(t, Held)
	g1.acquire(t, "t", 1, "y", g1.grant(t, time.Minute).ID).expect(t, Queued)
	if n := childWatches(t) - base; n != 3 {
		t.Fatalf("%d child watches for two semaphores, want 3", n)
	}

	// The holder on g1 releases: the first waiter (on g1 too, i = 2) holds;
	// the holder on g2 releases: the next (i = 3, on g2) holds.
	for h, g := range []*gateway{g1, g2} {
		if _, _, err := g.sems.Release(context.Background(), "s", ls[h].ID); err != nil {
			t.Fatal(err)
		}
		all[h].expect(t, Released)
		all[h+2].expect(t, Held)
		for i := h + 3; i < 2*per; i++ {
			if u := all[i].expect(t, Queued); u.Position != i-h-3 {
				t.Fatalf("waiter %d after %d releases: position %d, want %d", i, h+1, u.Position, i-h-3)
			}
		}
	}
}

// TestJeopardy: a holder whose gateway loses ZooKeeper is told JEOPARDY
// with the earliest time its session may expire, and HELD again with the
// same token once it is back, after a short outage and after a session
// expiry; a waiter on another gateway gets nothing meanwhile.
func TestJeopardy(t *testing.T) {
	direct, lay := zktest.Session(t)
	px := zktest.NewProxy(t, zktest.Addr(t))
	dctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	const timeout = 2 * time.Second
	sess, err := zkx.Dial(dctx, px.Addr(), zkx.WithSessionTimeout(timeout), zkx.WithLogger(zktest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	g := newGateway(t, sess, lay)       // reaches ZooKeeper through the proxy
	other := newGateway(t, direct, lay) // the waiter's, directly

	la := g.grant(t, time.Minute)
	a := g.acquire(t, "s", 1, "a", la.ID)
	ua := a.expect(t, Held)
	b := other.acquire(t, "s", 1, "b", other.grant(t, time.Minute).ID)
	b.expect(t, Queued)

	cutAt := time.Now()
	px.Cut()
	u := a.expect(t, Jeopardy)
	if u.Token != ua.Token || u.Deadline.Before(cutAt.Add(timeout/3)) || u.Deadline.After(time.Now().Add(timeout/3)) {
		t.Fatalf("jeopardy %+v; want token %d, deadline about %v after the cut", u.Update, ua.Token, timeout/3)
	}
	t.Logf("jeopardy %v after the cut, deadline in %v", u.At.Sub(cutAt), u.Deadline.Sub(u.At))
	px.Restore()
	if u := a.expect(t, Held); u.Token != ua.Token || u.Slot != ua.Slot {
		t.Fatalf("after reconnect: %+v, want the same permit", u.Update)
	}

	px.Cut()
	a.expect(t, Jeopardy)
	zktest.Eventually(t, 4*timeout, func() bool {
		ok, _, err := direct.Conn().Exists(lay.LeaseOwner(la.Key))
		return err == nil && !ok
	}, "session through the proxy did not expire")
	px.Restore()
	if u := a.expect(t, Held); u.Token != ua.Token {
		t.Fatalf("after session expiry: %+v, want the same permit", u.Update)
	}
	b.quiet(t)

	// The feed's watch was armed again under the new session: a release
	// still hands over, and the holder sees its own slot go.
	if _, _, err := other.sems.Release(context.Background(), "s", la.ID); err != nil {
		t.Fatal(err)
	}
	b.expect(t, Held)
	a.expect(t, Lost) // released through the other gateway: this one has no note of it
}

// TestHostile: a lease that is not the caller's principal's may not
// acquire, try or release (and changes nothing); a release with a lease
// that holds nothing is ErrNotAcquired; an Acquire with a lease that does
// not exist fails with lease.ErrNotFound and creates nothing.
func TestHostile(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	alice := lease.WithCaller(ctx, lease.Caller{Name: "alice"})
	mallory := lease.WithCaller(ctx, lease.Caller{Name: "mallory"})
	l, err := g.leases.GrantFor(alice, time.Minute, "alice", -1)
	if err != nil {
		t.Fatal(err)
	}
	a := g.acquireCtx(t, alice, "s", 1, "a", l.ID)
	a.expect(t, Held)

	if _, _, err := g.sems.Release(mallory, "s", l.ID); !errors.Is(err, lease.ErrNotHolder) {
		t.Fatalf("Release with another principal's lease: %v", err)
	}
	a.quiet(t)
	if _, err := g.sems.TryAcquire(mallory, "t", 1, "m", l.ID); !errors.Is(err, lease.ErrNotHolder) {
		t.Fatalf("TryAcquire with another principal's lease: %v", err)
	}
	m := g.acquireCtx(t, mallory, "u", 1, "m", l.ID)
	if err := m.end(t); !errors.Is(err, lease.ErrNotHolder) {
		t.Fatalf("Acquire with another principal's lease: %v", err)
	}
	for _, s := range []string{"t", "u"} {
		if kids := g.slots(t, s); len(kids) != 0 {
			t.Fatalf("slots of %s: %v", s, kids)
		}
	}
	other := g.grant(t, time.Minute)
	if _, _, err := g.sems.Release(ctx, "s", other.ID); !errors.Is(err, ErrNotAcquired) {
		t.Fatalf("Release with a lease that holds nothing: %v", err)
	}
	if _, _, err := g.sems.Release(ctx, "never", other.ID); !errors.Is(err, ErrNotAcquired) {
		t.Fatalf("Release of a semaphore never acquired: %v", err)
	}
	gone := g.acquire(t, "v", 1, "x", strings.Repeat("ab", 16))
	if err := gone.end(t); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("Acquire with an unknown lease: %v", err)
	}
	if kids := g.slots(t, "v"); len(kids) != 0 {
		t.Fatalf("slots after an unknown lease: %v", kids)
	}
	if st, err := g.sems.Get(ctx, "s"); err != nil || len(st.Holders) != 1 {
		t.Fatalf("the holder after it all: %+v, %v", st, err)
	}
}

// TestCallsHonourDeadlineWhileZooKeeperStalls: while ZooKeeper stalls
// (connections open, nothing answers; a long session timeout, so that
// go-zookeeper does not notice), Acquire (entering or resuming), TryAcquire,
// Release and Get each return within their deadline + 50 ms with the
// deadline's error, and a holder's running Acquire goes on. Once ZooKeeper
// answers again, the Release of the holder's slot, whose delete was sent
// (the slot is held here: no listing first), lands.
func TestCallsHonourDeadlineWhileZooKeeperStalls(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	g := newGateway(t, sess, lay)
	holder, other := g.grant(t, time.Minute), g.grant(t, time.Minute)
	a := g.acquire(t, "s", 1, "v", holder.ID)
	a.expect(t, Held)

	px.Stall()
	ignore := func(Update) error { return nil }
	late := zktest.CheckDeadlines(t, 200*time.Millisecond, []zktest.DeadlineCall{
		{Name: "Acquire queueing", Call: func(ctx context.Context) error {
			return g.sems.Acquire(ctx, "s", 1, "w", other.ID, ignore)
		}},
		{Name: "Acquire resuming a slot", Call: func(ctx context.Context) error {
			return g.sems.Acquire(ctx, "s", 1, "v", holder.ID, ignore)
		}},
		{Name: "Acquire of a new semaphore", Call: func(ctx context.Context) error {
			return g.sems.Acquire(ctx, "new", 1, "v", other.ID, ignore)
		}},
		{Name: "TryAcquire", Call: func(ctx context.Context) error {
			_, err := g.sems.TryAcquire(ctx, "s", 1, "w", other.ID)
			return err
		}},
		{Name: "Release of a lease with no slot here", Call: func(ctx context.Context) error {
			_, _, err := g.sems.Release(ctx, "s", other.ID)
			return err
		}},
		{Name: "Release of a slot held here", Call: func(ctx context.Context) error {
			_, _, err := g.sems.Release(ctx, "s", holder.ID)
			return err
		}},
		{Name: "Get", Call: func(ctx context.Context) error {
			_, err := g.sems.Get(ctx, "s")
			return err
		}},
	})
	a.quiet(t)
	px.Restore()
	late()
	// The Release of the slot held here sent its delete at once (no
	// listing first): it lands now that ZooKeeper answers, and the holder
	// hears it as a release. What the other calls left (a queued slot of
	// other's, maybe) goes with its lease.
	a.expect(t, Released)
	if err := g.leases.Revoke(context.Background(), other.ID); err != nil {
		t.Fatal(err)
	}
	var st State
	zktest.Eventually(t, 10*time.Second, func() bool {
		var err error
		st, err = g.sems.Get(context.Background(), "s")
		return err == nil && len(st.Holders) == 0
	}, "no holder after the stall")
}

// TestReleaseUnknownOutcome: a Release whose deadline passes after it sent
// its delete keeps its note, so that when the delete lands the Acquire
// reports Released, not Lost.
func TestReleaseUnknownOutcome(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	g := newGateway(t, sess, lay)
	l := g.grant(t, time.Minute)
	a := g.acquire(t, "s", 1, "v", l.ID)
	a.expect(t, Held)
	g.sems.beforeRelease = px.Stall
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, _, err := g.sems.Release(ctx, "s", l.ID)
	cancel()
	g.sems.beforeRelease = nil
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Release whose delete stalls: %v", err)
	}
	a.quiet(t)
	px.Restore()
	a.expect(t, Released)
}
