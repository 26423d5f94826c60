package lease_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestCallsHonourDeadlineWhileZooKeeperStalls: while every byte to
// ZooKeeper is stalled (connections open, nothing answers; the session
// timeout is long, so go-zookeeper does not notice), each Manager call that
// needs ZooKeeper returns within its deadline + 50 ms, with the deadline's
// error (Revoke may instead report the lease ended, its removal going on in
// the background). A keepalive within the lease's horizon needs no
// ZooKeeper and is answered. Once ZooKeeper answers again, the Manager
// carries on. Before contexts reached the ZooKeeper calls, each of these
// waited for ZooKeeper (here: until the stall ended).
func TestCallsHonourDeadlineWhileZooKeeperStalls(t *testing.T) {
	ctx := context.Background()
	px := zktest.NewProxy(t, zktest.Addr(t))
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sess, err := zkx.Dial(dctx, px.Addr(), zkx.WithSessionTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	lay := zktest.Layout{Root: zktest.Root(t)}
	if err := zkx.EnsurePath(sess.Conn(), lay.Root, sess.ACL()); err != nil {
		t.Fatal(err)
	}
	const horizon = 300 * time.Millisecond
	m := start(t, sess, lay, "r1", lease.WithHorizon(horizon))
	moving, err := m.Grant(ctx, time.Minute) // kept alive past its horizon: needs a write
	if err != nil {
		t.Fatal(err)
	}
	within, _ := m.Grant(ctx, time.Minute)
	attached, _ := m.Grant(ctx, time.Minute)
	if err := attachThing(t, m, lay, attached.ID, "held"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(horizon) // moving's next keepalive must move its horizon
	if _, err := m.KeepAlive(ctx, within.ID); err != nil {
		t.Fatal(err)
	}

	px.Stall()
	if _, err := m.KeepAlive(ctx, within.ID); err != nil {
		t.Errorf("KeepAlive within the horizon while ZooKeeper stalls: %v", err)
	}
	unknown := strings.Repeat("0", 32)
	calls := []struct {
		name     string
		call     func(ctx context.Context) error
		mayPass  bool // may return nil before the deadline
		deadline bool // must return the deadline's error
	}{
		{"Grant", func(ctx context.Context) error { _, err := m.Grant(ctx, time.Minute); return err }, false, true},
		{"KeepAlive past the horizon", func(ctx context.Context) error { _, err := m.KeepAlive(ctx, moving.ID); return err }, false, true},
		{"KeepAlive of a lease held nowhere", func(ctx context.Context) error { _, err := m.KeepAlive(ctx, unknown); return err }, false, true},
		{"Owned", func(ctx context.Context) error { _, err := m.Owned(ctx, attached.ID); return err }, false, true},
		{"Attach", func(ctx context.Context) error {
			_, err := m.Attach(ctx, attached.ID, lease.Ref("thing", "new"), &zk.CreateRequest{Path: lay.Root + "/new", Acl: zk.WorldACL(zk.PermAll)})
			return err
		}, false, true},
		{"Detach", func(ctx context.Context) error {
			_, err := m.Detach(ctx, attached.ID, lease.Ref("thing", "held"), &zk.DeleteRequest{Path: lay.Root + "/held", Version: -1})
			return err
		}, false, true},
		{"Handoff", func(ctx context.Context) error { return m.Handoff(ctx, within.ID) }, false, true},
		{"Revoke", func(ctx context.Context) error { return m.Revoke(ctx, moving.ID) }, true, true},
		{"Start of another Manager", func(ctx context.Context) error {
			m2, err := lease.NewManager(sess, lay.Root, zktest.Logger(t), lease.WithReplicaID("r2"))
			if err != nil {
				return err
			}
			return m2.Start(ctx)
		}, false, true},
	}
	const deadline = 200 * time.Millisecond
	for _, c := range calls {
		cctx, cancel := context.WithTimeout(ctx, deadline)
		began := time.Now()
		err := c.call(cctx)
		took := time.Since(began)
		cancel()
		if took > deadline+50*time.Millisecond {
			t.Errorf("%s while ZooKeeper stalls returned after %v (deadline %v): %v", c.name, took, deadline, err)
		}
		switch {
		case err == nil && c.mayPass:
		case c.deadline && !errors.Is(err, context.DeadlineExceeded):
			t.Errorf("%s while ZooKeeper stalls: %v, want the deadline's error", c.name, err)
		}
		t.Logf("%s: %v after %v", c.name, err, took.Round(time.Millisecond))
	}

	px.Restore()
	zktest.Eventually(t, 10*time.Second, func() bool {
		_, err := m.Grant(ctx, time.Minute)
		return err == nil
	}, "Grant after the stall")
	if _, err := m.KeepAlive(ctx, attached.ID); err != nil {
		t.Errorf("KeepAlive after the stall: %v", err)
	}
}
