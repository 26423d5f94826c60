package lock

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestReadWrite: readers share the lock, a writer excludes everybody, and
// a writer queued before a reader blocks it (no writer starves). A writer
// watches its predecessor, a reader the nearest writer ahead; a release
// wakes only the waiters it lets in.
func TestReadWrite(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	lr1, lr2, lw1, lr3, lw2 := g.grant(t, time.Minute), g.grant(t, time.Minute), g.grant(t, time.Minute), g.grant(t, time.Minute), g.grant(t, time.Minute)
	r1 := g.acquire(t, Request{Lock: "rw", Mode: Shared, LeaseID: lr1.ID})
	u1 := r1.expect(t, Held)
	r2 := g.acquire(t, Request{Lock: "rw", Mode: Shared, LeaseID: lr2.ID})
	u2 := r2.expect(t, Held) // readers share
	if u1.Mode != Shared || u2.Token <= u1.Token {
		t.Fatalf("readers: %+v, %+v", u1.Update, u2.Update)
	}
	w1 := g.acquire(t, Request{Lock: "rw", Mode: Exclusive, LeaseID: lw1.ID})
	if u := w1.expect(t, Queued); u.Position != 2 {
		t.Fatalf("writer behind two readers: %+v, want position 2", u.Update)
	}
	r3 := g.acquire(t, Request{Lock: "rw", Mode: Shared, LeaseID: lr3.ID})
	u3 := r3.expect(t, Queued) // fairness: the writer ahead blocks it
	if u3.Position != 3 {
		t.Fatalf("reader behind a writer: %+v, want position 3", u3.Update)
	}
	w2 := g.acquire(t, Request{Lock: "rw", Mode: Exclusive, LeaseID: lw2.ID})
	if u := w2.expect(t, Queued); u.Position != 4 {
		t.Fatalf("second writer: %+v, want position 4", u.Update)
	}
	// Watches: w1 on r2 (its predecessor), r3 on w1 (the nearest writer),
	// w2 on r3 (its predecessor); the readers that hold, on themselves.
	holders, waiters, _, err := g.locks.Get(ctx, "rw")
	if err != nil || len(holders) != 2 || len(waiters) != 3 {
		t.Fatalf("Get: %+v, %+v, %v", holders, waiters, err)
	}
	dir := g.lay.Lock("rw")
	got := watches(t)
	want := map[string]bool{dir + "/" + holders[0].Node: true, dir + "/" + holders[1].Node: true,
		dir + "/" + waiters[0].Node: true, dir + "/" + waiters[1].Node: true}
	for p := range got {
		if len(p) > len(dir) && p[:len(dir)] == dir && !want[p] {
			t.Errorf("unexpected watch on %s", p)
		}
	}
	for p := range want {
		if len(got[p]) != 1 {
			t.Errorf("watches on %s: %v, want one", p, got[p])
		}
	}
	if pos := []int{waiters[0].Position, waiters[1].Position, waiters[2].Position}; !slices.Equal(pos, []int{2, 3, 4}) {
		t.Errorf("waiters' positions %v, want 2 3 4", pos)
	}

	// r1 leaves: nobody watches it, nobody is woken.
	wakes := g.locks.queuedWakes.Load()
	if _, _, err := g.locks.Release(ctx, "rw", lr1.ID, ""); err != nil {
		t.Fatal(err)
	}
	r1.expect(t, Released)
	// While r2 reads, the writer waits; a try of either mode fails.
	for _, m := range []Mode{Exclusive, Shared} {
		l := g.grant(t, time.Minute)
		if r, err := g.locks.TryAcquire(ctx, Request{Lock: "rw", Mode: m, LeaseID: l.ID}); err != nil || r.Acquired {
			t.Fatalf("TryAcquire %v behind a queued writer: %+v, %v", m, r, err)
		}
	}
	// r2 leaves: w1 holds alone, r3 still waits for it.
	if _, _, err := g.locks.Release(ctx, "rw", lr2.ID, ""); err != nil {
		t.Fatal(err)
	}
	uw1 := w1.expect(t, Held)
	if uw1.Token <= u2.Token {
		t.Fatalf("writer's token %d after reader's %d", uw1.Token, u2.Token)
	}
	r3.quiet(t)
	w2.quiet(t)
	if w := g.locks.queuedWakes.Load() - wakes; w != 1 {
		t.Errorf("two reader releases woke %d waiters, want 1 (the writer, by the second)", w)
	}
	// The writer excludes readers and writers.
	for _, m := range []Mode{Exclusive, Shared} {
		l := g.grant(t, time.Minute)
		if r, err := g.locks.TryAcquire(ctx, Request{Lock: "rw", Mode: m, LeaseID: l.ID}); err != nil || r.Acquired ||
			len(r.Holders) != 1 || r.Holders[0].Token != uw1.Token {
			t.Fatalf("TryAcquire %v while a writer holds: %+v, %v", m, r, err)
		}
	}
	// w1 leaves: r3 reads; w2 waits for r3 (its position, 4, is an upper
	// bound until r3 goes).
	if _, _, err := g.locks.Release(ctx, "rw", lw1.ID, ""); err != nil {
		t.Fatal(err)
	}
	if u := r3.expect(t, Held); u.Token <= uw1.Token {
		t.Fatalf("reader's token %d after writer's %d", u.Token, uw1.Token)
	}
	w2.quiet(t) // it watches r3, its predecessor: not woken
	if _, _, err := g.locks.Release(ctx, "rw", lr3.ID, ""); err != nil {
		t.Fatal(err)
	}
	w2.expect(t, Held)
}

