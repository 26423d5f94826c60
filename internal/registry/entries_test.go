package registry_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// A catch-up reads its journal entries several at a time; these pin what
// that must not change.

// catchUpBehind builds a writer gateway and a gateway whose cache of "g"
// (holding m0) is watched. It holds that cache's watch loop while writes
// runs on the writer, then lets it go: the cache catches up on all of
// writes' entries at once. onEntries, if not nil, sees each catch-up's
// entry names before they are read (catch-ups run one at a time).
func catchUpBehind(t *testing.T, ctx context.Context, onEntries func(w env, names []string), writes func(w env)) (env, *registry.Sub) {
	t.Helper()
	var (
		lay  zktest.Layout
		hold atomic.Bool
		once sync.Once
	)
	release := make(chan struct{})
	w := gateway(t, &lay)
	a := gateway(t, &lay, registry.WithBeforeRefresh(func(string) {
		if hold.Load() {
			<-release
		}
	}), registry.WithBeforeEntriesRead(func(_ string, names []string) {
		if onEntries != nil {
			onEntries(w, names)
		}
	}))
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before a's cleanup
	register(t, w, "g", "m0", "v0", "")
	sub, _, err := a.reg.Watch(ctx, "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	waitArmed(t, a.reg, "g")
	hold.Store(true)
	writes(w)
	hold.Store(false)
	once.Do(func() { close(release) })
	return a, sub
}

// TestCatchUpAppliesEntriesInOrder: a cache held behind while one member
// joins and changes twice catches up on the three entries at once; its
// watcher gets JOINED v1, UPDATED v2, UPDATED v3, in revision order, and
// the cache holds v3. Entries applied out of order would drop the older
// changes as already reflected.
func TestCatchUpAppliesEntriesInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var largest atomic.Int32 // entries read by one catch-up, at most
	a, sub := catchUpBehind(t, ctx, func(_ env, names []string) {
		largest.Store(max(largest.Load(), int32(len(names))))
	}, func(w env) {
		for _, v := range []string{"v1", "v2", "v3"} {
			register(t, w, "g", "m1", v, "")
		}
	})

	want := []struct {
		typ   registry.EventType
		value string
	}{{registry.Joined, "v1"}, {registry.Updated, "v2"}, {registry.Updated, "v3"}}
	var last int64
	for i, wv := range want {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.Type != wv.typ || ev.Member.ID != "m1" || ev.Member.Value != wv.value || ev.Rev <= last {
			t.Fatalf("event %d: %v %s=%s at %d (after %d), want %v m1=%s", i, ev.Type, ev.Member.ID, ev.Member.Value, ev.Rev, last, wv.typ, wv.value)
		}
		last = ev.Rev
	}
	v, err := a.reg.Lookup(ctx, "g", "m1", false)
	if err != nil || len(v.Members) != 1 || v.Members[0].Value != "v3" {
		t.Fatalf("cached m1: %+v, %v; want v3", v.Members, err)
	}
	if n := largest.Load(); n != 3 {
		t.Fatalf("the largest catch-up read %d entries, want the three at once", n)
	}
}

// TestCatchUpEntryTrimmedWhileRead: of three journal entries a held-back
// catch-up listed, the middle one is trimmed (by another gateway) before
// it is read. The catch-up cannot prove what it missed, so it rereads the
// group: all three members reach the watcher and the cache. Skipping the
// missing entry would lose its change for good.
func TestCatchUpEntryTrimmedWhileRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var trimmed atomic.Value
	a, sub := catchUpBehind(t, ctx, func(w env, names []string) {
		if len(names) != 3 || trimmed.Load() != nil {
			return
		}
		// A trim by another replica, between the listing and the reads.
		if err := w.sess.Delete(context.Background(), w.lay.Log("g")+"/"+names[1], -1); err != nil {
			t.Errorf("trim %s: %v", names[1], err)
		}
		trimmed.Store(names[1])
	}, func(w env) {
		for _, id := range []string{"m1", "m2", "m3"} {
			register(t, w, "g", id, "v", "")
		}
	})

	joined := map[string]bool{}
	for len(joined) < 3 {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("events %v, then %v (entry %v trimmed while read)", joined, err, trimmed.Load())
		}
		if ev.Type != registry.Joined {
			t.Fatalf("event %v %s, want JOINED", ev.Type, ev.Member.ID)
		}
		joined[ev.Member.ID] = true
	}
	if trimmed.Load() == nil {
		t.Fatal("no catch-up read the three entries: nothing was trimmed while read")
	}
	v, err := a.reg.Lookup(ctx, "g", "", false)
	if err != nil || len(v.Members) != 4 {
		t.Fatalf("cached group: %+v, %v; want m0 to m3", v.Members, err)
	}
}
