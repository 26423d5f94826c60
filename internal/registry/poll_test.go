package registry_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/registry"
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
	v   registry.View
	err error
	at  time.Time
}

// poll runs a Poll in a goroutine; its result comes on the channel.
func poll(e env, group string, linearizable bool, after int64, until <-chan struct{}) <-chan polled {
	out := make(chan polled, 1)
	go func() {
		v, err := e.reg.Poll(context.Background(), group, "", linearizable, after, until)
		out <- polled{v, err, time.Now()}
	}()
	return out
}

// waiting reports when n Polls of group wait on e's cache.
func waiting(t *testing.T, e env, group string, n int) {
	t.Helper()
	zktest.Eventually(t, 10*time.Second, func() bool { return registry.Waiters(e.reg, group) == n },
		"%d polls of %s waiting, have %d", n, group, registry.Waiters(e.reg, group))
}

// TestPollWakesOnChange: a Poll past the current revision on one gateway
// answers as soon as a Register through another gateway reaches it, with
// the change.
func TestPollWakesOnChange(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	a, b := gateway(t, &lay), gateway(t, &lay)
	la := grant(t, a, time.Minute)
	register(t, a, "poll", "m0", "v", la)
	v, err := b.reg.Lookup(ctx, "poll", "", true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		res := poll(b, "poll", false, v.Rev, window(t, 30*time.Second))
		waiting(t, b, "poll", 1)
		m := register(t, a, "poll", "m"+string(rune('1'+i)), "v", la)
		registered := time.Now()
		r := <-res
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.v.Rev < m.ModRev || len(r.v.Members) != i+2 {
			t.Fatalf("Poll after %d = rev %d, %s; want rev >= %d with %s", v.Rev, r.v.Rev, ids(r.v.Members), m.ModRev, m.ID)
		}
		lag := r.at.Sub(registered)
		t.Logf("Poll answered %v after the Register returned", lag)
		if lag > time.Second {
			t.Fatalf("Poll answered %v after the change", lag)
		}
		v = r.v
	}
}

