package lock

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestReentrant: a second acquire by the same lease is refused unless
// reentrant, which adds a hold (same node, same token) released on its
// own. The holds are in ZooKeeper: another gateway reads them and
// releases them one at a time.
func TestReentrant(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	l := g.grant(t, time.Minute)
	a := g.acquire(t, Request{Lock: "r", LeaseID: l.ID})
	ua := a.expect(t, Held)
	if _, err := g.locks.Acquire(ctx, Request{Lock: "r", LeaseID: l.ID}, func(Update) error { return nil }); !errors.Is(err, ErrAlreadyHeld) {
		t.Fatalf("second Acquire without reentrant: %v, want ErrAlreadyHeld", err)
	}
	if _, err := g.locks.Acquire(ctx, Request{Lock: "r", Mode: Shared, LeaseID: l.ID, Reentrant: true}, func(Update) error { return nil }); !errors.Is(err, ErrModeMismatch) {
		t.Fatalf("Acquire in the other mode: %v, want ErrModeMismatch", err)
	}
	b := g.acquire(t, Request{Lock: "r", LeaseID: l.ID, Reentrant: true})
	ub := b.expect(t, Held)
	if ub.Token != ua.Token || ub.Node != ua.Node || ub.Hold == ua.Hold || ub.Holds != 2 {
		t.Fatalf("reentrant hold %+v after %+v", ub.Update, ua.Update)
	}
	if u := a.expect(t, Held); u.Holds != 2 { // its node changed: it looked again
		t.Fatalf("first hold after the second: %+v", u.Update)
	}
	try, err := g.locks.TryAcquire(ctx, Request{Lock: "r", LeaseID: l.ID, Reentrant: true})
	if err != nil || !try.Acquired || try.Holds != 3 {
		t.Fatalf("reentrant TryAcquire: %+v, %v", try, err)
	}
	a.expect(t, Held)
	b.expect(t, Held)

	// Another gateway sees the three holds, and releases them one by one.
	sess2, _ := zktest.Session(t)
	g2 := newGateway(t, sess2, g.lay)
	holders, _, _, err := g2.locks.Get(ctx, "r")
	if err != nil || len(holders) != 1 || holders[0].Holds != 3 || holders[0].Token != ua.Token {
		t.Fatalf("holders from another gateway: %+v, %v", holders, err)
	}
	if n, _, err := g2.locks.Release(ctx, "r", l.ID, ub.Hold); err != nil || n != 2 {
		t.Fatalf("Release of the second hold through another gateway: %d left, %v", n, err)
	}
	if u := b.expect(t, Lost); u.Token != ua.Token { // released elsewhere: this gateway cannot tell
		t.Fatalf("second hold: %+v", u.Update)
	}
	if u := a.expect(t, Held); u.Holds != 2 {
		t.Fatalf("first hold after the second's release: %+v", u.Update)
	}
	if n, _, err := g2.locks.Release(ctx, "r", l.ID, ub.Hold); !errors.Is(err, ErrNotHeld) || n != 0 {
		t.Fatalf("second Release of a hold: %d, %v; want ErrNotHeld", n, err)
	}
	// (g2 owns the lease now: these gateways have no peers to move it back.)
	if n, _, err := g2.locks.Release(ctx, "r", l.ID, try.Hold); err != nil || n != 1 {
		t.Fatalf("Release of the third hold: %d left, %v", n, err)
	}
	a.expect(t, Held)
	if n, _, err := g2.locks.Release(ctx, "r", l.ID, ""); err != nil || n != 0 {
		t.Fatalf("Release of the last hold: %d left, %v", n, err)
	}
	if u := a.expect(t, Lost); u.Hold != ua.Hold { // released elsewhere
		t.Fatalf("first hold: %+v", u.Update)
	}
	if kids := g.children(t, "r"); len(kids) != 0 {
		t.Fatalf("nodes left: %v", kids)
	}
	if refs, err := g2.leases.Owned(ctx, l.ID); err != nil || len(refs) != 0 {
		t.Fatalf("the lease still owns %v, %v", refs, err)
	}
}

