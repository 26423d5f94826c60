package registry_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// TestGroupNames: the list starts empty on a root nobody wrote to, gains
// each group a Register creates (on any gateway) with a new revision,
// keeps a group whose members all left, and is not changed by lookups of
// groups that do not exist.
func TestGroupNames(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	a := gateway(t, &lay)
	b := gateway(t, &lay)
	gl, err := a.reg.GroupNames(ctx)
	if err != nil || len(gl.Names) != 0 {
		t.Fatalf("GroupNames on a new root: %+v, %v; want none", gl, err)
	}
	if _, err := a.reg.Lookup(ctx, "nobody", "", false); err != nil {
		t.Fatal(err)
	}
	register(t, b, "web", "w1", "10.0.0.1:80", "")
	register(t, b, "db.prod", "d1", "10.0.0.2:5432", "")
	want := []string{"db.prod", "web"}
	var got registry.GroupList
	zktest.Eventually(t, 10*time.Second, func() bool {
		got, err = a.reg.GroupNames(ctx)
		return err == nil && slices.Equal(got.Names, want)
	}, "GroupNames lists the groups registered through another gateway")
	if got.Rev <= gl.Rev {
		t.Errorf("revision %d after two groups were created, was %d", got.Rev, gl.Rev)
	}
	if _, err := b.reg.Deregister(ctx, "web", "w1", ""); err != nil {
		t.Fatal(err)
	}
	register(t, b, "web", "w2", "10.0.0.3:80", "") // a group that exists: no new name
	if again, err := a.reg.GroupNames(ctx); err != nil || !slices.Equal(again.Names, want) {
		t.Errorf("GroupNames after a deregistration: %+v, %v; want %v", again, err, want)
	}
	register(t, b, "z", "z1", "x", "")
	zktest.Eventually(t, 10*time.Second, func() bool {
		l, err := a.reg.GroupNames(ctx)
		return err == nil && slices.Contains(l.Names, "z") && l.Rev > got.Rev
	}, "GroupNames follows a third group")
}

// TestGroupNamesAfterClose: a registry closed before any listing answers
// ErrClosed, not a hang.
func TestGroupNamesAfterClose(t *testing.T) {
	var lay zktest.Layout
	e := gateway(t, &lay)
	e.reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.reg.GroupNames(ctx); err != registry.ErrClosed {
		t.Errorf("GroupNames after Close: %v, want ErrClosed", err)
	}
}

// TestRevision: Revision is the revision a cached Lookup answers, and
// moves with the group.
func TestRevision(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	e := gateway(t, &lay)
	register(t, e, "web", "w1", "10.0.0.1:80", "")
	v, err := e.reg.Lookup(ctx, "web", "", true)
	if err != nil {
		t.Fatal(err)
	}
	if rev, err := e.reg.Revision(ctx, "web"); err != nil || rev != v.Rev {
		t.Errorf("Revision %d, %v; want the Lookup's %d", rev, err, v.Rev)
	}
	register(t, e, "web", "w2", "10.0.0.2:80", "")
	v2, err := e.reg.Lookup(ctx, "web", "", true)
	if err != nil {
		t.Fatal(err)
	}
	if rev, err := e.reg.Revision(ctx, "web"); err != nil || rev != v2.Rev || rev <= v.Rev {
		t.Errorf("Revision after a Register %d, %v; want the Lookup's %d, above %d", rev, err, v2.Rev, v.Rev)
	}
}
