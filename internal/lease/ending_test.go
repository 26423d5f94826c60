package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// TestAdoptionOfLeaseBeingReleased: an adoption on the replica where the
// lease has just ended (its expiry fired, its release not yet done) finds
// the replica's own owner node, which is the release's fence, not a stale
// node: it answers NOT_FOUND and leaves the node and the record alone, so
// the release then deletes everything. Taking the node as stale would
// delete it and adopt the lease again (a new record version), and the
// release, fenced by the old version, would leave what the lease owns in
// place. In a running replica this needs the lease's timer to fire between
// an adoption and the next look of the call that made it (hold), which a
// test cannot order from outside; here the expiry's first step (the entry
// marked ended) is taken by hand before the adoption.
func TestAdoptionOfLeaseBeingReleased(t *testing.T) {
	ctx := context.Background()
	sess, lay := zktest.Session(t)
	m, err := NewManager(sess, lay.Root, zktest.Logger(t), WithReplicaID("r1"))
	if err != nil {
		t.Fatal(err)
	}
	m.Handle("thing", func(_ context.Context, key string, parts []string) ([]any, error) {
		return []any{&zk.DeleteRequest{Path: lay.Root + "/" + parts[0], Version: -1}}, nil
	})
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	l, err := m.Grant(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Attach(ctx, l.ID, Ref("thing", "a"), &zk.CreateRequest{Path: lay.Root + "/a", Acl: zk.WorldACL(zk.PermAll)}); err != nil {
		t.Fatal(err)
	}

	// The expiry's first step: the entry ended, its release to come.
	m.mu.Lock()
	e := m.leases[l.Key]
	e.ended = true
	e.timer.Stop()
	m.mu.Unlock()
	_, before, err := sess.Conn().Get(m.lay.Lease(l.Key))
	if err != nil {
		t.Fatal(err)
	}
	_, owner, err := sess.Conn().Get(m.lay.Owner(l.Key))
	if err != nil {
		t.Fatal(err)
	}

	if got, err := m.adoptNow(ctx, l.Key, l.ID, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("adoption of a lease ended here and being released: %+v, %v; want %v", got, err, ErrNotFound)
	}
	if _, st, err := sess.Conn().Get(m.lay.Owner(l.Key)); err != nil || st.Czxid != owner.Czxid {
		t.Fatalf("after the adoption, the release's owner node: %+v, %v; want it kept (created at zxid %d)", st, err, owner.Czxid)
	}
	if _, after, err := sess.Conn().Get(m.lay.Lease(l.Key)); err != nil || after.Version != before.Version {
		t.Fatalf("after the adoption, the record's version %v (%v), want %d: the adoption moved the release's fence", after, err, before.Version)
	}

	if err := m.release(ctx, e); err != nil {
		t.Fatalf("release after the adoption: %v", err)
	}
	for _, p := range []string{lay.Root + "/a", m.lay.Lease(l.Key)} {
		if ok, _, err := sess.Conn().Exists(p); err != nil || ok {
			t.Fatalf("after the release, %s exists: %v, %v; want it deleted", p, ok, err)
		}
	}
}
