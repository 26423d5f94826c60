package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

func TestMain(m *testing.M) { zktest.Main(m) }

func newManager(t *testing.T) (*lease.Manager, *zkx.Session, zkx.Layout) {
	sess, lay := zktest.Session(t)
	m := lease.NewManager(sess, lay, zktest.Logger(t))
	// "thing" refs name a znode under the root to delete.
	m.Handle("thing", func(key string, parts []string) ([]any, error) {
		return []any{&zk.DeleteRequest{Path: lay.Root + "/" + parts[0], Version: -1}}, nil
	})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, sess, lay
}

func exists(t *testing.T, sess *zkx.Session, p string) bool {
	ok, _, err := sess.Conn().Exists(p)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func attachThing(t *testing.T, m *lease.Manager, lay zkx.Layout, id, name string) error {
	_, err := m.Attach(context.Background(), id, lease.Ref("thing", name),
		&zk.CreateRequest{Path: lay.Root + "/" + name, Acl: zkx.ACL})
	return err
}

func TestExpiryRemovesOwnedNodes(t *testing.T) {
	ctx := context.Background()
	m, sess, lay := newManager(t)
	l, err := m.Grant(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := attachThing(t, m, lay, l.ID, "a"); err != nil {
		t.Fatal(err)
	}
	if !exists(t, sess, lay.Root+"/a") || !exists(t, sess, lay.Lease(l.Key)) {
		t.Fatal("owned node or lease record missing after attach")
	}
	start := time.Now()
	zktest.Eventually(t, 2*time.Second, func() bool { return !exists(t, sess, lay.Root+"/a") }, "owned node not removed")
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Fatalf("node removed after %v, before the 1s TTL", took)
	}
	zktest.Eventually(t, time.Second, func() bool { return !exists(t, sess, lay.Lease(l.Key)) }, "lease record not removed")
	if _, err := m.KeepAlive(ctx, l.ID); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("KeepAlive after expiry: %v, want ErrNotFound", err)
	}
	if err := attachThing(t, m, lay, l.ID, "b"); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("Attach after expiry: %v, want ErrNotFound", err)
	}
}

func TestKeepAliveExtends(t *testing.T) {
	ctx := context.Background()
	m, sess, lay := newManager(t)
	l, err := m.Grant(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := attachThing(t, m, lay, l.ID, "a"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		got, err := m.KeepAlive(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.TTL != time.Second || time.Until(got.ExpiresAt) < 900*time.Millisecond {
			t.Fatalf("KeepAlive returned %+v", got)
		}
		time.Sleep(200 * time.Millisecond) // a client's keepalive period
	}
	if !exists(t, sess, lay.Root+"/a") {
		t.Fatal("node removed while kept alive")
	}
}

func TestRevoke(t *testing.T) {
	ctx := context.Background()
	m, sess, lay := newManager(t)
	l, _ := m.Grant(ctx, time.Minute)
	for _, n := range []string{"a", "b", "c"} {
		if err := attachThing(t, m, lay, l.ID, n); err != nil {
			t.Fatal(err)
		}
	}
	refs, err := m.Owned(ctx, l.ID)
	if err != nil || len(refs) != 3 {
		t.Fatalf("Owned = %v, %v", refs, err)
	}
	// One node vanished behind the manager's back: revoke still completes.
	if err := sess.Conn().Delete(lay.Root+"/b", -1); err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{lay.Root + "/a", lay.Root + "/c", lay.Lease(l.Key)} {
		if exists(t, sess, p) {
			t.Fatalf("%s still exists after revoke", p)
		}
	}
	if err := m.Revoke(ctx, l.ID); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("second Revoke: %v", err)
	}
}

func TestWrongSecretRefused(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newManager(t)
	l, _ := m.Grant(ctx, time.Minute)
	bad := []byte(l.ID)
	bad[0] ^= 1
	if _, err := m.KeepAlive(ctx, string(bad)); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("KeepAlive with a wrong id: %v", err)
	}
}

func TestAdoptAfterRestart(t *testing.T) {
	ctx := context.Background()
	sess, lay := zktest.Session(t)
	m1 := lease.NewManager(sess, lay, zktest.Logger(t))
	if err := m1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	l, _ := m1.Grant(ctx, 500*time.Millisecond)
	m1.Close()
	sess.Close() // the owner ephemeral goes with the session

	sess2, _ := zktest.Session(t)
	m2 := lease.NewManager(sess2, lay, zktest.Logger(t))
	if err := m2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if got, err := m2.KeepAlive(ctx, l.ID); err != nil || got.TTL != 500*time.Millisecond {
		t.Fatalf("KeepAlive on the new gateway: %+v, %v", got, err)
	}
	zktest.Eventually(t, 2*time.Second, func() bool { return !exists(t, sess2, lay.Lease(l.Key)) }, "adopted lease not expired")
}