// TestLeaseEndReleases: a lease that ends releases every hold it has, on
// every lock: its holders report Lost with their token, its waiters Lost
// without one, and the next waiters get the locks.
func TestLeaseEndReleases(t *testing.T) {
	g := setup(t)
	short := g.grant(t, time.Second)
	granted := time.Now()
	a := g.acquire(t, Request{Lock: "a", LeaseID: short.ID})
	ua := a.expect(t, Held)
	b := g.acquire(t, Request{Lock: "b", Mode: Shared, LeaseID: short.ID})
	b.expect(t, Held)
	next := g.acquire(t, Request{Lock: "a", LeaseID: g.grant(t, time.Minute).ID})
	next.expect(t, Queued)
	// A waiter whose lease ends learns it though nobody ahead moved.
	queued := g.acquire(t, Request{Lock: "a", LeaseID: g.grant(t, time.Second).ID})
	queued.expect(t, Queued)

	un := next.expect(t, Held)
	took := un.At.Sub(granted)
	t.Logf("next held %v after the 1s lease was granted", took)
	if took > 2*time.Second || took < 900*time.Millisecond {
		t.Fatalf("next held after %v, want within TTL+1s and not before the TTL", took)
	}
	if un.Token <= ua.Token {
		t.Fatalf("token %d after %d", un.Token, ua.Token)
	}
	if u := a.expect(t, Lost); u.Token != ua.Token {
		t.Fatalf("Lost with token %d, want %d", u.Token, ua.Token)
	}
	b.expect(t, Lost)
	if u := queued.expect(t, Lost); u.Token != 0 {
		t.Fatalf("a waiter lost with token %d, want none", u.Token)
	}
	for _, x := range []*acquirer{a, b, queued} {
		if err := x.end(t); err != nil {
			t.Fatalf("Acquire after Lost: %v", err)
		}
	}
	if kids := g.children(t, "b"); len(kids) != 0 {
		t.Fatalf("nodes left in b: %v", kids)
	}
}

// TestResume: cancelling an Acquire keeps the hold (the server releases a
// stream's hold, not the recipe); Resume follows it again, same node and
// token; a hold that is gone resumes as Lost.
func TestResume(t *testing.T) {
	g := setup(t)
	l := g.grant(t, time.Minute)
	a := g.acquire(t, Request{Lock: "x", LeaseID: l.ID})
	ua := a.expect(t, Held)
	a.cancel()
	if err := a.end(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire after cancel: %v", err)
	}
	if hold := <-a.hold; hold != ua.Hold {
		t.Fatalf("Acquire returned hold %q, reported %q", hold, ua.Hold)
	}
	b := g.acquire(t, Request{Lock: "x", LeaseID: l.ID, Resume: ua.Hold})
	if u := b.expect(t, Held); u.Token != ua.Token || u.Hold != ua.Hold || u.Holds != 1 {
		t.Fatalf("resumed %+v, want %+v", u.Update, ua.Update)
	}
	c := g.acquire(t, Request{Lock: "x", LeaseID: l.ID, Resume: "0123456789abcdef"})
	c.expect(t, Lost)
	d := g.acquire(t, Request{Lock: "other", LeaseID: l.ID, Resume: ua.Hold})
	d.expect(t, Lost)
	if ok, _, err := g.sess.Conn().Exists(g.lay.Lock("other")); err != nil || ok {
		t.Fatalf("a resume of nothing on a lock never used created its directory (%v)", err)
	}
}

