package semaphore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestFIFOAtMostN: ten acquirers of a semaphore of three permits, in
// order: the first three hold (tokens rising), the others queue with their
// places; releasing holders in any order hands each freed permit to the
// first waiter, in the order they came, and ZooKeeper's state never shows
// more than three holders.
func TestFIFOAtMostN(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	const n, permits = 10, 3
	ls := make([]lease.Lease, n)
	as := make([]*acquire, n)
	var last int64
	for i := range n {
		ls[i] = g.grant(t, time.Minute)
		as[i] = g.acquire(t, "s", permits, fmt.Sprint("w", i), ls[i].ID)
		if i < permits {
			u := as[i].expect(t, Held)
			if u.Token <= last || u.Permits != permits {
				t.Fatalf("holder %d: token %d after %d, permits %d", i, u.Token, last, u.Permits)
			}
			last = u.Token
			continue
		}
		if u := as[i].expect(t, Queued); u.Position != i-permits {
			t.Fatalf("waiter %d: position %d, want %d", i, u.Position, i-permits)
		}
	}
	st, err := g.sems.Get(ctx, "s")
	if err != nil || st.Permits != permits || len(st.Holders) != permits || len(st.Waiters) != n-permits {
		t.Fatalf("Get: %+v, %v", st, err)
	}
	if st.Holders[0].Value != "w0" || st.Waiters[0].Value != "w3" {
		t.Fatalf("Get: holders %+v, waiters %+v", st.Holders, st.Waiters)
	}

	// Release holders out of order: the last holder first, then the first.
	holders := []int{2, 0, 1}
	next := permits
	for k := 0; next < n; k++ {
		h := holders[k]
		was, rev, err := g.sems.Release(ctx, "s", ls[h].ID)
		if err != nil || !was || rev == 0 {
			t.Fatalf("Release %d: %v, %v, %v", h, was, rev, err)
		}
		if u := as[h].expect(t, Released); u.Token == 0 {
			t.Fatalf("Released without the token: %+v", u)
		}
		if err := as[h].end(t); err != nil {
			t.Fatalf("Acquire after Release: %v", err)
		}
		u := as[next].expect(t, Held)
		if u.Token <= last {
			t.Fatalf("waiter %d held with token %d, after %d", next, u.Token, last)
		}
		// Every waiter behind moved up one place, and nobody else holds.
		for i := next + 1; i < n; i++ {
			if u := as[i].expect(t, Queued); u.Position != i-next-1 {
				t.Fatalf("waiter %d: position %d, want %d", i, u.Position, i-next-1)
			}
		}
		st, err := g.sems.Get(ctx, "s")
		if err != nil || len(st.Holders) > permits {
			t.Fatalf("Get after a release: %d holders, %v", len(st.Holders), err)
		}
		holders = append(holders, next)
		next++
	}
}

// TestReleaseAnywhereAheadWakes: a waiter is woken by a release of any
// holder ahead of it, not only of its predecessor.
func TestReleaseAnywhereAheadWakes(t *testing.T) {
	g := setup(t)
	a, b, c := g.grant(t, time.Minute), g.grant(t, time.Minute), g.grant(t, time.Minute)
	aa := g.acquire(t, "s", 2, "a", a.ID)
	aa.expect(t, Held)
	g.acquire(t, "s", 2, "b", b.ID).expect(t, Held)
	ac := g.acquire(t, "s", 2, "c", c.ID)
	ac.expect(t, Queued)
	released := time.Now()
	if _, _, err := g.sems.Release(context.Background(), "s", a.ID); err != nil {
		t.Fatal(err)
	}
	u := ac.expect(t, Held)
	t.Logf("the waiter held %v after the release of the first holder (its predecessor stayed)", u.At.Sub(released))
}

