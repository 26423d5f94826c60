package registry_test

import (
	"context"
	"path"
	"slices"
	"testing"

	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestHalfCreatedGroup: a group whose journal does not exist (here its
// members directory exists, as a Register that stopped half-way leaves it)
// reads as empty at the pzxid of the nearest existing ancestor of the
// journal, a revision at which the journal was missing; reading creates
// nothing, and the cache follows the group once a Register completes it.
func TestHalfCreatedGroup(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	a := gateway(t, &lay)
	b := gateway(t, &lay)
	c := a.sess.Conn()
	dir := path.Dir(lay.Members("half"))
	if err := zkx.EnsurePath(c, lay.Members("half"), a.sess.ACL()); err != nil {
		t.Fatal(err)
	}
	_, st, err := c.Exists(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, lin := range []bool{false, true} {
		v, err := a.reg.Lookup(ctx, "half", "", lin)
		if err != nil || len(v.Members) != 0 || v.Rev != st.Pzxid {
			t.Fatalf("lookup (linearizable %v): %d members at %d, %v; want none at %d (%s's pzxid)",
				lin, len(v.Members), v.Rev, err, st.Pzxid, dir)
		}
	}
	sub, start, err := a.reg.Watch(ctx, "half", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if kids, _, err := c.Children(dir); err != nil || !slices.Equal(kids, []string{"members"}) {
		t.Fatalf("after the reads %s holds %v, %v; want only members", dir, kids, err)
	}

	m := register(t, b, "half", "m", "v", "")
	ev := next(t, sub)
	if ev.Type != registry.Joined || ev.Member.ID != "m" || ev.Rev != m.ModRev || start.Snapshot.Rev >= ev.Rev {
		t.Fatalf("after a Register: %v %s at %d (snapshot at %d); want m JOINED at %d", ev.Type, ev.Member.ID, ev.Rev,
			start.Snapshot.Rev, m.ModRev)
	}
}
