package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkserver"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

// TestZooKeeperACLs: a gateway with ZooKeeper credentials creates every
// znode readable and writable by them only. A raw ZooKeeper client without
// them can neither list, read, change nor delete anything of zkcoord's; one
// with them can. A root that is open to everyone is refused.
func TestZooKeeperACLs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess, err := zkx.Dial(ctx, testenv.ZooKeeper(t), zkx.WithDigest("zkcoord", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	root := fmt.Sprintf("/secured-%d", os.Getpid())
	cc := testenv.Serve(t, sess, server.WithRoot(root))
	leases, reg := pb.NewLeaseServiceClient(cc), pb.NewRegistryServiceClient(cc)
	l, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "web", MemberId: "w1", Value: "10.0.0.1:80", LeaseId: l.LeaseId}); err != nil {
		t.Fatal(err)
	}
	lay := zktest.Layout{Root: root}
	member := lay.Member("web", "w1")

	raw, err := zkx.Dial(ctx, testenv.ZooKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := raw.Conn()
	noAuth := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("raw client without credentials: %s: %v, want %v", what, err, zk.ErrNoAuth)
		}
	}
	_, _, err = c.Children(root)
	noAuth("list the root", err)
	_, _, err = c.Children(lay.Members("web"))
	noAuth("list a group", err)
	_, _, err = c.Get(member)
	noAuth("read a member", err)
	_, err = c.Set(member, []byte("hijacked"), -1)
	noAuth("change a member", err)
	noAuth("delete a member", c.Delete(member, -1))
	_, err = c.Create(lay.Member("web", "intruder"), []byte("x"), 0, zk.WorldACL(zk.PermAll))
	noAuth("create a member", err)
	_, err = c.Create(root+"/intruder", nil, 0, zk.WorldACL(zk.PermAll))
	noAuth("create under the root", err)
	_, _, err = c.Children(lay.Leases())
	noAuth("list the leases", err)

	if err := c.AddAuth("digest", []byte("zkcoord:s3cret")); err != nil {
		t.Fatal(err)
	}
	if data, _, err := c.Get(member); err != nil || !strings.Contains(string(data), "10.0.0.1:80") {
		t.Errorf("with the credentials: read a member: %q, %v", data, err)
	}

	// A root open to everyone is refused, with what to do about it.
	open := fmt.Sprintf("/open-%d", os.Getpid())
	if _, err := c.Create(open, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, err := server.New(ctx, sess, server.WithRoot(open)); err == nil || !strings.Contains(err.Error(), "is not secured") {
		t.Fatalf("gateway with credentials on a world-open root: %v, want a refusal", err)
	}
}

