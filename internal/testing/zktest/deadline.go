package zktest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Slack is how late past its deadline a call may return while ZooKeeper
// stalls (issue 10: every blocking call returns within its deadline + 50 ms).
const Slack = 50 * time.Millisecond

// DeadlineCall is one call of CheckDeadlines.
type DeadlineCall struct {
	Name string
	Call func(ctx context.Context) error
	// MayPass: the call may succeed before its deadline (a documented
	// success, e.g. work that goes on in the background).
	MayPass bool
}

// CheckDeadlines runs each call in turn with a context whose deadline is d
// away, while ZooKeeper stalls (the test stalled it): each must return
// within d + Slack with the deadline's error (or nil, when MayPass). A call
// still running d + 500 ms after it began is reported and left running, so
// that one regression does not hold up the others (nor keep the stall long
// enough for the session to notice it); wait waits for those, with a
// bound: call it once ZooKeeper answers again.
func CheckDeadlines(t *testing.T, d time.Duration, calls []DeadlineCall) (wait func()) {
	t.Helper()
	var stragglers []chan error
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		began := time.Now()
		done := make(chan error, 1)
		go func() {
			defer cancel()
			done <- c.Call(ctx)
		}()
		select {
		case err := <-done:
			took := time.Since(began)
			if took > d+Slack {
				t.Errorf("%s while ZooKeeper stalls returned after %v (deadline %v): %v", c.Name, took.Round(time.Millisecond), d, err)
			}
			if !(err == nil && c.MayPass) && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s while ZooKeeper stalls: %v, want the deadline's error", c.Name, err)
			}
			t.Logf("%s: %v after %v", c.Name, err, took.Round(time.Millisecond))
		case <-time.After(d + 500*time.Millisecond):
			t.Errorf("%s while ZooKeeper stalls still running %v after it began (deadline %v)", c.Name, time.Since(began).Round(time.Millisecond), d)
			stragglers = append(stragglers, done)
		}
	}
	return func() {
		t.Helper()
		for _, done := range stragglers {
			select {
			case err := <-done:
				t.Logf("a late call returned %v once ZooKeeper answered", err)
			case <-time.After(3 * time.Minute):
				t.Fatal("a late call still running 3 min after ZooKeeper answered again")
			}
		}
	}
}

// SessionThrough dials ZooKeeper through px (which the test can stall or
// cut) and returns the session, closed at cleanup, and a Layout rooted at
// a fresh root. A test that stalls ZooKeeper for a while passes a long
// zkx.WithSessionTimeout, so that go-zookeeper does not notice.
func SessionThrough(tb testing.TB, px *Proxy, opt ...zkx.Option) (*zkx.Session, Layout) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := zkx.Dial(ctx, px.Addr(), opt...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	lay := Layout{Root: Root(tb)}
	if err := zkx.EnsurePath(s.Conn(), lay.Root, s.ACL()); err != nil {
		tb.Fatal(err)
	}
	return s, lay
}
