package client_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// TestSemaphoreAtMostN: eight workers of a semaphore of two permits, each
// acquiring, working a moment and releasing, four rounds each: never more
// than two work at once, every worker gets its turns, and the tokens of
// successive permits rise.
func TestSemaphoreAtMostN(t *testing.T) {
	c := connect(t)
	sem := name(t, "s")
	ctx := ctxT(t)
	var (
		working, most atomic.Int32
		wg            sync.WaitGroup
		errs          = make(chan error, 8)
	)
	for w := range 8 {
		s := session(t, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				p, err := s.AcquirePermit(ctx, sem, 2, client.WithPermitValue(string(rune('a'+w))))
				if err != nil {
					errs <- err
					return
				}
				n := working.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(5 * time.Millisecond) // the work
				working.Add(-1)
				if err := p.Release(ctx); err != nil {
					errs <- err
					return
				}
				if cause := context.Cause(p.Context()); !errors.Is(cause, client.ErrReleased) {
					errs <- cause
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if m := most.Load(); m > 2 || m < 1 {
		t.Fatalf("at most %d workers at once, want 2", m)
	}
	st, err := c.Semaphore(ctx, sem)
	if err != nil || st.GetPermits() != 2 || len(st.GetHolders())+len(st.GetWaiters()) != 0 {
		t.Fatalf("Semaphore after the rounds: %v, %v", st, err)
	}
}

// TestSemaphoreTryAcquire: TryAcquire takes a free permit, fails with
// ErrNoPermit when none is, and its permit ends with the session; a
// waiter reports its position and gets the permit next.
func TestSemaphoreTryAcquire(t *testing.T) {
	c := connect(t)
	sem := name(t, "s")
	ctx := ctxT(t)
	a, b, w := session(t, c), session(t, c), session(t, c)
	pa, err := a.TryAcquirePermit(ctx, sem, 1, client.WithPermitValue("a"))
	if err != nil || pa.Token() <= 0 || pa.Semaphore() != sem {
		t.Fatalf("TryAcquire of a free permit: %v, %v", pa, err)
	}
	if _, err := b.TryAcquirePermit(ctx, sem, 1); !errors.Is(err, client.ErrNoPermit) || client.Code(err) != codes.ResourceExhausted {
		t.Fatalf("TryAcquire with none free: %v", err)
	}
	if _, err := b.TryAcquirePermit(ctx, sem, 3); client.Code(err) != codes.FailedPrecondition {
		t.Fatalf("TryAcquire with another N: %v", err)
	}
	positions := make(chan int, 4)
	got := make(chan *client.Permit, 1)
	go func() {
		p, err := w.AcquirePermit(ctx, sem, 1, client.WithOnPermitQueued(func(p int) { positions <- p }))
		if err != nil {
			t.Error(err)
		}
		got <- p
	}()
	if p := <-positions; p != 0 {
		t.Fatalf("waiter position %d, want 0", p)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-pa.Context().Done()
	if cause := context.Cause(pa.Context()); !errors.Is(cause, client.ErrSessionClosed) {
		t.Fatalf("the permit after its session closed: %v", cause)
	}
	select {
	case p := <-got:
		if p == nil || p.Token() <= pa.Token() {
			t.Fatalf("the waiter's permit: %v", p)
		}
	case <-ctx.Done():
		t.Fatal("the waiter got no permit after the holder's session closed")
	}
}

// TestSemaphoreAcquireCancelled: cancelling an Acquire that waits gives
// its place up: the queue behind it moves up.
func TestSemaphoreAcquireCancelled(t *testing.T) {
	c := connect(t)
	sem := name(t, "s")
	ctx := ctxT(t)
	holder, quitter := session(t, c), session(t, c)
	p, err := holder.AcquirePermit(ctx, sem, 1)
	if err != nil {
		t.Fatal(err)
	}
	qctx, cancel := context.WithCancel(ctx)
	queued := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		_, err := quitter.AcquirePermit(qctx, sem, 1, client.WithOnPermitQueued(func(p int) { queued <- p }))
		done <- err
	}()
	<-queued
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Acquire: %v", err)
	}
	zktest.Eventually(t, 5*time.Second, func() bool {
		st, err := c.Semaphore(ctx, sem)
		return err == nil && len(st.GetWaiters()) == 0
	}, "the cancelled waiter's place is still there")
	if err := p.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
