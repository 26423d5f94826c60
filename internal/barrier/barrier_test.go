package barrier_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/barrier"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

func TestMain(m *testing.M) { zktest.Main(m) }

type env struct {
	sess   *zkx.Session
	lay    zktest.Layout
	leases *lease.Manager
	b      *barrier.Barriers
}

func newEnv(t *testing.T, opt ...zkx.Option) env {
	sess, lay := zktest.Session(t, opt...)
	m, err := lease.NewManager(sess, lay.Root, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := barrier.New(sess, lay.Root, m, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	t.Cleanup(b.Close) // runs first
	return env{sess, lay, m, b}
}

func (e env) grant(t *testing.T, ttl time.Duration) string {
	l, err := e.leases.Grant(context.Background(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	return l.ID
}

func (e env) exists(t *testing.T, p string) bool {
	ok, _, err := e.sess.Conn().Exists(p)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

type progress struct {
	arrived  int
	released bool
	who      int
}

// TestReleaseAtThreshold: nobody is released while N-1 wait; the Nth
// arrival releases all, and every waiter watched the barrier's children.
func TestReleaseAtThreshold(t *testing.T) {
	const n = 5
	e := newEnv(t)
	before := zktest.ChildWatches(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	updates := make(chan progress, 100)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	join := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.b.Await(ctx, "start", n, fmt.Sprint("p", i), e.grant(t, time.Minute), func(arrived int, released bool) error {
				updates <- progress{arrived, released, i}
				return nil
			})
		}()
	}
	for i := 0; i < n-1; i++ {
		join(i)
	}
	// Wait until every early waiter has seen n-1 arrivals: none released.
	seen := map[int]bool{}
	for len(seen) < n-1 {
		u := <-updates
		if u.released {
			t.Fatalf("participant %d released with %d arrived", u.who, u.arrived)
		}
		if u.arrived == n-1 {
			seen[u.who] = true
		}
	}
	// The waiters (all on one session) hold one child watch on the barrier,
	// and no watch on the ready node that does not exist yet.
	if out := zktest.FourLetter(t, "wchp"); strings.Contains(out, e.lay.Barrier("")) {
		t.Fatalf("data or exists watch on the barrier:\n%s", out)
	}
	if n := zktest.ChildWatches(t); n != before+1 {
		t.Fatalf("%d child watches, want %d: one on the barrier", n, before+1)
	}
	join(n - 1)
	released := map[int]bool{}
	for len(released) < n {
		select {
		case u := <-updates:
			if u.released {
				released[u.who] = true
				if u.arrived < n {
					t.Fatalf("released with %d arrived", u.arrived)
				}
			}
		case <-ctx.Done():
			t.Fatalf("only %d released", len(released))
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestGiveUpLeavesNothing: a waiter whose deadline passes leaves no znode
// (it leaves in the background, after Await returned).
func TestGiveUpLeavesNothing(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	arrived := make(chan int, 10)
	done := make(chan error)
	go func() {
		done <- e.b.Await(ctx, "lonely", 3, "p", e.grant(t, time.Minute), func(n int, _ bool) error { arrived <- n; return nil })
	}()
	if n := <-arrived; n != 1 {
		t.Fatalf("arrived %d", n)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Await after cancel: %v", err)
	}
	zktest.Eventually(t, 10*time.Second, func() bool { return !e.exists(t, e.lay.Barrier("lonely")) },
		"barrier znode left behind by a participant that gave up")
}

func TestLeaseExpiryAndMismatch(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	short := e.grant(t, time.Second)
	ups := make(chan int, 10)
	go func() {
		_ = e.b.Await(ctx, "b", 3, "short", short, func(int, bool) error { return nil })
	}()
	go func() {
		_ = e.b.Await(ctx, "b", 3, "long", e.grant(t, time.Minute), func(n int, _ bool) error { ups <- n; return nil })
	}()
	for n := 0; n != 2; n = <-ups {
	}
	if err := e.b.Await(ctx, "b", 4, "other", e.grant(t, time.Minute), func(int, bool) error { return nil }); !errors.Is(err, barrier.ErrThresholdMismatch) {
		t.Fatalf("join with another threshold: %v", err)
	}
	// The short lease lapses: its participant leaves, and the others see it.
	for n := 2; n != 1; n = <-ups {
	}
	if e.exists(t, e.lay.Participant("b", "short")) {
		t.Fatal("participant of an expired lease still present")
	}
}

func TestLeaveAfterRelease(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.grant(t, time.Minute), e.grant(t, time.Minute)
	var wg sync.WaitGroup
	for i, l := range []string{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.b.Await(ctx, "two", 2, fmt.Sprint(i), l, func(int, bool) error { return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, err := e.b.Leave(ctx, "two", "0", b); !errors.Is(err, barrier.ErrNotOwner) {
		t.Fatalf("Leave with another lease: %v", err)
	}
	if rel, err := e.b.Leave(ctx, "two", "0", a); err != nil || !rel {
		t.Fatalf("Leave: %v, %v", rel, err)
	}
	if !e.exists(t, e.lay.Ready("two")) {
		t.Fatal("ready removed while a participant remains")
	}
	if _, err := e.b.Leave(ctx, "two", "1", b); err != nil {
		t.Fatal(err)
	}
	if e.exists(t, e.lay.Barrier("two")) {
		t.Fatal("barrier not removed by its last leaver")
	}
}

// TestConcurrentLeave: of several Leaves of one participant at once, one
// succeeds and the others are ErrNotParticipant (not ZooKeeper's raw
// "node does not exist", which reached clients as INTERNAL).
func TestConcurrentLeave(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const rounds, callers = 10, 4
	for r := range rounds {
		name := fmt.Sprint("leave-", r)
		l := e.grant(t, time.Minute)
		if err := e.b.Await(ctx, name, 1, "p", l, func(int, bool) error { return nil }); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, callers)
		var wg sync.WaitGroup
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.b.Leave(ctx, name, "p", l)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, barrier.ErrNotParticipant):
				t.Fatalf("round %d: concurrent Leave: %v, want nil or ErrNotParticipant", r, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d Leaves succeeded, want 1", r, ok)
		}
	}
}

// TestNewRefusesBadRoot: New returns an error for a root it cannot work
// with, instead of building znode paths from it.
func TestNewRefusesBadRoot(t *testing.T) {
	e := newEnv(t)
	for _, root := range []string{"", "barriers", "/", e.lay.Root + "/", e.lay.Root + "/./x"} {
		if b, err := barrier.New(e.sess, root, e.leases, zktest.Logger(t)); err == nil {
			b.Close()
			t.Errorf("New accepted the root %q", root)
		}
	}
}
