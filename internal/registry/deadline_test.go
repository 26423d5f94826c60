package registry_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestCallsHonourDeadlineWhileZooKeeperStalls: while every byte to
// ZooKeeper is stalled (connections open, nothing answers; the session
// timeout is long, so go-zookeeper does not notice), each Registry call that
// needs ZooKeeper returns within its deadline + 50 ms with the deadline's
// error, and a cached Lookup is answered from the cache. Once ZooKeeper
// answers again, the registry carries on: the linearizable reads the calls
// that gave up left running finish, and new writes and reads succeed.
func TestCallsHonourDeadlineWhileZooKeeperStalls(t *testing.T) {
	ctx := context.Background()
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	m, err := lease.NewManager(sess, lay.Root, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := registry.New(sess, lay.Root, m, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); m.Close() })
	e := env{sess, lay, m, r}
	id := grant(t, e, time.Minute)
	register(t, e, "g", "leased", "1", id)
	register(t, e, "g", "kept", "1", "")
	register(t, e, "g", "gone", "1", "")
	v, err := r.Lookup(ctx, "g", "", true) // caches g
	if err != nil {
		t.Fatal(err)
	}

	px.Stall()
	if _, err := r.Lookup(ctx, "g", "", false); err != nil {
		t.Errorf("cached Lookup while ZooKeeper stalls: %v", err)
	}
	if p, err := r.LookupPage(ctx, "g", registry.PageQuery{Limit: 1, MaxBytes: 1 << 20}, false); err != nil || p.Rev != v.Rev {
		t.Errorf("cached LookupPage while ZooKeeper stalls: %+v, %v", p, err)
	}
	if rev, err := r.Revision(ctx, "g"); err != nil || rev != v.Rev {
		t.Errorf("Revision of a cached group while ZooKeeper stalls: %d, %v; want %d", rev, err, v.Rev)
	}
	wait := zktest.CheckDeadlines(t, 200*time.Millisecond, []zktest.DeadlineCall{
		{Name: "Register updating a leased member", Call: func(ctx context.Context) error {
			_, _, err := r.Register(ctx, registry.RegisterParams{Group: "g", ID: "leased", Value: "2", LeaseID: id})
			return err
		}},
		{Name: "Register of a new leased member", Call: func(ctx context.Context) error {
			_, _, err := r.Register(ctx, registry.RegisterParams{Group: "g", ID: "new", Value: "1", LeaseID: id})
			return err
		}},
		{Name: "Register of a new persistent member", Call: func(ctx context.Context) error {
			_, _, err := r.Register(ctx, registry.RegisterParams{Group: "g", ID: "p", Value: "1", Persistent: true})
			return err
		}},
		{Name: "Register in a new group", Call: func(ctx context.Context) error {
			_, _, err := r.Register(ctx, registry.RegisterParams{Group: "other", ID: "p", Value: "1", Persistent: true})
			return err
		}},
		{Name: "Deregister of a persistent member", Call: func(ctx context.Context) error {
			_, err := r.Deregister(ctx, "g", "gone", "")
			return err
		}},
		{Name: "Deregister of a leased member", Call: func(ctx context.Context) error {
			_, err := r.Deregister(ctx, "g", "leased", id)
			return err
		}},
		{Name: "LINEARIZABLE Lookup", Call: func(ctx context.Context) error {
			_, err := r.Lookup(ctx, "g", "", true)
			return err
		}},
		{Name: "Lookup of a group not cached yet", Call: func(ctx context.Context) error {
			_, err := r.Lookup(ctx, "uncached", "", false)
			return err
		}},
		{Name: "Watch of a group not cached yet", Call: func(ctx context.Context) error {
			_, _, err := r.Watch(ctx, "unwatched", 0)
			return err
		}},
		{Name: "Watch resuming after a revision the cache has not reached", Call: func(ctx context.Context) error {
			_, _, err := r.Watch(ctx, "g", v.Rev+1_000_000)
			return err
		}},
		{Name: "AwaitCount", Call: func(ctx context.Context) error {
			return r.AwaitCount(ctx, "g", 100, func(int, int64, bool) error { return nil })
		}},
		{Name: "Poll of a group not cached yet", Call: func(ctx context.Context) error {
			_, err := r.Poll(ctx, "unpolled", "", false, 1, nil)
			return err
		}},
		{Name: "Poll ahead of the cache", Call: func(ctx context.Context) error {
			_, err := r.Poll(ctx, "g", "", false, v.Rev+1_000_000, nil)
			return err
		}},
		{Name: "LINEARIZABLE Poll", Call: func(ctx context.Context) error {
			_, err := r.Poll(ctx, "g", "", true, 1, nil)
			return err
		}},
		{Name: "Poll of a cached group, waiting", Call: func(ctx context.Context) error {
			_, err := r.Poll(ctx, "g", "", false, v.Rev, nil)
			return err
		}},
		{Name: "LINEARIZABLE LookupPage", Call: func(ctx context.Context) error {
			_, err := r.LookupPage(ctx, "g", registry.PageQuery{Limit: 1, MaxBytes: 1 << 20}, true)
			return err
		}},
		{Name: "LookupPage continuing in a group not cached yet", Call: func(ctx context.Context) error {
			_, err := r.LookupPage(ctx, "unpaged", registry.PageQuery{Rev: v.Rev, After: "a", Limit: 1, MaxBytes: 1 << 20}, false)
			return err
		}},
		{Name: "PollPage ahead of the cache", Call: func(ctx context.Context) error {
			_, err := r.PollPage(ctx, "g", registry.PageQuery{Limit: 1, MaxBytes: 1 << 20}, false, v.Rev+1_000_000, nil)
			return err
		}},
		{Name: "Revision of a group not cached yet", Call: func(ctx context.Context) error {
			_, err := r.Revision(ctx, "unrevised")
			return err
		}},
		{Name: "GroupNames before the first listing", Call: func(ctx context.Context) error {
			_, err := r.GroupNames(ctx)
			return err
		}},
	})

	px.Restore()
	wait()
	zktest.Eventually(t, 10*time.Second, func() bool {
		_, _, err := r.Register(ctx, registry.RegisterParams{Group: "g", ID: "after", Value: "1", LeaseID: id})
		return err == nil
	}, "Register after the stall")
	after, err := r.Lookup(ctx, "g", "after", true)
	if err != nil || len(after.Members) != 1 {
		t.Errorf("LINEARIZABLE Lookup after the stall: %+v, %v", after, err)
	}
	sub, start, err := r.Watch(ctx, "unwatched", 0)
	if err != nil {
		t.Fatalf("Watch after the stall: %v", err)
	}
	sub.Close()
	if len(start.Snapshot.Members()) != 0 {
		t.Errorf("Watch after the stall: %+v", start.Snapshot)
	}
	if _, err := r.Lookup(ctx, "uncached", "x", false); !errors.Is(err, registry.ErrMemberNotFound) {
		t.Errorf("Lookup after the stall: %v, want ErrMemberNotFound", err)
	}
	if gl, err := r.GroupNames(ctx); err != nil || !slices.Contains(gl.Names, "g") {
		t.Errorf("GroupNames after the stall: %+v, %v", gl, err)
	}
}
