package election

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

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
	leader *LeaderInfo
	rev    int64
	err    error
	at     time.Time
}

func (g *gateway) poll(election string, after int64, until <-chan struct{}) <-chan polled {
	out := make(chan polled, 1)
	go func() {
		l, rev, err := g.el.Poll(context.Background(), election, after, until)
		out <- polled{l, rev, err, time.Now()}
	}()
	return out
}

// polling waits until n Polls (or observers) share the loaded feed of
// election, and returns the feed's revision.
func (g *gateway) polling(t *testing.T, election string, n int) int64 {
	t.Helper()
	var rev int64
	zktest.Eventually(t, wait, func() bool {
		g.el.feeds.mu.Lock()
		f := g.el.feeds.byName[election]
		refs := 0
		if f != nil {
			refs = f.refs
		}
		g.el.feeds.mu.Unlock()
		if f == nil || refs < n {
			return false
		}
		v, _ := f.latest()
		rev = v.rev
		return v.loaded
	}, "%d polls of %s", n, election)
	return rev
}

func candidateOf(l *LeaderInfo) string {
	if l == nil {
		return ""
	}
	return l.Candidate
}

// TestPollLeader: a Poll waits past candidates queueing behind the leader,
// and answers as soon as the leader resigns, or publishes a new value.
func TestPollLeader(t *testing.T) {
	g := setup(t)
	la, lb := g.grant(t, time.Minute), g.grant(t, time.Minute)
	a := g.campaign(t, "e", "a", la.ID)
	ua := a.expect(t, Elected)
	rev := g.leader(t, ua.Candidate)

	// A candidate queues: the revision moves, the leader does not.
	start := time.Now()
	res := g.poll("e", rev, window(t, 500*time.Millisecond))
	g.polling(t, "e", 1)
	b := g.campaign(t, "e", "b", lb.ID)
	b.expect(t, Queued)
	r := <-res
	if took := r.at.Sub(start); r.err != nil || candidateOf(r.leader) != ua.Candidate || took < 500*time.Millisecond || r.rev <= rev {
		t.Fatalf("Poll over a queue change = %q at %d, %v after %v; want %q at a revision after %d, after the 500ms wait",
			candidateOf(r.leader), r.rev, r.err, took, ua.Candidate, rev)
	}
	rev = r.rev

	// The leader resigns: the Poll answers with its successor.
	res = g.poll("e", rev, window(t, 30*time.Second))
	g.polling(t, "e", 1)
	if _, _, err := g.el.Resign(context.Background(), "e", la.ID); err != nil {
		t.Fatal(err)
	}
	resigned := time.Now()
	ub := b.expect(t, Elected)
	r = <-res
	if r.err != nil || candidateOf(r.leader) != ub.Candidate || r.rev <= rev || r.at.Sub(resigned) > time.Second {
		t.Fatalf("Poll over a resign = %q at %d, %v, %v after the Resign; want %q after %d", candidateOf(r.leader), r.rev, r.err,
			r.at.Sub(resigned), ub.Candidate, rev)
	}
	t.Logf("Poll answered %v after the Resign returned", r.at.Sub(resigned))
	rev = r.rev

	// The leader publishes a new value.
	res = g.poll("e", rev, window(t, 30*time.Second))
	g.polling(t, "e", 1)
	b2 := g.campaign(t, "e", "b2", lb.ID)
	b2.expect(t, Elected)
	r = <-res
	if r.err != nil || r.leader == nil || r.leader.Value != "b2" || r.rev <= rev {
		t.Fatalf("Poll over a new value = %+v at %d, %v; want value b2 after %d", r.leader, r.rev, r.err, rev)
	}
	if got := g.leader(t, ub.Candidate); got != r.rev {
		t.Fatalf("Leader's revision %d, the Poll's %d", got, r.rev)
	}
}

// TestPollLeaderAtOnce: a Poll answers at once for after 0, for a revision
// the leader changed after, and for one ahead of ZooKeeper (the caller
// resets to the lower revision).
func TestPollLeaderAtOnce(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	l := g.grant(t, time.Minute)
	c := g.campaign(t, "e", "a", l.ID)
	u := c.expect(t, Elected)
	rev := g.leader(t, u.Candidate)
	for _, after := range []int64{0, u.Token - 1, rev + 1<<40} {
		start := time.Now()
		got, gotRev, err := g.el.Poll(ctx, "e", after, window(t, time.Minute))
		if err != nil || candidateOf(got) != u.Candidate || gotRev != rev || time.Since(start) > time.Second {
			t.Fatalf("Poll after %d = %q at %d, %v after %v; want %q at %d at once", after, candidateOf(got), gotRev, err,
				time.Since(start), u.Candidate, rev)
		}
	}
	// No leader at all: the revision is the election's.
	if _, _, err := g.el.Resign(ctx, "e", l.ID); err != nil {
		t.Fatal(err)
	}
	c.expect(t, Resigned)
	rev = g.leader(t, "")
	got, gotRev, err := g.el.Poll(ctx, "e", rev, window(t, 100*time.Millisecond))
	if err != nil || got != nil || gotRev != rev {
		t.Fatalf("Poll of an election without candidates = %+v at %d, %v; want none at %d", got, gotRev, err, rev)
	}
}

// TestManyPollsShareTheFeed: polls of an election share the gateway's one
// child watch of it, and one change of leader answers them all; Close
// ends the polls that wait.
func TestManyPollsShareTheFeed(t *testing.T) {
	g := setup(t)
	la, lb := g.grant(t, time.Minute), g.grant(t, time.Minute)
	ua := g.campaign(t, "e", "a", la.ID).expect(t, Elected)
	b := g.campaign(t, "e", "b", lb.ID)
	b.expect(t, Queued)
	rev := g.leader(t, ua.Candidate)
	before := childWatches(t)
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	until := window(t, time.Minute)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, _, err := g.el.Poll(context.Background(), "e", rev, until)
			if err == nil && candidateOf(l) == ua.Candidate {
				err = errors.New("answered the old leader")
			}
			errs <- err
		}()
	}
	g.polling(t, "e", n)
	if got := childWatches(t); got != before+1 {
		t.Fatalf("%d polls: %d child watches, want %d (the feed's one)", n, got, before+1)
	}
	if _, _, err := g.el.Resign(context.Background(), "e", la.ID); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// Close ends a poll that waits.
	rev = g.leader(t, b.expect(t, Elected).Candidate)
	res := g.poll("e", rev, window(t, time.Minute))
	g.polling(t, "e", 1)
	g.el.Close()
	if r := <-res; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("Poll after Close: %v", r.err)
	}
}

// TestPollNewElection: a Poll of an election nobody entered waits (the
// feed's creating the election's directory is no change of leader), and
// answers the first leader.
func TestPollNewElection(t *testing.T) {
	g := setup(t)
	_, rev, err := g.el.Leader(context.Background(), "fresh")
	if err != nil || rev == 0 {
		t.Fatalf("Leader of an election nobody entered: rev %d, %v", rev, err)
	}
	res := g.poll("fresh", rev, window(t, 30*time.Second))
	g.polling(t, "fresh", 1)
	l := g.grant(t, time.Minute)
	u := g.campaign(t, "fresh", "first", l.ID).expect(t, Elected)
	if r := <-res; r.err != nil || candidateOf(r.leader) != u.Candidate || r.rev <= rev {
		t.Fatalf("Poll of a new election = %q at %d, %v; want %q", candidateOf(r.leader), r.rev, r.err, u.Candidate)
	}
}
