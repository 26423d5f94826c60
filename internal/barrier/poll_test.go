package barrier_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/barrier"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// window returns a channel that closes after d: the end of a blocking
// query's wait.
func window(t *testing.T, d time.Duration) <-chan struct{} {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx.Done()
}

type polled struct {
	s   barrier.State
	err error
	at  time.Time
}

func (e env) poll(name string, after int64, until <-chan struct{}) <-chan polled {
	out := make(chan polled, 1)
	go func() {
		s, err := e.b.Poll(context.Background(), name, after, until)
		out <- polled{s, err, time.Now()}
	}()
	return out
}

// polling waits until n Polls follow barrier name, their feed loaded.
func (e env) polling(t *testing.T, name string, n int) {
	t.Helper()
	zktest.Eventually(t, 10*time.Second, func() bool {
		polls, loaded := barrier.Polling(e.b, name)
		return polls == n && loaded
	}, "%d polls of %s", n, name)
}

// settle follows a poll's answer r with more Polls, as a client's loop
// does, until the barrier is in state want: a Join or Leave goes through
// states of its own (the barrier created before its first participant,
// the last arrival before the release). Every answer must be after the
// revision asked for.
func (e env) settle(t *testing.T, name string, after int64, r polled, want barrier.State) barrier.State {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r.err != nil || r.s.Rev <= after {
			t.Fatalf("Poll after %d = %+v, %v", after, r.s, r.err)
		}
		if r.s == want {
			return r.s
		}
		if time.Now().After(deadline) {
			t.Fatalf("Poll after %d = %+v, want %+v", after, r.s, want)
		}
		after = r.s.Rev
		r = <-e.poll(name, after, window(t, 10*time.Second))
	}
}

func (e env) join(t *testing.T, name string, threshold int, id, leaseID string) barrier.State {
	t.Helper()
	s, err := e.b.Join(context.Background(), name, threshold, id, leaseID)
	if err != nil {
		t.Fatalf("Join %s/%s: %v", name, id, err)
	}
	return s
}

// TestJoinAndPoll: participants that join without waiting stay in the
// barrier; a Poll answers at each arrival, and with released once the
// threshold is reached, by the arrival that completed it.
func TestJoinAndPoll(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 3
	leases := []string{e.grant(t, time.Minute), e.grant(t, time.Minute), e.grant(t, time.Minute)}
	s := e.join(t, "deploy", n, "p0", leases[0])
	if s.Arrived != 1 || s.Threshold != n || s.Released || s.Rev == 0 {
		t.Fatalf("first Join = %+v", s)
	}
	if again := e.join(t, "deploy", n, "p0", leases[0]); again != s {
		t.Fatalf("repeated Join = %+v, want %+v", again, s)
	}
	if _, err := e.b.Join(ctx, "deploy", n, "p0", leases[1]); !errors.Is(err, barrier.ErrParticipantExists) {
		t.Fatalf("Join with another lease: %v", err)
	}
	if _, err := e.b.Join(ctx, "deploy", n+1, "px", leases[1]); !errors.Is(err, barrier.ErrThresholdMismatch) {
		t.Fatalf("Join with another threshold: %v", err)
	}
	for i := 1; i < n; i++ {
		res := e.poll("deploy", s.Rev, window(t, 30*time.Second))
		e.polling(t, "deploy", 1)
		joined := e.join(t, "deploy", n, "p"+string(rune('0'+i)), leases[i])
		s = e.settle(t, "deploy", s.Rev, <-res, joined)
	}
	if !s.Released || s.Arrived != n {
		t.Fatalf("the last Join = %+v, want released", s)
	}
	if got, err := e.b.Get(ctx, "deploy"); err != nil || got != s {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, s)
	}

	// Participants leave; the last one removes the barrier.
	for i := range n {
		res := e.poll("deploy", s.Rev, window(t, 30*time.Second))
		e.polling(t, "deploy", 1)
		if _, err := e.b.Leave(ctx, "deploy", "p"+string(rune('0'+i)), leases[i]); err != nil {
			t.Fatal(err)
		}
		r := <-res
		if r.err != nil || r.s.Rev <= s.Rev || r.s.Arrived != n-1-i {
			t.Fatalf("Poll over a Leave = %+v, %v", r.s, r.err)
		}
		s = r.s
	}
	// The last Leave removes the participant, then the barrier.
	if s.Threshold != 0 {
		r := <-e.poll("deploy", s.Rev, window(t, 10*time.Second))
		if r.err != nil || r.s.Rev <= s.Rev {
			t.Fatalf("Poll over the barrier's removal = %+v, %v", r.s, r.err)
		}
		s = r.s
	}
	if s != (barrier.State{Rev: s.Rev}) {
		t.Fatalf("a removed barrier = %+v", s)
	}
}