// TestPermitsMismatch: an acquire (or a try) with another N than the
// semaphore's is refused and creates nothing.
func TestPermitsMismatch(t *testing.T) {
	g := setup(t)
	g.acquire(t, "s", 2, "a", g.grant(t, time.Minute).ID).expect(t, Held)
	b := g.grant(t, time.Minute)
	ab := g.acquire(t, "s", 3, "b", b.ID)
	if err := ab.end(t); !errors.Is(err, ErrPermitsMismatch) {
		t.Fatalf("Acquire with 3 permits of a semaphore of 2: %v", err)
	}
	if _, err := g.sems.TryAcquire(context.Background(), "s", 1, "b", b.ID); !errors.Is(err, ErrPermitsMismatch) {
		t.Fatalf("TryAcquire with 1 permit of a semaphore of 2: %v", err)
	}
	if kids := g.slots(t, "s"); len(kids) != 1 {
		t.Fatalf("slots after refused acquires: %v", kids)
	}
	refs, _, err := g.sess.Conn().Children(g.lay.Lease(lease.KeyOf(b.ID)))
	if err != nil || slices.ContainsFunc(refs, func(r string) bool { return r != "owner" }) {
		t.Fatalf("refs of the refused lease: %v, %v", refs, err)
	}
}

// TestTryAcquire: TryAcquire takes a free permit, never waits, creates
// nothing when none is free, answers a permit the lease holds again, and
// leaves a waiting slot as it is.
func TestTryAcquire(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	a, b, c := g.grant(t, time.Minute), g.grant(t, time.Minute), g.grant(t, time.Minute)
	r, err := g.sems.TryAcquire(ctx, "s", 1, "a", a.ID)
	if err != nil || !r.Acquired || r.Token == 0 || r.Held != 1 {
		t.Fatalf("TryAcquire of a free permit: %+v, %v", r, err)
	}
	again, err := g.sems.TryAcquire(ctx, "s", 1, "a", a.ID)
	if err != nil || !again.Acquired || again.Token != r.Token || again.Slot != r.Slot {
		t.Fatalf("TryAcquire again: %+v, %v; want the same permit %+v", again, err, r)
	}
	_, before, err := g.sess.Conn().Children(g.lay.Semaphore("s"))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	no, err := g.sems.TryAcquire(ctx, "s", 1, "b", b.ID)
	if took := time.Since(began); err != nil || no.Acquired || no.Held != 1 || took > time.Second {
		t.Fatalf("TryAcquire with no permit free: %+v, %v after %v", no, err, took)
	}
	_, after, err := g.sess.Conn().Children(g.lay.Semaphore("s"))
	if err != nil {
		t.Fatal(err)
	}
	if after.Cversion != before.Cversion || after.Pzxid != before.Pzxid {
		t.Fatalf("a refused TryAcquire changed the slots: cversion %d → %d", before.Cversion, after.Cversion)
	}
	// A waiting slot (an Acquire of the lease) stays as it is.
	ac := g.acquire(t, "s", 1, "c", c.ID)
	ac.expect(t, Queued)
	if r, err := g.sems.TryAcquire(ctx, "s", 1, "c", c.ID); err != nil || r.Acquired {
		t.Fatalf("TryAcquire of a waiting lease: %+v, %v", r, err)
	}
	ac.quiet(t)
	if kids := g.slots(t, "s"); len(kids) != 2 {
		t.Fatalf("slots: %v, want a's and c's", kids)
	}
	// Released, the permit goes to the waiter, not to a later try.
	if _, _, err := g.sems.Release(ctx, "s", a.ID); err != nil {
		t.Fatal(err)
	}
	ac.expect(t, Held)
	if r, err := g.sems.TryAcquire(ctx, "s", 1, "b", b.ID); err != nil || r.Acquired {
		t.Fatalf("TryAcquire after the waiter took the permit: %+v, %v", r, err)
	}
}

