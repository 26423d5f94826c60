package semaphore

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Test harness: a gateway's leases and semaphores on a session, acquires
// whose reports arrive on channels, and child-watch counts from
// ZooKeeper's four-letter words (the proxy that cuts a session off is
// zktest.Proxy).

func TestMain(m *testing.M) { zktest.Main(m) }

const wait = 5 * time.Second

// gateway is what a zkcoord gateway holds: a session, leases, semaphores.
type gateway struct {
	sess   *zkx.Session
	lay    zktest.Layout
	leases *lease.Manager
	sems   *Semaphores
}

func newGateway(t *testing.T, sess *zkx.Session, lay zktest.Layout) *gateway {
	t.Helper()
	leases, err := lease.NewManager(sess, lay.Root, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	sems, err := New(sess, lay.Root, leases, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := leases.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	liveManagers.Add(1)
	t.Cleanup(func() { leases.Close(); liveManagers.Add(-1) })
	t.Cleanup(sems.Close) // runs first
	return &gateway{sess: sess, lay: lay, leases: leases, sems: sems}
}

func setup(t *testing.T) *gateway {
	sess, lay := zktest.Session(t)
	return newGateway(t, sess, lay)
}

func (g *gateway) grant(t *testing.T, ttl time.Duration) lease.Lease {
	t.Helper()
	l, err := g.leases.Grant(context.Background(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// slots lists the slot znodes of semaphore s, as ZooKeeper has them.
func (g *gateway) slots(t *testing.T, s string) []string {
	t.Helper()
	kids, _, err := g.sess.Conn().Children(g.lay.Semaphore(s))
	if err != nil {
		t.Fatal(err)
	}
	return kids
}

// stamped is an update with the time Acquire reported it.
type stamped struct {
	Update
	At time.Time
}

// acquire is a running Acquire and what it reported.
type acquire struct {
	updates chan stamped
	done    chan error
	cancel  context.CancelFunc
}

func (g *gateway) acquire(t *testing.T, s string, permits int, value, leaseID string) *acquire {
	return g.acquireCtx(t, context.Background(), s, permits, value, leaseID)
}

func (g *gateway) acquireCtx(t *testing.T, ctx context.Context, s string, permits int, value, leaseID string) *acquire {
	ctx, cancel := context.WithCancel(ctx)
	a := &acquire{updates: make(chan stamped, 64), done: make(chan error, 1), cancel: cancel}
	go func() {
		a.done <- g.sems.Acquire(ctx, s, permits, value, leaseID, func(u Update) error {
			select {
			case a.updates <- stamped{u, time.Now()}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(func() { cancel(); a.done <- <-a.done })
	return a
}

// next returns the next update, failing the test if none comes in time.
func (a *acquire) next(t *testing.T) stamped {
	t.Helper()
	select {
	case u := <-a.updates:
		return u
	case err := <-a.done:
		a.done <- err
		select { // reported before it returned
		case u := <-a.updates:
			return u
		default:
		}
		t.Fatalf("acquire ended: %v", err)
	case <-time.After(wait):
		t.Fatal("no acquire update")
	}
	return stamped{}
}

// expect returns the next update and checks its status.
func (a *acquire) expect(t *testing.T, s Status) stamped {
	t.Helper()
	u := a.next(t)
	if u.Status != s {
		t.Fatalf("acquire reported %v (%+v), want %v", u.Status, u.Update, s)
	}
	return u
}

// end waits for Acquire to return.
func (a *acquire) end(t *testing.T) error {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err
		return err
	case <-time.After(wait):
		t.Fatal("acquire did not return")
		return nil
	}
}

// quiet checks that nothing was reported.
func (a *acquire) quiet(t *testing.T) {
	t.Helper()
	select {
	case u := <-a.updates:
		t.Fatalf("unexpected update %+v", u.Update)
	default:
	}
}

// childWatches counts the child watches on the server, less the lease
// managers' own (one per session, on the replicas directory).
func childWatches(t *testing.T) int {
	t.Helper()
	return zktest.ChildWatches(t) - int(liveManagers.Load())
}

// liveManagers counts the lease managers open in this test binary.
var liveManagers atomic.Int32
