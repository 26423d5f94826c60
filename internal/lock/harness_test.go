package lock

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Test harness: a gateway's recipes on a session, acquires whose reports
// arrive on channels, watch counts from ZooKeeper's four-letter words (the
// TCP proxy that cuts a session off is zktest.Proxy).

func TestMain(m *testing.M) { zktest.Main(m) }

const wait = 5 * time.Second

// gateway is what a zkcoord gateway holds: a session, leases, locks.
type gateway struct {
	sess   *zkx.Session
	lay    zktest.Layout
	leases *lease.Manager
	locks  *Locks
}

func newGateway(t *testing.T, sess *zkx.Session, lay zktest.Layout) *gateway {
	t.Helper()
	leases, err := lease.NewManager(sess, lay.Root, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(sess, lay.Root, leases, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := leases.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(leases.Close)
	t.Cleanup(l.Close) // runs first
	return &gateway{sess: sess, lay: lay, leases: leases, locks: l}
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

// stamped is an update with the time Acquire reported it.
type stamped struct {
	Update
	At time.Time
}

// acquirer is a running Acquire and what it reported.
type acquirer struct {
	updates chan stamped
	done    chan error
	hold    chan string
	cancel  context.CancelFunc
}

func (g *gateway) acquire(t *testing.T, req Request) *acquirer {
	ctx, cancel := context.WithCancel(context.Background())
	a := &acquirer{updates: make(chan stamped, 64), done: make(chan error, 1), hold: make(chan string, 1), cancel: cancel}
	go func() {
		hold, err := g.locks.Acquire(ctx, req, func(u Update) error {
			select {
			case a.updates <- stamped{u, time.Now()}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		a.hold <- hold
		a.done <- err
	}()
	t.Cleanup(func() { cancel(); a.done <- <-a.done })
	return a
}

// next returns the next update, failing the test if none comes in time.
func (a *acquirer) next(t *testing.T) stamped {
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
func (a *acquirer) expect(t *testing.T, s Status) stamped {
	t.Helper()
	u := a.next(t)
	if u.Status != s {
		t.Fatalf("acquire reported %v (%+v), want %v", u.Status, u.Update, s)
	}
	return u
}

// end waits for Acquire to return.
func (a *acquirer) end(t *testing.T) error {
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
func (a *acquirer) quiet(t *testing.T) {
	t.Helper()
	select {
	case u := <-a.updates:
		t.Fatalf("unexpected update %+v", u.Update)
	default:
	}
}

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

// children lists a lock's znodes directly.
func (g *gateway) children(t *testing.T, name string) []string {
	t.Helper()
	kids, _, err := g.sess.Conn().Children(g.lay.Lock(name))
	if err != nil {
		t.Fatal(err)
	}
	return kids
}
