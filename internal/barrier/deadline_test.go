package barrier_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/barrier"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestCallsHonourDeadlineWhileZooKeeperStalls: while every byte to
// ZooKeeper is stalled (connections open, nothing answers; the session
// timeout is long, so go-zookeeper does not notice), Await (joining a
// barrier, or waiting in one it joined before the stall) and Leave each
// return within their deadline + 50 ms with the deadline's error; a waiter
// that gave up leaves the barrier once ZooKeeper answers again, and the
// barrier works again.
func TestCallsHonourDeadlineWhileZooKeeperStalls(t *testing.T) {
	ctx := context.Background()
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	m, err := lease.NewManager(sess, lay.Root, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := barrier.New(sess, lay.Root, m, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	t.Cleanup(b.Close) // runs first
	e := env{sess, lay, m, b}
	l := e.grant(t, time.Minute)
	if err := b.Await(ctx, "released", 1, "in", l, func(int, bool) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// A waiter that joined before the stall, whose deadline passes during it.
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	waitEnd, _ := wctx.Deadline()
	joined := make(chan struct{}, 1)
	waited := make(chan error, 1)
	go func() {
		waited <- b.Await(wctx, "waiting", 2, "w", l, func(int, bool) error {
			select {
			case joined <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	select {
	case <-joined:
	case err := <-waited:
		t.Fatalf("Await ended before the stall: %v", err)
	}

	px.Stall()
	late := zktest.CheckDeadlines(t, 200*time.Millisecond, []zktest.DeadlineCall{
		{Name: "Await joining a barrier", Call: func(ctx context.Context) error {
			return b.Await(ctx, "new", 2, "p", l, func(int, bool) error { return nil })
		}},
		{Name: "Leave", Call: func(ctx context.Context) error {
			_, err := b.Leave(ctx, "released", "in", l)
			return err
		}},
		{Name: "Join", Call: func(ctx context.Context) error {
			_, err := b.Join(ctx, "joined", 2, "p", l)
			return err
		}},
		{Name: "Get", Call: func(ctx context.Context) error {
			_, err := b.Get(ctx, "released")
			return err
		}},
		{Name: "Poll", Call: func(ctx context.Context) error {
			_, err := b.Poll(ctx, "released", 1, nil)
			return err
		}},
	})
	select {
	case err := <-waited:
		if took := time.Since(waitEnd); took > zktest.Slack {
			t.Errorf("Await waiting in a barrier returned %v after its deadline: %v", took.Round(time.Millisecond), err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Await waiting in a barrier: %v, want the deadline's error", err)
		}
		t.Logf("Await waiting in a barrier: %v, %v after its deadline", err, time.Since(waitEnd).Round(time.Millisecond))
	case <-time.After(time.Until(waitEnd) + 500*time.Millisecond):
		t.Errorf("Await waiting in a barrier still running 500 ms after its deadline")
		defer func() { <-waited }()
	}

	px.Restore()
	late()
	zktest.Eventually(t, 10*time.Second, func() bool {
		ok, _, err := sess.Conn().Exists(lay.Barrier("waiting"))
		return err == nil && !ok
	}, "the waiter that gave up left the barrier")
	zktest.Eventually(t, 10*time.Second, func() bool {
		_, err := b.Leave(ctx, "released", "in", l)
		return err == nil || errors.Is(err, barrier.ErrNotParticipant)
	}, "Leave after the stall")
	done := make(chan error, 2)
	for _, p := range []string{"a", "b"} {
		go func() { done <- b.Await(ctx, "after", 2, p, l, func(int, bool) error { return nil }) }()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("Await after the stall: %v", err)
		}
	}
}
