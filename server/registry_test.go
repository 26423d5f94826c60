package server_test

import (
	"context"
	"fmt"
	"path"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/grpc/codes"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

// TestReadsCreateNothing: Lookups (cached, linearizable, of the group and
// of one member) and a WatchGroup of a group nobody ever used answer an
// empty group at a revision before any change of it, and leave nothing in
// ZooKeeper (a typo leaves no state behind). The watch follows the group
// once a Register, on another gateway, creates it.
func TestReadsCreateNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root := fmt.Sprintf("/%s-%d", name(t), time.Now().UnixNano())
	a, b := startReplica(t, root, "a"), startReplica(t, root, "b")
	regA, regB := pb.NewRegistryServiceClient(a.cc), pb.NewRegistryServiceClient(b.cc)
	for _, group := range []string{"typo", "later"} { // no group at all yet, then a sibling
		var revs []int64
		for _, c := range []pb.Consistency{pb.Consistency_CONSISTENCY_CACHED, pb.Consistency_CONSISTENCY_LINEARIZABLE} {
			v, err := regA.Lookup(ctx, &pb.LookupRequest{Group: group, Consistency: c})
			if err != nil || len(v.Members) != 0 || v.Revision <= 0 {
				t.Fatalf("%s lookup of %s: %v, %v; want no members at a positive revision", c, group, v, err)
			}
			revs = append(revs, v.Revision)
			if _, err := regA.Lookup(ctx, &pb.LookupRequest{Group: group, MemberId: "m", Consistency: c}); code(err) != codes.NotFound {
				t.Fatalf("%s lookup of %s/m: %v, want NOT_FOUND", c, group, err)
			}
		}
		w, err := regA.WatchGroup(ctx, &pb.WatchGroupRequest{Group: group})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := w.Recv()
		if err != nil || snap.Type != pb.WatchGroupResponse_TYPE_SNAPSHOT || len(snap.Members) != 0 || snap.Revision <= 0 {
			t.Fatalf("watch of %s: %v, %v", group, snap, err)
		}
		t.Logf("%s: lookups at %v, snapshot at %d", group, revs, snap.Revision)
		if kids := zkTree(t, path.Join(root, "groups")); len(kids) > 0 {
			t.Fatalf("reads of %s created %v", group, kids)
		}
		if group == "typo" {
			continue
		}

		r, err := regB.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "m", Value: "v", Persistent: true})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := w.Recv()
		if err != nil || ev.Type != pb.WatchGroupResponse_TYPE_JOINED || ev.Member.GetId() != "m" || ev.Revision != r.Revision {
			t.Fatalf("after a Register on another gateway the watch got %v, %v; want m JOINED at %d", ev, err, r.Revision)
		}
		if snap.Revision >= r.Revision || revs[0] >= r.Revision || revs[1] >= r.Revision {
			t.Fatalf("the empty group's revisions %v and %d are not before its first change %d", revs, snap.Revision, r.Revision)
		}
	}
}

// zkTree returns the names under dir, read with a plain go-zookeeper client.
func zkTree(t *testing.T, dir string) map[string]bool {
	t.Helper()
	c, _, err := zk.Connect([]string{testenv.ZooKeeper(t)}, 5*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := map[string]bool{}
	var walk func(p string)
	walk = func(p string) {
		kids, _, err := c.Children(p)
		if err == zk.ErrNoNode {
			return
		} else if err != nil {
			t.Fatal(err)
		}
		for _, k := range kids {
			out[path.Join(p, k)[len(dir)+1:]] = true
			walk(path.Join(p, k))
		}
	}
	walk(dir)
	return out
}

// TestBadRegistryOptions: a gateway given registry options it cannot work
// with is refused at construction, not left to panic later.
func TestBadRegistryOptions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := zkx.Dial(ctx, testenv.ZooKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	g, err := server.New(ctx, sess, server.WithRoot(fmt.Sprintf("/%s-%d", name(t), time.Now().UnixNano())),
		server.WithRegistryOptions(registry.WithHistory(0)))
	if err == nil {
		g.Close()
		t.Fatal("New accepted a history of no event")
	}
	t.Log(err)
}
