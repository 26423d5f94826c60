package election

import (
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// TestOptionsRefuseBadValues: New returns the error of a root or an option
// it cannot work with; a resign memory under a second was ignored before.
func TestOptionsRefuseBadValues(t *testing.T) {
	sess, lay := zktest.Session(t)
	leases, err := lease.NewManager(sess, lay.Root, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer leases.Close()
	for name, tc := range map[string]struct {
		root string
		opt  Option
	}{
		"relative root":          {"zkcoord", WithResignMemory(time.Minute)},
		"root /":                 {"/", WithResignMemory(time.Minute)},
		"no resign memory":       {lay.Root, WithResignMemory(0)},
		"resign memory under 1s": {lay.Root, WithResignMemory(999 * time.Millisecond)},
	} {
		t.Run(name, func(t *testing.T) {
			el, err := New(sess, tc.root, leases, zktest.Logger(t), tc.opt)
			if err == nil {
				el.Close()
				t.Fatal("New accepted it")
			}
			t.Log(err)
		})
	}
	el, err := New(sess, lay.Root, leases, zktest.Logger(t), WithResignMemory(time.Second))
	if err != nil {
		t.Fatalf("the smallest good value: %v", err)
	}
	el.Close()
}