// TestPollWaitEnds: with no change, a Poll answers when its wait ends,
// with the revision it was given; a Poll with after 0, or after a
// revision the group has passed, answers at once.
func TestPollWaitEnds(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	e := gateway(t, &lay)
	first := register(t, e, "quiet", "m0", "v", "")
	v, err := e.reg.Lookup(ctx, "quiet", "", true)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := e.reg.Poll(ctx, "quiet", "", false, v.Rev, window(t, 300*time.Millisecond))
	if took := time.Since(start); err != nil || got.Rev != v.Rev || took < 300*time.Millisecond || took > 2*time.Second {
		t.Fatalf("Poll with no change = rev %d, %v after %v; want rev %d after 300ms", got.Rev, err, took, v.Rev)
	}
	for _, after := range []int64{0, first.ModRev - 1} {
		start = time.Now()
		got, err = e.reg.Poll(ctx, "quiet", "", false, after, window(t, time.Minute))
		if took := time.Since(start); err != nil || got.Rev != v.Rev || took > time.Second {
			t.Fatalf("Poll after %d = rev %d, %v after %v; want rev %d at once", after, got.Rev, err, took, v.Rev)
		}
	}
	// The answer of a Poll of one member, or of a group nobody registered in.
	if got, err := e.reg.Poll(ctx, "quiet", "m0", false, v.Rev, window(t, 50*time.Millisecond)); err != nil || len(got.Members) != 1 {
		t.Fatalf("Poll of one member = %v, %v", got, err)
	}
	if _, err := e.reg.Poll(ctx, "quiet", "nobody", false, v.Rev, window(t, 50*time.Millisecond)); !errors.Is(err, registry.ErrMemberNotFound) {
		t.Fatalf("Poll of an absent member: %v", err)
	}
	none, err := e.reg.Lookup(ctx, "never", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.reg.Poll(ctx, "never", "", false, none.Rev, window(t, 100*time.Millisecond)); err != nil || got.Rev != none.Rev || len(got.Members) != 0 {
		t.Fatalf("Poll of a group nobody registered in = %v, %v", got, err)
	}
}

// TestPollAhead: a revision ahead of the gateway (not one ZooKeeper has
// reached) answers at once with the current, lower revision, after one
// catch-up; a revision that another gateway answered, ahead of this one's
// cache or not, is waited past.
func TestPollAhead(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	a, b := gateway(t, &lay), gateway(t, &lay)
	register(t, a, "ahead", "m0", "v", "")
	v, err := b.reg.Lookup(ctx, "ahead", "", true)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := b.reg.Poll(ctx, "ahead", "", false, v.Rev+1<<40, window(t, time.Minute))
	if took := time.Since(start); err != nil || got.Rev != v.Rev || took > time.Second {
		t.Fatalf("Poll ahead = rev %d, %v after %v; want rev %d at once", got.Rev, err, took, v.Rev)
	}
	// A revision from gateway a, right after a write there: b may not
	// have it in its cache yet. It waits all the same.
	m := register(t, a, "ahead", "m1", "v", "")
	start = time.Now()
	got, err = b.reg.Poll(ctx, "ahead", "", false, m.ModRev, window(t, 300*time.Millisecond))
	if took := time.Since(start); err != nil || got.Rev < m.ModRev || took < 300*time.Millisecond {
		t.Fatalf("Poll after gateway a's revision %d = rev %d, %v after %v; want a wait of 300ms", m.ModRev, got.Rev, err, took)
	}
}

// TestPollLinearizable: a LINEARIZABLE Poll that a change wakes answers
// the group exactly at a revision at or after that change, and one whose
// revision another gateway has passed answers at once with every write
// made before the call.
func TestPollLinearizable(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	a, b := gateway(t, &lay), gateway(t, &lay)
	register(t, a, "lin-poll", "m0", "v", "")
	v, err := b.reg.Lookup(ctx, "lin-poll", "", true)
	if err != nil {
		t.Fatal(err)
	}
	res := poll(b, "lin-poll", true, v.Rev, window(t, 30*time.Second))
	waiting(t, b, "lin-poll", 1)
	var revs []int64
	for i := range 10 { // the first wakes the poll; the others race its catch-up
		revs = append(revs, register(t, a, "lin-poll", "n"+string(rune('0'+i)), "v", "").ModRev)
	}
	r := <-res
	if r.err != nil || r.v.Rev < revs[0] {
		t.Fatalf("Poll = rev %d, %v; want rev >= %d", r.v.Rev, r.err, revs[0])
	}
	in := 1
	for _, rev := range revs {
		if rev <= r.v.Rev {
			in++
		}
	}
	if len(r.v.Members) != in {
		t.Fatalf("linearizable Poll at rev %d has %s, want %d members", r.v.Rev, ids(r.v.Members), in)
	}
	// After the writes through a, b's cache may still lag them: the Poll
	// answers at once all the same, with every one of them.
	last := revs[len(revs)-1]
	got, err := b.reg.Poll(ctx, "lin-poll", "", true, v.Rev, window(t, time.Minute))
	if err != nil || got.Rev < last || len(got.Members) != 11 {
		t.Fatalf("linearizable Poll after the writes = rev %d (%s), %v; want rev >= %d", got.Rev, ids(got.Members), err, last)
	}
}

// TestManyPollsOneWatch: a thousand Polls of one group add no ZooKeeper
// watch to the cache's one, keep the cache from eviction, and all answer
// on one change.
func TestManyPollsOneWatch(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	e := gateway(t, &lay, registry.WithIdleEviction(20*time.Millisecond))
	register(t, e, "herd", "m0", "v", "")
	v, err := e.reg.Lookup(ctx, "herd", "", true)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	until := window(t, time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := e.reg.Poll(ctx, "herd", "", false, v.Rev, until)
			if err == nil && len(got.Members) != 2 {
				err = errors.New("answered without the change: " + ids(got.Members))
			}
			errs <- err
		}()
	}
	waiting(t, e, "herd", n)
	// Not an ordering: five idle-eviction periods pass, in which the
	// janitor would drop a cache that only polls use if they did not count.
	time.Sleep(100 * time.Millisecond)
	out := zktest.FourLetter(t, "wchp")
	if c := strings.Count(out, lay.Log("herd")+"\n"); c != 1 {
		t.Fatalf("%s watched %d times:\n%s", lay.Log("herd"), c, out)
	}
	if c := strings.Count(out, lay.Group("herd")); c != 1 {
		t.Fatalf("%d watched paths under %s, want the journal's only:\n%s", c, lay.Group("herd"), out)
	}
	sessions := 0
	for _, l := range strings.Split(out[strings.Index(out, lay.Log("herd")+"\n"):], "\n")[1:] {
		if !strings.HasPrefix(strings.TrimSpace(l), "0x") {
			break
		}
		sessions++
	}
	if sessions != 1 {
		t.Fatalf("%d sessions watch %s, want 1:\n%s", sessions, lay.Log("herd"), out)
	}
	start := time.Now()
	register(t, e, "herd", "m1", "v", "")
	wg.Wait()
	t.Logf("%d polls answered within %v of the Register's return", n, time.Since(start))
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
