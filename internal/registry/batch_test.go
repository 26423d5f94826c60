package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// The test of this file runs Registers and Deregisters of many callers at
// once on one gateway, so that the session's group commit puts several
// callers' writes in each ZooKeeper transaction, some of them bound to
// fail: each call must get the outcome it would have had alone, and each
// group's journal exactly one entry per change, in revision order.

// outcome is what a call must return: nil, or an error it must match.
type outcome struct {
	name string
	want error
	got  error
}

// TestGroupCommitOutcomes: 7 leases register and deregister members of 3
// groups (10 each) while, at the same time, a member held by another lease
// is registered (ErrMemberExists) and deregistered (ErrNotOwner) with the
// wrong lease, a revoked lease registers (lease.ErrNotFound), and two
// leases whose record another replica moved register (the fence:
// lease.ErrOwnedElsewhere). Every call gets its own outcome; the journal
// of each group holds one entry per successful change, in revision order,
// and nothing of a failed call.
func TestGroupCommitOutcomes(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	e := gateway(t, &lay)
	groups := []string{"g0", "g1", "g2"}
	owner := grant(t, e, time.Minute)
	register(t, e, "g0", "held", "v", owner)
	revoked := grant(t, e, time.Minute)
	if err := e.leases.Revoke(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	var fenced []string // leases whose record version moved behind this gateway's back
	for range 2 {
		id := grant(t, e, time.Minute)
		data, _, err := e.sess.Conn().Get(lay.Lease(lease.KeyOf(id)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.sess.Conn().Set(lay.Lease(lease.KeyOf(id)), data, -1); err != nil {
			t.Fatal(err)
		}
		fenced = append(fenced, id)
	}
	const leases, rounds = 7, 10
	good := make([]string, leases)
	for i := range good {
		good[i] = grant(t, e, time.Minute)
	}
	stranger := grant(t, e, time.Minute)
	gc0 := e.sess.GroupCommit()

	var mu sync.Mutex
	var outcomes []outcome
	note := func(name string, want, got error) {
		mu.Lock()
		defer mu.Unlock()
		outcomes = append(outcomes, outcome{name, want, got})
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	run := func(fn func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn()
		}()
	}
	for i, id := range good {
		run(func() {
			for j := range rounds {
				g, m := groups[j%len(groups)], fmt.Sprintf("m%d-%d", i, j)
				_, _, err := e.reg.Register(ctx, registry.RegisterParams{Group: g, ID: m, Value: "v", LeaseID: id})
				note("Register "+m, nil, err)
				_, err = e.reg.Deregister(ctx, g, m, id)
				note("Deregister "+m, nil, err)
			}
		})
	}
	run(func() {
		for range rounds {
			_, _, err := e.reg.Register(ctx, registry.RegisterParams{Group: "g0", ID: "held", Value: "w", LeaseID: stranger})
			note("Register of another lease's member", registry.ErrMemberExists, err)
		}
	})
	run(func() {
		for range rounds {
			_, err := e.reg.Deregister(ctx, "g0", "held", stranger)
			note("Deregister of another lease's member", registry.ErrNotOwner, err)
		}
	})
	run(func() {
		for j := range rounds {
			_, _, err := e.reg.Register(ctx, registry.RegisterParams{Group: groups[j%3], ID: fmt.Sprint("revoked", j), Value: "v", LeaseID: revoked})
			note("Register under a revoked lease", lease.ErrNotFound, err)
		}
	})
	for i, id := range fenced {
		run(func() {
			_, _, err := e.reg.Register(ctx, registry.RegisterParams{Group: groups[i], ID: fmt.Sprint("fenced", i), Value: "v", LeaseID: id})
			note("Register under a lease moved elsewhere", lease.ErrOwnedElsewhere, err)
		})
	}
	close(start)
	wg.Wait()

	for _, o := range outcomes {
		if o.want == nil && o.got != nil || o.want != nil && !errors.Is(o.got, o.want) {
			t.Errorf("%s: got %v, want %v", o.name, o.got, o.want)
		}
	}
	if want := 2*leases*rounds + 3*rounds + len(fenced); len(outcomes) != want {
		t.Errorf("%d outcomes, want %d", len(outcomes), want)
	}
	gc := e.sess.GroupCommit()
	calls, multis := gc.Calls-gc0.Calls, gc.Multis-gc0.Multis
	t.Logf("group commit: %d calls in %d multis", calls, multis)
	if calls <= multis {
		t.Errorf("%d calls in %d multis: no transaction carried two callers' writes", calls, multis)
	}

	// The journals: one entry per change, in revision order; per member,
	// put and del alternate from a put; nothing of the failed calls.
	puts, dels := 0, 0
	for _, g := range groups {
		names, _, err := e.sess.Conn().Children(lay.Log(g))
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(names, func(a, b string) int { return strings.Compare(a, b) })
		last := map[string]string{}
		var prevSeq, prevRev int64 = -1, 0
		for _, n := range names {
			seq, err := strconv.ParseInt(strings.TrimPrefix(n, "e-"), 10, 64)
			if err != nil {
				t.Fatalf("journal entry %q", n)
			}
			data, st, err := e.sess.Conn().Get(lay.Log(g) + "/" + n)
			if err != nil {
				t.Fatal(err)
			}
			var ch struct{ Op, ID string }
			if err := json.Unmarshal(data, &ch); err != nil {
				t.Fatal(err)
			}
			if seq <= prevSeq || st.Czxid < prevRev {
				t.Errorf("%s/%s at revision %d after revision %d: not in revision order", g, n, st.Czxid, prevRev)
			}
			prevSeq, prevRev = seq, st.Czxid
			switch {
			case ch.Op == "put" && last[ch.ID] != "put":
				puts++
			case ch.Op == "del" && last[ch.ID] == "put":
				dels++
			default:
				t.Errorf("%s: %s %s after %q", g, ch.Op, ch.ID, last[ch.ID])
			}
			last[ch.ID] = ch.Op
			if strings.HasPrefix(ch.ID, "revoked") || strings.HasPrefix(ch.ID, "fenced") {
				t.Errorf("%s: journal entry of a failed call: %s %s", g, ch.Op, ch.ID)
			}
		}
	}
	if puts != leases*rounds+1 || dels != leases*rounds {
		t.Errorf("journals: %d puts and %d dels, want %d and %d", puts, dels, leases*rounds+1, leases*rounds)
	}
	for _, g := range groups {
		kids, _, err := e.sess.Conn().Children(lay.Members(g))
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"g0": 1}[g]; len(kids) != want {
			t.Errorf("%s has members %v, want %d", g, kids, want)
		}
	}
	for _, id := range append(append(good, stranger), fenced...) {
		kids, _, err := e.sess.Conn().Children(lay.Lease(lease.KeyOf(id)))
		if err != nil {
			t.Fatal(err)
		}
		if len(kids) != 1 { // its owner node only
			t.Errorf("lease %s owns %v after its members went", lease.KeyOf(id), kids)
		}
	}
}