// TestTryAcquireRace: many tries of one free permit at once: exactly one
// gets it, and no slot is left by the others.
func TestTryAcquireRace(t *testing.T) {
	g := setup(t)
	const n = 12
	ls := make([]lease.Lease, n)
	for i := range ls {
		ls[i] = g.grant(t, time.Minute)
	}
	type out struct {
		r   Try
		err error
	}
	res := make(chan out, n)
	for i := range n {
		go func() {
			r, err := g.sems.TryAcquire(context.Background(), "s", 2, "", ls[i].ID)
			res <- out{r, err}
		}()
	}
	got, conflicts := 0, 0
	for range n {
		o := <-res
		switch {
		case errors.Is(o.err, ErrConflict):
			conflicts++
		case o.err != nil:
			t.Fatal(o.err)
		case o.r.Acquired:
			got++
		}
	}
	if kids := g.slots(t, "s"); got != 2 || len(kids) != 2 {
		t.Fatalf("%d tries of 2 permits: %d acquired (%d conflicts), slots %v", n, got, conflicts, kids)
	}
}

// TestLeaseEndReleases: a lease that lapses loses its permits (Lost) in
// every semaphore, and the first waiter of each gets one; a revoked lease
// too.
func TestLeaseEndReleases(t *testing.T) {
	g := setup(t)
	short := g.grant(t, time.Second)
	granted := time.Now()
	a1 := g.acquire(t, "s1", 1, "a", short.ID)
	a2 := g.acquire(t, "s2", 1, "a", short.ID)
	u1 := a1.expect(t, Held)
	a2.expect(t, Held)
	b1 := g.acquire(t, "s1", 1, "b", g.grant(t, time.Minute).ID)
	b2 := g.acquire(t, "s2", 1, "b", g.grant(t, time.Minute).ID)
	b1.expect(t, Queued)
	b2.expect(t, Queued)
	h := b1.expect(t, Held)
	b2.expect(t, Held)
	if took := h.At.Sub(granted); took < 900*time.Millisecond || took > 2500*time.Millisecond {
		t.Fatalf("next held %v after the 1s lease was granted", took)
	}
	if u := a1.expect(t, Lost); u.Token != u1.Token {
		t.Fatalf("Lost with token %d, want %d", u.Token, u1.Token)
	}
	a2.expect(t, Lost)

	c := g.grant(t, time.Minute)
	ac := g.acquire(t, "s3", 1, "c", c.ID)
	ac.expect(t, Held)
	if err := g.leases.Revoke(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	ac.expect(t, Lost)
	if kids := g.slots(t, "s3"); len(kids) != 0 {
		t.Fatalf("slots after the revoke: %v", kids)
	}
}

// TestResume: a second Acquire with the same lease resumes its slot (same
// place, same token) rather than taking another; a lease holds one slot
// per semaphore.
func TestResume(t *testing.T) {
	g := setup(t)
	l := g.grant(t, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	first := g.acquireCtx(t, ctx, "s", 2, "v", l.ID)
	u := first.expect(t, Held)
	cancel()
	if err := first.end(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Acquire: %v", err)
	}
	again := g.acquire(t, "s", 2, "v", l.ID)
	if r := again.expect(t, Held); r.Token != u.Token || r.Slot != u.Slot {
		t.Fatalf("resumed %+v, want %+v", r.Update, u.Update)
	}
	if kids := g.slots(t, "s"); len(kids) != 1 {
		t.Fatalf("slots: %v", kids)
	}
}

// TestAbandon: Abandon gives the slot up in the background; an Acquire of
// the same lease after it queues again (a new slot) rather than resume the
// slot being given up.
func TestAbandon(t *testing.T) {
	g := setup(t)
	l := g.grant(t, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	first := g.acquireCtx(t, ctx, "s", 1, "v", l.ID)
	u := first.expect(t, Held)
	cancel()
	first.end(t)
	g.sems.Abandon(context.Background(), "s", l.ID, u.Slot)
	again := g.acquire(t, "s", 1, "v", l.ID)
	if r := again.expect(t, Held); r.Token <= u.Token {
		t.Fatalf("after Abandon, held with token %d, want a new slot after %d", r.Token, u.Token)
	}
}

// TestCloseEndsAcquire: closing the Semaphores ends a waiting Acquire with
// ErrClosed; its slot stays with its lease.
func TestCloseEndsAcquire(t *testing.T) {
	g := setup(t)
	g.acquire(t, "s", 1, "a", g.grant(t, time.Minute).ID).expect(t, Held)
	b := g.acquire(t, "s", 1, "b", g.grant(t, time.Minute).ID)
	b.expect(t, Queued)
	g.sems.Close()
	if err := b.end(t); !errors.Is(err, ErrClosed) {
		t.Fatalf("Acquire after Close: %v", err)
	}
	if kids := g.slots(t, "s"); len(kids) != 2 {
		t.Fatalf("slots after Close: %v", kids)
	}
}

// TestReleaseOfAHeldSlotListsNothing: the Release of a slot that an
// Acquire here holds deletes it without listing the semaphore first; a
// waiting slot's Release lists (its place says whether it held); and a
// slot noted here that is gone (a stale note) falls back to the listing,
// which finds the lease's slot and releases it.
func TestReleaseOfAHeldSlotListsNothing(t *testing.T) {
	children := new(atomic.Int64)
	sess, lay := zktest.Session(t, zkx.WithObserver(func(op zkx.Op, _ time.Duration, _ error) {
		if op == zkx.OpChildren {
			children.Add(1)
		}
	}))
	g := newGateway(t, sess, lay)
	// The listings a Release makes before its delete: after it, the feed
	// lists again to see the slot go.
	release := func(leaseID string) (lists int64, wasHolder bool) {
		t.Helper()
		before := children.Load()
		g.sems.beforeRelease = func() { lists = children.Load() - before }
		defer func() { g.sems.beforeRelease = nil }()
		wasHolder, _, err := g.sems.Release(context.Background(), "s", leaseID)
		if err != nil {
			t.Fatalf("Release: %v", err)
		}
		return lists, wasHolder
	}
	la, lb := g.grant(t, time.Minute), g.grant(t, time.Minute)
	a := g.acquire(t, "s", 1, "a", la.ID)
	a.expect(t, Held)
	b := g.acquire(t, "s", 1, "b", lb.ID)
	b.expect(t, Queued)

	if n, was := release(lb.ID); n != 1 || was {
		t.Errorf("Release of a waiting slot: %d listings, wasHolder %v; want 1, false", n, was)
	}
	b.expect(t, Released)
	if n, was := release(la.ID); n != 0 || !was {
		t.Errorf("Release of a slot held here: %d listings, wasHolder %v; want 0, true", n, was)
	}
	a.expect(t, Released)

	lc := g.grant(t, time.Minute)
	c := g.acquire(t, "s", 1, "c", lc.ID)
	c.expect(t, Held)
	key := lease.KeyOf(lc.ID)
	stale := &holder{s: g.sems, sem: "s", id: placeID("s", key), name: "s_" + key + "_9999999999", path: lay.Semaphore("s") + "/s_" + key + "_9999999999"}
	g.sems.hold(stale)
	if n, was := release(lc.ID); n != 1 || !was {
		t.Errorf("Release with a stale note: %d listings, wasHolder %v; want 1 (after the stale delete failed), true", n, was)
	}
	c.expect(t, Released)
	if kids := g.slots(t, "s"); len(kids) != 0 {
		t.Fatalf("slots after the releases: %v", kids)
	}
	g.sems.unhold(stale)

	// An Acquire that ends leaves no note behind.
	for _, x := range []*acquire{a, b, c} {
		if err := x.end(t); err != nil {
			t.Fatalf("Acquire after its release: %v", err)
		}
	}
	g.sems.mu.Lock()
	left := len(g.sems.holders)
	g.sems.mu.Unlock()
	if left != 0 {
		t.Errorf("%d notes of held slots left after every Acquire ended", left)
	}
}
