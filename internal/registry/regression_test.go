package registry_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// proxiedGateway is gateway() on a session through px, which the test can cut.
func proxiedGateway(t *testing.T, px *zktest.Proxy, lay *zktest.Layout, opt ...registry.Option) env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess, err := zkx.Dial(ctx, px.Addr(), zkx.WithSessionTimeout(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	if lay.Root == "" {
		*lay = zktest.Layout{Root: zktest.Root(t)}
		if err := zkx.EnsurePath(sess.Conn(), lay.Root, sess.ACL()); err != nil {
			t.Fatal(err)
		}
	}
	m, err := lease.NewManager(sess, lay.Root, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := registry.New(sess, lay.Root, m, zktest.Logger(t), opt...)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); m.Close() })
	return env{sess, *lay, m, r}
}

// settleJournal waits until the writers' asynchronous trims are done.
func settleJournal(t *testing.T, e env, group string) int {
	t.Helper()
	last := -1
	for i := 0; i < 50; i++ {
		kids, _, err := e.sess.Conn().Children(e.lay.Log(group))
		if err != nil {
			t.Fatal(err)
		}
		if len(kids) == last {
			return last
		}
		last = len(kids)
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// TestEmptyLoadedCacheSeesTrimmedEntries: a cache loaded while the
// group's journal was empty (lastSeq = -1) treats any later listing with
// fewer than trimAt entries as continuous (cache.go apply:
// `continuous := g.lastSeq < 0 && len(seqs) < trimAt`). If the journal was
// trimmed meanwhile (the cache was cut off from ZooKeeper while other
// gateways wrote), the trimmed entries are silently skipped: the cache,
// CACHED and LINEARIZABLE lookups, and every watcher of the group miss
// those members for good.
func TestEmptyLoadedCacheSeesTrimmedEntries(t *testing.T) {
	ctx := context.Background()
	px := zktest.NewProxy(t, zktest.Addr(t))
	var lay zktest.Layout
	opts := []registry.Option{registry.WithJournal(2, 4)}
	a := proxiedGateway(t, px, &lay, opts...)
	b := gateway(t, &lay, opts...)

	v, err := a.reg.Lookup(ctx, "g", "", false) // loads A's cache: empty journal
	if err != nil || len(v.Members) != 0 {
		t.Fatalf("first lookup: %v %v", v, err)
	}
	sub, _, err := a.reg.Watch(ctx, "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	px.Cut()
	const n = 10
	for i := 0; i < n; i++ {
		register(t, b, "g", fmt.Sprintf("m%d", i), "v", "")
	}
	left := settleJournal(t, b, "g")
	px.Restore()
	if err := a.sess.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	lin, err := a.reg.Lookup(ctx, "g", "", true)
	if err != nil {
		t.Fatal(err)
	}
	joined := 0
	for {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := sub.Next(wctx)
		cancel()
		if err != nil {
			break
		}
		joined++
	}
	t.Logf("journal entries left after trims: %d; A's LINEARIZABLE lookup: %d members (%s); A's watcher: %d JOINED",
		left, len(lin.Members), ids(lin.Members), joined)
	if len(lin.Members) != n || joined != n {
		t.Errorf("A's cache missed %d of %d members (watcher saw %d JOINED)", n-len(lin.Members), n, joined)
	}
}

// TestRereadIsOneUnit: a reread after a journal gap emits its
// JOINED/LEFT/UPDATED events with one revision, as one unit: More on all
// but the last. A client whose stream broke after the first of them holds
// that revision only in part, so it resumes from its last complete
// revision and receives the whole unit again, with no snapshot. (Before
// More, a client resumed from the last revision it saw and lost the rest
// of the batch.)
func TestRereadIsOneUnit(t *testing.T) {
	ctx := context.Background()
	px := zktest.NewProxy(t, zktest.Addr(t))
	var lay zktest.Layout
	opts := []registry.Option{registry.WithJournal(2, 4)}
	a := proxiedGateway(t, px, &lay, opts...)
	b := gateway(t, &lay, opts...)

	register(t, a, "g", "first", "v", "")
	sub, start, err := a.reg.Watch(ctx, "g", 0)
	if err != nil || start.Snapshot == nil || len(start.Snapshot.Members()) != 1 {
		t.Fatalf("watch: %+v %v", start, err)
	}

	px.Cut()
	const n = 10
	for i := 0; i < n; i++ {
		register(t, b, "g", fmt.Sprintf("m%d", i), "v", "")
	}
	settleJournal(t, b, "g")
	px.Restore()

	var unit []*registry.Event
	for len(unit) == 0 || unit[len(unit)-1].More {
		unit = append(unit, next(t, sub))
	}
	sub.Close()
	rev := unit[0].Rev
	for i, ev := range unit {
		if ev.Rev != rev || ev.Type != registry.Joined || ev.More != (i < n-1) {
			t.Errorf("event %d of the reread: %v %s at %d more=%v", i, ev.Type, ev.Member.ID, ev.Rev, ev.More)
		}
	}
	if len(unit) != n {
		t.Errorf("the reread's unit has %d events, want %d JOINED", len(unit), n)
	}

	// The client received the first event only: it resumes from the
	// snapshot's revision, its last complete one.
	sub2, start2, err := a.reg.Watch(ctx, "g", start.Snapshot.Rev)
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	if start2.Snapshot != nil || len(start2.Backlog) != n || start2.Backlog[n-1].More || start2.Backlog[0].Rev != rev {
		t.Errorf("resume from %d: snapshot %v, backlog %d events (want the %d of revision %d)",
			start.Snapshot.Rev, start2.Snapshot != nil, len(start2.Backlog), n, rev)
	}
	// A client that holds the whole unit resumes after it: nothing to send.
	sub3, start3, err := a.reg.Watch(ctx, "g", rev)
	if err != nil {
		t.Fatal(err)
	}
	defer sub3.Close()
	if start3.Snapshot != nil || len(start3.Backlog) != 0 {
		t.Errorf("resume from %d: snapshot %v, backlog %d events, want neither", rev, start3.Snapshot != nil, len(start3.Backlog))
	}
}

// TestEvictionRaceKeepsWatch: the janitor evicts an idle cache
// (cancels its watch loop and drops it from the map) between the moment a
// Watch takes it from the map and the moment it marks it used: the watcher
// then subscribes to a cache nobody updates, and never gets another event
// (nor an error). The window is small; idle eviction is set very short to
// hit it.
func TestEvictionRaceKeepsWatch(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	e := gateway(t, &lay, registry.WithIdleEviction(time.Millisecond))
	var dead *registry.Sub
	for i := 0; i < 3000 && dead == nil; i++ {
		sub, _, err := e.reg.Watch(ctx, "g", 0)
		if err != nil {
			t.Fatal(err)
		}
		if e.reg.Groups() == 0 {
			dead = sub // held by a subscriber, yet evicted
			t.Logf("evicted under a new watcher after %d watches", i+1)
			break
		}
		sub.Close()
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	}
	if dead == nil {
		t.Skip("race not hit")
	}
	defer dead.Close()
	register(t, e, "g", "m1", "v", "")
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if ev, err := dead.Next(wctx); errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a watcher subscribed to an evicted cache: no event for a new member within 2s, and no error")
	} else {
		t.Logf("event: %+v %v", ev, err)
	}
}

// TestWatchDuringOutageStarts: a group cache whose first load
// cannot finish (ZooKeeper unreachable) for longer than the idle eviction
// time is evicted by the janitor (no subscriber yet, lastUsed = creation):
// its loop is cancelled and `loaded` is never closed, so the Watch (a
// WatchGroup or AwaitGroup stream) waiting for it blocks until its own
// context ends, even after ZooKeeper is back. Production: any WatchGroup
// opened during a ZooKeeper outage longer than 5 minutes never starts.
func TestWatchDuringOutageStarts(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	var lay zktest.Layout
	a := proxiedGateway(t, px, &lay, registry.WithIdleEviction(300*time.Millisecond))

	px.Cut()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		sub, _, err := a.reg.Watch(ctx, "g", 0)
		if err == nil {
			sub.Close()
		}
		done <- err
	}()
	time.Sleep(3 * time.Second) // outage longer than the idle eviction
	px.Restore()
	start := time.Now()
	select {
	case err := <-done:
		t.Logf("Watch returned %v after ZooKeeper came back (%v)", err, time.Since(start))
		if err != nil {
			t.Errorf("Watch failed with %v after ZooKeeper came back", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Watch still blocked 5s after ZooKeeper came back (its cache was evicted while loading)")
	}
}
