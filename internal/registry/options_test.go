package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// TestOptionsRefuseBadValues: New returns the error of an option given a
// value the registry cannot work with (a history of no event panicked at
// the first change; a journal keeping more entries than it trims at, at the
// first trim), and starts nothing.
func TestOptionsRefuseBadValues(t *testing.T) {
	sess, lay := zktest.Session(t)
	m, err := lease.NewManager(sess, lay.Root, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opt  registry.Option
	}{
		{"no history", registry.WithHistory(0)},
		{"negative history", registry.WithHistory(-1)},
		{"journal keeps more than its trim bound", registry.WithJournal(5, 3)},
		{"journal keeps its trim bound", registry.WithJournal(3, 3)},
		{"journal keeps nothing", registry.WithJournal(0, 4)},
		{"no idle time", registry.WithIdleEviction(0)},
		{"negative idle time", registry.WithIdleEviction(-time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := registry.New(sess, lay.Root, m, zktest.Logger(t), tc.opt)
			if err == nil {
				r.Close()
				t.Fatal("New accepted the option")
			}
			t.Log(err)
		})
	}
	for _, root := range []string{"", "zkcoord", lay.Root + "/", "/", lay.Root + "//x", lay.Root + "/../x"} {
		if r, err := registry.New(sess, root, m, zktest.Logger(t)); err == nil {
			r.Close()
			t.Errorf("New accepted the root %q", root)
		}
	}
	r, err := registry.New(sess, lay.Root, m, zktest.Logger(t),
		registry.WithHistory(1), registry.WithJournal(1, 2), registry.WithIdleEviction(time.Millisecond))
	if err != nil {
		t.Fatalf("the smallest good values: %v", err)
	}
	r.Close()
}

// TestClosedRegistry: calls on a closed registry fail with ErrClosed (the
// gateway maps it to UNAVAILABLE), and its watchers end with a cause a
// client retries elsewhere.
func TestClosedRegistry(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	e := gateway(t, &lay)
	sub, _, err := e.reg.Watch(ctx, "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	e.reg.Close()
	if _, err := sub.Take(); !errors.Is(err, registry.ErrCacheStopped) && !errors.Is(err, registry.ErrClosed) {
		t.Errorf("watcher after Close: %v", err)
	}
	if _, err := e.reg.Lookup(ctx, "g", "", false); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Lookup after Close: %v, want ErrClosed", err)
	}
	if _, _, err := e.reg.Watch(ctx, "g", 0); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Watch after Close: %v, want ErrClosed", err)
	}
}
