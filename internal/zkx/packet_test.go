package zkx_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// TestListingOver4MiB: a Session lists a directory whose answer is over
// 4 MiB (30,000 children of 207 characters: 6.3 MB), as a gateway lists a
// large group's members. With go-zookeeper's 4 MiB limit of before, the
// connection closed instead.
func TestListingOver4MiB(t *testing.T) {
	sess, lay := zktest.Session(t)
	ctx := context.Background()
	dir := lay.Root + "/big"
	if _, err := sess.Create(ctx, dir, nil, 0); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 200)
	for b := range 30 {
		ops := make([]any, 0, 1000)
		for i := range 1000 {
			ops = append(ops, &zk.CreateRequest{Path: fmt.Sprintf("%s/%s%07d", dir, pad, b*1000+i), Acl: sess.ACL()})
		}
		if _, err := sess.Multi(ctx, ops...); err != nil {
			t.Fatal(err)
		}
	}
	kids, _, err := sess.Children(ctx, dir)
	if err != nil || len(kids) != 30000 {
		t.Fatalf("listing: %d children, %v; want 30000", len(kids), err)
	}
}
