package registry_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// The catch-up of a linearizable read lists the journal only when the
// cache may be behind (refresh.go, armed.current). These tests pin both
// sides: a quiet group is read without a listing, and a cache held behind
// ZooKeeper, or one whose connection changed, is listed.

// waitArmed waits until r's cache of group is current with an armed watch
// (its watch loop re-arms after each change, on its own goroutine).
func waitArmed(t *testing.T, r *registry.Registry, group string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !registry.Armed(r, group) {
		if time.Now().After(deadline) {
			t.Fatalf("cache of %s never armed", group)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCatchUpQuietGroupNoListing: on a group nobody changes, linearizable
// reads cost the barrier write alone.
func TestCatchUpQuietGroupNoListing(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	a := gateway(t, &lay)
	b := gateway(t, &lay)
	m := register(t, a, "quiet", "m1", "v", grant(t, a, time.Minute))
	if _, err := b.reg.Lookup(ctx, "quiet", "", false); err != nil {
		t.Fatal(err)
	}
	waitArmed(t, b.reg, "quiet")
	before := b.reg.Stats()
	for i := 0; i < 10; i++ {
		v, err := b.reg.Lookup(ctx, "quiet", "m1", true)
		if err != nil || len(v.Members) != 1 || v.Rev < m.ModRev {
			t.Fatalf("linearizable lookup %d: %+v, %v", i, v, err)
		}
	}
	after := b.reg.Stats()
	if n, l := after.CatchUps-before.CatchUps, after.CatchUpLists-before.CatchUpLists; n != 10 || l != 0 {
		t.Fatalf("10 linearizable reads of a quiet group: %d catch-ups, %d listings; want 10, 0", n, l)
	}
}

// TestCatchUpCacheHeldBehind: a cache whose watch loop is held after its
// watch fired has not applied a change; a linearizable read must list and
// see it anyway. Answering from the cache because the barrier went through
// would miss it.
func TestCatchUpCacheHeldBehind(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	var hold atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	a := gateway(t, &lay)
	b := gateway(t, &lay, registry.WithBeforeRefresh(func(string) {
		if hold.Load() {
			<-release
		}
	}))
	// After the gateways' cleanups are registered, so it runs before them:
	// closing b waits for its watch loop.
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	la := grant(t, a, time.Minute)
	register(t, a, "held", "m0", "v", la)
	if _, err := b.reg.Lookup(ctx, "held", "", false); err != nil {
		t.Fatal(err)
	}
	waitArmed(t, b.reg, "held")
	hold.Store(true)
	before := b.reg.Stats()
	m := register(t, a, "held", "m1", "v", la)
	v, err := b.reg.Lookup(ctx, "held", "m1", true)
	if err != nil || len(v.Members) != 1 || v.Rev < m.ModRev {
		t.Fatalf("linearizable lookup behind a held cache: %+v, %v (member at rev %d)", v, err, m.ModRev)
	}
	if l := b.reg.Stats().CatchUpLists - before.CatchUpLists; l != 1 {
		t.Fatalf("catch-up listings: %d, want 1", l)
	}
	once.Do(func() { close(release) })
}

// TestCatchUpAfterReconnectLists: after the session's connection changed
// (a cut and a reconnection to the same session), the watch's silence
// proves nothing (go-zookeeper may send the barrier before it re-sets the
// watch), so the catch-up lists.
func TestCatchUpAfterReconnectLists(t *testing.T) {
	ctx := context.Background()
	px := zktest.NewProxy(t, zktest.Addr(t))
	var lay zktest.Layout
	a := gateway(t, &lay)
	b := proxiedGateway(t, px, &lay)
	register(t, a, "relink", "m0", "v", grant(t, a, time.Minute))
	if _, err := b.reg.Lookup(ctx, "relink", "", false); err != nil {
		t.Fatal(err)
	}
	waitArmed(t, b.reg, "relink")
	px.Cut()
	zktest.WaitSession(t, b.sess, zkx.StateDisconnected)
	px.Restore()
	zktest.WaitSession(t, b.sess, zkx.StateConnected)
	before := b.reg.Stats()
	if _, err := b.reg.Lookup(ctx, "relink", "m0", true); err != nil {
		t.Fatal(err)
	}
	if l := b.reg.Stats().CatchUpLists - before.CatchUpLists; l != 1 {
		t.Fatalf("catch-up listings after a reconnection: %d, want 1", l)
	}
}
