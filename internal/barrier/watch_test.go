package barrier_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// waiter is one Await running in the background.
type waiter struct {
	ups    chan progress
	done   chan error
	cancel context.CancelFunc
}

func (e env) await(name string, threshold int, id, leaseID string) *waiter {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	w := &waiter{ups: make(chan progress, 64), done: make(chan error, 1), cancel: cancel}
	go func() {
		w.done <- e.b.Await(ctx, name, threshold, id, leaseID, func(n int, released bool) error {
			w.ups <- progress{arrived: n, released: released}
			return nil
		})
	}()
	return w
}

// arrived waits until w has seen n arrivals.
func (w *waiter) arrived(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case u := <-w.ups:
			if u.arrived == n && !u.released {
				return
			}
		case err := <-w.done:
			t.Fatalf("Await ended (%v) before %d arrived", err, n)
		case <-deadline:
			t.Fatalf("%d arrivals not seen", n)
		}
	}
}

// end waits for Await's result.
func (w *waiter) end(t *testing.T) error {
	t.Helper()
	defer w.cancel()
	select {
	case err := <-w.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Await did not return")
		return nil
	}
}

// TestNoWatchLeft: however a barrier ends (given up by all, released and
// left, its participants' leases ended before or after the release), no
// ZooKeeper watch stays behind on it. go-zookeeper cannot remove a watch,
// so a watch left per barrier would pile up on the server, one per unique
// barrier name, until the gateway's session ends.
func TestNoWatchLeft(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := zktest.ChildWatches(t)
	const rounds = 4
	for i := range rounds {
		// Given up by all before the release.
		name := fmt.Sprint("abandoned-", i)
		a, b := e.await(name, 3, "a", e.grant(t, time.Minute)), e.await(name, 3, "b", e.grant(t, time.Minute))
		a.arrived(t, 2)
		b.arrived(t, 2)
		a.cancel()
		b.cancel()
		for _, w := range []*waiter{a, b} {
			if err := w.end(t); !errors.Is(err, context.Canceled) {
				t.Fatalf("%s: Await after giving up: %v", name, err)
			}
		}

		// Released, then left by everyone.
		name = fmt.Sprint("left-", i)
		la, lb := e.grant(t, time.Minute), e.grant(t, time.Minute)
		a, b = e.await(name, 2, "a", la), e.await(name, 2, "b", lb)
		for _, w := range []*waiter{a, b} {
			if err := w.end(t); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		for id, l := range map[string]string{"a": la, "b": lb} {
			if _, err := e.b.Leave(ctx, name, id, l); err != nil {
				t.Fatalf("%s: Leave %s: %v", name, id, err)
			}
		}

		// Leases ended while waiting: one lease each, then one lease for two
		// participants.
		name = fmt.Sprint("lapsed-", i)
		la, lb = e.grant(t, time.Minute), e.grant(t, time.Minute)
		a, b = e.await(name, 3, "a", la), e.await(name, 3, "b", lb)
		a.arrived(t, 2)
		b.arrived(t, 2)
		for _, l := range []string{la, lb} {
			if err := e.leases.Revoke(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		for _, w := range []*waiter{a, b} {
			if err := w.end(t); !errors.Is(err, lease.ErrNotFound) {
				t.Fatalf("%s: Await after its lease ended: %v", name, err)
			}
		}
		name = fmt.Sprint("lapsed-shared-", i)
		l := e.grant(t, time.Minute)
		a, b = e.await(name, 3, "a", l), e.await(name, 3, "b", l)
		a.arrived(t, 2)
		b.arrived(t, 2)
		if err := e.leases.Revoke(ctx, l); err != nil {
			t.Fatal(err)
		}
		for _, w := range []*waiter{a, b} {
			if err := w.end(t); !errors.Is(err, lease.ErrNotFound) {
				t.Fatalf("%s: Await after its lease ended: %v", name, err)
			}
		}

		// Leases ended after the release, without leaving.
		name = fmt.Sprint("released-", i)
		la, lb = e.grant(t, time.Minute), e.grant(t, time.Minute)
		a, b = e.await(name, 2, "a", la), e.await(name, 2, "b", lb)
		for _, w := range []*waiter{a, b} {
			if err := w.end(t); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		for _, l := range []string{la, lb} {
			if err := e.leases.Revoke(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
	}

	dir := e.lay.Barrier("")
	var left []string
	for _, line := range strings.Split(zktest.FourLetter(t, "wchp"), "\n") {
		if strings.HasPrefix(line, dir+"/") {
			left = append(left, line)
		}
	}
	sort.Strings(left)
	if len(left) > 0 {
		t.Errorf("%d data or exists watches left under %s:\n%s", len(left), dir, strings.Join(left, "\n"))
	}
	if after := zktest.ChildWatches(t); after > before {
		t.Errorf("%d child watches left (%d before the barriers, %d after)", after-before, before, after)
	}
	for _, kind := range []string{"abandoned", "left", "lapsed", "lapsed-shared"} {
		if p := e.lay.Barrier(kind + "-0"); e.exists(t, p) {
			t.Errorf("barrier %s not removed", p)
		}
	}
}