// TestPollBarrierAtOnceAndWaitEnds: a Poll answers at once for after 0,
// for a revision the barrier passed, and for one ahead of ZooKeeper (the
// caller resets); otherwise at the end of its wait, unchanged. A barrier
// nobody joined can be polled, and a Join wakes the poll.
func TestPollBarrierAtOnceAndWaitEnds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	empty, err := e.b.Get(ctx, "b")
	if err != nil || empty.Rev == 0 || empty.Threshold != 0 {
		t.Fatalf("Get of a barrier nobody joined = %+v, %v", empty, err)
	}
	res := e.poll("b", empty.Rev, window(t, 30*time.Second))
	e.polling(t, "b", 1)
	s := e.join(t, "b", 2, "p0", e.grant(t, time.Minute))
	e.settle(t, "b", empty.Rev, <-res, s)
	for _, after := range []int64{0, empty.Rev, s.Rev + 1<<40} {
		start := time.Now()
		got, err := e.b.Poll(ctx, "b", after, window(t, time.Minute))
		if err != nil || got != s || time.Since(start) > time.Second {
			t.Fatalf("Poll after %d = %+v, %v after %v; want %+v at once", after, got, err, time.Since(start), s)
		}
	}
	start := time.Now()
	got, err := e.b.Poll(ctx, "b", s.Rev, window(t, 300*time.Millisecond))
	if took := time.Since(start); err != nil || got != s || took < 300*time.Millisecond {
		t.Fatalf("Poll with no change = %+v, %v after %v; want %+v after 300ms", got, err, took, s)
	}
}

// TestJoinedParticipationEndsWithItsLease: nothing holds a joined
// participant but its lease; when the lease ends, the participant goes
// and a Poll sees it go.
func TestJoinedParticipationEndsWithItsLease(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := e.grant(t, time.Minute)
	e.join(t, "gone", 3, "p0", e.grant(t, time.Minute))
	s := e.join(t, "gone", 3, "p1", l)
	res := e.poll("gone", s.Rev, window(t, 30*time.Second))
	e.polling(t, "gone", 1)
	if err := e.leases.Revoke(ctx, l); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != nil || r.s.Arrived != 1 || r.s.Released {
		t.Fatalf("Poll over the lease's end = %+v, %v", r.s, r.err)
	}
}

// TestManyPollsOneWatch: a thousand Polls of a barrier share one child
// watch, all answer when it releases, and leave no watch behind once the
// barrier is removed; Close ends the polls that wait.
func TestManyPollsOneWatch(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	la, lb := e.grant(t, time.Minute), e.grant(t, time.Minute)
	before := zktest.ChildWatches(t)
	s := e.join(t, "herd", 2, "a", la)
	const n = 1000
	until := window(t, time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := s
			for !got.Released {
				var err error
				if got, err = e.b.Poll(ctx, "herd", got.Rev, until); err != nil {
					errs <- err
					return
				}
				select {
				case <-until:
					errs <- errors.New("the wait ended before the release")
					return
				default:
				}
			}
			errs <- nil
		}()
	}
	e.polling(t, "herd", n)
	if got := zktest.ChildWatches(t); got != before+1 {
		t.Fatalf("%d polls: %d child watches, want %d (the feed's one)", n, got, before+1)
	}
	start := time.Now()
	if r := e.join(t, "herd", 2, "b", lb); !r.Released {
		t.Fatalf("the last Join = %+v", r)
	}
	wg.Wait()
	t.Logf("%d polls answered within %v of the Join's return", n, time.Since(start))
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for id, l := range map[string]string{"a": la, "b": lb} {
		if _, err := e.b.Leave(ctx, "herd", id, l); err != nil {
			t.Fatal(err)
		}
	}
	zktest.Eventually(t, 10*time.Second, func() bool { return zktest.ChildWatches(t) == before },
		"child watches %d, want %d once the barrier is gone", zktest.ChildWatches(t), before)

	// Close ends a poll that waits.
	s = e.join(t, "closing", 2, "a", la)
	res := e.poll("closing", s.Rev, window(t, time.Minute))
	e.polling(t, "closing", 1)
	e.b.Close()
	if r := <-res; !errors.Is(r.err, barrier.ErrClosed) {
		t.Fatalf("Poll after Close: %v", r.err)
	}
}
