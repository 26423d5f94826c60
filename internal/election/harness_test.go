package election

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Test harness: a gateway's recipes on a session, campaigns and observers
// whose reports arrive on channels, watch counts from ZooKeeper's
// four-letter words (the TCP proxy that cuts a session off is zktest.Proxy).

const wait = 5 * time.Second

// gateway is what a zkcoord gateway holds: a session, leases, elections.
type gateway struct {
	sess   *zkx.Session
	lay    zktest.Layout
	leases *lease.Manager
	el     *Elections
}

func newGateway(t *testing.T, sess *zkx.Session, lay zktest.Layout) *gateway {
	t.Helper()
	leases, err := lease.NewManager(sess, lay.Root, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	el, err := New(sess, lay.Root, leases, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := leases.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	liveManagers.Add(1)
	t.Cleanup(func() { leases.Close(); liveManagers.Add(-1) })
	t.Cleanup(el.Close) // runs first
	return &gateway{sess: sess, lay: lay, leases: leases, el: el}
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

// stamped is an update with the time Campaign reported it.
type stamped struct {
	Update
	At time.Time
}

// campaign is a running Campaign and what it reported.
type campaign struct {
	updates chan stamped
	done    chan error
	cancel  context.CancelFunc
}

func (g *gateway) campaign(t *testing.T, election, value, leaseID string) *campaign {
	ctx, cancel := context.WithCancel(context.Background())
	c := &campaign{updates: make(chan stamped, 64), done: make(chan error, 1), cancel: cancel}
	go func() {
		c.done <- g.el.Campaign(ctx, election, value, leaseID, func(u Update) error {
			select {
			case c.updates <- stamped{u, time.Now()}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(func() { cancel(); c.done <- <-c.done })
	return c
}

// next returns the next update, failing the test if none comes in time.
func (c *campaign) next(t *testing.T) stamped {
	t.Helper()
	select {
	case u := <-c.updates:
		return u
	case err := <-c.done:
		c.done <- err
		select { // reported before it returned
		case u := <-c.updates:
			return u
		default:
		}
		t.Fatalf("campaign ended: %v", err)
	case <-time.After(wait):
		t.Fatal("no campaign update")
	}
	return stamped{}
}

// expect returns the next update and checks its status.
func (c *campaign) expect(t *testing.T, s Status) stamped {
	t.Helper()
	u := c.next(t)
	if u.Status != s {
		t.Fatalf("campaign reported %v (%+v), want %v", u.Status, u.Update, s)
	}
	return u
}

// end waits for Campaign to return.
func (c *campaign) end(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(wait):
		t.Fatal("campaign did not return")
		return nil
	}
}

// quiet checks that nothing was reported.
func (c *campaign) quiet(t *testing.T) {
	t.Helper()
	select {
	case u := <-c.updates:
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

// liveManagers counts the lease managers open in this test binary: each
// holds one child watch, on the replicas directory.
var liveManagers atomic.Int32

// watches parses `wchp` (data and exists watches): watched path → sessions
// watching it.
func watches(t *testing.T) map[string][]string {
	out := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(zktest.FourLetter(t, "wchp"), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
		case line[0] == '\t' || line[0] == ' ':
			out[cur] = append(out[cur], strings.TrimSpace(line))
		default:
			cur = line
			out[cur] = out[cur][:0:0]
		}
	}
	return out
}

// observer collects what Observe reports.
type observer struct {
	ch   chan *LeaderInfo
	revs chan int64
	done chan error
}

func (g *gateway) observe(t *testing.T, election string) *observer {
	ctx, cancel := context.WithCancel(context.Background())
	o := &observer{ch: make(chan *LeaderInfo, 64), revs: make(chan int64, 64), done: make(chan error, 1)}
	go func() {
		o.done <- g.el.Observe(ctx, election, func(l *LeaderInfo, rev int64) error {
			o.ch <- l
			o.revs <- rev
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-o.done })
	return o
}

// expect waits for the report of candidate (""; no leader).
func (o *observer) expect(t *testing.T, candidate string) int64 {
	t.Helper()
	select {
	case l := <-o.ch:
		rev := <-o.revs
		if got := ""; l != nil {
			got = l.Candidate
			if got != candidate {
				t.Fatalf("observed leader %q, want %q", got, candidate)
			}
		} else if candidate != "" {
			t.Fatalf("observed no leader, want %q", candidate)
		}
		return rev
	case <-time.After(wait):
		t.Fatalf("no observation (want %q)", candidate)
		return 0
	}
}

func (g *gateway) leader(t *testing.T, want string) int64 {
	t.Helper()
	l, rev, err := g.el.Leader(context.Background(), "e")
	if err != nil {
		t.Fatal(err)
	}
	if got := ""; l != nil {
		got = l.Candidate
		if got != want {
			t.Fatalf("Leader %q, want %q", got, want)
		}
	} else if want != "" {
		t.Fatalf("no Leader, want %q", want)
	}
	return rev
}
