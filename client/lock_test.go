package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// TestGatewayLock: a lock passes from one session to the next on Unlock,
// with a higher token; the Lock's context ends with ErrReleased; a fence
// then refuses the old token, and a sequencer check says it is stale.
func TestGatewayLock(t *testing.T) {
	c := connect(t)
	s1, s2 := session(t, c), session(t, c)
	ctx, lk := ctxT(t), name(t, "l")
	l1, err := s1.Lock(ctx, lk)
	if err != nil {
		t.Fatal(err)
	}
	var fence client.Fence
	if err := fence.Check(ctx, c, l1.Sequencer()); err != nil {
		t.Fatalf("the holder's token: %v", err)
	}
	queued := make(chan int, 10)
	type result struct {
		l   *client.Lock
		err error
	}
	res := make(chan result, 1)
	go func() {
		l, err := s2.Lock(ctx, lk, client.WithOnLockQueued(func(p int) {
			select {
			case queued <- p:
			default:
			}
		}))
		res <- result{l, err}
	}()
	select {
	case p := <-queued:
		if p != 1 {
			t.Fatalf("queued at %d, want 1", p)
		}
	case <-time.After(waitTimeout):
		t.Fatal("second locker not queued")
	}
	if _, err := s1.TryLock(ctx, lk); !errors.Is(err, client.ErrAlreadyExists) {
		t.Fatalf("TryLock by the holder's session: %v, want ErrAlreadyExists", err)
	}
	if err := l1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := context.Cause(l1.Context()); !errors.Is(err, client.ErrReleased) {
		t.Fatalf("first hold ended with %v, want ErrReleased", err)
	}
	var r result
	select {
	case r = <-res:
	case <-time.After(waitTimeout):
		t.Fatal("second locker did not get the lock")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.l.Token() <= l1.Token() {
		t.Fatalf("token %d after %d", r.l.Token(), l1.Token())
	}
	if err := fence.Admit(r.l.Sequencer()); err != nil {
		t.Fatal(err)
	}
	if err := fence.Admit(l1.Sequencer()); !errors.Is(err, client.ErrStaleToken) {
		t.Fatalf("the old token after the new one: %v, want ErrStaleToken", err)
	}
	var other client.Fence // has seen nothing: the gateway says it is stale
	if err := other.Check(ctx, c, l1.Sequencer()); !errors.Is(err, client.ErrStaleToken) {
		t.Fatalf("Check of the old token: %v, want ErrStaleToken", err)
	}
	if err := l1.Unlock(ctx); err != nil {
		t.Fatalf("a second Unlock: %v", err)
	}

	// TryLock of a held lock takes nothing; closing the holder's session
	// ends its hold, and then TryLock takes it.
	s3 := session(t, c)
	if _, err := s3.TryLock(ctx, lk); !errors.Is(err, client.ErrLocked) {
		t.Fatalf("TryLock of a held lock: %v, want ErrLocked", err)
	}
	if err := s2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := context.Cause(r.l.Context()); !errors.Is(err, client.ErrSessionClosed) {
		t.Fatalf("second hold ended with %v, want ErrSessionClosed", err)
	}
	l3, err := s3.TryLock(ctx, lk)
	if err != nil {
		t.Fatal(err)
	}
	if l3.Token() <= r.l.Token() {
		t.Fatalf("token %d after %d", l3.Token(), r.l.Token())
	}
	if err := l3.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestGatewayLockSharedReentrant: shared holds of two sessions at once; a
// reentrant hold of one session counts, and each Unlock releases its own.
func TestGatewayLockSharedReentrant(t *testing.T) {
	c := connect(t)
	s1, s2 := session(t, c), session(t, c)
	ctx, lk := ctxT(t), name(t, "l")
	r1, err := s1.Lock(ctx, lk, client.Shared())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s2.TryLock(ctx, lk, client.Shared())
	if err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	if _, err := s2.TryLock(ctx, lk); client.Code(err) != codes.FailedPrecondition {
		t.Fatalf("an exclusive TryLock by a reader's session: %v, want FailedPrecondition", err)
	}
	r1b, err := s1.Lock(ctx, lk, client.Shared(), client.Reentrant())
	if err != nil {
		t.Fatal(err)
	}
	if r1b.Holds() != 2 || r1b.Token() != r1.Token() {
		t.Fatalf("reentrant hold: %d holds, token %d; want 2, %d", r1b.Holds(), r1b.Token(), r1.Token())
	}
	if err := r1b.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if r1.Context().Err() != nil {
		t.Fatalf("the first hold ended with the reentrant one: %v", context.Cause(r1.Context()))
	}
	var fence client.Fence
	for _, l := range []*client.Lock{r2, r1} { // readers in any order
		if err := fence.Admit(l.Sequencer()); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []*client.Lock{r1, r2} {
		if err := l.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w, err := s2.Lock(ctx, lk)
	if err != nil {
		t.Fatal(err)
	}
	if err := fence.Admit(w.Sequencer()); err != nil {
		t.Fatal(err)
	}
	if err := fence.Admit(r1.Sequencer()); !errors.Is(err, client.ErrStaleToken) {
		t.Fatalf("a reader's token after the writer's: %v, want ErrStaleToken", err)
	}
	if err := w.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestFence: what a fence admits, per lock and election, from goroutines
// at once.
func TestFence(t *testing.T) {
	var f client.Fence
	steps := []struct {
		seq client.Sequencer
		ok  bool
	}{
		{client.Sequencer{Lock: "a", Token: 10}, true},
		{client.Sequencer{Lock: "a", Token: 10}, true}, // the same holder again
		{client.Sequencer{Lock: "a", Token: 9}, false},
		{client.Sequencer{Election: "a", Token: 5}, true}, // another kind: its own tokens
		{client.Sequencer{Lock: "a", Token: 20, Shared: true}, true},
		{client.Sequencer{Lock: "a", Token: 15, Shared: true}, true}, // readers share
		{client.Sequencer{Lock: "a", Token: 19}, false},              // a writer older than a reader that acted
		{client.Sequencer{Lock: "a", Token: 30}, true},
		{client.Sequencer{Lock: "a", Token: 25, Shared: true}, false},
		{client.Sequencer{Lock: "b", Token: 1}, true},
	}
	for i, s := range steps {
		if err := f.Admit(s.seq); (err == nil) != s.ok || (err != nil && !errors.Is(err, client.ErrStaleToken)) {
			t.Fatalf("step %d: Admit(%+v) = %v, want ok %v", i, s.seq, err, s.ok)
		}
	}
	// From goroutines at once (run with -race): the highest token stays.
	var g client.Fence
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				_ = g.Admit(client.Sequencer{Lock: "x", Token: int64(i*8 + w)})
			}
		}()
	}
	wg.Wait()
	if err := g.Admit(client.Sequencer{Lock: "x", Token: 7998}); err == nil {
		t.Fatal("admitted 7998 after 7999")
	}
	if err := g.Admit(client.Sequencer{Lock: "x", Token: 7999}); err != nil {
		t.Fatal(err)
	}
}

// TestGatewayLockConnectionCut: a hold belongs to its stream. When the
// connection to the gateway breaks, the gateway releases the hold; the
// client's Lock ends with ErrLockLost at once, never reporting a jeopardy
// window (the hold may already be another's: only a gateway that said it
// drains keeps it), and another session takes the lock with a higher
// token.
func TestGatewayLockConnectionCut(t *testing.T) {
	p := newProxy(t, testenv.Gateway(t))
	c, err := client.New(t.Context(), p.addr(), client.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, other := session(t, c, client.WithTTL(5*time.Second)), session(t, connect(t))
	ctx, lk := ctxT(t), name(t, "l")
	l, err := s.Lock(ctx, lk)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *client.Lock, 1)
	go func() {
		l2, err := other.Lock(ctx, lk)
		if err != nil {
			t.Errorf("the other session's Lock: %v", err)
		}
		got <- l2
	}()
	st := l.State()
	p.cut()
	for ended := false; !ended; {
		select {
		case <-l.Context().Done():
			ended = true
		case <-st.Changed:
			if st = l.State(); st.Jeopardy && l.Context().Err() == nil {
				t.Fatalf("after the cut the hold is in jeopardy until %v: the gateway released it when its stream ended",
					st.Deadline)
			}
		case <-time.After(waitTimeout):
			t.Fatal("the hold did not end")
		}
	}
	if err := context.Cause(l.Context()); !errors.Is(err, client.ErrLockLost) {
		t.Fatalf("the hold ended with %v, want ErrLockLost", err)
	}
	var l2 *client.Lock
	select {
	case l2 = <-got:
	case <-time.After(waitTimeout):
		t.Fatal("the other session did not get the lock")
	}
	if l2 == nil || l2.Token() <= l.Token() {
		t.Fatalf("the next hold %v after token %d", l2, l.Token())
	}
	if err := l.Unlock(ctx); !errors.Is(err, client.ErrLockLost) {
		t.Fatalf("Unlock of a lost hold: %v, want ErrLockLost", err)
	}
}