// TestTryAcquire: TryAcquire never waits; when the lock is not free it
// creates nothing (the lock's children and cversion are unchanged) and
// names the holders; when a concurrent acquirer gets ahead between its
// look and its create, it removes its node.
func TestTryAcquire(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	la, lb := g.grant(t, time.Minute), g.grant(t, time.Minute)
	r, err := g.locks.TryAcquire(ctx, Request{Lock: "t", LeaseID: la.ID})
	if err != nil || !r.Acquired || r.Token == 0 || r.Holds != 1 || len(r.Hold) != 16 {
		t.Fatalf("TryAcquire of a free lock: %+v, %v", r, err)
	}
	_, before, err := g.sess.Conn().Children(g.lay.Lock("t"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Mode{Exclusive, Shared} {
		began := time.Now()
		got, err := g.locks.TryAcquire(ctx, Request{Lock: "t", Mode: m, LeaseID: lb.ID})
		if took := time.Since(began); took > time.Second {
			t.Errorf("TryAcquire of a held lock took %v", took)
		}
		if err != nil || got.Acquired || len(got.Holders) != 1 || got.Holders[0].Node != r.Node || got.Holders[0].Token != r.Token {
			t.Fatalf("TryAcquire %v of a held lock: %+v, %v", m, got, err)
		}
	}
	kids, after, err := g.sess.Conn().Children(g.lay.Lock("t"))
	if err != nil || len(kids) != 1 || after.Cversion != before.Cversion || after.Pzxid != before.Pzxid {
		t.Fatalf("after failed tries: %v (cversion %d -> %d), %v", kids, before.Cversion, after.Cversion, err)
	}
	if refs, err := g.leases.Owned(ctx, lb.ID); err != nil || len(refs) != 0 {
		t.Fatalf("the failed tries' lease owns %v, %v", refs, err)
	}

	// The same lease again: refused, counted with reentrant, refused in the
	// other mode.
	if _, err := g.locks.TryAcquire(ctx, Request{Lock: "t", LeaseID: la.ID}); !errors.Is(err, ErrAlreadyHeld) {
		t.Fatalf("second TryAcquire without reentrant: %v, want ErrAlreadyHeld", err)
	}
	r2, err := g.locks.TryAcquire(ctx, Request{Lock: "t", LeaseID: la.ID, Reentrant: true})
	if err != nil || !r2.Acquired || r2.Holds != 2 || r2.Token != r.Token || r2.Hold == r.Hold {
		t.Fatalf("reentrant TryAcquire: %+v, %v", r2, err)
	}
	if _, err := g.locks.TryAcquire(ctx, Request{Lock: "t", Mode: Shared, LeaseID: la.ID, Reentrant: true}); !errors.Is(err, ErrModeMismatch) {
		t.Fatalf("TryAcquire in the other mode: %v, want ErrModeMismatch", err)
	}

	// A free lock, but another acquirer queues between the look and the
	// create: the try removes its node and says who got it.
	lc := g.grant(t, time.Minute)
	var other *acquirer
	g.locks.beforeCreate = func() {
		g.locks.beforeCreate = nil
		other = g.acquire(t, Request{Lock: "race", LeaseID: lc.ID})
		other.expect(t, Held)
	}
	got, err := g.locks.TryAcquire(ctx, Request{Lock: "race", LeaseID: lb.ID})
	if err != nil || got.Acquired || len(got.Holders) != 1 {
		t.Fatalf("TryAcquire that lost the race: %+v, %v", got, err)
	}
	if kids := g.children(t, "race"); len(kids) != 1 || kids[0] != got.Holders[0].Node {
		t.Fatalf("after the lost race: %v, want only %s", kids, got.Holders[0].Node)
	}
	if refs, err := g.leases.Owned(ctx, lb.ID); err != nil || len(refs) != 0 {
		t.Fatalf("the lost try's lease owns %v, %v", refs, err)
	}
	other.quiet(t)
}