// TestZooKeeperExistsWithoutCredentials: ZooKeeper 3.8.0 does not check
// ACLs on exists(), so a raw client without the digest credentials learns
// whether a path it guesses exists and its Stat (child counts, times,
// zxids, versions, data length, ephemeral owner). It reads no data, lists
// no children and gets no ACL; its watches do not fire (the tested
// ZooKeeper has the CVE-2024-23944 fix). The four-letter word wchp, outside
// ACLs, shows watched paths. SECURITY.md says so.
func TestZooKeeperExistsWithoutCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess, err := zkx.Dial(ctx, testenv.ZooKeeper(t), zkx.WithDigest("zkcoord", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	root := "/" + name(t)
	cc := testenv.Serve(t, sess, server.WithRoot(root), server.WithReplicaID("r1"))
	leases, reg := pb.NewLeaseServiceClient(cc), pb.NewRegistryServiceClient(cc)
	l, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"w1", "w2", "w3"} {
		if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "web", MemberId: id, Value: "10.0.0.1:80", LeaseId: l.LeaseId}); err != nil {
			t.Fatal(err)
		}
	}
	lay := zktest.Layout{Root: root}
	raw, err := zkx.Dial(ctx, testenv.ZooKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := raw.Conn()

	// A guessed member: it exists, with its creation zxid (the API's
	// revision), its times and the size of its record.
	ok, st, err := c.Exists(lay.Member("web", "w1"))
	if err != nil || !ok || st.Czxid == 0 || st.Ctime == 0 || st.DataLength == 0 {
		t.Fatalf("exists of a member without credentials: %v, %+v, %v; want it found with its Stat", ok, st, err)
	}
	if ok, _, err := c.Exists(lay.Member("web", "nobody")); err != nil || ok {
		t.Fatalf("exists of a missing member: %v, %v", ok, err)
	}
	// A directory's Stat counts its children: the group's size.
	if _, st, err := c.Exists(lay.Members("web")); err != nil || st.NumChildren != 3 {
		t.Fatalf("exists of the members directory: %+v, %v; want 3 children", st, err)
	}
	// An ephemeral's Stat names the session that owns it: the gateway's.
	if _, st, err := c.Exists(lay.Lease(lease.KeyOf(l.LeaseId)) + "/owner"); err != nil || st.EphemeralOwner != sess.Status().SessionID {
		t.Fatalf("exists of a lease's owner node: %+v, %v; want the gateway's session", st, err)
	}
	// An exists watch is accepted, but this ZooKeeper (with the fix of
	// CVE-2024-23944) checks the read permission before notifying: it never
	// fires. The gateway's own watch, on the group's journal, which it
	// holds once the group is read, shows in wchp with the group's name.
	_, _, ch, err := c.ExistsW(lay.Member("web", "w4"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "web", MemberId: "w4", Value: "10.0.0.4:80", LeaseId: l.LeaseId}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Lookup(ctx, &pb.LookupRequest{Group: "web", Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch:
		t.Logf("the exists watch of a client without credentials fired: %+v (a ZooKeeper without the CVE-2024-23944 fix)", ev)
	case <-time.After(time.Second):
	}
	if _, ok := wchp(t)[lay.Log("web")]; !ok {
		t.Errorf("wchp does not show the watch on %s", lay.Log("web"))
	}

	// What it cannot do: read data, list children, see the digest.
	if _, _, err := c.Get(lay.Member("web", "w1")); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("read a member: %v, want %v", err, zk.ErrNoAuth)
	}
	if _, _, err := c.Children(lay.Members("web")); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("list a group: %v, want %v", err, zk.ErrNoAuth)
	}
	if acl, _, err := c.GetACL(lay.Member("web", "w1")); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("getACL of a member: %+v, %v; want %v", acl, err, zk.ErrNoAuth)
	}
}

// TestZooKeeperEnforceAuth: with ZooKeeper's authentication enforced
// (3.7+: zookeeper.enforce.auth.enabled and .schemes=digest), a gateway with
// digest credentials works as before, and a client without them gets an
// error for exists() too.
func TestZooKeeperEnforceAuth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := zkserver.Start(ctx, zkserver.WithJVMFlags("-Dzookeeper.enforce.auth.enabled=true",
		"-Dzookeeper.enforce.auth.schemes=digest"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	sess, err := zkx.Dial(ctx, srv.Addr(), zkx.WithDigest("zkcoord", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	root := "/" + name(t)
	cc := testenv.Serve(t, sess, server.WithRoot(root))
	l, err := pb.NewLeaseServiceClient(cc).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	reg := pb.NewRegistryServiceClient(cc)
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "web", MemberId: "w1", Value: "10.0.0.1:80", LeaseId: l.LeaseId}); err != nil {
		t.Fatal(err)
	}
	if r, err := reg.Lookup(ctx, &pb.LookupRequest{Group: "web", Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); err != nil || len(r.Members) != 1 {
		t.Fatalf("Lookup: %v, %v", r, err)
	}
	raw, err := zkx.Dial(ctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, st, err := raw.Conn().Exists(zktest.Layout{Root: root}.Member("web", "w1")); err == nil || st.Czxid != 0 {
		t.Fatalf("exists without credentials under enforced auth: %+v, %v; want an error", st, err)
	}
}
