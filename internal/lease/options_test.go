package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// TestOptionsRefuseBadValues: NewManager returns the error of a root or an
// option it cannot work with (a replica id with a "/" was written into
// znode paths; a zero sweep interval panicked in time.NewTicker).
func TestOptionsRefuseBadValues(t *testing.T) {
	sess, lay := zktest.Session(t)
	for name, tc := range map[string]struct {
		root string
		opt  lease.Option
	}{
		"relative root":         {"zkcoord", lease.WithSweepInterval(time.Second)},
		"root with a slash end": {lay.Root + "/", lease.WithSweepInterval(time.Second)},
		"empty replica id":      {lay.Root, lease.WithReplicaID("")},
		"replica id with /":     {lay.Root, lease.WithReplicaID("a/b")},
		"replica id ..":         {lay.Root, lease.WithReplicaID("..")},
		"zero sweep interval":   {lay.Root, lease.WithSweepInterval(0)},
		"zero horizon":          {lay.Root, lease.WithHorizon(0)},
		"negative horizon":      {lay.Root, lease.WithHorizon(-time.Second)},
		"nil peers":             {lay.Root, lease.WithPeers(nil)},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := lease.NewManager(sess, tc.root, zktest.Logger(t), tc.opt)
			if err == nil {
				m.Close()
				t.Fatal("NewManager accepted it")
			}
			t.Log(err)
		})
	}
	m, err := lease.NewManager(sess, lay.Root, zktest.Logger(t),
		lease.WithReplicaID("r1"), lease.WithSweepInterval(time.Millisecond), lease.WithHorizon(time.Millisecond))
	if err != nil {
		t.Fatalf("the smallest good values: %v", err)
	}
	defer m.Close()
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}