// TestJeopardy: a holder whose gateway loses ZooKeeper is told JEOPARDY
// with a deadline, then HELD again with the same token when the session
// comes back (or a new one does, its lease alive); the waiter behind it
// on another gateway is not woken meanwhile.
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
	other := newGateway(t, direct, lay) // the one behind, directly

	la := g.grant(t, time.Minute)
	a := g.acquire(t, Request{Lock: "j", LeaseID: la.ID})
	ua := a.expect(t, Held)
	b := other.acquire(t, Request{Lock: "j", LeaseID: other.grant(t, time.Minute).ID})
	b.expect(t, Queued)

	cutAt := time.Now()
	px.Cut()
	u := a.expect(t, Jeopardy)
	if u.Token != ua.Token || u.Deadline.Before(cutAt.Add(timeout/3)) || u.Deadline.After(time.Now().Add(timeout/3)) {
		t.Fatalf("jeopardy %+v; want token %d, deadline about %v after the cut", u.Update, ua.Token, timeout/3)
	}
	px.Restore()
	if u := a.expect(t, Held); u.Token != ua.Token {
		t.Fatalf("after reconnect: %+v, want the same hold", u.Update)
	}

	// Past the session timeout: the session expires, the hold (owned by a
	// live lease) goes on under a new session.
	px.Cut()
	a.expect(t, Jeopardy)
	zktest.Eventually(t, 4*timeout, func() bool {
		ok, _, err := direct.Conn().Exists(lay.LeaseOwner(la.Key))
		return err == nil && !ok
	}, "session through the proxy did not expire")
	px.Restore()
	if u := a.expect(t, Held); u.Token != ua.Token {
		t.Fatalf("after session expiry: %+v, want the same hold", u.Update)
	}
	b.quiet(t)
	// The watch was re-armed under the new session: a release hands over.
	if _, _, err := g.locks.Release(context.Background(), "j", la.ID, ""); err != nil {
		t.Fatal(err)
	}
	a.expect(t, Released)
	if u := b.expect(t, Held); u.Token <= ua.Token {
		t.Fatalf("next token %d after %d", u.Token, ua.Token)
	}
}

// TestCheck: a sequencer check says current for a holder's token (each
// shared holder's), stale after a handover (read through another gateway
// right after the release returned), and not current for a token never
// issued; a check of a lock never acquired creates nothing.
func TestCheck(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	sess2, _ := zktest.Session(t)
	g2 := newGateway(t, sess2, g.lay)
	la, lb := g.grant(t, time.Minute), g.grant(t, time.Minute)
	a := g.acquire(t, Request{Lock: "c", LeaseID: la.ID})
	ua := a.expect(t, Held)
	b := g.acquire(t, Request{Lock: "c", LeaseID: lb.ID})
	ub := b.expect(t, Queued)
	check := func(gw *gateway, name string, token int64, want bool, wantHighest int64) {
		t.Helper()
		cur, high, rev, err := gw.locks.Check(ctx, name, token)
		if err != nil || cur != want || (wantHighest >= 0 && high != wantHighest) || rev == 0 {
			t.Fatalf("Check(%s, %d) = %v, %d, %d, %v; want %v, %d", name, token, cur, high, rev, err, want, wantHighest)
		}
	}
	check(g2, "c", ua.Token, true, ua.Token)
	check(g2, "c", ua.Token+1, false, ua.Token) // never issued
	if _, _, err := g.locks.Release(ctx, "c", la.ID, ""); err != nil {
		t.Fatal(err)
	}
	check(g2, "c", ua.Token, false, -1) // the release returned: stale, wherever checked
	ub = b.expect(t, Held)
	check(g2, "c", ua.Token, false, ub.Token)
	check(g, "c", ub.Token, true, ub.Token)

	// Shared holders are each current.
	l1, l2 := g.grant(t, time.Minute), g.grant(t, time.Minute)
	r1, err := g.locks.TryAcquire(ctx, Request{Lock: "s", Mode: Shared, LeaseID: l1.ID})
	if err != nil || !r1.Acquired {
		t.Fatal(r1, err)
	}
	r2, err := g.locks.TryAcquire(ctx, Request{Lock: "s", Mode: Shared, LeaseID: l2.ID})
	if err != nil || !r2.Acquired {
		t.Fatal(r2, err)
	}
	check(g2, "s", r1.Token, true, r2.Token)
	check(g2, "s", r2.Token, true, r2.Token)

	check(g2, "never", 7, false, 0)
	if ok, _, err := g.sess.Conn().Exists(g.lay.Lock("never")); err != nil || ok {
		t.Fatalf("a check of a lock never acquired created it: %v, %v", ok, err)
	}
}
