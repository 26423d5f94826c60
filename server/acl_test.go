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
	"github.com/zkcoord/zkcoord/internal/testenv"
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
	lay := zkx.Layout{Root: root}
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
