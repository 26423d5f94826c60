package registry_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// The tests of this file end a lease that owns 200 members of a group (one
// ZooKeeper transaction, revision R) while a gateway reads the group, and
// check every state the gateway labels with a revision against the truth:
// the lease's 200 members before R, none from R on.

const leased = 200

// leaseWithMembers grants a lease on e and registers the members l0..l199
// of group under it.
func leaseWithMembers(t *testing.T, e env, group string) string {
	t.Helper()
	id := grant(t, e, time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, leased)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < leased; i += 8 {
				_, _, err := e.reg.Register(context.Background(), registry.RegisterParams{Group: group,
					ID: fmt.Sprintf("l%d", i), Value: "v", LeaseID: id})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return id
}

// leasedCount counts the lease's members among ms.
func leasedCount(ms []*registry.Member) int {
	n := 0
	for _, m := range ms {
		if strings.HasPrefix(m.ID, "l") {
			n++
		}
	}
	return n
}

// journalRev returns the revision of group's last change (the journal
// directory's mzxid): the end of the lease, once nothing else was written.
func journalRev(t *testing.T, e env, group string) int64 {
	t.Helper()
	_, st, err := e.sess.Conn().Exists(e.lay.Log(group))
	if err != nil {
		t.Fatal(err)
	}
	return st.Mzxid
}

// torn describes a state at rev that shows another count n of the lease's
// members than the truth (all before end, none from end on), or is "".
func torn(rev int64, n int, end int64) string {
	want := leased
	if rev >= end {
		want = 0
	}
	if n == want {
		return ""
	}
	return fmt.Sprintf("revision %d (the lease ended at %d) shows %d of the lease's %d members, want %d",
		rev, end, n, leased, want)
}

// TestFirstLoadIsExact: a gateway loads a group for the first time while
// the lease of most of its members ends; the state it answers with is the
// group exactly at the revision it names.
func TestFirstLoadIsExact(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var lay zktest.Layout
	b := gateway(t, &lay)
	id := leaseWithMembers(t, b, "g")
	var hit atomic.Bool
	a := gateway(t, &lay, registry.WithAfterMemberRead(func(_ string, n int) {
		if n == leased/2 && hit.CompareAndSwap(false, true) {
			if err := b.leases.Revoke(ctx, id); err != nil {
				t.Errorf("revoke: %v", err)
			}
		}
	}))

	v, err := a.reg.Lookup(ctx, "g", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if !hit.Load() {
		t.Fatal("the lease did not end during the load")
	}
	end := journalRev(t, b, "g")
	t.Logf("first load: revision %d, %d members; the lease ended at %d", v.Rev, len(v.Members), end)
	if msg := torn(v.Rev, leasedCount(v.Members), end); msg != "" {
		t.Errorf("first load: %s", msg)
	}
}

// TestRereadIsExact: a gateway that missed journal entries (trimmed while
// it was cut off) rereads its group while the lease of most of its members
// ends. Its watcher's state at the end of every revision, and its cached
// Lookup, are the group exactly at their revision.
func TestRereadIsExact(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	px := zktest.NewProxy(t, zktest.Addr(t))
	var lay zktest.Layout
	opts := []registry.Option{registry.WithJournal(2, 4)}
	var b env
	var id string
	var armed, hit atomic.Bool
	a := proxiedGateway(t, px, &lay, append(opts, registry.WithAfterMemberRead(func(_ string, n int) {
		if n == leased/2 && armed.Load() && hit.CompareAndSwap(false, true) {
			if err := b.leases.Revoke(ctx, id); err != nil {
				t.Errorf("revoke: %v", err)
			}
		}
	}))...)
	b = gateway(t, &lay, opts...)
	id = leaseWithMembers(t, b, "g")
	if v, err := a.reg.Lookup(ctx, "g", "", true); err != nil || len(v.Members) != leased {
		t.Fatalf("lookup before the gap: %d members, %v", len(v.Members), err)
	}
	sub, start, err := a.reg.Watch(ctx, "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	px.Cut() // b writes; the journal is trimmed past a's last entry
	for i := range 10 {
		register(t, b, "g", fmt.Sprintf("p%d", i), "v", "")
	}
	settleJournal(t, b, "g")
	armed.Store(true)
	px.Restore()

	// Follow the watch to the end of the lease, noting the state at the end
	// of every revision.
	members := map[string]*registry.Member{}
	for _, m := range start.Snapshot.Members() {
		members[m.ID] = m
	}
	type state struct {
		rev int64
		n   int
	}
	var states []state
	for done := false; !done; {
		select {
		case <-sub.Ready():
		case <-ctx.Done():
			t.Fatalf("the watch did not see the lease end; %d states", len(states))
		}
		evs, err := sub.Take()
		if err != nil {
			t.Fatal(err)
		}
		for i, ev := range evs {
			if ev.Type == registry.Left {
				delete(members, ev.Member.ID)
			} else {
				members[ev.Member.ID] = ev.Member
			}
			if i+1 == len(evs) || evs[i+1].Rev != ev.Rev {
				ms := make([]*registry.Member, 0, len(members))
				for _, m := range members {
					ms = append(ms, m)
				}
				states = append(states, state{ev.Rev, leasedCount(ms)})
				done = done || leasedCount(ms) == 0
			}
		}
	}
	if !hit.Load() {
		t.Fatal("the lease did not end during the reread")
	}
	end := journalRev(t, b, "g")
	t.Logf("%d states after the gap (revision, lease's members), first %v, last %v; the lease ended at %d",
		len(states), states[0], states[len(states)-1], end)
	var bad []string
	for _, s := range states {
		if msg := torn(s.rev, s.n, end); msg != "" {
			bad = append(bad, msg)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of the watcher's %d states after the reread are torn; first: %s", len(bad), len(states), bad[0])
	}
	v, err := a.reg.Lookup(ctx, "g", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if msg := torn(v.Rev, leasedCount(v.Members), end); msg != "" {
		t.Errorf("cached lookup after the reread: %s", msg)
	}
	if len(v.Members) != 10 {
		t.Errorf("cached lookup after the reread: %d members (%s), want p0..p9", len(v.Members), ids(v.Members))
	}
}
