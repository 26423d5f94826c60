package lease_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// proxiedManager is a lease manager whose session goes through a proxy the
// test can cut. lay is shared with other managers when non-empty.
func proxiedManager(t *testing.T, px *zktest.Proxy, timeout time.Duration, lay *zktest.Layout) (*lease.Manager, *zkx.Session) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess, err := zkx.Dial(ctx, px.Addr(), zkx.WithSessionTimeout(timeout), zkx.WithLogger(zktest.Logger(t)))
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
	return managerOn(t, sess, *lay), sess
}

func managerOn(t *testing.T, sess *zkx.Session, lay zktest.Layout) *lease.Manager {
	t.Helper()
	m, err := lease.NewManager(sess, lay.Root, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	m.Handle("thing", func(_ context.Context, key string, parts []string) ([]any, error) {
		return []any{&zk.DeleteRequest{Path: lay.Root + "/" + parts[0], Version: -1}}, nil
	})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestRevokeDuringOutageCompletes: a Revoke whose context ends while
// ZooKeeper is unreachable (the stream-lease release uses a 10 s timeout)
// drops the lease from memory but leaves its record, its owner ephemeral (of
// this live session) and everything it owns in ZooKeeper. Nothing ever
// removes them while this gateway's session lives: no timer (the entry is
// gone), no adoption (the owner node exists), and the client cannot retry
// (Revoke and KeepAlive answer ErrOwnedElsewhere).
func TestRevokeDuringOutageCompletes(t *testing.T) {
	ctx := context.Background()
	px := zktest.NewProxy(t, zktest.Addr(t))
	var lay zktest.Layout
	m, sess := proxiedManager(t, px, 4*time.Second, &lay)
	watcher, _ := zktest.Session(t)

	l, err := m.Grant(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := attachThing(t, m, lay, l.ID, "a"); err != nil {
		t.Fatal(err)
	}

	px.Cut()
	rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = m.Revoke(rctx, l.ID)
	cancel()
	t.Logf("Revoke during outage: %v", err)
	if err == nil {
		t.Error("Revoke during an outage answered success before anything the lease owned was removed")
	}
	px.Restore()
	if err := sess.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	time.Sleep(3 * time.Second) // three TTLs
	t.Logf("3 TTLs later: session epoch %d; owner exists: %v; record exists: %v", sess.Status().Epoch,
		exists(t, watcher, lay.LeaseOwner(l.Key)), exists(t, watcher, lay.Lease(l.Key)))
	if exists(t, watcher, lay.Root+"/a") {
		t.Errorf("owned node still exists 3 TTLs after a Revoke that failed during a short outage (lease record exists: %v)",
			exists(t, watcher, lay.Lease(l.Key)))
	}
	_, kerr := m.KeepAlive(ctx, l.ID)
	rerr := m.Revoke(ctx, l.ID)
	t.Logf("after the outage: KeepAlive: %v; Revoke: %v; leases in memory: %d", kerr, rerr, m.Count())
	if errors.Is(rerr, lease.ErrOwnedElsewhere) {
		t.Errorf("the lease is orphaned: this gateway owns it in ZooKeeper but not in memory (Revoke: %v)", rerr)
	}
}

// TestLostOwnershipNotKeptAlive: after this gateway's session
// expired, another replica that started meanwhile adopted its leases (their
// owner ephemerals were gone). guardOwners then fails to re-create the owner
// node (NodeExists) and only logs it: both replicas hold the lease. The
// adopter, which receives no keepalive, releases the lease one TTL later and
// deletes what it owns, while the first replica keeps answering KeepAlive
// with success for a lease whose record no longer exists.
func TestLostOwnershipNotKeptAlive(t *testing.T) {
	ctx := context.Background()
	px := zktest.NewProxy(t, zktest.Addr(t))
	var lay zktest.Layout
	a, sessA := proxiedManager(t, px, time.Second, &lay)
	watcher, _ := zktest.Session(t)

	l, err := a.Grant(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := attachThing(t, a, lay, l.ID, "a"); err != nil {
		t.Fatal(err)
	}
	// The client keeps its lease alive on replica A all along.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var kaErrs []error
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			_, err := a.KeepAlive(ctx, l.ID)
			mu.Lock()
			kaErrs = append(kaErrs, err)
			mu.Unlock()
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	px.Cut()
	zktest.Eventually(t, 10*time.Second, func() bool { return !exists(t, watcher, lay.LeaseOwner(l.Key)) },
		"owner node not removed by the session expiry")
	// Replica B starts while A is cut off: it adopts the ownerless lease.
	_ = managerOn(t, watcher, lay)
	px.Restore()
	zktest.Eventually(t, 10*time.Second, func() bool { return sessA.Status().Epoch == 2 }, "A has no new session")

	// B's TTL (2 s) lapses: it releases the lease although A keeps it alive.
	zktest.Eventually(t, 6*time.Second, func() bool { return !exists(t, watcher, lay.Root+"/a") },
		"owned node kept (no double ownership)")
	gone := !exists(t, watcher, lay.Lease(l.Key))
	time.Sleep(500 * time.Millisecond)
	_, err = a.KeepAlive(ctx, l.ID)
	mu.Lock()
	var failed int
	for _, e := range kaErrs {
		if e != nil {
			failed++
		}
	}
	n := len(kaErrs)
	mu.Unlock()
	t.Logf("keepalives on A: %d, failed: %d; lease record gone: %v; KeepAlive on A now: %v", n, failed, gone, err)
	if err == nil {
		t.Errorf("owned node deleted by the adopting replica while the client kept the lease alive on A, and A still answers KeepAlive with success (record gone: %v)", gone)
	}
	// Using the lease on A now fails with a raw ZooKeeper error.
	aerr := attachThing(t, a, lay, l.ID, "b")
	t.Logf("Attach on A after the lease was released elsewhere: %v (lease.ErrNotFound? %v)", aerr, errors.Is(aerr, lease.ErrNotFound))
}

// TestDrainHandsOffGrantsInFlight: grants that passed the draining check
// before Drain began but were tracked after it snapshot the leases escaped
// the hand-off; their owner nodes then vanished with the session and the
// next replica adopted them as orphans with a short grace instead of their
// expiry (a leader lost its term in a rolling restart). Drain now waits
// for them: after it returns, no lease granted here still has an owner.
func TestDrainHandsOffGrantsInFlight(t *testing.T) {
	ctx := context.Background()
	sess, lay := zktest.Session(t)
	m := start(t, sess, lay, "r1")
	var (
		mu      sync.Mutex
		granted []lease.Lease
		wg      sync.WaitGroup
		started = make(chan struct{}, 64)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				l, err := m.Grant(ctx, 5*time.Second)
				if errors.Is(err, lease.ErrDraining) {
					return
				} else if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				granted = append(granted, l)
				mu.Unlock()
				select {
				case started <- struct{}{}:
				default:
				}
			}
		}()
	}
	for range 16 {
		<-started
	}
	n, err := m.Drain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if n != len(granted) {
		t.Errorf("Drain handed off %d leases, %d were granted", n, len(granted))
	}
	for _, l := range granted {
		if exists(t, sess, lay.LeaseOwner(l.Key)) {
			t.Errorf("lease %s granted during the drain still has an owner node", l.Key)
		}
	}
	t.Logf("%d leases granted, %d handed off", len(granted), n)
}
