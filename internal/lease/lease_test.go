package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

func TestMain(m *testing.M) { zktest.Main(m) }

func newManager(t *testing.T) (*lease.Manager, *zkx.Session, zktest.Layout) {
	sess, lay := zktest.Session(t)
	m, err := lease.NewManager(sess, lay.Root, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	// "thing" refs name a znode under the root to delete.
	m.Handle("thing", func(_ context.Context, key string, parts []string) ([]any, error) {
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

func attachThing(t *testing.T, m *lease.Manager, lay zktest.Layout, id, name string) error {
	_, err := m.Attach(context.Background(), id, lease.Ref("thing", name),
		&zk.CreateRequest{Path: lay.Root + "/" + name, Acl: zk.WorldACL(zk.PermAll)})
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

// TestDrainHandsOver: a draining replica hands its leases off with their
// expiry; another replica adopts them, keepalives go on there, and a lease
// no one keeps alive still ends on time.
func TestDrainHandsOver(t *testing.T) {
	ctx := context.Background()
	sess1, lay := zktest.Session(t)
	m1 := start(t, sess1, lay, "r1")
	kept, _ := m1.Grant(ctx, time.Second)
	dropped, _ := m1.Grant(ctx, time.Second)
	if err := attachThing(t, m1, lay, dropped.ID, "dropped"); err != nil {
		t.Fatal(err)
	}
	if n, err := m1.Drain(ctx); err != nil || n != 2 {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	if _, err := m1.Grant(ctx, time.Second); !errors.Is(err, lease.ErrDraining) {
		t.Fatalf("Grant while draining: %v", err)
	}
	drained := time.Now()
	sess2, _ := zktest.Session(t)
	m2 := start(t, sess2, lay, "r2")
	if _, err := m2.KeepAlive(ctx, kept.ID); err != nil {
		t.Fatalf("KeepAlive on the other replica: %v", err)
	}
	// dropped was adopted by m2's startup sweep with its recorded expiry.
	zktest.Eventually(t, 2*time.Second, func() bool { return !exists(t, sess2, lay.Root+"/dropped") }, "handed-off lease not expired")
	if took := time.Since(drained); took > dropped.TTL+time.Second {
		t.Fatalf("handed-off lease ended %v after the drain (TTL %v)", took, dropped.TTL)
	}
	if !exists(t, sess2, lay.Lease(kept.Key)) {
		t.Fatal("lease kept alive across the drain was removed")
	}
}

// TestOrphanAfterReplicaDeath: a replica's session ends without a drain;
// another replica adopts its leases and keeps each until its record's
// horizon, the latest expiry the dead owner may have promised: never before
// its TTL after the last renewal, at most a horizon after that. A client
// that goes on keeping a lease alive keeps it.
func TestOrphanAfterReplicaDeath(t *testing.T) {
	ctx := context.Background()
	sess1, lay := zktest.Session(t) // session timeout 4s
	m1 := start(t, sess1, lay, "r1", lease.WithHorizon(time.Second))
	l, _ := m1.Grant(ctx, 2*time.Second)
	alive, _ := m1.Grant(ctx, 10*time.Second)
	if err := attachThing(t, m1, lay, l.ID, "orphan"); err != nil {
		t.Fatal(err)
	}
	renewed := time.Now()
	l, err := m1.KeepAlive(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	m1.Close()
	sess1.Close() // the replica dies: its owner nodes go
	sess2, _ := zktest.Session(t)
	gone := zktest.AwaitGone(t, sess2, lay.Root+"/orphan")
	m2 := start(t, sess2, lay, "r2")
	ended := <-gone
	t.Logf("orphaned lease (TTL 2s, horizon 1s) ended %v after its last renewal", ended.Sub(renewed))
	if ended.Before(l.ExpiresAt) {
		t.Fatalf("orphan ended %v before the expiry its last keepalive answered", l.ExpiresAt.Sub(ended))
	}
	if late := ended.Sub(renewed.Add(l.TTL + time.Second + 500*time.Millisecond)); late > 0 {
		t.Fatalf("orphan ended %v after its TTL + horizon + 0.5 s", late)
	}
	if got, err := m2.KeepAlive(ctx, alive.ID); err != nil || got.TTL != 10*time.Second {
		t.Fatalf("KeepAlive of an orphan a client keeps alive: %+v, %v", got, err)
	}
}

// peers connects managers in a test as the gRPC peer service does.
type peers map[string]*lease.Manager

func (p peers) KeepAlive(ctx context.Context, replica, id string) (lease.Lease, error) {
	return p[replica].KeepAliveLocal(ctx, id)
}

func (p peers) Handoff(ctx context.Context, replica, id string) error {
	return p[replica].Handoff(ctx, id)
}

func (p peers) Get(ctx context.Context, replica, id string) (lease.Lease, error) {
	return p[replica].Get(ctx, id)
}

// TestForwardAndTakeOver: a keepalive reaching a replica that does not own
// the lease is forwarded to the owner (ownership stays); attaching through
// it takes the lease over.
// twoReplicas starts replicas r1 and r2 on sessions of their own, each the
// other's peer; it returns them, r1's session and the layout.
func twoReplicas(t *testing.T) (m1, m2 *lease.Manager, sess1 *zkx.Session, lay zktest.Layout) {
	sess1, lay = zktest.Session(t)
	sess2, _ := zktest.Session(t)
	p := peers{}
	m1 = start(t, sess1, lay, "r1", lease.WithPeers(p))
	m2 = start(t, sess2, lay, "r2", lease.WithPeers(p))
	p["r1"], p["r2"] = m1, m2
	return m1, m2, sess1, lay
}

func TestForwardAndTakeOver(t *testing.T) {
	ctx := context.Background()
	m1, m2, sess1, lay := twoReplicas(t)
	l, _ := m1.Grant(ctx, time.Minute)
	if _, err := m2.KeepAlive(ctx, l.ID); err != nil {
		t.Fatalf("forwarded KeepAlive: %v", err)
	}
	if m1.Count() != 1 || m2.Count() != 0 {
		t.Fatalf("after a forwarded keepalive: r1 holds %d, r2 holds %d", m1.Count(), m2.Count())
	}
	if d, err := m2.Describe(ctx, l.ID); err != nil || d.TTL != time.Minute || m2.Count() != 0 {
		t.Fatalf("Describe through r2 = %+v, %v", d, err)
	}
	if err := attachThing(t, m2, lay, l.ID, "moved"); err != nil {
		t.Fatalf("Attach through the other replica: %v", err)
	}
	if m1.Count() != 0 || m2.Count() != 1 {
		t.Fatalf("after take-over: r1 holds %d, r2 holds %d", m1.Count(), m2.Count())
	}
	owner, _, _ := sess1.Conn().Get(lay.LeaseOwner(l.Key))
	if string(owner) != "r2" {
		t.Fatalf("owner node says %q", owner)
	}
	if _, err := m1.KeepAlive(ctx, l.ID); err != nil {
		t.Fatalf("KeepAlive through the former owner: %v", err)
	}
	bad := []byte(l.ID)
	bad[0] ^= 1
	if _, err := m1.KeepAlive(ctx, string(bad)); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("forwarded KeepAlive with a wrong id: %v", err)
	}
}

// TestFencedAfterTakeOver: a replica that lost a lease without knowing it
// (paused past its session, say) can neither attach to it nor delete what
// it owns when its timer fires: the record's version fences it.
func TestFencedAfterTakeOver(t *testing.T) {
	ctx := context.Background()
	m1, sess, lay := newManager(t)
	l, _ := m1.Grant(ctx, time.Second)
	if err := attachThing(t, m1, lay, l.ID, "kept"); err != nil {
		t.Fatal(err)
	}
	// Another replica takes the lease behind m1's back.
	c := sess.Conn()
	data, st, _ := c.Get(lay.Lease(l.Key))
	if _, err := sess.Multi(context.Background(),
		&zk.DeleteRequest{Path: lay.LeaseOwner(l.Key), Version: -1},
		&zk.SetDataRequest{Path: lay.Lease(l.Key), Data: data, Version: st.Version},
	); err != nil {
		t.Fatal(err)
	}
	if err := attachThing(t, m1, lay, l.ID, "late"); !errors.Is(err, lease.ErrOwnedElsewhere) {
		t.Fatalf("Attach by the fenced owner: %v", err)
	}
	if exists(t, sess, lay.Root+"/late") {
		t.Fatal("fenced owner created a node")
	}
	// m1 forgot the lease; its timer (1s) would have fired by now.
	time.Sleep(1500 * time.Millisecond)
	if !exists(t, sess, lay.Root+"/kept") || !exists(t, sess, lay.Lease(l.Key)) {
		t.Fatal("fenced owner released a lease it no longer owns")
	}
}

func start(t *testing.T, sess *zkx.Session, lay zktest.Layout, replica string, opt ...lease.Option) *lease.Manager {
	m, err := lease.NewManager(sess, lay.Root, zktest.Logger(t), append([]lease.Option{lease.WithReplicaID(replica)}, opt...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.Handle("thing", func(_ context.Context, key string, parts []string) ([]any, error) {
		return []any{&zk.DeleteRequest{Path: lay.Root + "/" + parts[0], Version: -1}}, nil
	})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestChainedOrphansDoNotExtend: an orphan adopted by a replica that dies
// in turn keeps the expiry the first adopter gave it.
func TestChainedOrphansDoNotExtend(t *testing.T) {
	ctx := context.Background()
	sess1, lay := zktest.Session(t) // session timeout 4s
	m1 := start(t, sess1, lay, "r1", lease.WithHorizon(time.Second))
	l, _ := m1.Grant(ctx, 2*time.Second)
	granted := time.Now()
	if err := attachThing(t, m1, lay, l.ID, "chained"); err != nil {
		t.Fatal(err)
	}
	m1.Close()
	sess1.Close()
	watcher, _ := zktest.Session(t)
	gone := zktest.AwaitGone(t, watcher, lay.Root+"/chained")
	sess2, _ := zktest.Session(t)
	m2 := start(t, sess2, lay, "r2") // adopts until the horizon: TTL + 1s after the grant
	if m2.Count() != 1 {
		t.Fatalf("r2 adopted %d leases", m2.Count())
	}
	m2.Close()
	sess2.Close()
	sess3, _ := zktest.Session(t)
	start(t, sess3, lay, "r3") // must keep r2's expiry, not give it more
	ended := <-gone
	if ended.Before(l.ExpiresAt) {
		t.Fatalf("orphan adopted twice ended %v before its expiry", l.ExpiresAt.Sub(ended))
	}
	if took := ended.Sub(granted); took > 3500*time.Millisecond {
		t.Fatalf("orphan adopted twice ended %v after its grant, want about TTL + horizon = 3s", took)
	}
}

// TestKeepAliveWithoutZooKeeper: a replica cut off from ZooKeeper answers
// a keepalive that stays within the lease's horizon (an adopter keeps the
// lease that long anyway), and refuses one that would need the horizon
// moved (its session may expire and another replica adopt the lease, which
// must not end earlier than the client was told).
func TestKeepAliveWithoutZooKeeper(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, err := zkx.Dial(ctx, px.Addr(), zkx.WithSessionTimeout(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	lay := zktest.Layout{Root: zktest.Root(t)}
	if err := zkx.EnsurePath(sess.Conn(), lay.Root, sess.ACL()); err != nil {
		t.Fatal(err)
	}
	const horizon = 500 * time.Millisecond
	m := start(t, sess, lay, "r1", lease.WithHorizon(horizon))
	l, _ := m.Grant(ctx, time.Minute)
	px.Cut()
	for st, ch := sess.Watch(); st.State == zkx.StateConnected; st, ch = sess.Watch() {
		<-ch
	}
	if time.Since(l.ExpiresAt.Add(-time.Minute)) < horizon {
		got, err := m.KeepAlive(ctx, l.ID)
		if err != nil {
			t.Fatalf("KeepAlive within the horizon without ZooKeeper: %v", err)
		}
		if got.ExpiresAt.After(l.ExpiresAt.Add(horizon)) {
			t.Fatalf("KeepAlive without ZooKeeper promised %v, past the horizon %v", got.ExpiresAt, l.ExpiresAt.Add(horizon))
		}
	}
	time.Sleep(horizon) // past the horizon
	if _, err := m.KeepAlive(ctx, l.ID); !errors.Is(err, lease.ErrUnreachable) {
		t.Fatalf("KeepAlive past the horizon without ZooKeeper: %v", err)
	}
	px.Restore()
	if err := sess.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.KeepAlive(ctx, l.ID); err != nil {
		t.Fatalf("KeepAlive after reconnecting: %v", err)
	}
}

// TestOwnsHint: a lease granted here knows which refs it owns; one taken
// over from another replica does not claim to know.
func TestOwnsHint(t *testing.T) {
	ctx := context.Background()
	m1, m2, _, lay := twoReplicas(t)
	l, err := m1.Grant(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ref := lease.Ref("thing", "hinted")
	if owns, known := m1.Owns(l.ID, ref); owns || !known {
		t.Fatalf("fresh lease: Owns = %v, %v; want false, true", owns, known)
	}
	if err := attachThing(t, m1, lay, l.ID, "hinted"); err != nil {
		t.Fatal(err)
	}
	if owns, known := m1.Owns(l.ID, ref); !owns || !known {
		t.Fatalf("after Attach: Owns = %v, %v; want true, true", owns, known)
	}
	if _, err := m1.Detach(ctx, l.ID, ref, &zk.DeleteRequest{Path: lay.Root + "/hinted", Version: -1}); err != nil {
		t.Fatal(err)
	}
	if owns, known := m1.Owns(l.ID, ref); owns || !known {
		t.Fatalf("after Detach: Owns = %v, %v; want false, true", owns, known)
	}
	if owns, known := m1.Owns(l.ID+"x", ref); owns || known {
		t.Fatalf("unknown lease: Owns = %v, %v; want false, false", owns, known)
	}
	if err := attachThing(t, m2, lay, l.ID, "moved2"); err != nil { // r2 takes the lease over
		t.Fatal(err)
	}
	if _, known := m2.Owns(l.ID, ref); known {
		t.Fatal("a lease taken over claims to know its refs")
	}
	if _, known := m1.Owns(l.ID, ref); known {
		t.Fatal("the former owner still claims to know the lease's refs")
	}
}

// handedOff grants a lease with ttl on replica r1, attaches things "a" and
// "b" to it and hands it off, with replica r2 started before the grant (its
// sweep at start finds nothing to adopt). It returns r2, r1's session, the
// layout and the lease.
func handedOff(t *testing.T, ttl time.Duration) (*lease.Manager, *zkx.Session, zktest.Layout, lease.Lease) {
	t.Helper()
	ctx := context.Background()
	sess1, lay := zktest.Session(t)
	m1 := start(t, sess1, lay, "r1")
	sess2, _ := zktest.Session(t)
	m2 := start(t, sess2, lay, "r2")
	l, err := m1.Grant(ctx, ttl)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if err := attachThing(t, m1, lay, l.ID, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := m1.Handoff(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	return m2, sess1, lay, l
}

// TestMoveByUseKeepsExpiry: a call that uses a lease without renewing it
// (Detach, as a Deregister) and lands on a replica that does not hold it
// moves the lease there with the expiry written at the hand-off, not a TTL
// from the move: moving a lease never extends it. (A chaos run caught a
// Deregister that moved a lease restarting its TTL: RELIABILITY.md.) A
// keepalive there then renews it as usual.
func TestMoveByUseKeepsExpiry(t *testing.T) {
	ctx := context.Background()
	m2, _, lay, l := handedOff(t, 10*time.Second)
	if _, err := m2.Get(ctx, l.ID); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("Get on the other replica before the Detach: %v, want %v (not adopted yet)", err, lease.ErrNotFound)
	}
	moved := time.Now()
	if _, err := m2.Detach(ctx, l.ID, lease.Ref("thing", "a"), &zk.DeleteRequest{Path: lay.Root + "/a", Version: -1}); err != nil {
		t.Fatalf("Detach on the other replica: %v", err)
	}
	keptExpiry(t, m2, l, moved, "moved it")
	renewed := time.Now()
	k, err := m2.KeepAlive(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if k.ExpiresAt.Before(renewed.Add(l.TTL)) {
		t.Fatalf("a keepalive after the move: expires %s, want at least a TTL from it (%s)", k.ExpiresAt, renewed.Add(l.TTL))
	}
}

// TestTakeOverByUseKeepsExpiry: a call that uses a lease without renewing
// it (Detach, as a Deregister) and lands on a replica that does not hold
// it, while another live replica does, takes the lease over (the owner
// hands it off, this replica adopts it) with the expiry the owner wrote at
// the hand-off, not a TTL from the take-over, as TestMoveByUseKeepsExpiry
// for a lease without an owner: a take-over never extends a lease.
func TestTakeOverByUseKeepsExpiry(t *testing.T) {
	ctx := context.Background()
	m1, m2, _, lay := twoReplicas(t)
	l, err := m1.Grant(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := attachThing(t, m1, lay, l.ID, "a"); err != nil {
		t.Fatal(err)
	}
	moved := time.Now()
	if _, err := m2.Detach(ctx, l.ID, lease.Ref("thing", "a"), &zk.DeleteRequest{Path: lay.Root + "/a", Version: -1}); err != nil {
		t.Fatalf("Detach through the other replica: %v", err)
	}
	if m1.Count() != 0 || m2.Count() != 1 {
		t.Fatalf("after the Detach: r1 holds %d, r2 holds %d, want the lease taken over by r2", m1.Count(), m2.Count())
	}
	keptExpiry(t, m2, l, moved, "took it over")
}

// keptExpiry fails t unless lease l, moved to m by a Detach at moved (how:
// what the Detach did), expires as granted: not a TTL from the move.
func keptExpiry(t *testing.T, m *lease.Manager, l lease.Lease, moved time.Time, how string) {
	t.Helper()
	got, err := m.Get(context.Background(), l.ID)
	if err != nil {
		t.Fatalf("Get after a Detach %s: %v", how, err)
	}
	if !got.ExpiresAt.Before(moved.Add(l.TTL)) {
		t.Fatalf("after a Detach %s, the lease expires at %s, a TTL or more from the move (%s): the move renewed it",
			how, got.ExpiresAt.Format(time.StampMicro), moved.Format(time.StampMicro))
	}
	if d := got.ExpiresAt.Sub(l.ExpiresAt); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("after a Detach %s, the lease expires at %s, %v from its expiry at the grant (%s); want the same: "+
			"a TTL from the move would be %s", how, got.ExpiresAt.Format(time.StampMicro), d, l.ExpiresAt.Format(time.StampMicro),
			moved.Add(l.TTL).Format(time.StampMicro))
	}
}

// TestMoveByUseOfExpiredLease: a call that uses a lease whose recorded
// expiry has passed, on a replica that does not hold it, finds it gone
// (NOT_FOUND), and the lease is released: what it owns and its record are
// deleted, by the adoption's expiry, not left half-deleted by a second
// adoption taking the owner node from under the release.
func TestMoveByUseOfExpiredLease(t *testing.T) {
	ctx := context.Background()
	m2, sess1, lay, l := handedOff(t, 2*time.Second)
	zktest.Eventually(t, 5*time.Second, func() bool { return time.Now().After(l.ExpiresAt) }, "the lease's expiry passed")
	_, err := m2.Detach(ctx, l.ID, lease.Ref("thing", "a"), &zk.DeleteRequest{Path: lay.Root + "/a", Version: -1})
	if !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("Detach of an expired lease on the other replica: %v, want %v", err, lease.ErrNotFound)
	}
	zktest.Eventually(t, 5*time.Second, func() bool {
		return !exists(t, sess1, lay.Root+"/a") && !exists(t, sess1, lay.Root+"/b") && !exists(t, sess1, lay.Lease(l.Key))
	}, "the expired lease released (what it owns and its record deleted)")
}
